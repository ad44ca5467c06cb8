//! Arithmetic that must give the same bits on the board and on the host.
//!
//! Every transcendental function goes through `libm`, never a platform maths
//! library: with that, f32 results on the Cortex-M4F and on x86-64 are
//! bit-identical, which lets HIL compare a board's outputs with the
//! in-process node's byte for byte. Complex numbers are `num-complex`'s
//! [`Complex32`], used only for `+ − ×` and conjugates; magnitudes and
//! angles come from the helpers here, so that no `Float` method (which could
//! resolve to `std` on the host through feature unification) is ever called.

pub use num_complex::Complex32;

/// 2π in f32.
pub const TAU: f32 = core::f32::consts::TAU;

/// |z|.
#[inline]
pub fn mag(z: Complex32) -> f32 {
    libm::sqrtf(z.re * z.re + z.im * z.im)
}

/// arg z [rad], in (−π, π].
#[inline]
pub fn arg(z: Complex32) -> f32 {
    libm::atan2f(z.im, z.re)
}

/// `r·e^{jθ}`.
#[inline]
pub fn polar(r: f32, theta: f32) -> Complex32 {
    Complex32::new(r * libm::cosf(theta), r * libm::sinf(theta))
}

/// √x.
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// An angle wrapped into (−π, π] [rad].
#[inline]
pub fn wrap(theta: f32) -> f32 {
    let pi = core::f32::consts::PI;
    let mut t = theta;
    while t > pi {
        t -= TAU;
    }
    while t <= -pi {
        t += TAU;
    }
    t
}

/// The operator a = e^{j120°}.
#[inline]
pub fn a_op() -> Complex32 {
    Complex32::new(-0.5, 0.866_025_4)
}

/// Symmetrical components (zero, positive, negative) of a phase set.
#[inline]
pub fn sequence(v: &[Complex32; 3]) -> [Complex32; 3] {
    let a = a_op();
    let a2 = a * a;
    let third = 1.0 / 3.0;
    [
        (v[0] + v[1] + v[2]) * third,
        (v[0] + a * v[1] + a2 * v[2]) * third,
        (v[0] + a2 * v[1] + a * v[2]) * third,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_angles_in_the_half_open_interval() {
        let pi = core::f32::consts::PI;
        assert!((wrap(3.0 * pi) - pi).abs() < 1e-5);
        assert!((wrap(-pi) - pi).abs() < 1e-6);
        assert!((wrap(0.25) - 0.25).abs() < 1e-7);
    }

    #[test]
    fn a_balanced_set_is_pure_positive_sequence() {
        let v = [0.0f32, -120.0, 120.0].map(|d| polar(230.0, d.to_radians()));
        let s = sequence(&v);
        assert!(mag(s[0]) < 1e-3 && mag(s[2]) < 1e-3);
        assert!((mag(s[1]) - 230.0).abs() < 1e-3);
    }
}
