//! Typed OpenDSS element definitions and their property setters.
//!
//! Each element applies `name=value` and positional parameters in OpenDSS's
//! order: a positional value sets the property after the last one set.
//! Unknown properties are errors; known properties that gridtwin does not
//! model are accepted with a warning when they are set to anything but their
//! neutral value.

use std::path::Path;

use num_complex::Complex64;

use super::DssError;
use super::lex::{Location, Param};

/// Parsing context of one command.
pub(crate) struct Ctx<'a> {
    pub(crate) at: &'a Location,
    pub(crate) dir: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, message: String) -> DssError {
        DssError::Invalid {
            at: self.at.clone(),
            message,
        }
    }
}

/// One number: OpenDSS accepts plain decimals with exponents.
pub(crate) fn number(s: &str) -> Result<f64, String> {
    let t = s.trim();
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("expected a number, found `{t}`"))
}

/// A list of numbers separated by spaces, commas or `|` (matrix rows).
pub(crate) fn numbers(s: &str) -> Result<Vec<f64>, String> {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == '|')
        .filter(|t| !t.is_empty())
        .map(number)
        .collect()
}

fn yes(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "true" | "t" => Ok(true),
        "n" | "no" | "false" | "f" => Ok(false),
        other => Err(format!("expected yes or no, found `{other}`")),
    }
}

/// A length unit of OpenDSS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LengthUnit {
    /// Unitless: lengths and per-length values share whatever unit.
    #[default]
    None,
    /// Metre.
    M,
    /// Kilometre.
    Km,
    /// Foot.
    Ft,
    /// Thousand feet.
    Kft,
    /// Mile.
    Mi,
    /// Centimetre.
    Cm,
    /// Inch.
    In,
}

impl LengthUnit {
    fn parse(s: &str) -> Result<LengthUnit, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "none" => LengthUnit::None,
            "m" | "meter" | "metre" => LengthUnit::M,
            "km" => LengthUnit::Km,
            "ft" => LengthUnit::Ft,
            "kft" => LengthUnit::Kft,
            "mi" | "mile" => LengthUnit::Mi,
            "cm" => LengthUnit::Cm,
            "in" => LengthUnit::In,
            other => return Err(format!("unknown length unit `{other}`")),
        })
    }

    /// Metres in one unit, or `None` for [`LengthUnit::None`].
    pub fn metres(self) -> Option<f64> {
        match self {
            LengthUnit::None => None,
            LengthUnit::M => Some(1.0),
            LengthUnit::Km => Some(1e3),
            LengthUnit::Ft => Some(0.3048),
            LengthUnit::Kft => Some(304.8),
            LengthUnit::Mi => Some(1609.344),
            LengthUnit::Cm => Some(0.01),
            LengthUnit::In => Some(0.0254),
        }
    }
}

/// A bus reference with its nodes: `34.1` is node 1 of bus `34`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusRef {
    /// Lower-case bus name.
    pub bus: String,
    /// Nodes (1 = a, 2 = b, 3 = c, 0 = ground); empty means the default
    /// `1.2.3…` for the element's phases.
    pub nodes: Vec<u8>,
}

impl BusRef {
    fn parse(s: &str) -> Result<BusRef, String> {
        let mut parts = s.trim().split('.');
        let bus = parts.next().unwrap_or("").to_ascii_lowercase();
        if bus.is_empty() {
            return Err(format!("empty bus name in `{s}`"));
        }
        let nodes = parts
            .map(|n| {
                n.parse::<u8>()
                    .map_err(|_| format!("bad node `{n}` in bus `{s}`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BusRef { bus, nodes })
    }
}

/// Winding connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Conn {
    /// Wye (star), neutral grounded unless stated otherwise.
    #[default]
    Wye,
    /// Delta.
    Delta,
}

impl Conn {
    fn parse(s: &str) -> Result<Conn, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wye" | "y" | "ln" | "star" => Ok(Conn::Wye),
            "delta" | "d" | "ll" => Ok(Conn::Delta),
            other => Err(format!("unknown connection `{other}`")),
        }
    }
}

/// Applies parameters through `set`, following OpenDSS's positional rule.
fn apply_params(
    params: &[Param],
    order: &[&str],
    ctx: &Ctx<'_>,
    mut set: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), DssError> {
    let mut next = 0usize;
    for p in params {
        let name = match &p.name {
            Some(n) => {
                if let Some(i) = order.iter().position(|o| o == n) {
                    next = i + 1;
                }
                n.as_str()
            }
            None => {
                let n = order.get(next).ok_or_else(|| {
                    ctx.err(format!("too many positional values (`{}`)", p.value))
                })?;
                next += 1;
                n
            }
        };
        set(name, &p.value).map_err(|m| ctx.err(format!("{name}: {m}")))?;
    }
    Ok(())
}

/// How a short-circuit level was given.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Level {
    /// [MVA]
    Mva(f64),
    /// [A]
    Amps(f64),
}

/// The circuit's source: a Thevenin equivalent behind its bus.
#[derive(Clone, Debug, PartialEq)]
pub struct VsourceDef {
    /// The bus it feeds.
    pub bus: BusRef,
    /// Base voltage, line to line [V].
    pub base_v_ll: f64,
    /// Set point [pu of base].
    pub pu: f64,
    /// Angle of phase a [deg].
    pub angle_deg: f64,
    /// Frequency [Hz].
    pub frequency_hz: f64,
    /// Phases.
    pub phases: u8,
    sc3: Level,
    sc1: Level,
    /// X1/R1 ratio.
    pub x1r1: f64,
    /// X0/R0 ratio.
    pub x0r0: f64,
    z_explicit: Option<(Complex64, Complex64)>,
}

impl VsourceDef {
    /// The same source `k` times as strong: short-circuit levels times
    /// `k`, impedances divided by `k` (as `k` such sources in parallel).
    pub fn strengthened(&self, k: f64) -> VsourceDef {
        let level = |l: Level| match l {
            Level::Mva(x) => Level::Mva(x * k),
            Level::Amps(x) => Level::Amps(x * k),
        };
        VsourceDef {
            sc3: level(self.sc3),
            sc1: level(self.sc1),
            z_explicit: self.z_explicit.map(|(z1, z0)| (z1 / k, z0 / k)),
            ..self.clone()
        }
    }
}

impl Default for VsourceDef {
    fn default() -> Self {
        // OpenDSS's defaults.
        VsourceDef {
            bus: BusRef {
                bus: "sourcebus".into(),
                nodes: vec![],
            },
            base_v_ll: 115e3,
            pu: 1.0,
            angle_deg: 0.0,
            frequency_hz: 60.0,
            phases: 3,
            sc3: Level::Mva(2000.0),
            sc1: Level::Mva(2100.0),
            x1r1: 4.0,
            x0r0: 3.0,
            z_explicit: None,
        }
    }
}

const VSOURCE_ORDER: &[&str] = &[
    "bus1",
    "basekv",
    "pu",
    "angle",
    "frequency",
    "phases",
    "mvasc3",
    "mvasc1",
    "x1r1",
    "x0r0",
    "isc3",
    "isc1",
    "r1",
    "x1",
    "r0",
    "x0",
];

impl VsourceDef {
    pub(crate) fn apply(&mut self, params: &[Param], ctx: &Ctx<'_>) -> Result<(), DssError> {
        let mut r = [None::<f64>; 4];
        apply_params(params, VSOURCE_ORDER, ctx, |name, v| {
            match name {
                "bus1" => self.bus = BusRef::parse(v)?,
                "basekv" => self.base_v_ll = number(v)? * 1e3,
                "pu" => self.pu = number(v)?,
                "angle" => self.angle_deg = number(v)?,
                "frequency" | "basefreq" => self.frequency_hz = number(v)?,
                "phases" => self.phases = number(v)? as u8,
                "mvasc3" => self.sc3 = Level::Mva(number(v)?),
                "mvasc1" => self.sc1 = Level::Mva(number(v)?),
                "isc3" => self.sc3 = Level::Amps(number(v)?),
                "isc1" => self.sc1 = Level::Amps(number(v)?),
                "x1r1" => self.x1r1 = number(v)?,
                "x0r0" => self.x0r0 = number(v)?,
                "r1" => r[0] = Some(number(v)?),
                "x1" => r[1] = Some(number(v)?),
                "r0" => r[2] = Some(number(v)?),
                "x0" => r[3] = Some(number(v)?),
                other => return Err(format!("unknown property `{other}` of Vsource")),
            }
            Ok(())
        })?;
        if let [Some(r1), Some(x1), Some(r0), Some(x0)] = r {
            self.z_explicit = Some((Complex64::new(r1, x1), Complex64::new(r0, x0)));
        } else if r.iter().any(Option::is_some) {
            return Err(ctx.err("Vsource: give all of r1, x1, r0, x0, or none".into()));
        }
        Ok(())
    }

    /// Three-phase short-circuit power [VA].
    fn s_sc3(&self) -> f64 {
        match self.sc3 {
            Level::Mva(m) => m * 1e6,
            Level::Amps(i) => 3f64.sqrt() * self.base_v_ll * i,
        }
    }

    /// Single-phase short-circuit power [VA].
    fn s_sc1(&self) -> f64 {
        match self.sc1 {
            Level::Mva(m) => m * 1e6,
            Level::Amps(i) => 3f64.sqrt() * self.base_v_ll * i,
        }
    }

    /// Positive- and zero-sequence source impedances [Ω], as OpenDSS
    /// derives them: |Z1| = V²/S3 split by X1/R1, and Z0 from
    /// |2·Z1 + Z0| = 3·V²/S1 with X0/R0.
    pub fn z1_z0_ohm(&self) -> (Complex64, Complex64) {
        if let Some(z) = self.z_explicit {
            return z;
        }
        let v2 = self.base_v_ll * self.base_v_ll;
        let z1_mag = v2 / self.s_sc3();
        let r1 = z1_mag / (1.0 + self.x1r1 * self.x1r1).sqrt();
        let x1 = r1 * self.x1r1;
        let zs = 3.0 * v2 / self.s_sc1();
        let a = 1.0 + self.x0r0 * self.x0r0;
        let b = 4.0 * (r1 + x1 * self.x0r0);
        let c = 4.0 * (r1 * r1 + x1 * x1) - zs * zs;
        let disc = (b * b - 4.0 * a * c).max(0.0);
        let r0 = ((-b + disc.sqrt()) / (2.0 * a)).max(0.0);
        (Complex64::new(r1, x1), Complex64::new(r0, r0 * self.x0r0))
    }
}

/// A line code: impedance per unit length, in sequence or matrix form.
#[derive(Clone, Debug, PartialEq)]
pub struct LineCodeDef {
    /// Lower-case name.
    pub name: String,
    /// Phases.
    pub nphases: u8,
    /// The unit that the per-length values are given in.
    pub units: LengthUnit,
    /// Sequence impedances per unit length [Ω/unit]: (Z1, Z0).
    pub sequence: Option<(Complex64, Complex64)>,
    /// Full phase matrices per unit length, row-major [Ω/unit], when given
    /// as `rmatrix`/`xmatrix`.
    pub matrix: Option<Vec<Complex64>>,
    /// Sequence capacitances per unit length [nF/unit]: (C1, C0).
    pub c1_c0_nf: (f64, f64),
    /// Normal ampacity [A].
    pub norm_amps: f64,
    r: [f64; 4],
    rmatrix: Option<Vec<f64>>,
    xmatrix: Option<Vec<f64>>,
}

const LINECODE_ORDER: &[&str] = &[
    "nphases",
    "r1",
    "x1",
    "r0",
    "x0",
    "c1",
    "c0",
    "units",
    "rmatrix",
    "xmatrix",
    "cmatrix",
    "basefreq",
    "normamps",
    "emergamps",
];

impl LineCodeDef {
    pub(crate) fn new(name: &str) -> LineCodeDef {
        // OpenDSS's defaults (per kft, but a code without units is unitless).
        LineCodeDef {
            name: name.to_string(),
            nphases: 3,
            units: LengthUnit::None,
            sequence: None,
            matrix: None,
            c1_c0_nf: (3.4, 1.6),
            norm_amps: 400.0,
            r: [0.058, 0.1206, 0.1784, 0.4047],
            rmatrix: None,
            xmatrix: None,
        }
    }

    pub(crate) fn apply(&mut self, params: &[Param], ctx: &Ctx<'_>) -> Result<(), DssError> {
        let mut seq_set = false;
        apply_params(params, LINECODE_ORDER, ctx, |name, v| {
            match name {
                "nphases" => self.nphases = number(v)? as u8,
                "r1" => (self.r[0], seq_set) = (number(v)?, true),
                "x1" => (self.r[1], seq_set) = (number(v)?, true),
                "r0" => (self.r[2], seq_set) = (number(v)?, true),
                "x0" => (self.r[3], seq_set) = (number(v)?, true),
                "c1" => self.c1_c0_nf.0 = number(v)?,
                "c0" => self.c1_c0_nf.1 = number(v)?,
                "units" => self.units = LengthUnit::parse(v)?,
                "rmatrix" => self.rmatrix = Some(numbers(v)?),
                "xmatrix" => self.xmatrix = Some(numbers(v)?),
                "normamps" => self.norm_amps = number(v)?,
                "basefreq" | "emergamps" | "cmatrix" => {}
                other => return Err(format!("unknown property `{other}` of LineCode")),
            }
            Ok(())
        })?;
        if seq_set {
            self.sequence = Some((
                Complex64::new(self.r[0], self.r[1]),
                Complex64::new(self.r[2], self.r[3]),
            ));
            self.matrix = None;
        }
        if let (Some(r), Some(x)) = (&self.rmatrix, &self.xmatrix) {
            let n = usize::from(self.nphases);
            let full = |v: &[f64]| expand_matrix(v, n);
            match (full(r), full(x)) {
                (Some(r), Some(x)) => {
                    self.matrix = Some(
                        r.iter()
                            .zip(&x)
                            .map(|(r, x)| Complex64::new(*r, *x))
                            .collect(),
                    );
                    self.sequence = None;
                }
                _ => {
                    return Err(ctx.err(format!(
                        "rmatrix/xmatrix of {} need {} (lower triangle) or {} values",
                        self.name,
                        n * (n + 1) / 2,
                        n * n
                    )));
                }
            }
        }
        Ok(())
    }

    /// The phase impedance matrix per metre [Ω/m], row-major `n×n`, with the
    /// neutral already folded in (Kron-reduced). From sequence values:
    /// Zs = (2·Z1 + Z0)/3 on the diagonal, Zm = (Z0 − Z1)/3 off it. `unit`
    /// gives metres per unit when the code is unitless.
    pub fn z_per_m(&self, unitless_metres: f64) -> Vec<Complex64> {
        let per_unit = self.units.metres().unwrap_or(unitless_metres);
        let n = usize::from(self.nphases);
        match (&self.matrix, self.sequence) {
            (Some(m), _) => m.iter().map(|z| z / per_unit).collect(),
            (None, seq) => {
                let (z1, z0) = seq.unwrap_or((
                    Complex64::new(self.r[0], self.r[1]),
                    Complex64::new(self.r[2], self.r[3]),
                ));
                let zs = (2.0 * z1 + z0) / 3.0 / per_unit;
                let zm = (z0 - z1) / 3.0 / per_unit;
                if n == 1 {
                    return vec![z1 / per_unit];
                }
                (0..n * n)
                    .map(|k| if k / n == k % n { zs } else { zm })
                    .collect()
            }
        }
    }
}

/// A lower triangle (n(n+1)/2 values) or a full matrix (n² values) as a
/// full row-major matrix.
fn expand_matrix(v: &[f64], n: usize) -> Option<Vec<f64>> {
    if v.len() == n * n {
        return Some(v.to_vec());
    }
    if v.len() != n * (n + 1) / 2 {
        return None;
    }
    let mut m = vec![0.0; n * n];
    let mut k = 0;
    for i in 0..n {
        for j in 0..=i {
            m[i * n + j] = v[k];
            m[j * n + i] = v[k];
            k += 1;
        }
    }
    Some(m)
}

/// A line section.
#[derive(Clone, Debug, PartialEq)]
pub struct LineDef {
    /// Lower-case name.
    pub name: String,
    /// Sending end.
    pub bus1: BusRef,
    /// Receiving end.
    pub bus2: BusRef,
    /// Line code (lower case).
    pub linecode: Option<String>,
    /// Length in `units`.
    pub length: f64,
    /// Unit of `length`.
    pub units: LengthUnit,
    /// Phases.
    pub phases: u8,
    /// A switch: a short, nearly ideal section.
    pub switch: bool,
    /// In service.
    pub enabled: bool,
}

const LINE_ORDER: &[&str] = &[
    "bus1", "bus2", "linecode", "length", "phases", "r1", "x1", "r0", "x0", "c1", "c0", "rmatrix",
    "xmatrix", "cmatrix", "switch", "rg", "xg", "rho", "geometry", "units",
];

impl LineDef {
    pub(crate) fn new(name: &str) -> LineDef {
        LineDef {
            name: name.to_string(),
            bus1: BusRef::default(),
            bus2: BusRef::default(),
            linecode: None,
            length: 1.0,
            units: LengthUnit::None,
            phases: 3,
            switch: false,
            enabled: true,
        }
    }

    pub(crate) fn apply(&mut self, params: &[Param], ctx: &Ctx<'_>) -> Result<(), DssError> {
        apply_params(params, LINE_ORDER, ctx, |name, v| {
            match name {
                "bus1" => self.bus1 = BusRef::parse(v)?,
                "bus2" => self.bus2 = BusRef::parse(v)?,
                "linecode" => self.linecode = Some(v.trim().to_ascii_lowercase()),
                "length" => self.length = number(v)?,
                "units" => self.units = LengthUnit::parse(v)?,
                "phases" => self.phases = number(v)? as u8,
                "switch" => self.switch = yes(v)?,
                "enabled" => self.enabled = yes(v)?,
                other => {
                    return Err(format!(
                        "unsupported property `{other}` of Line (use a LineCode)"
                    ));
                }
            }
            Ok(())
        })
    }

    /// Length [m], given the code its per-length values refer to. A length
    /// without units takes the code's unit, as in OpenDSS.
    pub fn length_m(&self, code: Option<&LineCodeDef>) -> Option<f64> {
        let unit = match self.units {
            LengthUnit::None => code.map_or(LengthUnit::None, |c| c.units),
            u => u,
        };
        unit.metres().map(|m| self.length * m)
    }
}

/// One transformer winding.
#[derive(Clone, Debug, PartialEq)]
pub struct WindingDef {
    /// Its bus.
    pub bus: BusRef,
    /// Connection.
    pub conn: Conn,
    /// Rated voltage, line to line for 3-phase [V].
    pub v_rated: f64,
    /// Rated power [VA].
    pub s_rated: f64,
    /// Resistance [% on the winding's rating].
    pub r_pct: f64,
    /// Tap [pu].
    pub tap: f64,
}

/// A two-winding transformer.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerDef {
    /// Lower-case name.
    pub name: String,
    /// Phases.
    pub phases: u8,
    /// Windings: HV first.
    pub windings: Vec<WindingDef>,
    /// Leakage reactance between windings 1 and 2 [% on winding 1's rating].
    pub xhl_pct: f64,
    /// No-load loss [%].
    pub noload_loss_pct: f64,
    /// Magnetising current [%].
    pub imag_pct: f64,
    /// The substation transformer.
    pub sub: bool,
}

const TRANSFORMER_ORDER: &[&str] = &[
    "phases",
    "windings",
    "wdg",
    "bus",
    "conn",
    "kv",
    "kva",
    "tap",
    "%r",
    "rneut",
    "xneut",
    "buses",
    "conns",
    "kvs",
    "kvas",
    "taps",
    "xhl",
    "xht",
    "xlt",
    "xscarray",
    "thermal",
    "n",
    "m",
    "flrise",
    "hsrise",
    "%loadloss",
    "%noloadloss",
    "normhkva",
    "emerghkva",
    "sub",
];

impl TransformerDef {
    pub(crate) fn new(name: &str) -> TransformerDef {
        let w = WindingDef {
            bus: BusRef::default(),
            conn: Conn::Wye,
            v_rated: 12.47e3,
            s_rated: 1000e3,
            r_pct: 0.2,
            tap: 1.0,
        };
        TransformerDef {
            name: name.to_string(),
            phases: 3,
            windings: vec![w.clone(), w],
            xhl_pct: 7.0,
            noload_loss_pct: 0.0,
            imag_pct: 0.0,
            sub: false,
        }
    }

    pub(crate) fn apply(&mut self, params: &[Param], ctx: &Ctx<'_>) -> Result<(), DssError> {
        let mut wdg = 0usize;
        apply_params(params, TRANSFORMER_ORDER, ctx, |name, v| {
            let per_winding = |list: &str| -> Result<Vec<String>, String> {
                let items: Vec<String> = list
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                Ok(items)
            };
            match name {
                "phases" => self.phases = number(v)? as u8,
                "windings" => {
                    let n = number(v)? as usize;
                    if n != 2 {
                        return Err(format!(
                            "{n} windings: only two-winding transformers are supported"
                        ));
                    }
                }
                "wdg" => {
                    wdg = (number(v)? as usize)
                        .checked_sub(1)
                        .filter(|w| *w < 2)
                        .ok_or("wdg must be 1 or 2")?;
                }
                "bus" => self.windings[wdg].bus = BusRef::parse(v)?,
                "conn" => self.windings[wdg].conn = Conn::parse(v)?,
                "kv" => self.windings[wdg].v_rated = number(v)? * 1e3,
                "kva" => self.windings[wdg].s_rated = number(v)? * 1e3,
                "tap" => self.windings[wdg].tap = number(v)?,
                "%r" => self.windings[wdg].r_pct = number(v)?,
                "buses" | "conns" | "kvs" | "kvas" | "taps" => {
                    let items = per_winding(v)?;
                    if items.len() != 2 {
                        return Err(format!("expected 2 values, found {}", items.len()));
                    }
                    for (w, item) in self.windings.iter_mut().zip(&items) {
                        match name {
                            "buses" => w.bus = BusRef::parse(item)?,
                            "conns" => w.conn = Conn::parse(item)?,
                            "kvs" => w.v_rated = number(item)? * 1e3,
                            "kvas" => w.s_rated = number(item)? * 1e3,
                            _ => w.tap = number(item)?,
                        }
                    }
                }
                "%rs" => {
                    let r = numbers(v)?;
                    if r.len() != 2 {
                        return Err(format!("expected 2 values, found {}", r.len()));
                    }
                    self.windings[0].r_pct = r[0];
                    self.windings[1].r_pct = r[1];
                }
                "%loadloss" => {
                    let r = number(v)? / 2.0;
                    self.windings[0].r_pct = r;
                    self.windings[1].r_pct = r;
                }
                "xhl" | "x12" => self.xhl_pct = number(v)?,
                "%noloadloss" => self.noload_loss_pct = number(v)?,
                "%imag" => self.imag_pct = number(v)?,
                "sub" => self.sub = yes(v)?,
                "normhkva" | "emerghkva" | "thermal" | "n" | "m" | "flrise" | "hsrise" => {}
                other => return Err(format!("unsupported property `{other}` of Transformer")),
            }
            Ok(())
        })
    }
}

/// A load.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadDef {
    /// Lower-case name.
    pub name: String,
    /// Its bus and nodes.
    pub bus: BusRef,
    /// Phases.
    pub phases: u8,
    /// Rated voltage: L-N for a single-phase wye load, else L-L [V].
    pub v_rated: f64,
    /// Nominal active power [W].
    pub p_w: f64,
    /// Power factor (negative: leading).
    pub pf: f64,
    /// Reactive power when given directly [var]; otherwise from `pf`.
    pub q_var: Option<f64>,
    /// OpenDSS load model (1 = constant PQ, 2 = constant Z, 5 = constant I,
    /// 8 = ZIP).
    pub model: u8,
    /// Connection.
    pub conn: Conn,
    /// Yearly shape (lower case).
    pub yearly: Option<String>,
    /// Daily shape (lower case).
    pub daily: Option<String>,
    /// Below this voltage the load becomes constant impedance [pu].
    pub vminpu: f64,
    /// Above this voltage the load becomes constant impedance [pu].
    pub vmaxpu: f64,
    /// ZIP coefficients of model 8: Z, I, P fractions of P, then of Q, then
    /// the cut-off voltage [pu].
    pub zipv: Option<[f64; 7]>,
}

const LOAD_ORDER: &[&str] = &[
    "phases", "bus1", "kv", "kw", "pf", "model", "yearly", "daily", "duty", "growth", "conn",
    "kvar", "rneut", "xneut", "status", "class", "vminpu", "vmaxpu", "zipv",
];

impl LoadDef {
    pub(crate) fn new(name: &str) -> LoadDef {
        LoadDef {
            name: name.to_string(),
            bus: BusRef::default(),
            phases: 3,
            v_rated: 12.47e3,
            p_w: 10e3,
            pf: 0.88,
            q_var: None,
            model: 1,
            conn: Conn::Wye,
            yearly: None,
            daily: None,
            vminpu: 0.95,
            vmaxpu: 1.05,
            zipv: None,
        }
    }

    pub(crate) fn apply(&mut self, params: &[Param], ctx: &Ctx<'_>) -> Result<(), DssError> {
        apply_params(params, LOAD_ORDER, ctx, |name, v| {
            match name {
                "phases" => self.phases = number(v)? as u8,
                "bus1" => self.bus = BusRef::parse(v)?,
                "kv" => self.v_rated = number(v)? * 1e3,
                "kw" => self.p_w = number(v)? * 1e3,
                "pf" => {
                    self.pf = number(v)?;
                    self.q_var = None;
                }
                "kvar" => self.q_var = Some(number(v)? * 1e3),
                "model" => {
                    let m = number(v)?;
                    if ![1.0, 2.0, 5.0, 8.0].contains(&m) {
                        return Err(format!("load model {m} is not supported (1, 2, 5 or 8)"));
                    }
                    self.model = m as u8;
                }
                "conn" => self.conn = Conn::parse(v)?,
                "yearly" => self.yearly = Some(v.trim().to_ascii_lowercase()),
                "daily" => self.daily = Some(v.trim().to_ascii_lowercase()),
                "vminpu" => self.vminpu = number(v)?,
                "vmaxpu" => self.vmaxpu = number(v)?,
                "zipv" => {
                    let z = numbers(v)?;
                    let z: [f64; 7] = z
                        .try_into()
                        .map_err(|z: Vec<f64>| format!("zipv takes 7 numbers, got {}", z.len()))?;
                    for (part, f) in [("P", &z[0..3]), ("Q", &z[3..6])] {
                        let sum: f64 = f.iter().sum();
                        if (sum - 1.0).abs() > 1e-6 {
                            return Err(format!("zipv fractions of {part} sum to {sum}, not 1"));
                        }
                    }
                    self.zipv = Some(z);
                }
                "duty" | "growth" | "status" | "class" => {}
                other => return Err(format!("unsupported property `{other}` of Load")),
            }
            Ok(())
        })
    }

    /// Nominal reactive power [var]: as given, or from the power factor.
    pub fn q_nominal_var(&self) -> f64 {
        self.q_var.unwrap_or_else(|| {
            let pf = self.pf.abs().clamp(1e-9, 1.0);
            let q = self.p_w * (1.0 / (pf * pf) - 1.0).sqrt();
            if self.pf < 0.0 { -q } else { q }
        })
    }
}

/// A load shape: multipliers at a fixed interval.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadShapeDef {
    /// Lower-case name.
    pub name: String,
    /// Points.
    pub npts: usize,
    /// Interval between points [s].
    pub interval_s: f64,
    /// Multipliers (or actual kW when `use_actual`).
    pub mult: Vec<f64>,
    /// Reactive multipliers, if given.
    pub qmult: Option<Vec<f64>>,
    /// Values are actual kW rather than multipliers of the load's kW.
    pub use_actual: bool,
}

const LOADSHAPE_ORDER: &[&str] = &[
    "npts",
    "interval",
    "mult",
    "hour",
    "mean",
    "stddev",
    "csvfile",
    "sngfile",
    "dblfile",
    "action",
    "qmult",
    "useactual",
    "pmax",
    "qmax",
    "sinterval",
    "minterval",
];

impl LoadShapeDef {
    pub(crate) fn new(name: &str) -> LoadShapeDef {
        LoadShapeDef {
            name: name.to_string(),
            npts: 0,
            interval_s: 3600.0,
            mult: Vec::new(),
            qmult: None,
            use_actual: false,
        }
    }

    pub(crate) fn apply(&mut self, params: &[Param], ctx: &Ctx<'_>) -> Result<(), DssError> {
        let dir = ctx.dir;
        apply_params(params, LOADSHAPE_ORDER, ctx, |name, v| {
            match name {
                "npts" => self.npts = number(v)? as usize,
                "interval" => self.interval_s = number(v)? * 3600.0,
                "minterval" => self.interval_s = number(v)? * 60.0,
                "sinterval" => self.interval_s = number(v)?,
                "mult" | "pmult" => self.mult = values_or_file(v, dir)?,
                "qmult" => self.qmult = Some(values_or_file(v, dir)?),
                "useactual" => self.use_actual = yes(v)?,
                "mean" | "stddev" | "pmax" | "qmax" => {}
                other => return Err(format!("unsupported property `{other}` of LoadShape")),
            }
            Ok(())
        })?;
        if self.npts > 0 && !self.mult.is_empty() && self.mult.len() < self.npts {
            return Err(ctx.err(format!(
                "loadshape {} has npts={} but {} values",
                self.name,
                self.npts,
                self.mult.len()
            )));
        }
        if self.npts > 0 && self.mult.len() > self.npts {
            self.mult.truncate(self.npts);
        }
        Ok(())
    }

    /// The multiplier in force at `t_s` seconds after midnight (stepwise:
    /// point k covers `(k·Δ, (k+1)·Δ]`, OpenDSS's convention), wrapping
    /// around the shape's length.
    pub fn at(&self, t_s: f64) -> Option<f64> {
        if self.mult.is_empty() || self.interval_s <= 0.0 {
            return None;
        }
        let k = ((t_s / self.interval_s).ceil() as i64 - 1).rem_euclid(self.mult.len() as i64);
        self.mult.get(k as usize).copied()
    }
}

/// `(1 2 3)` or `(file=path)`, the path relative to `dir`.
fn values_or_file(v: &str, dir: &Path) -> Result<Vec<f64>, String> {
    let t = v.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("file") {
        let rest = rest.trim_start();
        if let Some(path) = rest.strip_prefix('=') {
            // Keep the path's own case.
            let start = t.len() - path.len();
            let path = t[start..].trim();
            let full = dir.join(path);
            let text = std::fs::read_to_string(&full)
                .map_err(|e| format!("cannot read {}: {e}", full.display()))?;
            return text
                .lines()
                .map(|l| l.split(',').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(number)
                .collect();
        }
    }
    numbers(t)
}
