//! Synthetic variants of recorded falls (host only), for the two known weak spots: slow
//! falls and falls that end sitting. No such falls are in the shared recordings (young
//! volunteers falling onto a mattress, ending lying), so `fall-eval --stress` makes them
//! from the real falls and scores them with the parameters of the same fold; they are
//! never used to choose parameters.
//!
//! Each sample is split into the *posture* part, the 1 g a still sensor reads in that
//! orientation, and the *dynamic* part (the rest). Around the impact (the sample with
//! the largest magnitude, as the dataset's README suggests) the posture turns from the
//! upright one before the fall (mean over 2.5–1.5 s before the impact) to the one after
//! (mean over 1.5–3 s after), following a smooth step over 1 s before to 0.3 s after
//! the impact.
//!
//! - [`slowed`]: the fall runs `k` times slower, as with a slower descent and a softer
//!   landing: the 2.5 s around the impact are stretched `k` times, the dynamic part is
//!   divided by `k²` (the same path taken `k` times slower), so the velocity at impact
//!   falls by `k` and the impact's dynamic peak by `k²`.
//! - [`seated`]: the same fall, but the wearer ends with the trunk `tilt_deg` from
//!   upright (sitting or half-lying on the floor) instead of lying: from 1 s before the
//!   impact on, every reading is rotated by the turn between the recorded posture path
//!   and one that ends `tilt_deg` from upright, so free fall, impact and stillness keep
//!   their size and only the orientation changes.

use crate::driver::Acceleration;

use super::trace::Trace;

type V = [f64; 3];

fn vec_of(a: &Acceleration) -> V {
    [f64::from(a.x_mg), f64::from(a.y_mg), f64::from(a.z_mg)]
}

fn norm(v: V) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

fn scale(v: V, s: f64) -> V {
    [v[0] * s, v[1] * s, v[2] * s]
}

fn add(a: V, b: V) -> V {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn sub(a: V, b: V) -> V {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dot(a: V, b: V) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Spherical interpolation of directions (lengths interpolated linearly).
fn slerp(a: V, b: V, s: f64) -> V {
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return add(scale(a, 1.0 - s), scale(b, s));
    }
    let (ua, ub) = (scale(a, 1.0 / na), scale(b, 1.0 / nb));
    let omega = dot(ua, ub).clamp(-1.0, 1.0).acos();
    let len = na + (nb - na) * s;
    if omega < 1e-6 {
        return scale(ua, len);
    }
    let (sa, sb) = (
        ((1.0 - s) * omega).sin() / omega.sin(),
        (s * omega).sin() / omega.sin(),
    );
    scale(add(scale(ua, sa), scale(ub, sb)), len)
}

/// `from` turned towards `to` by `deg` degrees (in their common plane), with `to`'s
/// length.
fn turn_towards(from: V, to: V, deg: f64) -> V {
    let (nf, nt) = (norm(from), norm(to));
    if nf == 0.0 || nt == 0.0 {
        return to;
    }
    let uf = scale(from, 1.0 / nf);
    let ut = scale(to, 1.0 / nt);
    let omega = dot(uf, ut).clamp(-1.0, 1.0).acos();
    if omega < 1e-6 {
        return to;
    }
    slerp(
        scale(uf, nt),
        scale(ut, nt),
        (deg.to_radians() / omega).min(1.0),
    )
}

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

fn to_sample(v: V, saturated: bool) -> Acceleration {
    let c = |x: f64| x.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
    Acceleration {
        x_mg: c(v[0]),
        y_mg: c(v[1]),
        z_mg: c(v[2]),
        saturated,
    }
}

/// Where the fall is in a trace, and the posture before and after it.
struct Anatomy {
    impact: usize,
    before: V,
    after: V,
    /// Ticks: the posture turns over `impact − turn_from` … `impact + turn_to`.
    turn_from: usize,
    turn_to: usize,
}

fn mean(periods: &[Option<Acceleration>], from: isize, to: isize) -> Option<V> {
    let n = periods.len() as isize;
    let (from, to) = (from.clamp(0, n) as usize, to.clamp(0, n) as usize);
    let mut sum = [0.0; 3];
    let mut k = 0.0;
    for a in periods[from..to].iter().flatten() {
        sum = add(sum, vec_of(a));
        k += 1.0;
    }
    (k > 0.0).then(|| scale(sum, 1.0 / k))
}

fn anatomy(trace: &Trace) -> Option<Anatomy> {
    let p = trace.period_ms.max(1) as f64;
    let t = |ms: f64| (ms / p).round() as isize;
    let (impact, _) = trace
        .periods
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.map(|a| (i, a.magnitude_mg())))
        .max_by_key(|&(_, m)| m)?;
    let i = impact as isize;
    let before = mean(&trace.periods, i - t(2500.0), i - t(1500.0))?;
    let after = mean(&trace.periods, i + t(1500.0), i + t(3000.0))
        .or_else(|| mean(&trace.periods, i + t(500.0), i + t(3000.0)))?;
    Some(Anatomy {
        impact,
        before,
        after,
        turn_from: t(1000.0) as usize,
        turn_to: t(300.0) as usize,
    })
}

impl Anatomy {
    /// The posture at (fractional) tick `x` of the original trace, ending at `after`.
    fn posture(&self, x: f64, after: V) -> V {
        let a = self.impact as f64 - self.turn_from as f64;
        let b = self.impact as f64 + self.turn_to as f64;
        slerp(self.before, after, smoothstep((x - a) / (b - a)))
    }
}

/// The sample at fractional tick `x` (linear interpolation; missing if a neighbour is).
fn at(periods: &[Option<Acceleration>], x: f64) -> Option<(V, bool)> {
    let i = x.floor().max(0.0) as usize;
    let j = (i + 1).min(periods.len().saturating_sub(1));
    let (a, b) = (periods.get(i)?.as_ref()?, periods.get(j)?.as_ref()?);
    let w = x - i as f64;
    Some((
        add(scale(vec_of(a), 1.0 - w), scale(vec_of(b), w)),
        a.saturated || b.saturated,
    ))
}

/// The fall of `trace` made `k` times slower (module documentation); `None` when the
/// trace has no clear before and after.
pub fn slowed(trace: &Trace, k: f64) -> Option<Trace> {
    let an = anatomy(trace)?;
    let p = f64::from(trace.period_ms.max(1));
    let w_from = an.impact.saturating_sub((1500.0 / p) as usize);
    let w_to = (an.impact + (1000.0 / p) as usize).min(trace.periods.len());
    let mut periods: Vec<Option<Acceleration>> = trace.periods[..w_from].to_vec();
    let stretched = ((w_to - w_from) as f64 * k).round() as usize;
    for n in 0..stretched {
        let x = w_from as f64 + n as f64 / k;
        periods.push(at(&trace.periods, x).map(|(f, sat)| {
            let g = an.posture(x, an.after);
            // a softened clipped sample is no longer known to clip
            to_sample(add(g, scale(sub(f, g), 1.0 / (k * k))), sat && k <= 1.0)
        }));
    }
    periods.extend_from_slice(&trace.periods[w_to..]);
    Some(variant(trace, periods, &format!("slowed x{k}")))
}

/// The fall of `trace` ending with the trunk `tilt_deg` from upright instead of lying
/// (module documentation); `None` when the trace has no clear before and after.
pub fn seated(trace: &Trace, tilt_deg: f64) -> Option<Trace> {
    let an = anatomy(trace)?;
    let target = turn_towards(an.before, an.after, tilt_deg);
    let start = an.impact.saturating_sub(an.turn_from);
    let periods = trace
        .periods
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i < start {
                return *s;
            }
            s.map(|a| {
                // the sensor turned along another path: rotate the whole reading (free
                // fall stays free fall, the impact keeps its size)
                let x = i as f64;
                let f = rotate(vec_of(&a), an.posture(x, an.after), an.posture(x, target));
                to_sample(f, a.saturated)
            })
        })
        .collect();
    Some(variant(trace, periods, &format!("ending at {tilt_deg}°")))
}

/// `f` rotated by the smallest rotation that takes direction `from` to direction `to`.
fn rotate(f: V, from: V, to: V) -> V {
    let (nf, nt) = (norm(from), norm(to));
    if nf == 0.0 || nt == 0.0 {
        return f;
    }
    let (u, v) = (scale(from, 1.0 / nf), scale(to, 1.0 / nt));
    let axis = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    let sin = norm(axis);
    let cos = dot(u, v);
    if sin < 1e-9 {
        return f;
    }
    let k = scale(axis, 1.0 / sin);
    let kxf = [
        k[1] * f[2] - k[2] * f[1],
        k[2] * f[0] - k[0] * f[2],
        k[0] * f[1] - k[1] * f[0],
    ];
    add(
        add(scale(f, cos), scale(kxf, sin)),
        scale(k, dot(k, f) * (1.0 - cos)),
    )
}

fn variant(trace: &Trace, periods: Vec<Option<Acceleration>>, what: &str) -> Trace {
    let p = u64::from(trace.period_ms);
    let t0 = trace.times_ms.first().copied().unwrap_or(0);
    Trace {
        file: format!("{} [{what}]", trace.file),
        label: trace.label.clone(),
        position: trace.position,
        period_ms: trace.period_ms,
        times_ms: (0..periods.len() as u64).map(|i| t0 + i * p).collect(),
        periods,
        repaired: trace.repaired,
        skipped_rows: trace.skipped_rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fall::trace::Label;

    fn fall() -> Trace {
        // 50 ms: upright 3 s (+y), 0.5 s at 0.3 g, impact 3 g, lying (+z) 5 s
        let mut p = vec![Some(Acceleration::new(0, 1000, 0)); 60];
        p.extend(vec![Some(Acceleration::new(0, 300, 0)); 10]);
        p.push(Some(Acceleration::new(0, 2000, 2200)));
        p.extend(vec![Some(Acceleration::new(0, 0, 1000)); 100]);
        Trace {
            file: "f".into(),
            label: Label {
                subject: "x".into(),
                is_fall: true,
                activity: "fall".into(),
            },
            position: "chest",
            period_ms: 50,
            times_ms: (0..p.len() as u64).map(|i| 50 * i).collect(),
            periods: p,
            repaired: 0,
            skipped_rows: 0,
        }
    }

    fn peak(t: &Trace) -> u16 {
        t.periods
            .iter()
            .flatten()
            .map(Acceleration::magnitude_mg)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_slowed_fall_is_longer_softer_and_ends_in_the_same_posture() {
        let f = fall();
        let s = slowed(&f, 2.0).expect("variant");
        assert_eq!(
            s.periods.len(),
            f.periods.len() + 50,
            "2.5 s stretched to 5 s"
        );
        assert!(peak(&s) < peak(&f) / 2, "{} vs {}", peak(&s), peak(&f));
        assert_eq!(s.periods.last(), f.periods.last());
        assert_eq!(s.periods.first(), f.periods.first());
    }

    #[test]
    fn a_seated_variant_ends_at_the_asked_angle_from_upright() {
        let s = seated(&fall(), 35.0).expect("variant");
        let last = s.periods.last().copied().flatten().expect("sample");
        let v = vec_of(&last);
        let angle = (dot(v, [0.0, 1.0, 0.0]) / norm(v)).acos().to_degrees();
        assert!((angle - 35.0).abs() < 1.0, "{angle}");
        assert_eq!(s.periods[..30], fall().periods[..30]);
    }
}
