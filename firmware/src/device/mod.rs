//! The device loop: inputs → outbox → link, and the gateway's acks and commands back.
//!
//! One configurable [`Device`] serves every kind of home device: it is built with the
//! inputs the board has ([`Device::with_door`], [`Device::with_pir`],
//! [`Device::with_help_button`], [`Device::with_gas`], [`Device::with_tamper`],
//! [`Device::with_indicator`]). Detectors that are not pins (the pendant's fall
//! detector) hand their events to [`Device::push_event`].
//!
//! The main loop calls [`Device::poll`] with the monotonic time, often enough for the
//! inputs (every 10–20 ms for debouncing, or on pin interrupts plus
//! [`Device::next_deadline`]); and [`Device::on_message`] with what arrives on the
//! device's `down/ack` and `down/cmd` topics. Each poll, in this order:
//! 1. reads the gas probe and drives the siren at once (with or without network);
//! 2. samples the button, door, tamper and PIR inputs and issues their events: each
//!    takes the next `seq` and goes into the [`Outbox`];
//! 3. ends finished feedback patterns, an expired installation test and an unanswered
//!    check-in;
//! 4. on a new link session: publishes the retained online [`Status`] and makes every
//!    held event due again (replay), and brings the next heartbeat forward;
//! 5. publishes the events that are due (new ones, retries), oldest first;
//! 6. publishes a [`Heartbeat`] when one is due (skipped while disconnected).
//!
//! Events carry `clk: unix` once [`Device::set_unix_time`] was called (RTC or network
//! time), `clk: up` (ms since start-up) before.
//!
//! Generic parameters: `L` the [`Link`], `I` the input pin type, `O` the output pin type,
//! `G` the [`GasProbe`], `N` the outbox capacity. HALs with type-erased pins
//! (`Input<'d>`, `Output<'d>`) fit `I` and `O` directly; [`NoPin`] and [`NoGas`] fill the
//! parameters of inputs a device lacks.

mod absent;
mod downlink;
pub mod feedback;
mod kind;
mod link;
mod recording_link;
mod settings;
mod stats;

use embedded_hal::digital::{InputPin, OutputPin};

pub use absent::{NoGas, NoPin};
pub use downlink::{Handled, MessageError};
pub use feedback::{Indicator, Pattern};
pub use kind::DeviceKind;
pub use link::{Link, LinkError, SessionId};
pub use recording_link::{Published, RecordingLink};
pub use settings::{FwVersion, Settings, crate_version};
pub use stats::{DeviceStats, KindCounts};

use crate::heartbeat::HeartbeatSchedule;
use crate::input::{Door, GasAlarm, GasProbe, HelpButton, Pir, Tamper};
use crate::outbox::{Delivery, Outbox};
use crate::wire::{
    Availability, Channel, Clock, Event, EventBody, FallAction, Heartbeat, HelpAction, MAX_PAYLOAD,
    MIN_UNIX_MS, PROTOCOL_VERSION, Seq, Status, encode,
};

/// Default outbox capacity (events).
pub const OUTBOX_CAPACITY: usize = 64;

/// Battery state, as last reported by the board.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Battery {
    /// Charge, 0–100 %.
    pub pct: Option<u8>,
    /// Voltage in mV.
    pub mv: Option<u16>,
}

/// What one [`Device::poll`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    /// Events issued by the inputs.
    pub events: u16,
    /// Events published (new and resent).
    pub sent: u16,
    /// Whether a heartbeat was published.
    pub heartbeat: bool,
    /// Whether the online status was published (new session).
    pub online: bool,
}

/// A home device: its inputs, outbox, heartbeat schedule and link.
#[derive(Debug)]
pub struct Device<L, I, O, G, const N: usize = OUTBOX_CAPACITY> {
    settings: Settings,
    link: L,
    door: Option<Door<I>>,
    tamper: Option<Tamper<I>>,
    pir: Option<Pir<I>>,
    button: Option<HelpButton<I>>,
    gas: Option<(G, GasAlarm<O>)>,
    indicator: Option<Indicator<O>>,
    outbox: Outbox<N>,
    heartbeat: HeartbeatSchedule,
    boot_ms: u64,
    /// `unix ms - monotonic ms`, once the wall clock is known.
    unix_offset_ms: Option<i64>,
    last_seq: Seq,
    /// The link session last seen.
    session: Option<SessionId>,
    /// The online status of the current session is still to be published.
    online_pending: bool,
    recent_commands: heapless::Deque<u32, 8>,
    /// The id of the last command applied or recognised as applied (0: none yet),
    /// carried in every heartbeat as the device's acknowledgement.
    last_command: u32,
    install_test_until: Option<u64>,
    /// A check-in is asked until then: a help press answers it ("I'm OK").
    check_in_until: Option<u64>,
    battery: Battery,
    temp_dc: Option<i16>,
    stats: DeviceStats,
}

impl<L, I, O, G, const N: usize> Device<L, I, O, G, N>
where
    L: Link,
    I: InputPin,
    O: OutputPin,
    G: GasProbe,
{
    /// A device with no inputs yet, started at `now_ms`.
    pub fn new(settings: Settings, link: L, now_ms: u64) -> Self {
        let heartbeat =
            HeartbeatSchedule::new(settings.heartbeat_s, settings.first_heartbeat_ms, now_ms);
        let outbox = Outbox::new(settings.retry);
        Device {
            settings,
            link,
            door: None,
            tamper: None,
            pir: None,
            button: None,
            gas: None,
            indicator: None,
            outbox,
            heartbeat,
            boot_ms: now_ms,
            unix_offset_ms: None,
            last_seq: 0,
            session: None,
            online_pending: false,
            recent_commands: heapless::Deque::new(),
            last_command: 0,
            install_test_until: None,
            check_in_until: None,
            battery: Battery::default(),
            temp_dc: None,
            stats: DeviceStats::default(),
        }
    }

    /// Adds a door contact on `pin` (settings `door`).
    pub fn with_door(mut self, pin: I) -> Self {
        self.door = Some(Door::new(pin, self.settings.door));
        self
    }

    /// Adds a tamper switch on `pin` (settings `tamper`).
    pub fn with_tamper(mut self, pin: I) -> Self {
        self.tamper = Some(Tamper::new(pin, self.settings.tamper));
        self
    }

    /// Adds a PIR sensor on `pin` (settings `pir`).
    pub fn with_pir(mut self, pin: I) -> Self {
        self.pir = Some(Pir::new(pin, self.settings.pir));
        self
    }

    /// Adds a help button on `pin` (settings `button`).
    pub fn with_help_button(mut self, pin: I) -> Self {
        self.button = Some(HelpButton::new(pin, self.settings.button));
        self
    }

    /// Adds a gas probe and the siren it drives (settings `gas`).
    pub fn with_gas(mut self, probe: G, siren: O) -> Self {
        self.gas = Some((probe, GasAlarm::new(siren, self.settings.gas)));
        self
    }

    /// Adds the LED/buzzer output for local feedback.
    pub fn with_indicator(mut self, pin: O) -> Self {
        self.indicator = Some(Indicator::new(pin));
        self
    }

    /// Tells the device the wall-clock time: from now on events carry `clk: unix`.
    /// A time before 2020 is ignored (a clock that was never set).
    pub fn set_unix_time(&mut self, unix_ms: u64, now_ms: u64) {
        if unix_ms < MIN_UNIX_MS {
            return;
        }
        let offset = i128::from(unix_ms) - i128::from(now_ms);
        self.unix_offset_ms = i64::try_from(offset).ok();
    }

    /// Records the battery state for the next heartbeats.
    pub fn set_battery(&mut self, battery: Battery) {
        self.battery = Battery {
            pct: battery.pct.map(|p| p.min(100)),
            mv: battery.mv,
        };
    }

    /// Records the ambient temperature (tenths of °C) for the next heartbeats.
    pub fn set_temperature(&mut self, temp_dc: Option<i16>) {
        self.temp_dc = temp_dc;
    }

    /// Samples the inputs, issues their events, and sends what is due. See the module
    /// documentation for the order of the steps.
    pub fn poll(&mut self, now_ms: u64) -> Polled {
        let mut polled = Polled::default();
        let mut bodies: heapless::Vec<EventBody, 8> = heapless::Vec::new();

        if let Some((probe, alarm)) = &mut self.gas {
            match probe.read_ppm() {
                Some(ppm) => {
                    if let Some(ev) = alarm.update(ppm, now_ms) {
                        let _ = bodies.push(ev);
                    }
                }
                None => alarm.refresh(),
            }
        }
        if let Some(button) = &mut self.button {
            for ev in button.poll(now_ms) {
                let _ = bodies.push(ev);
            }
        }
        if let Some(ev) = self.door.as_mut().and_then(|d| d.poll(now_ms)) {
            let _ = bodies.push(ev);
        }
        if let Some(ev) = self.tamper.as_mut().and_then(|t| t.poll(now_ms)) {
            let _ = bodies.push(ev);
        }
        if let Some(ev) = self.pir.as_mut().and_then(|p| p.poll(now_ms)) {
            let _ = bodies.push(ev);
        }
        for body in bodies {
            self.push_event(body, now_ms);
            polled.events += 1;
        }

        if self.install_test_until.is_some_and(|until| now_ms >= until) {
            self.install_test_until = None;
        }
        if self.check_in_until.is_some_and(|until| now_ms >= until) {
            self.end_check_in(now_ms);
        }
        if let Some(indicator) = &mut self.indicator {
            indicator.poll(now_ms);
        }

        let session = self.link.session();
        if session != self.session {
            self.session = session;
            if session.is_some() {
                self.online_pending = true;
                self.outbox.replay_all();
                self.heartbeat.send_soon(now_ms, 0);
            }
        }
        if session.is_none() {
            // Heartbeats are not kept: a missed one is replaced by the next.
            self.heartbeat.take(now_ms);
            return polled;
        }

        if self.online_pending {
            let status = self.status(Availability::Online, now_ms);
            if self.publish(Channel::Status, &status).is_ok() {
                self.online_pending = false;
                self.stats.online = self.stats.online.saturating_add(1);
                polled.online = true;
            } else {
                return polled;
            }
        }

        polled.sent = self.send_events(now_ms);

        if self.heartbeat.take(now_ms) {
            let hb = self.heartbeat(now_ms);
            if self.publish(Channel::Heartbeat, &hb).is_ok() {
                self.stats.heartbeats = self.stats.heartbeats.saturating_add(1);
                polled.heartbeat = true;
            }
        }
        polled
    }

    fn send_events(&mut self, now_ms: u64) -> u16 {
        let link = &mut self.link;
        let stats = &mut self.stats;
        let mut sent: u16 = 0;
        let _ = self
            .outbox
            .send_due(now_ms, self.settings.send_budget, |event, delivery| {
                let mut buf = [0u8; MAX_PAYLOAD];
                // Events are far below MAX_PAYLOAD; should one ever not encode, it is
                // skipped this round (and retried) rather than block the others.
                let Ok(len) = encode(event, &mut buf) else {
                    return Ok(());
                };
                link.publish(Channel::Event, &buf[..len])?;
                match delivery {
                    Delivery::First => stats.sent.add(&event.ev),
                    Delivery::Repeat => stats.resent.add(&event.ev),
                }
                sent = sent.saturating_add(1);
                Ok::<(), LinkError>(())
            });
        sent
    }

    fn publish<T: serde::Serialize>(&mut self, channel: Channel, msg: &T) -> Result<(), LinkError> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let len = encode(msg, &mut buf).map_err(|_| LinkError::TooLarge)?;
        self.link.publish(channel, &buf[..len])
    }

    /// Issues an event now: gives it the next `seq`, stamps the time and stores it in the
    /// outbox; the next [`Device::poll`] publishes it. This is the hook for detectors
    /// that are not pins (the pendant's fall detector). Also drives the local feedback
    /// (help and fall: "pressed"; their cancels: "cancelled"; installation test: a
    /// confirmation for every event). While a check-in is asked, a help press is the
    /// answer: it goes out as `help ok` (a long press still calls for help). Returns the
    /// seq.
    pub fn push_event(&mut self, mut body: EventBody, now_ms: u64) -> Seq {
        if self.check_in_active(now_ms)
            && body
                == (EventBody::Help {
                    act: HelpAction::Press,
                })
        {
            body = EventBody::Help {
                act: HelpAction::Ok,
            };
            self.check_in_until = None;
            self.stats.check_ins_answered = self.stats.check_ins_answered.saturating_add(1);
        }
        self.last_seq = self.last_seq.saturating_add(1);
        let seq = self.last_seq;
        let (clk, ts) = self.timestamp(now_ms);
        self.stats.generated.add(&body);
        let pushed = self
            .outbox
            .push(Event::new(self.settings.boot, seq, seq, ts, clk, body));
        if let Some(dropped) = pushed.dropped() {
            self.stats.dropped.add(&dropped.ev);
        }
        self.show_feedback_for(&body, now_ms);
        seq
    }

    fn show_feedback_for(&mut self, body: &EventBody, now_ms: u64) {
        let testing = self.install_test_active(now_ms);
        let Some(indicator) = &mut self.indicator else {
            return;
        };
        let pattern = match body {
            _ if testing => Some(Pattern::Confirm),
            EventBody::Help {
                act: HelpAction::Press | HelpAction::Long,
            }
            | EventBody::Fall {
                act: FallAction::Detected,
                ..
            } => Some(Pattern::Pressed),
            EventBody::Help {
                act: HelpAction::Cancel,
            }
            | EventBody::Fall {
                act: FallAction::Cancel,
                ..
            } => Some(Pattern::Cancelled),
            EventBody::Help {
                act: HelpAction::Ok,
            } => Some(Pattern::Confirm),
            _ => None,
        };
        if let Some(pattern) = pattern {
            indicator.show(pattern, now_ms);
        }
    }

    fn timestamp(&self, now_ms: u64) -> (Clock, u64) {
        if let Some(offset) = self.unix_offset_ms
            && let Ok(unix) = u64::try_from(i128::from(now_ms) + i128::from(offset))
            && unix >= MIN_UNIX_MS
        {
            return (Clock::Unix, unix);
        }
        (Clock::Up, now_ms.saturating_sub(self.boot_ms))
    }

    /// An availability message as of `now_ms` (`Online` with the firmware version). The
    /// link registers the `Offline` form as its last will at every connect.
    pub fn status(&self, state: Availability, now_ms: u64) -> Status {
        let (clk, ts) = self.timestamp(now_ms);
        Status {
            v: PROTOCOL_VERSION,
            boot: self.settings.boot,
            seq: self.last_seq,
            ts,
            clk,
            state,
            fw: (state == Availability::Online).then(|| self.settings.fw.clone()),
            mac: None,
        }
    }

    /// The heartbeat the device would send at `now_ms`.
    pub fn heartbeat(&self, now_ms: u64) -> Heartbeat {
        let (clk, ts) = self.timestamp(now_ms);
        let uptime_s = now_ms.saturating_sub(self.boot_ms) / 1000;
        Heartbeat {
            v: PROTOCOL_VERSION,
            boot: self.settings.boot,
            seq: self.last_seq,
            ts,
            clk,
            battery_pct: self.battery.pct,
            battery_mv: self.battery.mv,
            rssi_dbm: self.link.rssi_dbm().map(|r| r.clamp(-150, 0)),
            fw: self.settings.fw.clone(),
            uptime_s: u32::try_from(uptime_s).unwrap_or(u32::MAX),
            outbox: u16::try_from(self.outbox.len()).unwrap_or(u16::MAX),
            dropped: self.outbox.dropped(),
            interval_s: self.heartbeat.interval_s(),
            temp_dc: self.temp_dc,
            cmd: Some(self.last_command),
            mac: None,
        }
    }

    /// Publishes the retained offline status before a clean shutdown (the last will
    /// covers an unclean one).
    pub fn shutdown(&mut self, now_ms: u64) -> Result<(), LinkError> {
        let status = self.status(Availability::Offline, now_ms);
        self.publish(Channel::Status, &status)
    }

    /// The latest time at which [`Device::poll`] should run next, without any new input
    /// edge or message: a pending debounce, a long press, a hold-off ending with motion
    /// still seen, a feedback change, the end of an installation test, the next
    /// heartbeat, an event due while connected. Never before `now_ms`. Gas readings are
    /// the caller's to schedule (poll at least every second or two while a probe is
    /// fitted).
    pub fn next_deadline(&self, now_ms: u64) -> u64 {
        let mut at = self.heartbeat.next_ms();
        let mut consider = |t: Option<u64>| {
            if let Some(t) = t {
                at = at.min(t);
            }
        };
        consider(self.door.as_ref().and_then(|d| d.next_deadline()));
        consider(self.tamper.as_ref().and_then(|d| d.next_deadline()));
        consider(self.pir.as_ref().and_then(|d| d.next_deadline()));
        consider(self.button.as_ref().and_then(|d| d.next_deadline()));
        consider(self.indicator.as_ref().and_then(|d| d.next_deadline()));
        consider(self.install_test_until);
        consider(self.check_in_until);
        let session = self.link.session();
        if session.is_some() {
            if session != self.session || self.online_pending {
                consider(Some(now_ms));
            }
            consider(self.outbox.next_due_ms());
        }
        at.max(now_ms)
    }

    /// Whether the installation test is on at `now_ms`.
    pub fn install_test_active(&self, now_ms: u64) -> bool {
        self.install_test_until.is_some_and(|until| now_ms < until)
    }

    /// Whether a check-in is being asked at `now_ms`.
    pub fn check_in_active(&self, now_ms: u64) -> bool {
        self.check_in_until.is_some_and(|until| now_ms < until)
    }

    /// Stops asking (answered, switched off, or expired) and clears its prompt.
    fn end_check_in(&mut self, now_ms: u64) {
        self.check_in_until = None;
        if let Some(indicator) = &mut self.indicator
            && indicator.pattern() == Pattern::CheckIn
        {
            indicator.show(Pattern::Off, now_ms);
        }
    }

    /// The current settings (after any `config` command).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The link.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The link, mutably.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox<N> {
        &self.outbox
    }

    /// Counters since start-up.
    pub fn stats(&self) -> &DeviceStats {
        &self.stats
    }

    /// The last event seq issued (0 before the first).
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// The feedback pattern shown (`Off` without an indicator).
    pub fn feedback(&self) -> Pattern {
        self.indicator
            .as_ref()
            .map_or(Pattern::Off, |i| i.pattern())
    }

    /// Whether the gas alarm (and siren) is on.
    pub fn gas_alarm(&self) -> bool {
        self.gas.as_ref().is_some_and(|(_, g)| g.is_alarm())
    }

    /// Whether the door is open, when the device has a door contact and knows.
    pub fn door_open(&self) -> Option<bool> {
        self.door.as_ref().and_then(|d| d.is_open())
    }
}
