//! The IEEE 802.15.4 2.4 GHz O-QPSK PHY: timing, the Annex E error model,
//! noise, receptions under changing interference, and the 750 m
//! calibration.
//!
//! # Error model
//! Bit error rate from IEEE Std 802.15.4-2006 Annex E (E.4.1.8), as ns-3
//! and INET implement it, for a linear SINR γ:
//!
//! ```text
//!   BER(γ) = (8/15)·(1/16)·Σ_{k=2}^{16} (−1)^k·C(16,k)·exp(20·γ·(1/k − 1))
//! ```
//!
//! clamped to [0, 1], and `PER = 1 − (1 − BER)^n`, computed as
//! `−expm1(n·ln1p(−BER))` so small PERs keep their digits.
//!
//! **Bits counted:** the PSDU only (`n = 8·octets`), as the standard's
//! sensitivity definition and the 750 m calibration do (ns-3 also counts
//! SFD and PHR; [`PSDU_ONLY`] documents the choice).
//!
//! **Changing SINR:** a reception is cut into segments at every start and
//! end of an overlapping transmission; each segment has a constant SINR,
//! and the frame survives with probability `Π (1 − BER(γᵢ))^{nᵢ}`, `nᵢ`
//! being the PSDU bits sent during segment *i* (ns-3's chunked
//! `CheckInterference`, computed exactly instead of sampled per chunk).
//!
//! **Sync:** a receiver locks on the first frame whose preamble it can
//! synchronise to and treats later frames as interference (half duplex,
//! one receive chain). At the end of the preamble the frame is dropped
//! unless its SINR exceeds −5 dB (ns-3 `EndPreamble`) *and* its power is at
//! least [`CAPTURE_SIR_DB`] above the interference overlapping its
//! preamble: two DSSS preambles of comparable strength defeat the
//! correlator (the capture effect measured on CC2420 radios by Son,
//! Krishnamachari and Heidemann, SenSys 2006, needs a few dB of margin).
//! Noise alone does not count against capture, so the calibration near
//! sensitivity is unaffected.
//!
//! # Noise
//! ns-3's convention: the noise floor is `N = S − 0.4066 dB` for a
//! configured sensitivity `S` (kT·5 MHz with k = 1.3803e-23 J/K, T = 290 K
//! gives −106.9866 dBm at noise factor 1, where the sensitivity is
//! −106.58 dBm).

use crate::kernel::SimDuration;

/// Symbol duration [µs] (62.5 ksymbol/s).
pub const SYMBOL_US: u64 = 16;
/// Bit rate [b/s].
pub const BIT_RATE: f64 = 250_000.0;
/// Synchronisation header: preamble symbols.
pub const PREAMBLE_SYMBOLS: u64 = 8;
/// Start-of-frame delimiter symbols.
pub const SFD_SYMBOLS: u64 = 2;
/// PHY header (frame length) symbols.
pub const PHR_SYMBOLS: u64 = 2;
/// aMaxPhyPacketSize [octets].
pub const MAX_PSDU: usize = 127;
/// aTurnaroundTime [symbols].
pub const TURNAROUND_SYMBOLS: u64 = 12;
/// CCA detection time [symbols].
pub const CCA_SYMBOLS: u64 = 8;
/// aUnitBackoffPeriod [symbols].
pub const UNIT_BACKOFF_SYMBOLS: u64 = 20;
/// Preamble lock threshold: SINR at the end of the preamble [dB].
pub const PREAMBLE_SINR_DB: f64 = -5.0;
/// Capture: signal over overlapping interference during the preamble [dB].
pub const CAPTURE_SIR_DB: f64 = 4.0;
/// Whether the error model counts the PSDU bits only.
pub const PSDU_ONLY: bool = true;

/// Boltzmann's constant as ns-3 uses it [J/K].
pub const K_BOLTZMANN_NS3: f64 = 1.3803e-23;
/// Noise temperature [K].
pub const T_NOISE_K: f64 = 290.0;
/// Receiver noise bandwidth (five 1 MHz bins) [Hz].
pub const NOISE_BANDWIDTH_HZ: f64 = 5e6;
/// ns-3's "perfect radio" sensitivity, at noise factor 1 [dBm].
pub const SENSITIVITY_F1_DBM: f64 = -106.58;

/// `10·log10(x)`.
pub fn db(x: f64) -> f64 {
    10.0 * x.log10()
}

/// `10^(x/10)`.
pub fn lin(x_db: f64) -> f64 {
    10f64.powf(x_db / 10.0)
}

/// Thermal noise at noise factor 1 over the 5 MHz bandwidth [dBm].
pub fn noise_floor_f1_dbm() -> f64 {
    db(K_BOLTZMANN_NS3 * T_NOISE_K * NOISE_BANDWIDTH_HZ * 1e3)
}

/// The noise floor of a receiver of sensitivity `s_dbm` [dBm].
pub fn noise_floor_dbm(s_dbm: f64) -> f64 {
    noise_floor_f1_dbm() + (s_dbm - SENSITIVITY_F1_DBM)
}

/// Airtime of a frame with a PSDU of `octets`: SHR, PHR and PSDU.
pub fn frame_duration(octets: usize) -> SimDuration {
    let symbols = PREAMBLE_SYMBOLS + SFD_SYMBOLS + PHR_SYMBOLS + 2 * octets as u64;
    SimDuration::from_nanos(symbols * SYMBOL_US * 1000)
}

/// Preamble duration.
pub fn preamble_duration() -> SimDuration {
    SimDuration::from_nanos(PREAMBLE_SYMBOLS * SYMBOL_US * 1000)
}

/// Binomial coefficients C(16, k) for k = 0..=16.
const C16: [f64; 17] = [
    1.0, 16.0, 120.0, 560.0, 1820.0, 4368.0, 8008.0, 11440.0, 12870.0, 11440.0, 8008.0, 4368.0,
    1820.0, 560.0, 120.0, 16.0, 1.0,
];

/// Annex E bit error rate at linear SINR `sinr`.
pub fn ber(sinr: f64) -> f64 {
    let mut sum = 0.0;
    for (k, c) in C16.iter().enumerate().skip(2) {
        let kf = k as f64;
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        sum += sign * c * (20.0 * sinr * (1.0 / kf - 1.0)).exp();
    }
    (8.0 / 15.0 / 16.0 * sum).clamp(0.0, 1.0)
}

/// Packet error rate of `bits` bits at bit error rate `ber`.
pub fn per(ber: f64, bits: f64) -> f64 {
    -(bits * (-ber).ln_1p()).exp_m1()
}

/// Packet success rate of `bits` bits at linear SINR `sinr`.
pub fn psr(sinr: f64, bits: f64) -> f64 {
    if sinr >= CERTAIN_SINR && bits <= CERTAIN_BITS {
        return 1.0;
    }
    1.0 - per(ber(sinr), bits)
}

/// Longest run of bits [`CERTAIN_SINR`] holds for: eight times the
/// largest PSDU, with room to spare.
pub const CERTAIN_BITS: f64 = 8192.0;

/// A linear SINR at or above [`certain_sinr`]`(`[`CERTAIN_BITS`]`)`
/// (5.482, about 7.4 dB): from it, [`psr`] of up to [`CERTAIN_BITS`] bits
/// is exactly 1.0 (a constant, to spare the logarithm per call).
pub const CERTAIN_SINR: f64 = 5.49;

/// The linear SINR from which [`psr`] of `bits` bits is exactly 1.0 in
/// double precision, so that its 15 exponentials (and the PER's) can be
/// skipped with the result unchanged, bit for bit.
///
/// Every term of [`ber`]'s sum is at most `C(16,k)·e^(−10·sinr)` (as
/// `1/k − 1 ≤ −1/2` for `k ≥ 2`), so `BER ≤ (8/15/16)·65519·e^(−10·sinr)
/// < 2184·e^(−10·sinr)`, and the PER is at most `bits·BER` (to a relative
/// rounding error far below the factor 2 of margin kept here). `1 − x`
/// rounds to 1.0 for `0 ≤ x ≤ 2^−54`; this asks for `x ≤ 2^−55`.
pub fn certain_sinr(bits: f64) -> f64 {
    ((2184.0 * bits.max(1.0)).ln() + 55.0 * std::f64::consts::LN_2) / 10.0
}

/// The mean PSR over log-normal shadowing of σ `sigma_db` around a mean
/// SNR of `snr_db`: the trapezoid rule over ±6σ with 1201 points.
pub fn mean_psr_shadowed(snr_db: f64, sigma_db: f64, bits: f64) -> f64 {
    if sigma_db == 0.0 {
        return psr(lin(snr_db), bits);
    }
    let n = 1201;
    let h = 12.0 * sigma_db / (n - 1) as f64;
    let mut acc = 0.0;
    let mut wsum = 0.0;
    for i in 0..n {
        let x = -6.0 * sigma_db + i as f64 * h;
        let w = if i == 0 || i == n - 1 { 0.5 } else { 1.0 };
        let pdf = (-0.5 * (x / sigma_db).powi(2)).exp();
        acc += w * pdf * psr(lin(snr_db + x), bits);
        wsum += w * pdf;
    }
    acc / wsum
}

/// A radio profile: what a node transmits and can receive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RadioProfile {
    /// Transmit power [dBm].
    pub tx_dbm: f64,
    /// Sensitivity (1 % PER for a 20-octet PSDU) [dBm].
    pub sensitivity_dbm: f64,
    /// Transmit plus receive antenna gain [dBi].
    pub antenna_gains_dbi: f64,
}

impl RadioProfile {
    /// The nRF52840 at +8 dBm, −100 dBm sensitivity, 0 dBi antennas.
    pub const NRF52840: RadioProfile = RadioProfile {
        tx_dbm: 8.0,
        sensitivity_dbm: -100.0,
        antenna_gains_dbi: 0.0,
    };

    /// Mean SNR at path loss `pl_db` [dB].
    pub fn snr_db(&self, pl_db: f64) -> f64 {
        self.tx_dbm + self.antenna_gains_dbi - pl_db - noise_floor_dbm(self.sensitivity_dbm)
    }
}

/// The log-distance exponent (PL0 = Friis at 1 m, 2.4 GHz) that gives a
/// mean PDR of `target_pdr` at `distance_m` over shadowing of σ `sigma_db`,
/// for frames of `bits` PSDU bits: bisection to 1e-12.
pub fn calibrate_exponent(
    profile: RadioProfile,
    sigma_db: f64,
    distance_m: f64,
    target_pdr: f64,
    bits: f64,
) -> f64 {
    let pdr = |n: f64| {
        let pl = super::propagation::LogDistance::friis_referenced(n, super::propagation::F_2G4_HZ)
            .at(distance_m);
        mean_psr_shadowed(profile.snr_db(pl), sigma_db, bits)
    };
    // PDR falls as the exponent grows.
    let (mut lo, mut hi) = (1.0f64, 6.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if pdr(mid) > target_pdr {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// One segment of a reception: the PSDU bits sent while the SINR held.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// Bits of the PSDU in the segment.
    pub bits: f64,
    /// SINR during the segment (linear).
    pub sinr: f64,
}

/// The success probability of a frame over its segments.
pub fn psr_segments(segments: &[Segment]) -> f64 {
    segments.iter().map(|s| psr(s.sinr, s.bits)).product()
}

/// Whether a receiver can lock on a frame at the end of its preamble:
/// SINR above [`PREAMBLE_SINR_DB`], and power [`CAPTURE_SIR_DB`] above the
/// interference overlapping the preamble (signal, noise and interference
/// in mW).
pub fn preamble_locks(signal_mw: f64, noise_mw: f64, interference_mw: f64) -> bool {
    // The thresholds as power ratios, so that no logarithm is taken per
    // reception (`x > lin(T)` is `db(x) > T`).
    static RATIOS: std::sync::LazyLock<(f64, f64)> =
        std::sync::LazyLock::new(|| (lin(PREAMBLE_SINR_DB), lin(CAPTURE_SIR_DB)));
    let (sinr_min, sir_min) = *RATIOS;
    let sinr_ok = signal_mw / (noise_mw + interference_mw) > sinr_min;
    let capture_ok = interference_mw == 0.0 || signal_mw / interference_mw >= sir_min;
    sinr_ok && capture_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Above [`certain_sinr`] the full formula gives exactly 1.0 too, for
    /// every frame length (an ACK to the largest PSDU), on a fine grid of
    /// SINRs up to 40 dB; just below it, it still may not.
    #[test]
    fn the_certain_sinr_shortcut_changes_no_result() {
        assert!(CERTAIN_SINR >= certain_sinr(CERTAIN_BITS));
        assert!(CERTAIN_SINR < certain_sinr(CERTAIN_BITS) * 1.01);
        for bits in [40.0, 160.0, 1016.0, 1064.0, 4096.0] {
            let s0 = certain_sinr(bits);
            let mut s = s0;
            while s < lin(40.0) {
                assert_eq!(1.0 - per(ber(s), bits), 1.0, "{bits} bits at {s}");
                s *= 1.0005;
            }
            // The margin is a small factor, not decades: at a fifth of
            // the threshold a frame may still fail.
            assert!(1.0 - per(ber(s0 / 5.0), bits) < 1.0, "{bits}");
        }
    }

    #[test]
    fn noise_floor_matches_ns3() {
        // −106.98658509780566 dBm (scalar_anchors.csv), tolerance 1e-9 dB.
        assert!((noise_floor_f1_dbm() + 106.986_585_097_805_66).abs() < 1e-9);
        assert!((noise_floor_dbm(-100.0) + 100.406_585_097_805_66).abs() < 1e-9);
    }

    #[test]
    fn airtime_of_a_20_octet_frame() {
        // (8 + 2 + 2 + 40) symbols × 16 µs = 832 µs.
        assert_eq!(frame_duration(20).as_nanos(), 832_000);
        assert_eq!(frame_duration(MAX_PSDU).as_nanos(), 4_256_000);
    }

    #[test]
    fn a_frame_under_changing_interference_survives_with_the_segment_product() {
        // Half the bits at 5 dB, half at −1 dB: the product of the halves.
        let (a, b) = (lin(5.0), lin(-1.0));
        let p = psr_segments(&[
            Segment {
                bits: 80.0,
                sinr: a,
            },
            Segment {
                bits: 80.0,
                sinr: b,
            },
        ]);
        assert!((p - psr(a, 80.0) * psr(b, 80.0)).abs() < 1e-15);
        assert!(p < psr(a, 160.0) && p > psr(b, 160.0));
    }

    #[test]
    fn capture_needs_a_margin_over_overlapping_preambles_but_not_over_noise() {
        let noise = lin(-100.4);
        // Equal powers: neither captures.
        assert!(!preamble_locks(lin(-70.0), noise, lin(-70.0)));
        // 10 dB stronger: captures; the weaker does not.
        assert!(preamble_locks(lin(-60.0), noise, lin(-70.0)));
        assert!(!preamble_locks(lin(-70.0), noise, lin(-60.0)));
        // Near sensitivity with no interferer, −3 dB SNR still locks.
        assert!(preamble_locks(lin(-103.4), noise, 0.0));
        assert!(!preamble_locks(lin(-106.0), noise, 0.0));
    }
}
