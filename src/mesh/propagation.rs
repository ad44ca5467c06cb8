//! Propagation: how much power a transmission loses on its way to a
//! receiver.
//!
//! Every model is its own type behind [`PathLoss`], with the formulas of
//! ns-3's propagation module (and the exact two-ray form), in dB:
//!
//! | model | loss |
//! |---|---|
//! | [`Friis`] | `20·log10(4πd/λ)` (system loss 1) |
//! | [`LogDistance`] | `PL0 + 10·n·log10(d/d0)` for d > d0, else `PL0` |
//! | [`TwoRayGround`] (ns-3) | Friis up to `d_c = 4π·h_t·h_r/λ`, then `40·log10 d − 20·log10(h_t·h_r)` |
//! | [`TwoRayExact`] | `−10·log10((λ/4π)²·|e^{−jkd₁}/d₁ + Γ·e^{−jkd₂}/d₂|²)`, Γ = −1 |
//!
//! Distances are 3-D between antennas; the two-ray models take the
//! antennas' heights above flat ground from the positions' `z`.
//!
//! [`Shadowing`] adds a log-normal term per link: symmetric (the same for
//! a→b and b→a), drawn once per replication from the link's own random
//! stream, so adding a node never shifts another link's draw. [`Fading`]
//! adds an optional per-packet Rayleigh or Nakagami-m power gain.

use std::f64::consts::PI;

use rand::RngExt;
use rand_distr::{Distribution, Gamma, Normal};

use crate::kernel::rng::stream;

/// Speed of light [m/s].
pub const C_M_S: f64 = 299_792_458.0;

/// The 2.4 GHz band's carrier for 802.15.4 channel-independent figures
/// [Hz] (the reference vectors use 2.4 GHz exactly).
pub const F_2G4_HZ: f64 = 2.4e9;

/// A position [m]: x and y on the ground plane, z the antenna height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    /// East [m].
    pub x: f64,
    /// North [m].
    pub y: f64,
    /// Antenna height above ground [m].
    pub z: f64,
}

impl Position {
    /// A position [m].
    pub const fn new(x: f64, y: f64, z: f64) -> Position {
        Position { x, y, z }
    }

    /// Ground distance to `o` [m].
    pub fn ground_distance(&self, o: &Position) -> f64 {
        (self.x - o.x).hypot(self.y - o.y)
    }

    /// Straight-line distance to `o` [m].
    pub fn distance(&self, o: &Position) -> f64 {
        self.ground_distance(o).hypot(self.z - o.z)
    }
}

/// A deterministic path-loss model.
pub trait PathLoss: std::fmt::Debug + Send + Sync {
    /// Loss from `tx` to `rx` [dB].
    fn loss_db(&self, tx: &Position, rx: &Position) -> f64;
}

/// Wavelength at `f_hz` [m].
pub fn wavelength_m(f_hz: f64) -> f64 {
    C_M_S / f_hz
}

/// Friis free-space loss at distance `d_m` [dB].
pub fn friis_db(d_m: f64, f_hz: f64) -> f64 {
    20.0 * (4.0 * PI * d_m / wavelength_m(f_hz)).log10()
}

/// Free space (ns-3 `FriisPropagationLossModel`, system loss 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Friis {
    /// Carrier frequency [Hz].
    pub f_hz: f64,
}

impl PathLoss for Friis {
    fn loss_db(&self, tx: &Position, rx: &Position) -> f64 {
        friis_db(tx.distance(rx), self.f_hz)
    }
}

/// Log-distance (ns-3 `LogDistancePropagationLossModel`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogDistance {
    /// Path-loss exponent.
    pub exponent: f64,
    /// Reference distance [m].
    pub d0_m: f64,
    /// Loss at the reference distance [dB].
    pub pl0_db: f64,
}

impl LogDistance {
    /// Referenced to Friis at 1 m for `f_hz` (40.052 dB at 2.4 GHz; ns-3's
    /// default 46.6777 dB is Friis at 5.15 GHz).
    pub fn friis_referenced(exponent: f64, f_hz: f64) -> LogDistance {
        LogDistance {
            exponent,
            d0_m: 1.0,
            pl0_db: friis_db(1.0, f_hz),
        }
    }

    /// Loss at distance `d_m` [dB].
    pub fn at(&self, d_m: f64) -> f64 {
        if d_m <= self.d0_m {
            self.pl0_db
        } else {
            self.pl0_db + 10.0 * self.exponent * (d_m / self.d0_m).log10()
        }
    }
}

impl PathLoss for LogDistance {
    fn loss_db(&self, tx: &Position, rx: &Position) -> f64 {
        self.at(tx.distance(rx))
    }
}

/// Two-ray ground reflection as ns-3 implements it (ported from ns-2):
/// Friis below the crossover distance, the d⁴ law beyond. For 8 m poles
/// at 2.4 GHz the crossover is 6.4 km, so over LV distances it is Friis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoRayGround {
    /// Carrier frequency [Hz].
    pub f_hz: f64,
}

impl TwoRayGround {
    /// Crossover distance for antenna heights `ht`, `hr` [m].
    pub fn crossover_m(&self, ht: f64, hr: f64) -> f64 {
        4.0 * PI * ht * hr / wavelength_m(self.f_hz)
    }
}

impl PathLoss for TwoRayGround {
    fn loss_db(&self, tx: &Position, rx: &Position) -> f64 {
        let d = tx.distance(rx);
        if d <= self.crossover_m(tx.z, rx.z) {
            friis_db(d, self.f_hz)
        } else {
            40.0 * d.log10() - 20.0 * (tx.z * rx.z).log10()
        }
    }
}

/// Exact two-ray interference over a perfectly reflecting flat ground
/// (Γ = −1): the direct and reflected rays add with their path phases, so
/// the loss has nulls where the path difference is a whole number of
/// wavelengths.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoRayExact {
    /// Carrier frequency [Hz].
    pub f_hz: f64,
}

impl PathLoss for TwoRayExact {
    fn loss_db(&self, tx: &Position, rx: &Position) -> f64 {
        let lambda = wavelength_m(self.f_hz);
        let k = 2.0 * PI / lambda;
        let dg = tx.ground_distance(rx);
        let d1 = dg.hypot(tx.z - rx.z);
        let d2 = dg.hypot(tx.z + rx.z);
        let (re, im) = (
            (k * d1).cos() / d1 - (k * d2).cos() / d2,
            -(k * d1).sin() / d1 + (k * d2).sin() / d2,
        );
        let gain = (lambda / (4.0 * PI)).powi(2) * (re * re + im * im);
        -10.0 * gain.log10()
    }
}

/// Log-normal shadowing per link [dB]: `X ~ N(0, σ²)`, symmetric and fixed
/// for a replication.
///
/// Each link's draw comes from its own generator: SplitMix64 seeded with
/// the replication's shadowing key (the first word of the stream
/// `(seed, "link", 0, "shadowing")`) mixed with the link's id
/// `min·2³² + max`. A link's value therefore depends on the seed and the
/// two node ids only, never on which other links exist, and costs a few
/// nanoseconds rather than a hash of the whole derivation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shadowing {
    /// Standard deviation [dB].
    pub sigma_db: f64,
}

/// [`Shadowing`] keyed for one replication.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShadowingField {
    sigma_db: f64,
    key: u64,
}

impl Shadowing {
    /// The shadowing of every link of the replication with `seed`.
    pub fn field(&self, seed: u64) -> ShadowingField {
        let key = stream(seed, "link", 0, "shadowing").random::<u64>();
        ShadowingField {
            sigma_db: self.sigma_db,
            key,
        }
    }

    /// The shadowing of the link between nodes `a` and `b` [dB] (one-off;
    /// use [`Shadowing::field`] for many links).
    pub fn link_db(&self, seed: u64, a: u32, b: u32) -> f64 {
        self.field(seed).link_db(a, b)
    }
}

impl ShadowingField {
    /// The shadowing of the link between nodes `a` and `b` [dB].
    pub fn link_db(&self, a: u32, b: u32) -> f64 {
        use rand::SeedableRng;
        if self.sigma_db == 0.0 {
            return 0.0;
        }
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let id = (u64::from(lo) << 32) | u64::from(hi);
        let mut rng = rand_xoshiro::SplitMix64::seed_from_u64(
            self.key ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let n = Normal::new(0.0, self.sigma_db).expect("σ is finite and ≥ 0");
        n.sample(&mut rng)
    }
}

/// Per-packet fading: a random power gain drawn for every reception.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fading {
    /// No fading.
    None,
    /// Rayleigh: exponential power gain with mean 1.
    Rayleigh,
    /// Nakagami-m: Gamma(m, 1/m) power gain with mean 1.
    Nakagami {
        /// Shape m (≥ 0.5).
        m: f64,
    },
}

impl Fading {
    /// A gain draw [dB] (0 without fading).
    pub fn draw_db<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let g: f64 = match *self {
            Fading::None => return 0.0,
            Fading::Rayleigh => {
                let u: f64 = rng.random();
                -(1.0 - u).ln()
            }
            Fading::Nakagami { m } => Gamma::new(m, 1.0 / m)
                .expect("m ≥ 0.5 is checked by the scenario")
                .sample(rng),
        };
        10.0 * g.max(1e-30).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(d: f64) -> (Position, Position) {
        (Position::new(0.0, 0.0, 8.0), Position::new(d, 0.0, 8.0))
    }

    #[test]
    fn distances_are_three_dimensional() {
        let a = Position::new(0.0, 0.0, 8.0);
        let b = Position::new(3.0, 4.0, 2.0);
        assert_eq!(a.ground_distance(&b), 5.0);
        assert!((a.distance(&b) - (25.0f64 + 36.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn shadowing_is_symmetric_fixed_and_per_link() {
        let s = Shadowing { sigma_db: 4.0 };
        assert_eq!(s.link_db(7, 3, 9), s.link_db(7, 9, 3));
        assert_eq!(s.link_db(7, 3, 9), s.link_db(7, 3, 9));
        assert_ne!(s.link_db(7, 3, 9), s.link_db(7, 3, 10));
        assert_ne!(s.link_db(7, 3, 9), s.link_db(8, 3, 9));
        // Over many links: mean 0, σ 4 (tolerances: 4 standard errors).
        let xs: Vec<f64> = (0..20_000u32).map(|k| s.link_db(1, k, k + 1)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 4.0 * 4.0 / (xs.len() as f64).sqrt(), "{mean}");
        assert!((var.sqrt() - 4.0).abs() < 0.1, "{}", var.sqrt());
        assert_eq!(Shadowing { sigma_db: 0.0 }.link_db(1, 1, 2), 0.0);
    }

    #[test]
    fn fading_gains_have_unit_mean_power() {
        let mut rng = stream(3, "test", 0, "fading");
        for f in [
            Fading::Rayleigh,
            Fading::Nakagami { m: 1.5 },
            Fading::Nakagami { m: 0.75 },
        ] {
            let n = 50_000;
            let mean: f64 = (0..n)
                .map(|_| 10f64.powf(f.draw_db(&mut rng) / 10.0))
                .sum::<f64>()
                / n as f64;
            // Tolerance 2 %: about 4 standard errors for these shapes.
            assert!((mean - 1.0).abs() < 0.02, "{f:?}: {mean}");
        }
        assert_eq!(Fading::None.draw_db(&mut rng), 0.0);
    }

    #[test]
    fn two_ray_ground_is_friis_below_its_crossover() {
        let m = TwoRayGround { f_hz: F_2G4_HZ };
        assert!((m.crossover_m(8.0, 8.0) - 6438.0).abs() < 1.0);
        let (a, b) = at(750.0);
        assert_eq!(m.loss_db(&a, &b), Friis { f_hz: F_2G4_HZ }.loss_db(&a, &b));
    }
}
