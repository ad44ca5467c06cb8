//! Calibration curves of the radio model, for `gridtwin radio curve`.

use super::phy::{self, RadioProfile};
use super::propagation::{
    F_2G4_HZ, Friis, LogDistance, PathLoss, Position, TwoRayExact, TwoRayGround,
};

/// The path-loss models a curve can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Log-distance, exponent calibrated to 50 % at 750 m.
    Calibrated,
    /// Free space.
    Friis,
    /// ns-3's two-ray ground.
    TwoRay,
    /// Exact two-ray with a perfect reflector.
    TwoRayExact,
}

impl Model {
    /// Every model's command-line name.
    pub const NAMES: &[&str] = &["calibrated", "friis", "two-ray", "two-ray-exact"];

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Model> {
        Some(match s {
            "calibrated" => Model::Calibrated,
            "friis" => Model::Friis,
            "two-ray" => Model::TwoRay,
            "two-ray-exact" => Model::TwoRayExact,
            _ => return None,
        })
    }
}

/// Curves of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct Curves {
    /// The log-distance exponent (calibrated model) or `None`.
    pub exponent: Option<f64>,
    /// `(distance [m], path loss [dB], mean PDR)` from 10 m to 2000 m.
    pub by_distance: Vec<(f64, f64, f64)>,
    /// `(SNR [dB], BER, PER 20 octets, PER 127 octets)` from −10 to 10 dB.
    pub by_snr: Vec<(f64, f64, f64, f64)>,
}

/// Pole height of the curves' antennas [m].
pub const POLE_HEIGHT_M: f64 = 8.0;

/// The curves of `model` for `profile` under shadowing σ `sigma_db`, for
/// 20-octet frames (160 PSDU bits).
pub fn curves(model: Model, profile: RadioProfile, sigma_db: f64) -> Curves {
    let exponent = (model == Model::Calibrated)
        .then(|| phy::calibrate_exponent(profile, sigma_db, 750.0, 0.5, 160.0));
    let loss: Box<dyn PathLoss> = match model {
        Model::Calibrated => Box::new(LogDistance::friis_referenced(
            exponent.unwrap_or(2.44),
            F_2G4_HZ,
        )),
        Model::Friis => Box::new(Friis { f_hz: F_2G4_HZ }),
        Model::TwoRay => Box::new(TwoRayGround { f_hz: F_2G4_HZ }),
        Model::TwoRayExact => Box::new(TwoRayExact { f_hz: F_2G4_HZ }),
    };
    let by_distance = (1..=200)
        .map(|k| {
            let d = 10.0 * f64::from(k);
            let pl = loss.loss_db(
                &Position::new(0.0, 0.0, POLE_HEIGHT_M),
                &Position::new(d, 0.0, POLE_HEIGHT_M),
            );
            (
                d,
                pl,
                phy::mean_psr_shadowed(profile.snr_db(pl), sigma_db, 160.0),
            )
        })
        .collect();
    let by_snr = (0..=40)
        .map(|k| {
            let snr = -10.0 + 0.5 * f64::from(k);
            let b = phy::ber(phy::lin(snr));
            (snr, b, phy::per(b, 160.0), phy::per(b, 1016.0))
        })
        .collect();
    Curves {
        exponent,
        by_distance,
        by_snr,
    }
}
