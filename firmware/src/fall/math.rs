//! Integer arithmetic for the detector: square root and the angle between two vectors.
//!
//! No floating point: the same code runs on a Cortex-M4F, a Cortex-M3 and a RISC-V core
//! without FPU. Per sample the detector needs one integer square root; the angle is
//! computed once per candidate fall.

/// `round(cos(d°) × 4096)` for d = 0…90.
const COS_Q12: [u16; 91] = [
    4096, 4095, 4094, 4090, 4086, 4080, 4074, 4065, 4056, 4046, //
    4034, 4021, 4006, 3991, 3974, 3956, 3937, 3917, 3896, 3873, //
    3849, 3824, 3798, 3770, 3742, 3712, 3681, 3650, 3617, 3582, //
    3547, 3511, 3474, 3435, 3396, 3355, 3314, 3271, 3228, 3183, //
    3138, 3091, 3044, 2996, 2946, 2896, 2845, 2793, 2741, 2687, //
    2633, 2578, 2522, 2465, 2408, 2349, 2290, 2231, 2171, 2110, //
    2048, 1986, 1923, 1860, 1796, 1731, 1666, 1600, 1534, 1468, //
    1401, 1334, 1266, 1198, 1129, 1060, 991, 921, 852, 782, //
    711, 641, 570, 499, 428, 357, 286, 214, 143, 71, //
    0,
];

/// `cos(deg°) × 4096`, for 0 ≤ deg ≤ 180 (larger values are taken as 180).
pub const fn cos_q12(deg: u8) -> i32 {
    let d = if deg > 180 { 180 } else { deg as usize };
    if d <= 90 {
        COS_Q12[d] as i32
    } else {
        -(COS_Q12[180 - d] as i32)
    }
}

/// Integer square root, rounded down. At most 16 iterations of shifts and adds.
pub const fn isqrt_u32(n: u32) -> u16 {
    let mut x = n;
    let mut res: u32 = 0;
    let mut bit: u32 = 1 << 30;
    while bit > x {
        bit >>= 2;
    }
    while bit != 0 {
        if x >= res + bit {
            x -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    res as u16
}

/// Length of a vector whose components are within `i16`, rounded down.
pub const fn norm(v: [i32; 3]) -> u16 {
    let x = v[0].unsigned_abs();
    let y = v[1].unsigned_abs();
    let z = v[2].unsigned_abs();
    // Each component is at most 32768, so the sum of squares is below 2^32.
    isqrt_u32(x * x + y * y + z * z)
}

/// The angle between `a` and `b` in whole degrees (0–180, rounded towards the nearest
/// table entry from above), or `None` when either is the zero vector. Components must
/// be within `i16`.
pub fn angle_deg(a: [i32; 3], b: [i32; 3]) -> Option<u8> {
    let na = i64::from(norm(a));
    let nb = i64::from(norm(b));
    if na == 0 || nb == 0 {
        return None;
    }
    let dot = i64::from(a[0]) * i64::from(b[0])
        + i64::from(a[1]) * i64::from(b[1])
        + i64::from(a[2]) * i64::from(b[2]);
    // cos θ in Q12, clamped against rounding of the norms.
    let c = (dot * 4096 / (na * nb)).clamp(-4096, 4096) as i32;
    // Smallest angle whose cosine is ≤ c: binary search over the monotone table.
    let (mut lo, mut hi) = (0u8, 180u8);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if cos_q12(mid) <= c {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_is_exact_on_squares_and_floors_between() {
        for r in [0u32, 1, 2, 3, 999, 1000, 1001, 4095, 56_755, 65_535] {
            assert_eq!(u32::from(isqrt_u32(r * r)), r);
            if r > 0 {
                assert_eq!(u32::from(isqrt_u32(r * r - 1)), r - 1);
            }
        }
        assert_eq!(isqrt_u32(u32::MAX), 65_535);
    }

    #[test]
    fn angle_between_axes_and_opposites() {
        assert_eq!(angle_deg([1000, 0, 0], [0, 1000, 0]), Some(90));
        assert_eq!(angle_deg([1000, 0, 0], [1000, 0, 0]), Some(0));
        assert_eq!(angle_deg([1000, 0, 0], [-1000, 0, 0]), Some(180));
        assert_eq!(angle_deg([1000, 0, 0], [500, 866, 0]), Some(60));
        assert_eq!(angle_deg([0, 0, 0], [1, 0, 0]), None);
    }

    #[test]
    fn angle_survives_full_scale_vectors() {
        let m = i32::from(i16::MIN);
        assert_eq!(angle_deg([m, m, m], [m, m, m]), Some(0));
        assert_eq!(angle_deg([m, m, m], [-m - 1, -m - 1, -m - 1]), Some(180));
    }
}
