//! The detector's behaviour pinned on hand-made traces, with the shipped parameters: the
//! situations the pendant must get right (a fall then lying still, an impact then
//! walking on, a slow collapse, a fall that ends sitting, a hard sit-down on a chair),
//! at the evaluation's 20 Hz and at the pendant's own 25 Hz.

use anxin_firmware::driver::Acceleration;
use anxin_firmware::fall::{Decision, FallConfig, FallDetector, Reason, Verdict};

/// A trace built period by period at `period_ms`. Gravity is along +y when upright.
struct Script {
    period_ms: u16,
    samples: Vec<Option<Acceleration>>,
}

impl Script {
    fn new(period_ms: u16) -> Self {
        Script {
            period_ms,
            samples: Vec::new(),
        }
    }

    fn ticks(&self, ms: u32) -> usize {
        (ms / u32::from(self.period_ms)) as usize
    }

    /// `ms` of the vector `v` (mg), with a little sensor noise.
    fn hold(mut self, ms: u32, v: [f64; 3]) -> Self {
        for i in 0..self.ticks(ms) {
            let n = [0.0, 7.0, -5.0, 3.0, -8.0, 4.0][i % 6];
            self.samples
                .push(Some(sample([v[0] + n, v[1] - n, v[2] + n / 2.0])));
        }
        self
    }

    /// Still, the trunk `deg` degrees from upright (leaning back: towards +z).
    fn posture(self, ms: u32, deg: f64) -> Self {
        let r = deg.to_radians();
        self.hold(ms, [0.0, 1000.0 * r.cos(), 1000.0 * r.sin()])
    }

    fn stand(self, ms: u32) -> Self {
        self.posture(ms, 0.0)
    }

    /// A descent for `ms` reading `g` × 1 g (free fall reads 0).
    fn drop(self, ms: u32, g: f64) -> Self {
        self.hold(ms, [0.0, 1000.0 * g, 0.0])
    }

    /// One impact sample of magnitude `mg`, pointing between upright and `deg`.
    fn impact(mut self, mg: u16, deg: f64) -> Self {
        let (mg, r) = (f64::from(mg), (deg / 2.0).to_radians());
        self.samples
            .push(Some(sample([0.0, mg * r.cos(), mg * r.sin()])));
        self
    }

    /// The posture turning from `from` to `to` degrees over `ms`, at 1 g.
    fn turn(mut self, ms: u32, from: f64, to: f64) -> Self {
        let n = self.ticks(ms).max(1);
        for i in 0..n {
            let d = (from + (to - from) * i as f64 / n as f64).to_radians();
            self.samples
                .push(Some(sample([0.0, 1000.0 * d.cos(), 1000.0 * d.sin()])));
        }
        self
    }

    /// Walking upright: the magnitude swinging 0.6–1.6 g, two steps a second.
    fn walk(mut self, ms: u32) -> Self {
        let wave = [1000.0, 1300.0, 1600.0, 1300.0, 1000.0, 800.0, 600.0, 800.0];
        let per = (250 / u32::from(self.period_ms)).max(1) as usize;
        for i in 0..self.ticks(ms) {
            let m = wave[(i / per.max(1) * 2 + i) % wave.len()];
            self.samples.push(Some(sample([60.0, m, 90.0])));
        }
        self
    }

    fn run(&self, cfg: &FallConfig) -> Vec<Decision> {
        let mut d = FallDetector::new(&cfg.with_period_ms(self.period_ms)).expect("config");
        self.samples.iter().filter_map(|s| d.push(*s)).collect()
    }

    fn falls(&self, cfg: &FallConfig) -> usize {
        self.run(cfg).iter().filter(|d| d.is_fall()).count()
    }
}

fn sample(v: [f64; 3]) -> Acceleration {
    let c = |x: f64| x.round().clamp(-32768.0, 32767.0) as i16;
    Acceleration::new(c(v[0]), c(v[1]), c(v[2]))
}

const RATES: [u16; 2] = [50, 40];
const CFG: FallConfig = FallConfig::PENDANT;

#[test]
fn an_impact_then_lying_still_is_a_fall() {
    for p in RATES {
        let t = Script::new(p)
            .stand(3000)
            .drop(400, 0.2)
            .impact(3200, 90.0)
            .posture(6000, 90.0);
        let d = t.run(&CFG);
        assert_eq!(d.len(), 1, "{p} ms: {d:?}");
        assert_eq!(d[0].verdict, Verdict::Fall, "{p} ms: {d:?}");
        let f = d[0].features;
        assert!(f.velocity_mm_s.is_some_and(|v| v > 2500), "{f:?}");
        assert!(f.tilt_deg.is_some_and(|t| t >= 85), "{f:?}");
        assert!(f.motion_mg.is_some_and(|m| m < 20), "{f:?}");
    }
}

#[test]
fn an_impact_then_walking_on_is_not_a_fall() {
    for p in RATES {
        // the same drop and impact, then the wearer is up and walking within a second
        let t = Script::new(p)
            .stand(3000)
            .drop(400, 0.2)
            .impact(3200, 90.0)
            .posture(400, 90.0)
            .turn(500, 90.0, 0.0)
            .walk(6000);
        let d = t.run(&CFG);
        assert_eq!(t.falls(&CFG), 0, "{p} ms: {d:?}");
        assert_eq!(d.len(), 1, "{p} ms: {d:?}");
        assert_eq!(d[0].verdict, Verdict::NotFall(Reason::Upright), "{p} ms");
    }
}

#[test]
fn an_impact_then_moving_about_on_the_floor_is_not_a_fall() {
    // down on the floor but busy (crawling, getting up): posture tilted, never still
    let mut t = Script::new(50)
        .stand(3000)
        .drop(400, 0.2)
        .impact(3200, 80.0);
    for i in 0..100 {
        let m = [700.0, 1000.0, 1400.0, 1000.0][i % 4];
        let r = 80f64.to_radians();
        t.samples
            .push(Some(sample([0.0, m * r.cos(), m * r.sin()])));
    }
    let d = t.run(&CFG);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].verdict, Verdict::NotFall(Reason::Moving), "{d:?}");
    assert!(
        d[0].features
            .motion_mg
            .is_some_and(|m| m > CFG.max_motion_mg)
    );
}

#[test]
fn a_slow_collapse_is_caught_while_its_landing_passes_the_gate() {
    for p in RATES {
        // knees give way: 1.2 s sinking at 0.85 g (≈ 1.5 m/s), a soft 2.0 g landing,
        // lying still
        let t = Script::new(p)
            .stand(3000)
            .drop(1200, 0.85)
            .impact(2000, 80.0)
            .turn(300, 60.0, 85.0)
            .posture(6000, 85.0);
        let d = t.run(&CFG);
        assert_eq!(t.falls(&CFG), 1, "{p} ms: {d:?}");
        let v = d[0].features.velocity_mm_s.expect("velocity");
        assert!((1000..2000).contains(&v), "{v} mm/s");
    }
}

#[test]
fn a_slow_collapse_landing_under_the_gate_is_missed() {
    // the known blind spot: a collapse whose landing stays under the 1.8 g gate never
    // becomes a candidate (`docs/detection.md`, "Falls": slow falls)
    let t = Script::new(50)
        .stand(3000)
        .drop(1500, 0.9)
        .impact(1700, 80.0)
        .turn(300, 60.0, 85.0)
        .posture(6000, 85.0);
    assert!(t.run(&CFG).is_empty(), "{:?}", t.run(&CFG));
    // a lower gate would catch it
    let lower = FallConfig {
        impact_mg: 1600,
        ..CFG
    };
    assert_eq!(t.falls(&lower), 1);
}

#[test]
fn a_fall_that_ends_sitting_on_the_floor_is_a_fall() {
    for p in RATES {
        // a real drop (≈ 3 m/s), a hard landing on the buttocks, then sitting on the
        // floor leaning back 35° against the bed, still
        let t = Script::new(p)
            .stand(3000)
            .drop(400, 0.2)
            .impact(4000, 35.0)
            .posture(6000, 35.0);
        let d = t.run(&CFG);
        assert_eq!(d.len(), 1, "{p} ms: {d:?}");
        assert_eq!(d[0].verdict, Verdict::Fall, "{p} ms: {d:?}");
        assert!(d[0].features.tilt_deg.is_some_and(|t| t < CFG.min_tilt_deg));
        // it is the second path that catches it: without it the trunk is "upright"
        let without = FallConfig {
            seated_velocity_mm_s: 0,
            ..CFG
        };
        assert_eq!(
            t.run(&without)[0].verdict,
            Verdict::NotFall(Reason::Upright)
        );
    }
}

#[test]
fn sitting_down_hard_on_a_chair_is_not_a_fall() {
    for p in RATES {
        // lowering onto the seat (≈ 0.6 m/s), a 2.6 g jolt, leaning back 30°, still
        let t = Script::new(p)
            .stand(3000)
            .drop(600, 0.9)
            .impact(2600, 30.0)
            .posture(6000, 30.0);
        let d = t.run(&CFG);
        assert_eq!(d.len(), 1, "{p} ms: {d:?}");
        assert_eq!(
            d[0].verdict,
            Verdict::NotFall(Reason::Upright),
            "{p} ms: {d:?}"
        );
        // plopping down from higher (≈ 1 m/s, 3 g) is still no fall: the second path
        // needs a real drop
        let plop = Script::new(p)
            .stand(3000)
            .drop(350, 0.7)
            .impact(3000, 30.0)
            .posture(6000, 30.0);
        let d = plop.run(&CFG);
        let v = d[0].features.velocity_mm_s.expect("velocity");
        assert!((700..1500).contains(&v), "{v} mm/s");
        assert_eq!(plop.falls(&CFG), 0, "{p} ms: {d:?}");
    }
}

#[test]
fn a_bounce_after_the_fall_does_not_replace_the_upright_reference() {
    // the fall, then 1.5 s later a jolt on the floor (an arm hits the ground): the
    // cluster is judged on the fall's impact, against the posture before the fall
    let t = Script::new(50)
        .stand(3000)
        .drop(400, 0.2)
        .impact(3200, 90.0)
        .posture(1500, 90.0)
        .impact(2500, 180.0)
        .posture(5000, 90.0);
    let d = t.run(&CFG);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].verdict, Verdict::Fall);
    assert_eq!(d[0].features.impacts, 2);
    assert_eq!(d[0].features.peak_mg, 3200, "the fall's own impact");
    assert_eq!(d[0].features.impact_tick as usize, t.ticks(3400));
}
