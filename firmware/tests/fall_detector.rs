//! Fall detector edges, on synthetic 20 Hz traces with the shipped parameters.

use anxin_firmware::driver::Acceleration;
use anxin_firmware::fall::{
    ConfigError, Decision, FallConfig, FallDetector, HISTORY, Reason, Verdict,
};

const P: u16 = 50;

fn cfg() -> FallConfig {
    FallConfig::PENDANT.with_period_ms(P)
}

fn ticks(ms: u32) -> usize {
    (ms / u32::from(P)) as usize
}

/// Builds a trace period by period.
#[derive(Default)]
struct Trace(Vec<Option<Acceleration>>);

impl Trace {
    fn hold(mut self, ms: u32, x: i16, y: i16, z: i16) -> Self {
        for i in 0..ticks(ms) {
            // a little sensor noise
            let n = [0i16, 8, -6, 3, -9, 5][i % 6];
            self.0
                .push(Some(Acceleration::new(x + n, y - n, z + n / 2)));
        }
        self
    }
    /// Standing: the pendant hangs with gravity along +y.
    fn stand(self, ms: u32) -> Self {
        self.hold(ms, 0, 1000, 0)
    }
    /// Lying on the back: gravity along +z.
    fn lie(self, ms: u32) -> Self {
        self.hold(ms, 0, 30, 1000)
    }
    /// A 400 ms drop at 0.2 g (≈ 3 m/s at impact).
    fn drop(self) -> Self {
        self.hold(400, 0, 200, 0)
    }
    fn sample(mut self, a: Acceleration) -> Self {
        self.0.push(Some(a));
        self
    }
    fn impact(self, x: i16, y: i16, z: i16) -> Self {
        self.sample(Acceleration::new(x, y, z))
    }
    fn missing(mut self, ms: u32) -> Self {
        for _ in 0..ticks(ms) {
            self.0.push(None);
        }
        self
    }
    /// Walking upright: magnitude swinging 0.6–1.6 g at 2 steps/s.
    fn walk(mut self, ms: u32) -> Self {
        let wave = [1000, 1300, 1600, 1300, 1000, 800, 600, 800, 1000, 1000];
        for i in 0..ticks(ms) {
            self.0
                .push(Some(Acceleration::new(50, wave[i % wave.len()], 80)));
        }
        self
    }
    fn run(&self) -> Vec<(usize, Decision)> {
        let mut d = FallDetector::new(&cfg()).expect("config");
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, s)| d.push(*s).map(|x| (i, x)))
            .collect()
    }
}

fn falls(decisions: &[(usize, Decision)]) -> Vec<&Decision> {
    decisions
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d.is_fall())
        .collect()
}

fn a_fall() -> Trace {
    Trace::default()
        .stand(3000)
        .drop()
        .impact(600, 2400, 2200)
        .lie(6000)
}

#[test]
fn a_fall_onto_the_floor_is_decided_after_settling_and_observing() {
    let d = a_fall().run();
    assert_eq!(d.len(), 1, "{d:?}");
    let (at, decision) = d[0];
    let impact = ticks(3000 + 400);
    assert_eq!(decision.features.impact_tick as usize, impact);
    assert_eq!(at, impact + ticks(1000 + 2000) - 1);
    assert_eq!(decision.verdict, Verdict::Fall);
    let f = decision.features;
    assert_eq!(f.peak_mg, 3310); // √(600² + 2400² + 2200²)
    assert!(!f.saturated);
    assert!(f.tilt_deg.is_some_and(|t| t >= 85), "{f:?}");
    assert!(f.velocity_mm_s.is_some_and(|v| v > 2500), "{f:?}");
    assert!(f.activity_mg.is_some_and(|a| a < 100), "{f:?}");
}

#[test]
fn saturation_at_full_scale_still_counts_as_an_impact_and_reports_the_clipped_peak() {
    let clipped = Acceleration {
        x_mg: 8000,
        y_mg: 8000,
        z_mg: -8000,
        saturated: true,
    };
    let d = Trace::default()
        .stand(3000)
        .drop()
        .sample(clipped)
        .lie(4000)
        .run();
    let f = falls(&d);
    assert_eq!(f.len(), 1, "{d:?}");
    assert!(f[0].features.saturated);
    assert_eq!(f[0].features.peak_mg, 13_856); // 8 g × √3, a lower bound
}

#[test]
fn the_most_negative_reading_on_every_axis_neither_overflows_nor_panics() {
    let extreme = Acceleration {
        x_mg: i16::MIN,
        y_mg: i16::MIN,
        z_mg: i16::MIN,
        saturated: true,
    };
    assert_eq!(extreme.magnitude_mg(), 56_755);
    let d = Trace::default()
        .stand(3000)
        .drop()
        .sample(extreme)
        .sample(extreme)
        .lie(4000)
        .run();
    assert_eq!(falls(&d).len(), 1, "{d:?}");
}

#[test]
fn missing_samples_during_a_fall_do_not_hide_it() {
    let mut t = a_fall();
    let impact = ticks(3400);
    for (i, s) in t.0.iter_mut().enumerate() {
        if i % 3 == 1 && i != impact {
            *s = None;
        }
    }
    let d = t.run();
    let f = falls(&d);
    assert_eq!(f.len(), 1, "{d:?}");
    assert!(
        f[0].features.tilt_deg.is_some(),
        "a third missing still judges posture"
    );
}

#[test]
fn a_fall_whose_observation_was_lost_is_still_reported() {
    let d = Trace::default()
        .stand(3000)
        .drop()
        .impact(600, 2400, 2200)
        .missing(4000)
        .run();
    let f = falls(&d);
    assert_eq!(f.len(), 1, "{d:?}");
    assert_eq!(f[0].features.tilt_deg, None);
    assert_eq!(f[0].features.activity_mg, None);
}

#[test]
fn a_long_dropout_while_standing_raises_nothing() {
    let d = Trace::default()
        .stand(3000)
        .missing(10_000)
        .stand(3000)
        .missing(50)
        .stand(3000)
        .run();
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn a_fall_followed_by_getting_up_raises_no_alarm() {
    let d = Trace::default()
        .stand(3000)
        .drop()
        .impact(600, 2400, 2200)
        .lie(700)
        .stand(500)
        .walk(5000)
        .run();
    assert!(falls(&d).is_empty(), "{d:?}");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1.verdict, Verdict::NotFall(Reason::Upright));
}

#[test]
fn sitting_down_hard_is_not_a_fall() {
    // no drop before the jolt, and the chest stays roughly upright (leaning back 30°)
    let d = Trace::default()
        .stand(3000)
        .hold(300, 0, 980, 0)
        .impact(0, 2600, 800)
        .hold(4000, 0, 866, 500)
        .run();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1.verdict, Verdict::NotFall(Reason::TooSlow));
}

#[test]
fn lying_down_slowly_on_a_bed_is_not_even_a_candidate() {
    let mut t = Trace::default().stand(3000);
    for i in 0..40 {
        // 2 s turning from upright to lying, no jolt
        let a = (i as f32) / 40.0 * core::f32::consts::FRAC_PI_2;
        let (s, c) = (a.sin(), a.cos());
        t = t.sample(Acceleration::new(
            0,
            (1000.0 * c) as i16,
            (1000.0 * s) as i16,
        ));
    }
    let d = t.lie(5000).run();
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn jogging_upright_raises_no_alarm() {
    let mut t = Trace::default().stand(3000);
    // 3 strides per second: flight at 0.2 g, landing at 3 g
    let stride = [200, 200, 300, 3000, 1800, 900];
    for i in 0..ticks(20_000) {
        t = t.sample(Acceleration::new(100, stride[i % stride.len()], 150));
    }
    let d = t.stand(4000).run();
    assert!(falls(&d).is_empty(), "{d:?}");
}

#[test]
fn a_second_impact_while_observing_restarts_the_candidate() {
    // stumble (jolt, still upright), then the real fall 1.5 s later
    let d = Trace::default()
        .stand(3000)
        .impact(0, 2100, 0)
        .stand(1500)
        .drop()
        .impact(600, 2400, 2200)
        .lie(5000)
        .run();
    let f = falls(&d);
    assert_eq!(f.len(), 1, "{d:?}");
    assert_eq!(
        f[0].features.impact_tick as usize,
        ticks(3000) + 1 + ticks(1900)
    );
}

#[test]
fn windows_longer_than_the_history_are_refused() {
    let too_long = FallConfig {
        reference_from_ms: (HISTORY as u16 + 1) * P,
        ..cfg()
    };
    assert_eq!(
        FallDetector::new(&too_long).map(|_| ()),
        Err(ConfigError::WindowTooLong)
    );
    assert_eq!(
        FallDetector::new(&cfg().with_period_ms(0)).map(|_| ()),
        Err(ConfigError::ZeroPeriod)
    );
    let upside_down = FallConfig {
        reference_to_ms: 2000,
        ..cfg()
    };
    assert_eq!(
        FallDetector::new(&upside_down).map(|_| ()),
        Err(ConfigError::EmptyReference)
    );
}

#[test]
fn the_pendant_rate_of_25_hz_fits_the_history() {
    assert!(FallDetector::new(&FallConfig::PENDANT.with_period_ms(40)).is_ok());
    assert_eq!(
        FallDetector::new(&FallConfig::PENDANT.with_period_ms(10)).map(|_| ()),
        Err(ConfigError::WindowTooLong),
        "100 Hz needs shorter windows or decimation"
    );
}
