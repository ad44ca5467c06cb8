//! Measurement: from one cycle of ADC samples, or from phasors, to the
//! quantities every downstream element uses.
//!
//! # Waveform input
//! The board's ADC delivers [`SAMPLES_PER_CYCLE`] samples per nominal 50 Hz
//! cycle (3.2 kHz) of each phase voltage and current. Per cycle and phase:
//!
//! - true RMS: `√(Σx²/N)`;
//! - active power `P = Σ v·i / N` (all harmonics included);
//! - harmonic phasors by DFT bins: `X_h = (√2/N)·Σ x[n]·e^{−j2πhn/N}` (RMS
//!   phasors), for h = 1 … [`MAX_HARMONIC`], from one twiddle table;
//! - fundamental reactive power `Q₁ = Im(V₁·I₁*)` (IEEE 1459), apparent power
//!   `S = V_rms·I_rms`, power factor `P/S`;
//! - THD as IEC 61000-4-7 defines it, `√(Σ_{h=2}^{H} |X_h|²) / |X₁|`, with
//!   H = [`MAX_HARMONIC`] (EN 50160 lists harmonics to the 25th; 64
//!   samples per cycle resolve up to the 31st);
//! - frequency from the advance of the fundamental's phase between
//!   consecutive cycles: `f = f₀·(1 + Δφ/2π)`, averaged over the three
//!   phase voltages.
//!
//! # Phasor input
//! The simulator can instead hand over the fundamental phasors and,
//! optionally, harmonic magnitudes. RMS values are then `√(|X₁|² + Σ|X_h|²)`
//! and active power is the fundamental's. Both forms give a [`Measurement`],
//! so everything downstream is the same.

use serde::{Deserialize, Serialize};

use crate::math::{self, Complex32, TAU};

/// Samples per nominal cycle.
pub const SAMPLES_PER_CYCLE: usize = 64;

const MASK: usize = SAMPLES_PER_CYCLE - 1;
const _: () = assert!(SAMPLES_PER_CYCLE.is_power_of_two());

/// Nominal frequency [Hz].
pub const NOMINAL_HZ: f32 = 50.0;

/// Highest harmonic order analysed.
pub const MAX_HARMONIC: usize = 25;

/// One cycle of samples: voltages [V] and currents [A] of phases a, b, c.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waveform {
    /// Phase-to-neutral voltage samples [V].
    #[serde(with = "channels")]
    pub v: [[f32; SAMPLES_PER_CYCLE]; 3],
    /// Line current samples [A], positive flowing away from the source side.
    #[serde(with = "channels")]
    pub i: [[f32; SAMPLES_PER_CYCLE]; 3],
}

/// Serde for three channels of samples (serde itself stops at 32-element
/// arrays).
mod channels {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_big_array::Array;

    use super::SAMPLES_PER_CYCLE;

    pub(super) fn serialize<S: Serializer>(
        x: &[[f32; SAMPLES_PER_CYCLE]; 3],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        x.map(Array).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[[f32; SAMPLES_PER_CYCLE]; 3], D::Error> {
        let a = <[Array<f32, SAMPLES_PER_CYCLE>; 3]>::deserialize(d)?;
        Ok(a.map(|c| c.0))
    }
}

/// Harmonic magnitudes of orders 2 … [`MAX_HARMONIC`] [RMS, V or A].
pub type Harmonics = [f32; MAX_HARMONIC - 1];

/// Fundamental phasors and optional harmonics: the cheap input form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhasorFrame {
    /// Fundamental phase-to-neutral voltages (RMS phasors) [V].
    pub v: [Complex32; 3],
    /// Fundamental line currents (RMS phasors) [A].
    pub i: [Complex32; 3],
    /// Frequency [Hz].
    pub frequency_hz: f32,
    /// Voltage harmonic magnitudes per phase, if modelled [V].
    pub v_harmonics: Option<[Harmonics; 3]>,
    /// Current harmonic magnitudes per phase, if modelled [A].
    pub i_harmonics: Option<[Harmonics; 3]>,
}

impl PhasorFrame {
    /// A balanced positive-sequence set at 50 Hz without harmonics: phase a
    /// at `v_ln` [V] and 0°, the currents `i_a` [A] lagging their voltages
    /// by `lag_deg` [deg].
    pub fn balanced(v_ln: f32, i_a: f32, lag_deg: f32) -> PhasorFrame {
        let shifts = [0.0f32, -120.0, 120.0];
        PhasorFrame {
            v: shifts.map(|d| math::polar(v_ln, d.to_radians())),
            i: shifts.map(|d| math::polar(i_a, (d - lag_deg).to_radians())),
            frequency_hz: NOMINAL_HZ,
            v_harmonics: None,
            i_harmonics: None,
        }
    }
}

/// What one phase measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseMeasurement {
    /// True RMS voltage [V].
    pub v_rms: f32,
    /// True RMS current [A].
    pub i_rms: f32,
    /// Fundamental voltage (RMS phasor) [V].
    pub v1: Complex32,
    /// Fundamental current (RMS phasor) [A].
    pub i1: Complex32,
    /// Active power [W].
    pub p_w: f32,
    /// Fundamental reactive power [var].
    pub q_var: f32,
    /// Apparent power [VA].
    pub s_va: f32,
    /// Power factor P/S (0 when S is 0).
    pub pf: f32,
    /// Voltage THD [%].
    pub thd_v_pct: f32,
    /// Current THD [%] (0 with no fundamental current).
    pub thd_i_pct: f32,
}

/// What one measurement frame gave.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measurement {
    /// Per phase a, b, c.
    pub phases: [PhaseMeasurement; 3],
    /// Frequency [Hz].
    pub frequency_hz: f32,
    /// Voltage unbalance, negative over positive sequence [%].
    pub v_unbalance_pct: f32,
    /// Residual current 3·I₀ = Iₐ + I_b + I_c (fundamental phasor) [A].
    pub i_residual: Complex32,
}

/// The DFT analyser: a twiddle table and the previous cycle's phases.
#[derive(Clone, Debug)]
pub struct Analyzer {
    cos: [f32; SAMPLES_PER_CYCLE],
    sin: [f32; SAMPLES_PER_CYCLE],
    last_phase: Option<[f32; 3]>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

/// The RMS phasors of harmonics 1 … [`MAX_HARMONIC`] of one channel.
fn spectrum(a: &Analyzer, x: &[f32; SAMPLES_PER_CYCLE]) -> [Complex32; MAX_HARMONIC] {
    let mut out = [Complex32::new(0.0, 0.0); MAX_HARMONIC];
    let scale = core::f32::consts::SQRT_2 / SAMPLES_PER_CYCLE as f32;
    for (h0, slot) in out.iter_mut().enumerate() {
        let h = h0 + 1;
        let (mut re, mut im) = (0.0f32, 0.0f32);
        // The twiddle index h·n mod N, kept incrementally; N is a power of
        // two, so the mask keeps it inside the tables.
        let mut k = 0usize;
        for &xn in x {
            re += xn * a.cos.get(k).copied().unwrap_or(0.0);
            im -= xn * a.sin.get(k).copied().unwrap_or(0.0);
            k = (k + h) & MASK;
        }
        *slot = Complex32::new(re * scale, im * scale);
    }
    out
}

fn rms(x: &[f32; SAMPLES_PER_CYCLE]) -> f32 {
    let s: f32 = x.iter().map(|v| v * v).sum();
    math::sqrt(s / SAMPLES_PER_CYCLE as f32)
}

/// THD [%] from a fundamental magnitude and harmonic magnitudes.
fn thd_pct(fundamental: f32, harmonics: impl Iterator<Item = f32>) -> f32 {
    if fundamental <= 0.0 {
        return 0.0;
    }
    let s: f32 = harmonics.map(|h| h * h).sum();
    100.0 * math::sqrt(s) / fundamental
}

impl Analyzer {
    /// A fresh analyser (no previous cycle: the first frequency is nominal).
    pub fn new() -> Analyzer {
        let mut cos = [0.0; SAMPLES_PER_CYCLE];
        let mut sin = [0.0; SAMPLES_PER_CYCLE];
        for (n, (c, s)) in cos.iter_mut().zip(sin.iter_mut()).enumerate() {
            let th = TAU * n as f32 / SAMPLES_PER_CYCLE as f32;
            *c = libm::cosf(th);
            *s = libm::sinf(th);
        }
        Analyzer {
            cos,
            sin,
            last_phase: None,
        }
    }

    /// Forgets the previous cycle (e.g. after a gap in the samples).
    pub fn reset(&mut self) {
        self.last_phase = None;
    }

    /// Analyses one cycle of samples.
    pub fn waveform(&mut self, w: &Waveform) -> Measurement {
        let mut m = Measurement::default();
        let mut phase_now = [0.0f32; 3];
        for (((pm, vs), is), ph) in m
            .phases
            .iter_mut()
            .zip(&w.v)
            .zip(&w.i)
            .zip(phase_now.iter_mut())
        {
            let (sv, si) = (spectrum(self, vs), spectrum(self, is));
            let p: f32 =
                vs.iter().zip(is).map(|(v, i)| v * i).sum::<f32>() / SAMPLES_PER_CYCLE as f32;
            let (v_rms, i_rms) = (rms(vs), rms(is));
            *pm = phase(
                v_rms,
                i_rms,
                sv[0],
                si[0],
                p,
                thd_pct(math::mag(sv[0]), sv.iter().skip(1).map(|z| math::mag(*z))),
                thd_pct(math::mag(si[0]), si.iter().skip(1).map(|z| math::mag(*z))),
            );
            *ph = math::arg(sv[0]);
        }
        m.frequency_hz = match self.last_phase {
            Some(last) => {
                let d: f32 = phase_now
                    .iter()
                    .zip(&last)
                    .map(|(now, was)| math::wrap(now - was))
                    .sum();
                NOMINAL_HZ * (1.0 + d / 3.0 / TAU)
            }
            None => NOMINAL_HZ,
        };
        self.last_phase = Some(phase_now);
        finish(&mut m);
        m
    }

    /// A measurement from phasors.
    pub fn phasors(&mut self, f: &PhasorFrame) -> Measurement {
        let mut m = Measurement::default();
        let zero: Harmonics = [0.0; MAX_HARMONIC - 1];
        for (k, ((pm, &v), &i)) in m.phases.iter_mut().zip(&f.v).zip(&f.i).enumerate() {
            let pick = |h: &Option<[Harmonics; 3]>| {
                h.as_ref().and_then(|h| h.get(k)).copied().unwrap_or(zero)
            };
            let (vh, ih) = (pick(&f.v_harmonics), pick(&f.i_harmonics));
            let total = |fund: Complex32, h: &Harmonics| {
                let s: f32 = h.iter().map(|x| x * x).sum();
                math::sqrt(fund.norm_sqr() + s)
            };
            *pm = phase(
                total(v, &vh),
                total(i, &ih),
                v,
                i,
                (v * i.conj()).re,
                thd_pct(math::mag(v), vh.iter().copied()),
                thd_pct(math::mag(i), ih.iter().copied()),
            );
        }
        m.frequency_hz = f.frequency_hz;
        self.last_phase = None;
        finish(&mut m);
        m
    }
}

fn phase(
    v_rms: f32,
    i_rms: f32,
    v1: Complex32,
    i1: Complex32,
    p_w: f32,
    thd_v_pct: f32,
    thd_i_pct: f32,
) -> PhaseMeasurement {
    let s_va = v_rms * i_rms;
    PhaseMeasurement {
        v_rms,
        i_rms,
        v1,
        i1,
        p_w,
        q_var: (v1 * i1.conj()).im,
        s_va,
        pf: if s_va > 0.0 { p_w / s_va } else { 0.0 },
        thd_v_pct,
        thd_i_pct,
    }
}

/// Unbalance and residual current from the per-phase results.
fn finish(m: &mut Measurement) {
    let v = [m.phases[0].v1, m.phases[1].v1, m.phases[2].v1];
    let seq = math::sequence(&v);
    let pos = math::mag(seq[1]);
    m.v_unbalance_pct = if pos > 0.0 {
        100.0 * math::mag(seq[2]) / pos
    } else {
        0.0
    };
    m.i_residual = m.phases[0].i1 + m.phases[1].i1 + m.phases[2].i1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Samples of Σ √2·A_h·cos(2π·h·f/f₀·n/N + φ_h) for (h, A_h, φ_h [deg]).
    fn wave(
        parts: &[(usize, f32, f32)],
        freq: f32,
        start_cycle: usize,
    ) -> [f32; SAMPLES_PER_CYCLE] {
        let mut x = [0.0f32; SAMPLES_PER_CYCLE];
        for (n, xn) in x.iter_mut().enumerate() {
            let t = (start_cycle * SAMPLES_PER_CYCLE + n) as f64
                / (NOMINAL_HZ as f64 * SAMPLES_PER_CYCLE as f64);
            for &(h, a, ph) in parts {
                let w = 2.0 * std::f64::consts::PI * h as f64 * freq as f64 * t
                    + (ph as f64).to_radians();
                *xn += (std::f64::consts::SQRT_2 * a as f64 * w.cos()) as f32;
            }
        }
        x
    }

    fn three(
        parts: impl Fn(f32) -> Vec<(usize, f32, f32)>,
        freq: f32,
        cycle: usize,
    ) -> [[f32; SAMPLES_PER_CYCLE]; 3] {
        [0.0, -120.0, 120.0].map(|shift| wave(&parts(shift), freq, cycle))
    }

    #[test]
    fn a_pure_sine_has_its_rms_phasor_power_and_no_thd() {
        // 230 V at 0°, 10 A lagging 30°: P = 230·10·cos 30°, Q = 230·10·sin 30°.
        let w = Waveform {
            v: three(|s| vec![(1, 230.0, s)], 50.0, 0),
            i: three(|s| vec![(1, 10.0, s - 30.0)], 50.0, 0),
        };
        let m = Analyzer::new().waveform(&w);
        for p in &m.phases {
            // Tolerance 1e-4 relative: f32 sums over 64 samples.
            assert!((p.v_rms - 230.0).abs() < 0.02, "{}", p.v_rms);
            assert!((p.i_rms - 10.0).abs() < 1e-3);
            assert!((math::mag(p.v1) - 230.0).abs() < 0.02);
            assert!((p.p_w - 2300.0 * 0.866_025).abs() < 0.3, "{}", p.p_w);
            assert!((p.q_var - 2300.0 * 0.5).abs() < 0.3, "{}", p.q_var);
            assert!((p.pf - 0.866_025).abs() < 1e-4);
            assert!(p.thd_v_pct < 1e-3 && p.thd_i_pct < 1e-3);
        }
        assert!(m.v_unbalance_pct < 1e-3);
        assert!(math::mag(m.i_residual) < 1e-3);
        assert_eq!(m.frequency_hz, NOMINAL_HZ);
    }

    #[test]
    fn five_percent_fifth_harmonic_is_five_percent_thd() {
        let w = Waveform {
            v: three(|s| vec![(1, 230.0, s), (5, 11.5, 5.0 * s)], 50.0, 0),
            i: three(
                |s| vec![(1, 10.0, s), (3, 3.0, 0.0), (7, 1.0, 7.0 * s)],
                50.0,
                0,
            ),
        };
        let m = Analyzer::new().waveform(&w);
        for p in &m.phases {
            // Tolerance 0.01 percentage points.
            assert!((p.thd_v_pct - 5.0).abs() < 0.01, "{}", p.thd_v_pct);
            let want = 100.0 * (9.0f32 + 1.0).sqrt() / 10.0;
            assert!(
                (p.thd_i_pct - want).abs() < 0.01,
                "{} vs {want}",
                p.thd_i_pct
            );
            // True RMS includes the harmonic: √(230² + 11.5²).
            assert!((p.v_rms - (230.0f32 * 230.0 + 11.5 * 11.5).sqrt()).abs() < 0.02);
        }
        // Triplen currents add up in the residual... but the residual is the
        // fundamental's, which is balanced here.
        assert!(math::mag(m.i_residual) < 1e-3);
    }

    #[test]
    fn a_known_unbalanced_set_has_its_unbalance_factor() {
        // V = V1 + V2 with |V2|/|V1| = 3 %: a = V1 + V2, b = a²V1 + aV2, …
        let (v1, v2) = (230.0f32, 6.9f32);
        let parts = |shift: f32| vec![(1, v1, shift), (1, v2, -shift)];
        let w = Waveform {
            v: three(
                |s| {
                    let p = parts(s);
                    vec![p[0], p[1]]
                },
                50.0,
                0,
            ),
            i: [[0.0; SAMPLES_PER_CYCLE]; 3],
        };
        let m = Analyzer::new().waveform(&w);
        // Tolerance 0.001 percentage points.
        assert!(
            (m.v_unbalance_pct - 3.0).abs() < 1e-3,
            "{}",
            m.v_unbalance_pct
        );
        // No current: no power, no current THD, power factor 0.
        assert_eq!(m.phases[0].pf, 0.0);
        assert_eq!(m.phases[0].thd_i_pct, 0.0);
    }

    #[test]
    fn frequency_follows_the_phase_advance_between_cycles() {
        for f in [49.8f32, 50.0, 50.2] {
            let mut a = Analyzer::new();
            let mut last = 0.0;
            for cycle in 0..4 {
                let w = Waveform {
                    v: three(|s| vec![(1, 230.0, s)], f, cycle),
                    i: [[0.0; SAMPLES_PER_CYCLE]; 3],
                };
                last = a.waveform(&w).frequency_hz;
            }
            // Tolerance 5 mHz: leakage of a 0.4 % off-nominal window.
            assert!((last - f).abs() < 5e-3, "{f}: {last}");
        }
    }

    #[test]
    fn phasor_input_gives_the_same_measurement_as_its_waveform() {
        let v = [0.0f32, -120.0, 120.0].map(|d| math::polar(231.0, d.to_radians()));
        let i = [-25.0f32, -140.0, 100.0].map(|d| math::polar(12.0, d.to_radians()));
        let mut vh = [[0.0f32; MAX_HARMONIC - 1]; 3];
        for h in vh.iter_mut() {
            h[4 - 1] = 4.0; // 5th
        }
        let from_phasors = Analyzer::new().phasors(&PhasorFrame {
            v,
            i,
            frequency_hz: 50.0,
            v_harmonics: Some(vh),
            i_harmonics: None,
        });
        let w = Waveform {
            v: three(|s| vec![(1, 231.0, s), (5, 4.0, 0.0)], 50.0, 0),
            i: [(0, -25.0), (1, -140.0), (2, 100.0)].map(|(_, d)| wave(&[(1, 12.0, d)], 50.0, 0)),
        };
        let from_wave = Analyzer::new().waveform(&w);
        for k in 0..3 {
            let (a, b) = (from_phasors.phases[k], from_wave.phases[k]);
            // Tolerances: 1e-4 relative on amplitudes and powers.
            assert!((a.v_rms - b.v_rms).abs() < 0.03, "{} {}", a.v_rms, b.v_rms);
            assert!((a.p_w - b.p_w).abs() < 0.5, "{} {}", a.p_w, b.p_w);
            assert!((a.q_var - b.q_var).abs() < 0.5);
            assert!((a.thd_v_pct - b.thd_v_pct).abs() < 0.01);
            assert!(math::mag(a.v1 - b.v1) < 0.03);
        }
        assert!((from_phasors.v_unbalance_pct - from_wave.v_unbalance_pct).abs() < 1e-3);
    }
}
