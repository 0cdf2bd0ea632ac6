//! Anxin pendant firmware image for a Cortex-M3 (TI LM3S6965, QEMU `lm3s6965evb`).
//!
//! It runs the pendant's device loop — accelerometer samples, fall detector and "I'm OK"
//! window ([`anxin_firmware::fall::FallMonitor`]), the button
//! ([`anxin_firmware::input::HelpButton`]), and the device core
//! ([`anxin_firmware::device::Device`]: outbox, sequence numbers, status, heartbeat) —
//! with the accelerometer replaced by a recorded trace ([`Replay`]) and the radio link by
//! the semihosting console: every message the device publishes is printed as
//! `publish <topic suffix> <JSON>`.
//!
//! The scenario is the last word of the semihosting command line (`scripts/qemu-run`):
//! - `fall`: a forward fall (UMAFall subject 02, chest) — a fall event is published;
//! - `adl`: jogging (UMAFall subject 05, chest, peaks near 7 g) — none is;
//! - `fall-ok`: the fall, and the wearer presses the button 3 s into the "I'm OK" window —
//!   `detected` then `cancel`.
//!
//! Time is the trace's: the loop advances a simulated millisecond clock by one sample
//! period per sample, so a run is deterministic and takes well under a second.
//!
//! At the end it measures the detector's cost per sample with SysTick under QEMU's
//! `-icount shift=0` (one virtual nanosecond per instruction), calibrated against a loop
//! of known instruction count, and exits through semihosting (status 0).
#![no_std]
#![no_main]

use core::cell::Cell;
use core::convert::Infallible;
use core::hint::black_box;

use anxin_firmware::device::{Device, Link, LinkError, NoGas, NoPin, SessionId, Settings};
use anxin_firmware::driver::replay::{self, RECORD_LEN, Replay};
use anxin_firmware::driver::{Acceleration, Accelerometer};
use anxin_firmware::fall::{AlarmConfig, FallConfig, FallDetector, FallMonitor, SendPolicy};
use anxin_firmware::input::HelpButton;
use anxin_firmware::wire::{Channel, DeviceId, EventBody};
use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln, nr};
use embedded_hal::digital::{ErrorType, InputPin};

/// The forward fall, as replay records (converted from the committed UMAFall excerpt by
/// `build.rs` with the same reader as `fall-eval`).
static FALL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fall.bin"));
/// Jogging.
static ADL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/adl.bin"));

/// Sample period of the recorded traces (the SensorTag's 20 Hz).
const PERIOD_MS: u64 = 50;
/// Time the loop keeps running after the trace (window, retries, heartbeat).
const TAIL_MS: u64 = 8_000;
/// Replays of the trace for the cost measurement.
const BENCH_REPEATS: u32 = 20;

/// The radio link, played by the semihosting console: always connected, prints what
/// is published.
struct ConsoleLink;

impl Link for ConsoleLink {
    fn session(&self) -> Option<SessionId> {
        Some(1)
    }

    fn publish(&mut self, channel: Channel, payload: &[u8]) -> Result<(), LinkError> {
        let text = core::str::from_utf8(payload).map_err(|_| LinkError::TooLarge)?;
        hprintln!("publish {} {}", channel.suffix(), text);
        Ok(())
    }
}

/// The button, pressed (pulled low) while the simulated clock is inside `press`.
struct ScriptedButton<'a> {
    now: &'a Cell<u64>,
    press: &'a Cell<Option<(u64, u64)>>,
}

impl ErrorType for ScriptedButton<'_> {
    type Error = Infallible;
}

impl InputPin for ScriptedButton<'_> {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        self.is_low().map(|low| !low)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        let now = self.now.get();
        Ok(self
            .press
            .get()
            .is_some_and(|(from, to)| (from..to).contains(&now)))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Fall,
    Adl,
    FallOk,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Fall => "fall",
            Scenario::Adl => "adl",
            Scenario::FallOk => "fall-ok",
        }
    }

    fn trace(self) -> &'static [u8] {
        match self {
            Scenario::Fall | Scenario::FallOk => FALL,
            Scenario::Adl => ADL,
        }
    }
}

/// The last word of the semihosting command line.
fn scenario() -> Scenario {
    let mut buf = [0u8; 96];
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: SYS_GET_CMDLINE writes at most `block[1]` bytes into `buf` and the length
    // back into `block[1]`; both live until after the call.
    let status =
        unsafe { cortex_m_semihosting::syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    // SAFETY: `block` is a live local; read it after the host wrote it.
    let len = unsafe { core::ptr::read_volatile(&block[1]) }.min(buf.len());
    let line = if status == 0 {
        core::str::from_utf8(&buf[..len]).unwrap_or("")
    } else {
        ""
    };
    match line.split_whitespace().last() {
        Some("adl") => Scenario::Adl,
        Some("fall-ok") => Scenario::FallOk,
        _ => Scenario::Fall,
    }
}

#[entry]
fn main() -> ! {
    let scenario = scenario();
    hprintln!(
        "anxin-pendant: scenario {} ({} samples at {} ms)",
        scenario.name(),
        scenario.trace().len() / RECORD_LEN,
        PERIOD_MS
    );
    let failed = run(scenario).is_err();
    hprintln!(
        "ram: {} bytes static, {} bytes of stack at most (device loop); FallDetector {} bytes, FallMonitor {} bytes",
        static_ram(),
        stack_high_water(),
        core::mem::size_of::<FallDetector>(),
        core::mem::size_of::<FallMonitor>()
    );
    let cost = measure(scenario.trace());
    hprintln!(
        "cost: detector {} instructions per sample (QEMU -icount; {} samples)",
        cost.map_or(0, |c| c.per_sample),
        cost.map_or(0, |c| c.samples)
    );
    debug::exit(if failed {
        debug::EXIT_FAILURE
    } else {
        debug::EXIT_SUCCESS
    });
    loop {
        cortex_m::asm::wfi();
    }
}

fn run(scenario: Scenario) -> Result<(), ()> {
    let id = DeviceId::new("pendant-qemu").map_err(|_| ())?;
    let settings = Settings::new(id, 1);
    let now = Cell::new(0u64);
    let press = Cell::new(None);
    let mut button = HelpButton::new(
        ScriptedButton {
            now: &now,
            press: &press,
        },
        settings.button,
    );
    let alarm = AlarmConfig {
        cancel_window_ms: u32::from(settings.fall_cancel_s) * 1000,
        policy: SendPolicy::AtDetection,
    };
    let config = FallConfig::PENDANT.with_period_ms(PERIOD_MS as u16);
    let mut monitor = FallMonitor::new(&config, alarm).map_err(|_| ())?;
    let mut device: Device<ConsoleLink, NoPin, NoPin, NoGas, 16> =
        Device::new(settings, ConsoleLink, 0);
    let mut accel = Replay::new(scenario.trace());
    let mut samples = [Acceleration::default(); 1];
    let mut falls = 0u32;

    let end_ms = (accel.remaining() as u64) * PERIOD_MS + TAIL_MS;
    while now.get() < end_ms {
        let t = now.get() + PERIOD_MS;
        now.set(t);
        let fall = if accel.remaining() > 0 {
            let sample = match accel.read_ready(&mut samples) {
                Ok(batch) if batch.len > 0 => Some(samples[0]),
                _ => None,
            };
            monitor.on_sample(sample, t)
        } else {
            monitor.poll(t)
        };
        if let Some(ev) = fall {
            if matches!(ev, EventBody::Fall { .. }) {
                falls += 1;
            }
            if let Some(d) = monitor.last_decision() {
                let f = d.features;
                hprintln!(
                    "fall: impact at tick {}, peak {} mg, velocity {} mm/s, tilt {} deg, activity {} mg",
                    f.impact_tick,
                    f.peak_mg,
                    f.velocity_mm_s.unwrap_or(-1),
                    f.tilt_deg.map_or(-1, i32::from),
                    f.activity_mg.map_or(-1, i32::from)
                );
            }
            device.push_event(ev, t);
        }
        if scenario == Scenario::FallOk && monitor.alarming() && press.get().is_none() {
            press.set(Some((t + 3_000, t + 3_300)));
        }
        for gesture in button.poll(t) {
            if let Some(ev) = monitor.route_gesture(gesture, t) {
                device.push_event(ev, t);
            }
        }
        device.poll(t);
    }
    hprintln!(
        "done: {} fall event(s), outbox holds {} unacknowledged",
        falls,
        device.outbox().len()
    );
    Ok(())
}

unsafe extern "C" {
    static _stack_end: u32;
    static _stack_start: u32;
    static __sbss: u32;
    static __sdata: u32;
}

/// Bytes of `.data` and `.bss` (everything below the stack).
fn static_ram() -> usize {
    let low = core::ptr::addr_of!(__sdata) as usize;
    let high = core::ptr::addr_of!(_stack_end) as usize;
    let _ = core::ptr::addr_of!(__sbss);
    high.saturating_sub(low)
}

/// Bytes of stack ever used: cortex-m-rt painted it with 0xCCCC_CCCC at reset
/// (`paint-stack`); the lowest word no longer painted marks the high-water mark.
fn stack_high_water() -> usize {
    let end = core::ptr::addr_of!(_stack_end) as usize;
    let start = core::ptr::addr_of!(_stack_start) as usize;
    let mut addr = end;
    while addr < start {
        // SAFETY: every word between `_stack_end` and `_stack_start` is RAM owned by
        // the stack; it is only read.
        let word = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if word != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        addr += 4;
    }
    start - addr
}

#[derive(Clone, Copy)]
struct Cost {
    per_sample: u64,
    samples: u64,
}

/// SysTick ticks spent in `f` (24-bit down-counter, no wrap for what is measured here).
fn ticks(syst: &mut SYST, f: impl FnOnce()) -> u64 {
    syst.clear_current();
    let start = SYST::get_current();
    f();
    let end = SYST::get_current();
    u64::from(start.wrapping_sub(end) & 0x00FF_FFFF)
}

/// Instructions per detector step: (decode + push) − (decode alone), over the trace
/// replayed `BENCH_REPEATS` times, converted with a calibration loop.
fn measure(trace: &'static [u8]) -> Option<Cost> {
    let mut core = cortex_m::Peripherals::take()?;
    let syst = &mut core.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00FF_FFFF);
    syst.enable_counter();

    const CAL_LOOPS: u32 = 1_000_000;
    let cal = ticks(syst, || calibration_loop(CAL_LOOPS));
    let config = FallConfig::PENDANT.with_period_ms(PERIOD_MS as u16);
    let decode_only = ticks(syst, || {
        for _ in 0..BENCH_REPEATS {
            for rec in trace.chunks_exact(RECORD_LEN) {
                black_box(replay::decode(black_box(rec)));
            }
        }
    });
    let with_push = ticks(syst, || {
        let Ok(mut det) = FallDetector::new(&config) else {
            return;
        };
        for _ in 0..BENCH_REPEATS {
            for rec in trace.chunks_exact(RECORD_LEN) {
                black_box(det.push(replay::decode(black_box(rec))));
            }
        }
    });
    let samples = u64::from(BENCH_REPEATS) * (trace.len() / RECORD_LEN) as u64;
    hprintln!(
        "systick: calibration {} ticks for {} instructions, decode {} ticks, decode+detector {} ticks",
        cal,
        2 * u64::from(CAL_LOOPS),
        decode_only,
        with_push
    );
    if cal == 0 || samples == 0 {
        return None;
    }
    let per_sample =
        with_push.saturating_sub(decode_only) * 2 * u64::from(CAL_LOOPS) / cal / samples;
    Some(Cost {
        per_sample,
        samples,
    })
}

/// Exactly two instructions (`subs`, `bne`) per iteration.
#[inline(never)]
fn calibration_loop(n: u32) {
    // SAFETY: a register-only countdown loop; no memory is touched.
    unsafe {
        core::arch::asm!(
            "1:",
            "subs {0}, {0}, #1",
            "bne 1b",
            inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
