//! A town of identical districts from one feeder: every element below the
//! source is copied once per district, renamed `dNNN_<name>` (buses,
//! lines, transformers, loads) and moved to its district's place on a
//! square grid of districts, and every copy's transformer hangs from the
//! one source bus.
//!
//! The source is made `count` times as strong, so that each district sees
//! the source it had alone: with equal loads, every district's voltages
//! are those of the single feeder. The town is thus a stiff MV busbar with
//! LV districts below it; the MV network between the substations is not
//! modelled.
//!
//! Districts are not clones in time: district *k* gives its loads the
//! load shapes of the loads *k* places further on in the feeder's list
//! (cyclically), so that neighbouring districts do not peak in step.

use super::{BusRef, DssCircuit};

/// Where the districts go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    /// How many districts.
    pub count: u32,
    /// Districts per row.
    pub columns: u32,
    /// Distance between neighbouring districts' origins [m, the feeder's
    /// coordinate units].
    pub spacing_m: f64,
}

/// Bus (and element) name of `name` in district `k`.
pub fn district_name(k: u32, name: &str) -> String {
    format!("d{k:03}_{name}")
}

impl DssCircuit {
    /// The town of `layout.count` districts, each a copy of this feeder
    /// (see the module's documentation).
    pub fn districts(&self, layout: Layout) -> DssCircuit {
        let source = self.source.bus.bus.clone();
        let rename = |k: u32, b: &BusRef| BusRef {
            bus: if b.bus == source {
                source.clone()
            } else {
                district_name(k, &b.bus)
            },
            nodes: b.nodes.clone(),
        };
        let columns = layout.columns.max(1);
        let n = layout.count as usize;
        let mut town = DssCircuit {
            name: self.name.clone(),
            source: self.source.strengthened(f64::from(layout.count.max(1))),
            linecodes: self.linecodes.clone(),
            lines: Vec::with_capacity(self.lines.len() * n),
            transformers: Vec::with_capacity(self.transformers.len() * n),
            loads: Vec::with_capacity(self.loads.len() * n),
            loadshapes: self.loadshapes.clone(),
            buscoords: Default::default(),
            voltage_bases_v: self.voltage_bases_v.clone(),
            base_frequency_hz: self.base_frequency_hz,
            warnings: self.warnings.clone(),
        };
        let shapes: Vec<(Option<String>, Option<String>)> = self
            .loads
            .iter()
            .map(|l| (l.yearly.clone(), l.daily.clone()))
            .collect();
        for k in 0..layout.count {
            let dx = f64::from(k % columns) * layout.spacing_m;
            let dy = f64::from(k / columns) * layout.spacing_m;
            for l in &self.lines {
                let mut c = l.clone();
                c.name = district_name(k, &l.name);
                c.bus1 = rename(k, &l.bus1);
                c.bus2 = rename(k, &l.bus2);
                town.lines.push(c);
            }
            for t in &self.transformers {
                let mut c = t.clone();
                c.name = district_name(k, &t.name);
                for w in &mut c.windings {
                    w.bus = rename(k, &w.bus);
                }
                town.transformers.push(c);
            }
            for (i, l) in self.loads.iter().enumerate() {
                let mut c = l.clone();
                c.name = district_name(k, &l.name);
                c.bus = rename(k, &l.bus);
                if !shapes.is_empty() {
                    let j = (i + k as usize) % shapes.len();
                    (c.yearly, c.daily) = shapes[j].clone();
                }
                town.loads.push(c);
            }
            for (bus, &(x, y)) in &self.buscoords {
                let name = if *bus == source {
                    source.clone()
                } else {
                    district_name(k, bus)
                };
                town.buscoords.insert(name, (x + dx, y + dy));
            }
        }
        town
    }
}
