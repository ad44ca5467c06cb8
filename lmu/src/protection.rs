//! Protection elements: overcurrent (definite and inverse time), earth
//! fault on residual current, under- and over-voltage, and direction.
//!
//! In gridtwin's protection philosophy the feeder-head breaker interrupts
//! fault current; an LMU's contactor is not a breaker. The LMU's elements
//! therefore *detect*: a **start** (pickup) says that fault current is
//! passing and in which direction, at once, within the cycle that carries
//! it; an **operate** says that an element's time has run out (the
//! time-graded decision a breaker-equipped LMU, or a report, acts on).
//!
//! # Inverse-time curves (IEC 60255-151)
//! For a current `M` times the pickup (M > 1):
//!
//! ```text
//!   t(M) = TMS · ( k / (M^α − 1) + c )
//! ```
//!
//! | curve | k | α | c |
//! |---|---|---|---|
//! | standard inverse | 0.14 | 0.02 | 0 |
//! | very inverse | 13.5 | 1 | 0 |
//! | extremely inverse | 80 | 2 | 0 |
//! | long-time inverse | 120 | 1 | 0 |
//!
//! Under a varying current the element integrates `dt / t(M)` and operates
//! when the integral reaches 1 (the standard's dependent-time behaviour);
//! below the drop-off (95 % of pickup) the integral resets at once.
//!
//! # Starts: superimposed quantities
//! A feeder carries standing current that is no fault: load, and the
//! export of PV, which on an unbalanced LV feeder (PV on one phase) also
//! drives hundreds of amperes of residual current. A start on the total
//! current would have to be set above all of it and lose sight of
//! resistive faults. The fault-passage starts therefore work on the
//! *superimposed* (incremental) quantities, the change from the last
//! healthy measurement (the memory):
//! - **phase:** `|ΔI_p| ≥ delta_phase_a` on phase *p*, where
//!   `ΔI_p = I_p − I_p,memory`;
//! - **earth:** `|Δ3I₀| ≥ delta_earth_a`;
//! - and, with or without memory, the total phase current at or above
//!   `fault_detect_a` (the start that still works when a breaker closes
//!   onto a fault, before any healthy memory exists).
//!
//! The memory is the last measurement that was energised (some phase at
//! or above 5 % of nominal, or carrying current) with no start. A start
//! holds it, for at most `delta_hold`; a change that lasts longer becomes
//! the memory. A new disturbance while a start holds it (a fault moments
//! after a load step) takes the measurement just before it as the
//! reference instead, so that the step does not pass for fault current. A dead measurement forgets it:
//! after re-energisation only the total-current start works until one
//! healthy measurement has been memorised. The superimposed starts are
//! blind to how much current stands (the same fault is seen at noon and at
//! night), but not to how much it changes between two measurements: their
//! pickups must stay above the largest change of load or PV between two
//! healthy measurements.
//!
//! # Direction
//! Direction is decided on the superimposed current too (the total current
//! when there is no memory), so that standing PV export cannot turn a
//! forward fault into a reverse one. Phase elements are polarised in
//! quadrature (phase a by `V_bc`, b by `V_ca`, c by `V_ab`), with relay
//! characteristic angle `rca_deg` (default 45°): current is *forward*
//! (away from the source side) when `Re(ΔI · (V_pol·e^{j·rca})*) > 0`. The
//! phase with the largest change decides. A close-in fault can collapse the
//! polarising voltage: when it is below 5 % of nominal, that element uses
//! the polarising voltage memorised from the last healthy measurement
//! (memory polarisation); each element decides this for itself. The earth
//! element is polarised by the superimposed zero-sequence voltage `−Δ3V₀`
//! (live minus memorised, so that the standing unbalance of one-phase PV
//! does not polarise it) with its own angle (default −45°).

use crate::dsp::Measurement;
use crate::math::{self, Complex32};
use crate::time::{Duration, Instant};

/// A time-current characteristic.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Curve {
    /// Operate after a fixed delay above pickup.
    DefiniteTime(Duration),
    /// IEC standard inverse (curve A).
    StandardInverse,
    /// IEC very inverse (curve B).
    VeryInverse,
    /// IEC extremely inverse (curve C).
    ExtremelyInverse,
    /// IEC long-time inverse.
    LongTimeInverse,
}

impl Curve {
    /// `(k, α, c)` of an inverse curve.
    fn constants(self) -> Option<(f32, f32, f32)> {
        match self {
            Curve::DefiniteTime(_) => None,
            Curve::StandardInverse => Some((0.14, 0.02, 0.0)),
            Curve::VeryInverse => Some((13.5, 1.0, 0.0)),
            Curve::ExtremelyInverse => Some((80.0, 2.0, 0.0)),
            Curve::LongTimeInverse => Some((120.0, 1.0, 0.0)),
        }
    }

    /// Operate time [s] at `multiple` × pickup with time multiplier `tms`,
    /// or `None` at or below pickup.
    pub fn operate_time_s(self, multiple: f32, tms: f32) -> Option<f32> {
        if multiple <= 1.0 {
            return None;
        }
        match self.constants() {
            None => match self {
                Curve::DefiniteTime(d) => Some(d.total_micros() as f32 * 1e-6),
                _ => None,
            },
            Some((k, alpha, c)) => {
                let denom = libm::powf(multiple, alpha) - 1.0;
                (denom > 0.0).then(|| tms * (k / denom + c))
            }
        }
    }
}

/// Drop-off ratio: an element resets below this share of its pickup.
pub const DROP_OFF: f32 = 0.95;

/// Below this share of nominal voltage, direction uses the memorised
/// voltage.
pub const MEMORY_BELOW_PU: f32 = 0.05;

/// A measurement with every phase voltage below [`MEMORY_BELOW_PU`] and
/// every phase current below this share of `delta_phase_a` is dead.
pub const DEAD_CURRENT_SHARE: f32 = 0.1;

/// An overcurrent element's settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OvercurrentSettings {
    /// Pickup current [A].
    pub pickup_a: f32,
    /// Time characteristic.
    pub curve: Curve,
    /// Time multiplier setting.
    pub tms: f32,
}

/// Voltage element settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VoltageSettings {
    /// Threshold [pu of nominal].
    pub threshold_pu: f32,
    /// Delay before operating.
    pub delay: Duration,
}

/// Every protection setting of an LMU.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProtectionSettings {
    /// Nominal phase-to-neutral voltage [V].
    pub v_nominal: f32,
    /// Phase overcurrent.
    pub phase: OvercurrentSettings,
    /// Earth fault on residual current.
    pub earth: OvercurrentSettings,
    /// Total-current fault start, any phase [A]: at or above it a fault
    /// start is declared within the cycle, memory or not.
    pub fault_detect_a: f32,
    /// Superimposed phase-current start [A]: a phase whose current changed
    /// by at least this much from the healthy memory starts.
    pub delta_phase_a: f32,
    /// Superimposed residual-current start [A]: a change of `3I₀` by at
    /// least this much from the healthy memory starts the earth element.
    pub delta_earth_a: f32,
    /// Longest a superimposed start holds the memory: a change that lasts
    /// longer is a new steady state (a load step that stays), not a fault
    /// a breaker clears, and becomes the memory. Long enough for a
    /// resistive fault just below the breaker's pickup that a rise of load
    /// makes it trip minutes later.
    pub delta_hold: Duration,
    /// Under-voltage.
    pub undervoltage: VoltageSettings,
    /// Over-voltage.
    pub overvoltage: VoltageSettings,
    /// Phase relay characteristic angle [deg].
    pub rca_deg: f32,
    /// Earth relay characteristic angle [deg].
    pub earth_rca_deg: f32,
}

impl Default for ProtectionSettings {
    /// Settings for a 230 V LV feeder section of a few hundred amperes:
    /// starts on a change of 150 A in a phase or of the residual, or on
    /// 800 A in total. (The IEEE European LV profiles change an LMU's
    /// current by up to 110 A, and its residual by up to 108 A, from one
    /// minute to the next.)
    fn default() -> Self {
        ProtectionSettings {
            v_nominal: 230.0,
            phase: OvercurrentSettings {
                pickup_a: 400.0,
                curve: Curve::StandardInverse,
                tms: 0.1,
            },
            earth: OvercurrentSettings {
                pickup_a: 100.0,
                curve: Curve::StandardInverse,
                tms: 0.1,
            },
            fault_detect_a: 800.0,
            delta_phase_a: 150.0,
            delta_earth_a: 150.0,
            delta_hold: Duration::from_secs(300),
            undervoltage: VoltageSettings {
                threshold_pu: 0.85,
                delay: Duration::from_millis(1000),
            },
            overvoltage: VoltageSettings {
                threshold_pu: 1.10,
                delay: Duration::from_millis(1000),
            },
            rca_deg: 45.0,
            earth_rca_deg: -45.0,
        }
    }
}

/// Direction of fault current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    /// Away from the source side: the fault is downstream.
    Forward,
    /// Towards the source side: the fault is upstream (e.g. PV back-feed).
    Reverse,
    /// No polarising voltage to tell.
    Unknown,
}

/// What the elements say after one measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProtectionStatus {
    /// Fault current seen (a start), per phase.
    pub fault_phases: [bool; 3],
    /// Earth-fault start.
    pub earth_fault: bool,
    /// Direction of the fault current, if any was seen.
    pub direction: Direction,
    /// Phase overcurrent operated.
    pub phase_operate: bool,
    /// Earth-fault element operated.
    pub earth_operate: bool,
    /// Under-voltage operated, per phase.
    pub undervoltage: [bool; 3],
    /// Over-voltage operated, per phase.
    pub overvoltage: [bool; 3],
}

impl ProtectionStatus {
    /// Whether any fault start is present.
    pub fn fault(&self) -> bool {
        self.fault_phases.iter().any(|&f| f) || self.earth_fault
    }
}

/// The elements' state between measurements.
#[derive(Clone, Debug)]
pub struct Protection {
    settings: ProtectionSettings,
    phase_integral: f32,
    earth_integral: f32,
    uv_since: [Option<Instant>; 3],
    ov_since: [Option<Instant>; 3],
    memory: Option<Memory>,
    /// Since when a superimposed start has held the memory.
    held_since: Option<Instant>,
    /// The previous energised measurement.
    prev: Option<Memory>,
    last: Option<Instant>,
}

/// The last healthy measurement: the reference of the superimposed starts
/// and of memory polarisation.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Memory {
    /// Phase voltages [V].
    v: [Complex32; 3],
    /// Phase currents [A].
    i: [Complex32; 3],
}

fn sum3(x: [Complex32; 3]) -> Complex32 {
    x[0] + x[1] + x[2]
}

fn sub3(a: [Complex32; 3], b: [Complex32; 3]) -> [Complex32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Integrates one dependent-time element; whether it operated.
fn integrate(integral: &mut f32, s: &OvercurrentSettings, current: f32, dt_s: f32) -> bool {
    let m = current / s.pickup_a;
    if m < DROP_OFF {
        *integral = 0.0;
        return false;
    }
    if let Some(t) = s.curve.operate_time_s(m, s.tms) {
        *integral += if t > 0.0 { dt_s / t } else { 1.0 };
    }
    *integral >= 1.0
}

fn delayed(since: &mut Option<Instant>, active: bool, now: Instant, delay: Duration) -> bool {
    if !active {
        *since = None;
        return false;
    }
    let start = *since.get_or_insert(now);
    now.saturating_duration_since(start) >= delay
}

impl Protection {
    /// Elements with `settings`, all reset.
    pub fn new(settings: ProtectionSettings) -> Protection {
        Protection {
            settings,
            phase_integral: 0.0,
            earth_integral: 0.0,
            uv_since: [None; 3],
            ov_since: [None; 3],
            memory: None,
            held_since: None,
            prev: None,
            last: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ProtectionSettings {
        &self.settings
    }

    /// Direction of current `i` polarised by `v_pol` at angle `rca_deg`.
    fn direction(i: Complex32, v_pol: Complex32, rca_deg: f32) -> Direction {
        let reference = v_pol * math::polar(1.0, rca_deg.to_radians());
        let torque = (i * reference.conj()).re;
        if math::mag(v_pol) == 0.0 || torque == 0.0 {
            Direction::Unknown
        } else if torque > 0.0 {
            Direction::Forward
        } else {
            Direction::Reverse
        }
    }

    /// Updates every element with a measurement taken at `now`.
    pub fn update(&mut self, now: Instant, m: &Measurement) -> ProtectionStatus {
        let s = self.settings;
        let dt_s = self.last.map_or(0.0, |l| {
            now.saturating_duration_since(l).total_micros() as f32 * 1e-6
        });
        self.last = Some(now);

        let i_rms = m.phases.map(|p| p.i_rms);
        let v = m.phases.map(|p| p.v1);
        let i = m.phases.map(|p| p.i1);
        let i_max = i_rms.iter().copied().fold(0.0f32, f32::max);
        let residual = math::mag(m.i_residual);
        let phase_operate = integrate(&mut self.phase_integral, &s.phase, i_max, dt_s);
        let earth_operate = integrate(&mut self.earth_integral, &s.earth, residual, dt_s);

        // A dead measurement (no voltage and no current: a close-in bolted
        // fault collapses the voltage but carries current) forgets the
        // memory: what stood before the outage says nothing about what
        // stands after it.
        let energised = m
            .phases
            .iter()
            .any(|p| p.v_rms >= MEMORY_BELOW_PU * s.v_nominal)
            || i_max >= DEAD_CURRENT_SHARE * s.delta_phase_a;
        if !energised {
            self.memory = None;
            self.held_since = None;
        }
        // A change held longer than `delta_hold` is the new steady state.
        if self
            .held_since
            .is_some_and(|t| now.saturating_duration_since(t) > s.delta_hold)
        {
            self.memory = Some(Memory {
                v: m.phases.map(|p| p.v1),
                i: m.phases.map(|p| p.i1),
            });
            self.held_since = None;
        }
        // A new disturbance while a start holds the memory (a fault moments
        // after a load step): the state just before it is the reference,
        // so that the step does not pass for fault current.
        let i_now = m.phases.map(|p| p.i1);
        if let (true, Some(_), Some(prev)) = (energised, self.held_since, self.prev) {
            let d = sub3(i_now, prev.i);
            if d.iter().any(|x| math::mag(*x) >= s.delta_phase_a)
                || math::mag(sum3(d)) >= s.delta_earth_a
            {
                self.memory = Some(prev);
                self.held_since = None;
            }
        }
        self.prev = energised.then_some(Memory {
            v: m.phases.map(|p| p.v1),
            i: i_now,
        });
        let mem = self.memory;
        // The superimposed currents (the totals when nothing is memorised).
        let di = mem.map_or(i, |mm| sub3(i, mm.i));
        let di_mag = di.map(math::mag);
        let mut fault_phases = [false; 3];
        for ((f, &total), &change) in fault_phases.iter_mut().zip(&i_rms).zip(&di_mag) {
            *f = total >= s.fault_detect_a || (mem.is_some() && change >= s.delta_phase_a);
        }
        let d3i0 = sum3(di);
        let earth_fault = mem.is_some() && math::mag(d3i0) >= s.delta_earth_a;
        let faulted = fault_phases.iter().any(|&f| f) || earth_fault;

        let direction = if fault_phases.iter().any(|&f| f) {
            // The phase with the largest change decides, polarised by the
            // voltage between the other two (from memory if it collapsed).
            let [da, db, dc] = di;
            let (current, quad): (Complex32, fn([Complex32; 3]) -> Complex32) =
                if di_mag[0] >= di_mag[1] && di_mag[0] >= di_mag[2] {
                    (da, |[_, b, c]| b - c)
                } else if di_mag[1] >= di_mag[2] {
                    (db, |[a, _, c]| c - a)
                } else {
                    (dc, |[a, b, _]| a - b)
                };
            let live = quad(v);
            let floor = MEMORY_BELOW_PU * s.v_nominal * math::sqrt(3.0);
            let pol = match mem {
                Some(mm) if math::mag(live) < floor => quad(mm.v),
                _ => live,
            };
            Self::direction(current, pol, s.rca_deg)
        } else if earth_fault {
            // Only reached with a memory: the superimposed V₀.
            let dv0 = mem.map_or(Complex32::new(0.0, 0.0), |mm| sum3(v) - sum3(mm.v));
            Self::direction(d3i0, -dv0, s.earth_rca_deg)
        } else {
            Direction::Unknown
        };

        // Healthy measurements become the memory; a start holds it.
        if energised && !faulted {
            self.memory = Some(Memory { v, i });
            self.held_since = None;
        } else if faulted && self.held_since.is_none() {
            self.held_since = Some(now);
        }

        let mut undervoltage = [false; 3];
        let mut overvoltage = [false; 3];
        for ((((p, uv), ov), uv_since), ov_since) in m
            .phases
            .iter()
            .zip(undervoltage.iter_mut())
            .zip(overvoltage.iter_mut())
            .zip(self.uv_since.iter_mut())
            .zip(self.ov_since.iter_mut())
        {
            let pu = p.v_rms / s.v_nominal;
            *uv = delayed(
                uv_since,
                pu < s.undervoltage.threshold_pu,
                now,
                s.undervoltage.delay,
            );
            *ov = delayed(
                ov_since,
                pu > s.overvoltage.threshold_pu,
                now,
                s.overvoltage.delay,
            );
        }
        ProtectionStatus {
            fault_phases,
            earth_fault,
            direction,
            phase_operate,
            earth_operate,
            undervoltage,
            overvoltage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{Analyzer, PhasorFrame};

    fn meas(v_pu: [f32; 3], i: [(f32, f32); 3]) -> Measurement {
        let v = [0.0f32, -120.0, 120.0]
            .iter()
            .zip(v_pu)
            .map(|(d, pu)| math::polar(230.0 * pu, d.to_radians()));
        let mut vv = [Complex32::new(0.0, 0.0); 3];
        for (slot, x) in vv.iter_mut().zip(v) {
            *slot = x;
        }
        Analyzer::new().phasors(&PhasorFrame {
            v: vv,
            i: i.map(|(a, deg)| math::polar(a, deg.to_radians())),
            frequency_hz: 50.0,
            v_harmonics: None,
            i_harmonics: None,
        })
    }

    #[test]
    fn curve_formula_at_known_multiples() {
        // IEC 60255-151 values, TMS 1: SI at 10× = 2.971 s, VI at 10× =
        // 1.5 s, EI at 10× = 0.808 s, SI at 2× = 10.03 s.
        let cases = [
            (Curve::StandardInverse, 10.0, 2.971),
            (Curve::StandardInverse, 2.0, 10.029),
            (Curve::VeryInverse, 10.0, 1.5),
            (Curve::ExtremelyInverse, 10.0, 0.808),
            (Curve::LongTimeInverse, 5.0, 30.0),
        ];
        for (c, m, want) in cases {
            let t = c.operate_time_s(m, 1.0).unwrap();
            // Tolerance 0.1 %: the published values are rounded.
            assert!((t - want).abs() < 1e-3 * want, "{c:?} at {m}: {t}");
        }
        assert_eq!(Curve::VeryInverse.operate_time_s(1.0, 1.0), None);
    }

    /// Feeds a constant current, one measurement per 20 ms cycle, and
    /// returns when the phase element operates [s].
    fn time_to_operate(curve: Curve, tms: f32, multiple: f32) -> f32 {
        let mut p = Protection::new(ProtectionSettings {
            phase: OvercurrentSettings {
                pickup_a: 100.0,
                curve,
                tms,
            },
            ..ProtectionSettings::default()
        });
        let m = meas(
            [1.0; 3],
            [
                (100.0 * multiple, -20.0),
                (100.0 * multiple, -140.0),
                (100.0 * multiple, 100.0),
            ],
        );
        for cycle in 0..100_000u64 {
            let now = Instant::from_micros(cycle * 20_000);
            if p.update(now, &m).phase_operate {
                return cycle as f32 * 0.02;
            }
        }
        f32::INFINITY
    }

    #[test]
    fn dependent_time_elements_operate_at_the_curve_time() {
        for curve in [
            Curve::StandardInverse,
            Curve::VeryInverse,
            Curve::ExtremelyInverse,
        ] {
            for m in [2.0f32, 5.0, 10.0, 20.0] {
                let want = curve.operate_time_s(m, 0.5).unwrap();
                let got = time_to_operate(curve, 0.5, m);
                // Tolerance: one 20 ms measurement cycle, plus 0.5 %.
                assert!(
                    got >= want - 1e-3 && got <= want + 0.02 + 5e-3 * want,
                    "{curve:?} at {m}×: {got} s vs {want} s"
                );
            }
        }
        let dt = time_to_operate(Curve::DefiniteTime(Duration::from_millis(300)), 1.0, 1.5);
        assert!((dt - 0.3).abs() < 0.021, "{dt}");
    }

    #[test]
    fn below_drop_off_the_integral_resets() {
        let mut p = Protection::new(ProtectionSettings::default());
        let hi = meas([1.0; 3], [(1200.0, -20.0), (0.0, 0.0), (0.0, 0.0)]);
        let lo = meas([1.0; 3], [(10.0, -20.0), (0.0, 0.0), (0.0, 0.0)]);
        let mut t = 0u64;
        let mut step = |p: &mut Protection, m: &Measurement| {
            t += 20_000;
            p.update(Instant::from_micros(t), m)
        };
        for _ in 0..5 {
            assert!(!step(&mut p, &hi).phase_operate);
        }
        step(&mut p, &lo);
        assert_eq!(p.phase_integral, 0.0);
    }

    #[test]
    fn a_bolted_fault_starts_within_the_cycle_that_carries_it() {
        let mut p = Protection::new(ProtectionSettings::default());
        let healthy = meas([1.0; 3], [(50.0, -20.0), (50.0, -140.0), (50.0, 100.0)]);
        assert!(!p.update(Instant::from_micros(0), &healthy).fault());
        let fault = meas(
            [0.3, 1.0, 1.0],
            [(3000.0, -40.0), (50.0, -140.0), (50.0, 100.0)],
        );
        let s = p.update(Instant::from_micros(20_000), &fault);
        assert_eq!(s.fault_phases, [true, false, false]);
        assert!(s.earth_fault, "an unbalanced fault current has a residual");
        assert_eq!(s.direction, Direction::Forward);
    }

    #[test]
    fn direction_tells_downstream_from_upstream_faults() {
        let mut p = Protection::new(ProtectionSettings::default());
        // Forward: fault current lagging its phase voltage by 30°.
        let fwd = meas(
            [0.5; 3],
            [(2000.0, -30.0), (2000.0, -150.0), (2000.0, 90.0)],
        );
        assert_eq!(
            p.update(Instant::from_micros(0), &fwd).direction,
            Direction::Forward
        );
        // Reverse: PV back-feeding an upstream fault, current reversed.
        let rev = meas([0.5; 3], [(2000.0, 150.0), (2000.0, 30.0), (2000.0, -90.0)]);
        assert_eq!(
            p.update(Instant::from_micros(20_000), &rev).direction,
            Direction::Reverse
        );
    }

    #[test]
    fn a_collapsed_voltage_is_polarised_from_memory() {
        let mut p = Protection::new(ProtectionSettings::default());
        let healthy = meas([1.0; 3], [(40.0, -20.0), (40.0, -140.0), (40.0, 100.0)]);
        p.update(Instant::from_micros(0), &healthy);
        // A close-in bolted three-phase fault: no voltage at all.
        let close_in = meas(
            [0.0; 3],
            [(5000.0, -60.0), (5000.0, -180.0), (5000.0, 60.0)],
        );
        let s = p.update(Instant::from_micros(20_000), &close_in);
        assert_eq!(s.direction, Direction::Forward);
        // Without memory the direction is unknown, never guessed.
        let mut fresh = Protection::new(ProtectionSettings::default());
        assert_eq!(
            fresh.update(Instant::from_micros(0), &close_in).direction,
            Direction::Unknown
        );
    }

    #[test]
    fn earth_faults_use_residual_current_and_zero_sequence_polarisation() {
        let healthy = meas([1.0; 3], [(0.0, 0.0); 3]);
        // Phase starts less sensitive than the earth start, so that the
        // earth element alone starts.
        let settings = ProtectionSettings {
            delta_phase_a: 300.0,
            ..ProtectionSettings::default()
        };
        let mut p = Protection::new(settings);
        p.update(Instant::from_micros(0), &healthy);
        // Phase a to earth downstream: 200 A residual, V_a sagging.
        let m = meas([0.6, 1.0, 1.0], [(200.0, -40.0), (0.0, 0.0), (0.0, 0.0)]);
        let s = p.update(Instant::from_micros(20_000), &m);
        assert!(s.earth_fault && s.fault_phases == [false; 3], "{s:?}");
        assert_eq!(s.direction, Direction::Forward);
        let mut p = Protection::new(settings);
        p.update(Instant::from_micros(0), &healthy);
        let m = meas([0.6, 1.0, 1.0], [(200.0, 140.0), (0.0, 0.0), (0.0, 0.0)]);
        assert_eq!(
            p.update(Instant::from_micros(20_000), &m).direction,
            Direction::Reverse
        );
    }

    /// 20 A of load per phase and 250 A of PV export flowing back on
    /// phase b (so 250 A of residual), at a 6 % rise on phase b.
    fn one_phase_export() -> Measurement {
        meas(
            [1.0, 1.06, 1.0],
            [(20.0, -20.0), (250.0, 60.0), (20.0, 100.0)],
        )
    }

    /// One-phase PV export: 250 A flowing back on phase b, so 250 A of
    /// residual and a standing V₀, hour after hour. The superimposed
    /// elements see no change and never start; the total-current earth
    /// element would have (250 A ≥ its 100 A).
    #[test]
    fn standing_one_phase_pv_export_never_starts() {
        let mut p = Protection::new(ProtectionSettings::default());
        let export = one_phase_export();
        for k in 0..120u64 {
            let s = p.update(Instant::from_micros(k * 60_000_000), &export);
            assert!(!s.fault(), "minute {k}: {s:?}");
        }
        assert!(math::mag(export.i_residual) > 200.0);
    }

    /// The same export, then a resistive SLG fault downstream on phase a
    /// whose 180 A is smaller than the standing export: the change starts
    /// the earth and phase elements, forward.
    #[test]
    fn a_resistive_fault_under_pv_export_starts_forward() {
        let mut p = Protection::new(ProtectionSettings::default());
        let export = one_phase_export();
        p.update(Instant::from_micros(0), &export);
        // Phase a now carries 20 A of load plus 180 A of fault current
        // lagging its (sagged) voltage by 20°.
        let fault_a = math::polar(20.0, (-20.0f32).to_radians())
            + math::polar(180.0, (-20.0f32).to_radians());
        let m = meas(
            [0.8, 1.06, 1.0],
            [
                (math::mag(fault_a), math::arg(fault_a).to_degrees()),
                (250.0, 60.0),
                (20.0, 100.0),
            ],
        );
        let s = p.update(Instant::from_micros(60_000_000), &m);
        assert_eq!(s.fault_phases, [true, false, false], "{s:?}");
        assert!(s.earth_fault);
        assert_eq!(s.direction, Direction::Forward);
    }

    /// After a dead measurement the memory is gone: a breaker closing
    /// onto standing export starts nothing, and one closing onto a fault
    /// is seen by the total-current start alone.
    #[test]
    fn re_energisation_forgets_the_memory() {
        let mut p = Protection::new(ProtectionSettings::default());
        let export = one_phase_export();
        let dead = meas([0.0; 3], [(0.0, 0.0); 3]);
        p.update(Instant::from_micros(0), &meas([1.0; 3], [(0.0, 0.0); 3]));
        p.update(Instant::from_micros(1_000), &dead);
        assert!(!p.update(Instant::from_micros(2_000), &export).fault());
        p.update(Instant::from_micros(3_000), &dead);
        let onto_fault = meas([0.3, 1.0, 1.0], [(900.0, -40.0), (0.0, 0.0), (0.0, 0.0)]);
        let s = p.update(Instant::from_micros(4_000), &onto_fault);
        assert_eq!(s.fault_phases, [true, false, false]);
        assert!(!s.earth_fault, "no memory, no superimposed start");
    }

    /// A load step that stays starts the superimposed element only until
    /// `delta_hold` has passed; then it is the new memory.
    #[test]
    fn a_lasting_step_becomes_the_memory_after_the_hold() {
        let mut p = Protection::new(ProtectionSettings::default());
        let before = meas([1.0; 3], [(20.0, -20.0), (20.0, -140.0), (20.0, 100.0)]);
        let after = meas([1.0; 3], [(190.0, -20.0), (20.0, -140.0), (20.0, 100.0)]);
        p.update(Instant::from_micros(0), &before);
        let at = |s: u64| Instant::from_micros(s * 1_000_000);
        assert!(p.update(at(60), &after).fault());
        assert!(
            p.update(at(120), &after).fault(),
            "held 60 s, within the hold"
        );
        assert!(
            !p.update(at(420), &after).fault(),
            "held 6 min: the new steady state"
        );
        assert!(!p.update(at(480), &after).fault());
    }

    /// A fault elsewhere (upstream of this LMU) 3 s after a load step
    /// that still holds a start: the fault's measurement is compared with
    /// the state after the step, where this LMU sees only a small loss
    /// of current, and its start drops.
    #[test]
    fn a_disturbance_after_a_step_is_measured_from_the_step() {
        let mut p = Protection::new(ProtectionSettings::default());
        let before = meas([1.0; 3], [(20.0, -20.0), (20.0, -140.0), (20.0, 100.0)]);
        let after = meas([1.0; 3], [(190.0, -20.0), (20.0, -140.0), (20.0, 100.0)]);
        let sag = meas([0.5; 3], [(95.0, -20.0), (10.0, -140.0), (10.0, 100.0)]);
        let at = |ms: u64| Instant::from_micros(ms * 1000);
        p.update(at(0), &before);
        assert!(p.update(at(60_000), &after).fault());
        assert!(!p.update(at(63_000), &sag).fault());
        // A fault downstream instead is seen from the step's state.
        let mut p = Protection::new(ProtectionSettings::default());
        p.update(at(0), &before);
        p.update(at(60_000), &after);
        let downstream = meas([0.7; 3], [(900.0, -50.0), (20.0, -140.0), (20.0, 100.0)]);
        let s = p.update(at(63_000), &downstream);
        assert!(s.fault() && s.direction == Direction::Forward, "{s:?}");
    }

    /// Each phase element chooses memory polarisation for itself: an SLG
    /// fault collapses V_a, but phase b's polariser V_ca still stands.
    #[test]
    fn memory_polarisation_is_per_element() {
        let mut p = Protection::new(ProtectionSettings::default());
        p.update(Instant::from_micros(0), &meas([1.0; 3], [(10.0, -20.0); 3]));
        // A bolted b–c fault close in: V_b = V_c, so V_bc = 0, yet phase
        // b's current (the largest change) is polarised by V_ca, live.
        let mut m = meas(
            [1.0, 0.5, 0.5],
            [(10.0, -20.0), (2000.0, -150.0), (2000.0, 30.0)],
        );
        m.phases[1].v1 = math::polar(115.0, core::f32::consts::PI);
        m.phases[2].v1 = math::polar(115.0, core::f32::consts::PI);
        let s = p.update(Instant::from_micros(20_000), &m);
        assert_eq!(s.direction, Direction::Forward, "{s:?}");
    }

    #[test]
    fn voltage_elements_operate_after_their_delay_only() {
        let mut p = Protection::new(ProtectionSettings::default());
        let low = meas([0.8, 1.0, 1.2], [(0.0, 0.0); 3]);
        let at = |ms: u64| Instant::from_micros(ms * 1000);
        let s = p.update(at(0), &low);
        assert_eq!((s.undervoltage, s.overvoltage), ([false; 3], [false; 3]));
        let s = p.update(at(999), &low);
        assert_eq!(s.undervoltage, [false; 3]);
        let s = p.update(at(1000), &low);
        assert_eq!(s.undervoltage, [true, false, false]);
        assert_eq!(s.overvoltage, [false, false, true]);
        // Recovery resets the timer.
        p.update(at(1020), &meas([1.0; 3], [(0.0, 0.0); 3]));
        assert_eq!(p.update(at(1040), &low).undervoltage, [false; 3]);
    }
}
