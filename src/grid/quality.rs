//! Power-quality quantities of a bus: per-phase magnitude and angle,
//! symmetrical components, and the voltage unbalance factor.
//!
//! Symmetrical components (Fortescue), with `a = 1∠120°`:
//!
//! ```text
//! V0 = (Va +    Vb +    Vc) / 3
//! V1 = (Va +  a·Vb + a²·Vc) / 3
//! V2 = (Va + a²·Vb +  a·Vc) / 3
//! ```
//!
//! The unbalance factor is u2 = |V2| / |V1| · 100 % (EN 50160 and
//! IEC 61000-4-30 define unbalance by this ratio; EN 50160's limit is 2 %
//! for 95 % of the 10-minute means of a week). Harmonics are not modelled by
//! the fundamental-frequency power flow.

use num_complex::Complex64 as C;

use super::mat3::V3;

/// `a = 1∠120°` and `a²`, evaluated once.
static A: std::sync::LazyLock<(C, C)> = std::sync::LazyLock::new(|| {
    let a = C::from_polar(1.0, 120f64.to_radians());
    (a, a * a)
});

/// Zero-, positive- and negative-sequence components of a phase set
/// [same unit as the input].
pub fn sequence(v: &V3) -> [C; 3] {
    let (a, a2) = *A;
    [
        (v[0] + v[1] + v[2]) / 3.0,
        (v[0] + a * v[1] + a2 * v[2]) / 3.0,
        (v[0] + a2 * v[1] + a * v[2]) / 3.0,
    ]
}

/// The voltage unbalance factor |V2|/|V1| [%], or `None` when there is no
/// positive sequence (a dead bus).
pub fn unbalance_pct(v: &V3) -> Option<f64> {
    let [_, v1, v2] = sequence(v);
    (v1.norm() > 0.0).then(|| v2.norm() / v1.norm() * 100.0)
}

/// The square of the unbalance factor's ratio, (|V2|/|V1|)², without a
/// square root: it orders phase sets as [`unbalance_pct`] does (up to
/// rounding), for finding the most unbalanced of many. `None` as there.
pub fn unbalance_ratio_sq(v: &V3) -> Option<f64> {
    let [_, v1, v2] = sequence(v);
    let d = v1.norm_sqr();
    (d > 0.0).then(|| v2.norm_sqr() / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(mag: [f64; 3], deg: [f64; 3]) -> V3 {
        [0, 1, 2].map(|k| C::from_polar(mag[k], deg[k].to_radians()))
    }

    #[test]
    fn balanced_positive_sequence_has_no_unbalance() {
        let v = set([230.0; 3], [10.0, -110.0, 130.0]);
        let [v0, v1, v2] = sequence(&v);
        assert!(v0.norm() < 1e-12 && v2.norm() < 1e-12);
        assert!((v1 - v[0]).norm() < 1e-12);
        assert!(unbalance_pct(&v).unwrap() < 1e-12);
    }

    #[test]
    fn pure_negative_and_zero_sequences_are_recovered() {
        let neg = set([5.0; 3], [0.0, 120.0, -120.0]);
        let [v0, v1, v2] = sequence(&neg);
        assert!(v0.norm() < 1e-12 && v1.norm() < 1e-12 && (v2 - neg[0]).norm() < 1e-12);
        let zero = set([3.0; 3], [45.0; 3]);
        let [v0, v1, v2] = sequence(&zero);
        assert!((v0 - zero[0]).norm() < 1e-12 && v1.norm() < 1e-12 && v2.norm() < 1e-12);
    }

    #[test]
    fn unbalance_of_a_mixed_set() {
        // 230 V positive sequence plus 4.6 V negative sequence: u2 = 2 %.
        let pos = set([230.0; 3], [0.0, -120.0, 120.0]);
        let neg = set([4.6; 3], [30.0, 150.0, -90.0]);
        let v = [pos[0] + neg[0], pos[1] + neg[1], pos[2] + neg[2]];
        assert!((unbalance_pct(&v).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(unbalance_pct(&[C::new(0.0, 0.0); 3]), None);
    }
}
