//! The simulated devices' uplink: one rumqttc connection per device.
//!
//! Client id and username are the device id, the password comes from the optional
//! credentials lookup. Persistent session (commands queued while away are delivered on
//! return). After every CONNACK the connection task subscribes to the device's
//! `down/#` (rumqttc does not re-subscribe by itself) and tells the home, whose next
//! poll publishes the retained online status and replays the outbox. The offline
//! status is the last will, rebuilt before every reconnect with the current seq.
//! Publishing uses `try_publish` from the home task, never `publish().await` from the
//! task that polls the event loop. Reconnects back off from 100 ms to 5 s (real time).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::device::{Link, LinkError, SessionId};
use crate::wire::{Availability, BootEpoch, Channel, Clock, DeviceId, PROTOCOL_VERSION, Status};
use crate::wire::{encode, topic};

use super::clock::SimClock;
use super::home::SimLink;

/// What a connection task tells its home.
#[derive(Debug)]
pub enum Note {
    /// Device `0` connected (new session).
    Connected(usize),
    /// Device `0` lost its connection.
    Disconnected(usize),
    /// A message arrived for a device.
    Message {
        /// Device index in the household.
        device: usize,
        /// Which downlink channel.
        channel: Channel,
        /// The payload.
        payload: Vec<u8>,
    },
}

/// What the home tells a connection task.
#[derive(Debug)]
pub enum Control {
    /// Drop the connection without a goodbye until the virtual time.
    Offline {
        /// Virtual Unix ms.
        until_ms: u64,
    },
    /// Flush what is queued (the offline status, the disconnect) and end.
    Close,
}

/// Connection state shared between the link and its connection task.
#[derive(Debug, Default)]
pub struct LinkShared {
    up: AtomicBool,
    session: AtomicU32,
    last_seq: AtomicU32,
    connects: AtomicU64,
}

impl LinkShared {
    /// How many times the device connected.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }
}

/// A [`Link`] over a rumqttc client.
pub struct MqttLink {
    client: AsyncClient,
    shared: Arc<LinkShared>,
    control: UnboundedSender<Control>,
    topics: [String; 3],
    rssi_dbm: Option<i16>,
}

impl MqttLink {
    /// Asks the connection task to flush and end (after a clean shutdown).
    pub fn close(&mut self) {
        let _ = self.client.try_disconnect();
        let _ = self.control.send(Control::Close);
    }

    /// The shared connection state.
    pub fn shared(&self) -> &Arc<LinkShared> {
        &self.shared
    }
}

impl Link for MqttLink {
    fn session(&self) -> Option<SessionId> {
        self.shared
            .up
            .load(Ordering::Acquire)
            .then(|| self.shared.session.load(Ordering::Acquire))
    }

    fn publish(&mut self, channel: Channel, payload: &[u8]) -> Result<(), LinkError> {
        if !self.shared.up.load(Ordering::Acquire) {
            return Err(LinkError::NotConnected);
        }
        let topic = match channel {
            Channel::Event => &self.topics[0],
            Channel::Heartbeat => &self.topics[1],
            Channel::Status => &self.topics[2],
            Channel::Command | Channel::Ack => return Err(LinkError::NotConnected),
        };
        self.client
            .try_publish(
                topic.as_str(),
                QoS::AtLeastOnce,
                channel == Channel::Status,
                payload.to_vec(),
            )
            .map_err(|_| LinkError::Busy)
    }

    fn rssi_dbm(&self) -> Option<i16> {
        self.rssi_dbm
    }
}

impl SimLink for MqttLink {
    fn go_offline(&mut self, until_ms: u64) {
        let _ = self.control.send(Control::Offline { until_ms });
    }

    fn note_last_seq(&mut self, seq: u32) {
        self.shared.last_seq.store(seq, Ordering::Relaxed);
    }

    fn set_rssi_dbm(&mut self, rssi_dbm: i16) {
        self.rssi_dbm = Some(rssi_dbm);
    }
}

/// Everything a connection needs.
pub struct Connection {
    /// Device index in its household.
    pub index: usize,
    /// Device id.
    pub id: DeviceId,
    /// Boot epoch (for the last will).
    pub boot: BootEpoch,
    /// The virtual clock.
    pub clock: SimClock,
    /// Where notes go.
    pub notes: UnboundedSender<Note>,
}

/// Creates the link and the connection task's future for one device.
pub fn connect(
    conn: Connection,
    host: &str,
    port: u16,
    password: Option<String>,
    keep_alive: Duration,
) -> (MqttLink, impl Future<Output = ()> + Send + 'static) {
    let mut options = MqttOptions::new(conn.id.as_str(), host, port);
    options
        .set_credentials(conn.id.as_str(), password.unwrap_or_default())
        .set_keep_alive(keep_alive.max(Duration::from_secs(1)))
        .set_clean_session(false);
    let (client, eventloop) = AsyncClient::new(options, 256);
    let (control_tx, control_rx) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new(LinkShared::default());
    let topics = [
        topic::topic(&conn.id, Channel::Event).to_string(),
        topic::topic(&conn.id, Channel::Heartbeat).to_string(),
        topic::topic(&conn.id, Channel::Status).to_string(),
    ];
    let link = MqttLink {
        client: client.clone(),
        shared: shared.clone(),
        control: control_tx,
        topics,
        rssi_dbm: None,
    };
    let task = run_connection(conn, client, eventloop, shared, control_rx);
    (link, task)
}

fn will(conn: &Connection, seq: u32) -> LastWill {
    let status = Status {
        v: PROTOCOL_VERSION,
        boot: conn.boot,
        seq,
        ts: conn.clock.now_ms(),
        clk: Clock::Unix,
        state: Availability::Offline,
        fw: None,
        mac: None,
    };
    let mut buf = [0u8; crate::wire::MAX_PAYLOAD];
    let len = encode(&status, &mut buf).unwrap_or(0);
    LastWill::new(
        topic::topic(&conn.id, Channel::Status).as_str(),
        buf[..len].to_vec(),
        QoS::AtLeastOnce,
        true,
    )
}

async fn run_connection(
    conn: Connection,
    client: AsyncClient,
    mut eventloop: EventLoop,
    shared: Arc<LinkShared>,
    mut control: UnboundedReceiver<Control>,
) {
    let down = format!("{}{}/down/#", topic::PREFIX, conn.id);
    let mut backoff = Duration::from_millis(100);
    let set_down = |shared: &LinkShared| shared.up.swap(false, Ordering::AcqRel);
    loop {
        let seq = shared.last_seq.load(Ordering::Relaxed);
        eventloop.mqtt_options.set_last_will(will(&conn, seq));
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Offline { until_ms }) => {
                    // Drop the socket without DISCONNECT: the broker publishes the will.
                    eventloop.clean();
                    if set_down(&shared) {
                        let _ = conn.notes.send(Note::Disconnected(conn.index));
                    }
                    tracing::debug!(device_id = %conn.id, "simulated device went offline");
                    if !stay_offline(&conn, &mut control, until_ms).await {
                        return;
                    }
                }
                Some(Control::Close) | None => {
                    drain(&mut eventloop, &shared).await;
                    return;
                }
            },
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(100);
                    if let Err(e) = client.try_subscribe(down.as_str(), QoS::AtLeastOnce) {
                        tracing::warn!(device_id = %conn.id, error = %e, "could not subscribe");
                    }
                    shared.session.fetch_add(1, Ordering::AcqRel);
                    shared.connects.fetch_add(1, Ordering::Relaxed);
                    shared.up.store(true, Ordering::Release);
                    let _ = conn.notes.send(Note::Connected(conn.index));
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok((id, channel)) = topic::parse(&p.topic)
                        && id == conn.id
                        && !channel.is_uplink()
                    {
                        let _ = conn.notes.send(Note::Message {
                            device: conn.index,
                            channel,
                            payload: p.payload.to_vec(),
                        });
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if set_down(&shared) {
                        let _ = conn.notes.send(Note::Disconnected(conn.index));
                        tracing::debug!(device_id = %conn.id, error = %e, "simulated device lost its connection");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        c = control.recv() => match c {
                            Some(Control::Offline { until_ms }) => {
                                if !stay_offline(&conn, &mut control, until_ms).await {
                                    return;
                                }
                            }
                            Some(Control::Close) | None => return,
                        },
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            },
        }
    }
}

/// Waits, disconnected, until the virtual time `until_ms` (`u64::MAX`: for good);
/// `false` when told to close meanwhile.
async fn stay_offline(
    conn: &Connection,
    control: &mut UnboundedReceiver<Control>,
    until_ms: u64,
) -> bool {
    let mut until = until_ms;
    loop {
        let wake = conn.clock.instant_at(until);
        tokio::select! {
            _ = tokio::time::sleep_until(wake), if until != u64::MAX => return true,
            c = control.recv() => match c {
                Some(Control::Offline { until_ms }) => until = until.max(until_ms),
                Some(Control::Close) | None => return false,
            },
        }
    }
}

/// Runs the event loop until the queued offline status and DISCONNECT are out (at most
/// two seconds).
async fn drain(eventloop: &mut EventLoop, shared: &LinkShared) {
    if !shared.up.load(Ordering::Acquire) {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    shared.up.store(false, Ordering::Release);
}
