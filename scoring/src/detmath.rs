//! Bit-reproducible math for the profile fold.
//!
//! `f64::exp`, `powf` and `powi` call the platform's libm or compiler runtime, whose last-bit
//! results may differ between machines, libc versions and architectures. Replicas must agree bit
//! for bit, so the fold uses only IEEE-754 basic operations (+, −, ×, ÷, floor, which are correctly
//! rounded everywhere Rust runs without x87) in a fixed order. Rust never contracts `a * b + c`
//! into a fused multiply-add on its own, so the order written here is the order executed.

/// 2^(−x) for x ≥ 0 (x ≤ 0 or NaN gives 1). Relative error below 1e-14.
pub fn exp2_neg(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    if x >= 1100.0 {
        return 0.0;
    }
    let n = x.floor();
    let f = x - n; // in [0, 1)
                   // 2^(−f) = e^y with y = −f·ln 2 in (−0.694, 0]; Taylor series to degree 17 (Horner).
    let y = -f * std::f64::consts::LN_2;
    let mut p = 1.0;
    for k in (1..=17).rev() {
        p = 1.0 + p * y / f64::from(k);
    }
    scale_by_pow2_neg(p, n as u32)
}

/// x · 2^(−n), exact unless the result is subnormal (then correctly rounded).
fn scale_by_pow2_neg(mut x: f64, mut n: u32) -> f64 {
    while n > 0 {
        let step = n.min(1000);
        // 2^(−step) as a normal f64: biased exponent 1023 − step ≥ 23.
        x *= f64::from_bits(u64::from(1023 - step) << 52);
        n -= step;
    }
    x
}

/// base^n by repeated squaring (n may be large; the result underflows to 0 for |base| < 1).
pub fn powi_u64(base: f64, mut n: u64) -> f64 {
    let mut acc = 1.0;
    let mut b = base;
    while n > 0 {
        if n & 1 == 1 {
            acc *= b;
        }
        n >>= 1;
        if n > 0 {
            b *= b;
        }
    }
    acc
}

/// log2(x) for finite x > 0 (0 for x ≤ 0, NaN or infinity: callers pass counts and volumes).
/// Absolute error below 1e-14.
pub fn log2(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 0.0;
    }
    // Normalise subnormals, then x = m · 2^e with m in [1, 2).
    let (x, bias) = if x < f64::MIN_POSITIVE { (x * f64::from_bits(1077u64 << 52), 54) } else { (x, 0) };
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1023 - bias;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    // ln m = 2·atanh(y), y = (m − 1)/(m + 1) in [0, 1/3): the series converges fast.
    let y = (m - 1.0) / (m + 1.0);
    let y2 = y * y;
    let mut sum = 0.0;
    for k in (0..24).rev() {
        sum = 1.0 / f64::from(2 * k + 1) + y2 * sum;
    }
    e as f64 + 2.0 * y * sum / std::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_neg_matches_libm_closely() {
        for i in 0..20_000 {
            let x = f64::from(i) * 0.013_7;
            let want = (-x).exp2();
            let got = exp2_neg(x);
            assert!((got - want).abs() <= want * 1e-14, "x={x}: {got} vs {want}");
        }
        assert_eq!(exp2_neg(0.0), 1.0);
        assert_eq!(exp2_neg(1.0), 0.5);
        assert_eq!(exp2_neg(10.0), 1.0 / 1024.0);
        assert_eq!(exp2_neg(-3.0), 1.0);
        assert_eq!(exp2_neg(5000.0), 0.0);
        assert!(exp2_neg(1070.0) > 0.0);
    }

    #[test]
    fn log2_matches_libm_closely() {
        for i in 1..20_000u32 {
            let x = f64::from(i) * 0.37 + f64::from(i).powi(3);
            assert!((log2(x) - x.log2()).abs() < 1e-13, "x={x}: {} vs {}", log2(x), x.log2());
        }
        assert_eq!(log2(1.0), 0.0);
        assert_eq!(log2(1024.0), 10.0);
        assert!((log2(1e-310) - 1e-310f64.log2()).abs() < 1e-12);
        assert_eq!((log2(0.0), log2(-1.0), log2(f64::NAN)), (0.0, 0.0, 0.0));
    }

    #[test]
    fn powi_is_repeated_multiplication() {
        assert_eq!(powi_u64(0.9, 0), 1.0);
        assert_eq!(powi_u64(0.5, 3), 0.125);
        assert!((powi_u64(0.9, 37) - 0.9f64.powi(37)).abs() < 1e-15);
        assert_eq!(powi_u64(0.9, u64::MAX), 0.0);
    }
}
