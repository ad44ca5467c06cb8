//! The radio model against `refdata/radio/` (closed-form reference vectors
//! re-derived from ns-3's formulas; tolerances from its README): the
//! Annex E error model, the path-loss models, the 750 m calibration, a
//! Monte Carlo check of the calibration, and capture.

use gridtwin::mesh::phy::{self, RadioProfile, Segment};
use gridtwin::mesh::propagation::{
    F_2G4_HZ, Friis, LogDistance, PathLoss, Position, Shadowing, TwoRayExact, TwoRayGround,
};
use rand::RngExt;

use crate::{gridtwin, refdata, stderr};

fn table(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_string).collect())
        .collect();
    (h, rows)
}

fn col(h: &[String], name: &str) -> usize {
    h.iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
    }
}

/// BER and PER for 160, 176, 1016 and 1032 bits at −10…+10 dB: relative
/// error ≤ 1e-9 (closed form; only summation order differs). PER is
/// compared rather than PSR, which rounds to 1 at high SNR.
#[test]
fn annex_e_error_model_matches_the_reference_vectors() {
    let dir = refdata("radio");
    let (h, rows) = table(&dir.join("oqpsk_ber_psr.csv"));
    assert_eq!(rows.len(), 41);
    for r in &rows {
        let v = |c: &str| r[col(&h, c)].parse::<f64>().unwrap();
        let sinr = v("snr_linear");
        let b = phy::ber(sinr);
        assert!(
            rel(b, v("ber")) <= 1e-9,
            "BER at {} dB: {b} vs {}",
            v("snr_db"),
            v("ber")
        );
        for (bits, name) in [
            (160.0, "per_20B_psdu_160b"),
            (176.0, "per_20B_ns3_176b"),
            (1016.0, "per_127B_psdu_1016b"),
            (1032.0, "per_127B_ns3_1032b"),
        ] {
            let p = phy::per(b, bits);
            assert!(
                rel(p, v(name)) <= 1e-9,
                "{name} at {} dB: {p} vs {}",
                v("snr_db"),
                v(name)
            );
        }
    }
}

/// Path loss from 1 to 2000 m between 8 m poles: absolute error ≤ 1e-9 dB.
/// The exact two-ray model is compared as a linear gain (relative 1e-9)
/// and skipped where it changes by more than 10 dB per metre (its nulls,
/// where a metre's rounding of the reference's distance dominates).
#[test]
fn path_loss_models_match_the_reference_vectors() {
    let dir = refdata("radio");
    let (h, rows) = table(&dir.join("pathloss_vs_distance.csv"));
    let friis = Friis { f_hz: F_2G4_HZ };
    let ns3_default = LogDistance {
        exponent: 3.0,
        d0_m: 1.0,
        pl0_db: 46.6777,
    };
    let rebased = LogDistance::friis_referenced(3.0, F_2G4_HZ);
    let two_ray = TwoRayGround { f_hz: F_2G4_HZ };
    let exact = TwoRayExact { f_hz: F_2G4_HZ };
    let mut checked_exact = 0;
    for (i, r) in rows.iter().enumerate() {
        let v = |c: &str| r[col(&h, c)].parse::<f64>().unwrap();
        let d = v("distance_m");
        let (a, b) = (Position::new(0.0, 0.0, 8.0), Position::new(d, 0.0, 8.0));
        for (m, name) in [
            (&friis as &dyn PathLoss, "friis_2g4_db"),
            (&ns3_default, "logdist_ns3_default_db"),
            (&rebased, "logdist_n3_pl0_friis2g4_db"),
            (&two_ray, "tworay_ns3_h8_h8_db"),
        ] {
            let got = m.loss_db(&a, &b);
            assert!(
                (got - v(name)).abs() <= 1e-9,
                "{name} at {d} m: {got} vs {}",
                v(name)
            );
        }
        let steep = [i.saturating_sub(1), (i + 1).min(rows.len() - 1)]
            .iter()
            .any(|&j| {
                let o: f64 = rows[j][col(&h, "tworay_exact_gamma_m1_h8_h8_db")]
                    .parse()
                    .unwrap();
                (o - v("tworay_exact_gamma_m1_h8_h8_db")).abs() > 10.0
            });
        if !steep {
            let got = 10f64.powf(-exact.loss_db(&a, &b) / 10.0);
            let want = 10f64.powf(-v("tworay_exact_gamma_m1_h8_h8_db") / 10.0);
            assert!(rel(got, want) <= 1e-9, "exact two-ray at {d} m");
            checked_exact += 1;
        }
    }
    assert!(checked_exact > 1900, "{checked_exact}");
}

/// The exponent that puts the 50 % point of 20-octet frames at 750 m, for
/// the nRF52840 at σ = 0, 4 and 8 dB (tolerance 1e-6), and the calibrated
/// mean PDR against distance (absolute 1e-6 at σ = 0, 1e-4 above: the
/// reference's quadrature).
#[test]
fn the_750_m_calibration_matches_the_reference() {
    let dir = refdata("radio");
    let (h, rows) = table(&dir.join("calibrated_750m_params.csv"));
    for r in rows.iter().filter(|r| r[0] == "nrf52840_8dBm") {
        let sigma: f64 = r[col(&h, "shadowing_sigma_db")].parse().unwrap();
        let want: f64 = r[col(&h, "exponent_n")].parse().unwrap();
        let n = phy::calibrate_exponent(RadioProfile::NRF52840, sigma, 750.0, 0.5, 160.0);
        assert!((n - want).abs() < 1e-6, "σ {sigma}: n {n} vs {want}");
        let nf: f64 = r[col(&h, "noise_floor_dbm")].parse().unwrap();
        assert!((phy::noise_floor_dbm(-100.0) - nf).abs() < 1e-9);
    }
    let (h, rows) = table(&dir.join("calibrated_750m.csv"));
    let mut exponents = std::collections::BTreeMap::new();
    let mut n_checked = 0;
    for r in rows.iter().filter(|r| r[0] == "nrf52840_8dBm") {
        let v = |c: &str| r[col(&h, c)].parse::<f64>().unwrap();
        let sigma = v("shadowing_sigma_db");
        let n = *exponents.entry(sigma.to_bits()).or_insert_with(|| {
            phy::calibrate_exponent(RadioProfile::NRF52840, sigma, 750.0, 0.5, 160.0)
        });
        let pl = LogDistance::friis_referenced(n, F_2G4_HZ).at(v("distance_m"));
        assert!((pl - v("path_loss_db")).abs() < 1e-4);
        let pdr = phy::mean_psr_shadowed(RadioProfile::NRF52840.snr_db(pl), sigma, 160.0);
        let tol = if sigma == 0.0 { 1e-6 } else { 1e-4 };
        assert!(
            (pdr - v("mean_pdr_20B_psdu")).abs() <= tol,
            "σ {sigma}, {} m: {pdr}",
            v("distance_m")
        );
        n_checked += 1;
    }
    assert_eq!(n_checked, 600);
}

/// Monte Carlo at 750 m under the default calibration: 20 000 links, each
/// its own shadowing draw (σ 4 dB, the link's own stream), × 10 frames of
/// 20 octets. PDR = 0.50 ± 0.02; the standard error is about 0.003, so the
/// band is over 6 standard errors.
#[test]
fn monte_carlo_pdr_at_750_m_is_one_half() {
    let n = phy::calibrate_exponent(RadioProfile::NRF52840, 4.0, 750.0, 0.5, 160.0);
    let pl = LogDistance::friis_referenced(n, F_2G4_HZ).at(750.0);
    let snr = RadioProfile::NRF52840.snr_db(pl);
    let shadow = Shadowing { sigma_db: 4.0 }.field(11);
    let mut rng = gridtwin::kernel::rng::stream(11, "test", 0, "frames");
    let (links, frames) = (20_000u32, 10);
    let mut ok = 0u32;
    for l in 0..links {
        let x = shadow.link_db(2 * l, 2 * l + 1);
        let p = phy::psr(phy::lin(snr + x), 160.0);
        for _ in 0..frames {
            if rng.random::<f64>() < p {
                ok += 1;
            }
        }
    }
    let pdr = f64::from(ok) / f64::from(links * frames);
    assert!((pdr - 0.5).abs() <= 0.02, "PDR {pdr}");
}

/// Two hidden terminals start 20-octet frames at the same instant towards
/// one receiver, both well above noise. At equal power neither preamble
/// captures the receiver: both frames fail. At 10 dB apart the stronger one
/// locks and survives the weaker one's interference (PSR > 0.99); the
/// weaker one is lost.
#[test]
fn hidden_terminal_collisions_capture_only_the_stronger_frame() {
    let noise = phy::lin(phy::noise_floor_dbm(-100.0));
    let bits = 160.0;
    let receive = |s: f64, i: f64| -> f64 {
        if !phy::preamble_locks(s, noise, i) {
            return 0.0;
        }
        phy::psr_segments(&[Segment {
            bits,
            sinr: s / (noise + i),
        }])
    };
    let (a, b) = (phy::lin(-70.0), phy::lin(-70.0));
    assert_eq!(receive(a, b), 0.0);
    assert_eq!(receive(b, a), 0.0);
    let (strong, weak) = (phy::lin(-60.0), phy::lin(-70.0));
    assert!(receive(strong, weak) > 0.99);
    assert_eq!(receive(weak, strong), 0.0);
}

#[test]
fn radio_curve_writes_the_calibration_curves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("radio");
    let o = gridtwin(&["radio", "curve", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "pdr_vs_distance.csv",
        "pathloss_vs_distance.csv",
        "per_vs_snr.csv",
        "pdr_vs_distance.svg",
        "pathloss_vs_distance.svg",
        "per_vs_snr.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let (h, rows) = table(&out.join("pdr_vs_distance.csv"));
    assert_eq!(h, vec!["distance_m", "pdr"]);
    let at = |d: &str| {
        rows.iter().find(|r| r[0] == d).unwrap()[1]
            .parse::<f64>()
            .unwrap()
    };
    assert!((at("750") - 0.5).abs() < 1e-6, "{}", at("750"));
    assert!(at("100") > 0.99 && at("2000") < 0.01);
    let svg = std::fs::read_to_string(out.join("pdr_vs_distance.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("distance [m]"));
    let bad = gridtwin(&[
        "radio",
        "curve",
        "--model",
        "nope",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
}
