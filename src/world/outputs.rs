//! The grid's plot data: voltage profiles along the feeders, the watched
//! LMUs' phase voltages over time, the breakers' operations and every
//! customer interruption, each as CSV text for the results folder (the
//! report draws its plots from these files).
//!
//! # Feeders and distances
//! The LV bus is the low-voltage side of the first transformer (the LV
//! board; the source bus without a transformer). A feeder is a branch that
//! leaves it, with every bus below it in the [`RadialTree`]. A bus's
//! distance is the length of the lines [m] on its path from the LV bus
//! (switches without a linecode and transformers count zero).

use std::collections::BTreeSet;

use super::lmu::RadialTree;
use crate::grid::model::{
    BreakerRecord, Customer, FaultEffect, GridFault, Interruption, SUSTAINED, VoltageSnapshot,
    WatchRow,
};
use crate::grid::network::{BranchKind, Network};
use crate::kernel::SimTime;

const IO: &str = "writing CSV to memory cannot fail";

/// A voltage as CSV text: empty when undefined (a dead phase).
fn v(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        String::new()
    }
}

/// The LV bus: the low-voltage side of the first transformer, or the
/// source bus without one.
pub fn lv_bus(net: &Network) -> usize {
    net.branches
        .iter()
        .find(|b| matches!(b.kind, BranchKind::Transformer { .. }))
        .map(|b| b.to)
        .unwrap_or(net.source.bus)
}

/// A branch's length along the feeder [m].
fn length_m(net: &Network, branch: usize) -> f64 {
    match net.branches.get(branch).map(|b| &b.kind) {
        Some(BranchKind::Line { length_m, .. }) if length_m.is_finite() => length_m.max(0.0),
        _ => 0.0,
    }
}

/// Each bus's feeder (the index of the branch that leaves the LV bus
/// above it) and distance from the LV bus [m]; `None` for buses that are
/// not below the LV bus (the HV side, the LV bus itself).
pub fn feeders(net: &Network, tree: &RadialTree) -> Vec<Option<(usize, f64)>> {
    let lv = lv_bus(net);
    let mut out: Vec<Option<(usize, f64)>> = vec![None; net.buses.len()];
    for &b in &tree.order {
        let Some((p, k)) = tree.parent[b] else {
            continue;
        };
        let d = length_m(net, k);
        out[b] = if p == lv {
            Some((k, d))
        } else {
            out[p].map(|(f, dp)| (f, dp + d))
        };
    }
    out
}

/// `profile.csv`: the phase voltages along every feeder in the sampled
/// states with the lowest and the highest live-node voltage of the run.
/// Columns `snapshot,t_s,feeder,bus,parent,distance_m,va_pu,vb_pu,vc_pu`:
/// `lowest` or `highest`, the sample's time [s], the feeder's first branch,
/// the bus and the bus above it, the distance from the LV bus [m], and the
/// phase-to-neutral voltages [pu] (empty for a dead or absent phase). Each
/// feeder starts with the LV bus at 0 m (no parent); buses follow in
/// breadth-first order.
pub fn profile_csv(
    net: &Network,
    lowest: Option<&VoltageSnapshot>,
    highest: Option<&VoltageSnapshot>,
) -> Vec<u8> {
    let tree = RadialTree::of(net);
    let feeder = feeders(net, &tree);
    let lv = lv_bus(net);
    // Feeders in branch order.
    let heads: BTreeSet<usize> = feeder.iter().flatten().map(|&(f, _)| f).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "snapshot",
        "t_s",
        "feeder",
        "bus",
        "parent",
        "distance_m",
        "va_pu",
        "vb_pu",
        "vc_pu",
    ])
    .expect(IO);
    for (label, snap) in [("lowest", lowest), ("highest", highest)] {
        let Some(snap) = snap else { continue };
        let t = snap.at.as_secs_f64().to_string();
        for &head in &heads {
            let fname = net.branches[head].name.as_str();
            let mut row = |bus: usize, parent: Option<usize>, d: f64| {
                let [a, b, c] = snap.v_pu.get(bus).copied().unwrap_or([f64::NAN; 3]);
                w.write_record([
                    label,
                    &t,
                    fname,
                    &net.buses[bus].name,
                    parent.map_or("", |p| net.buses[p].name.as_str()),
                    &d.to_string(),
                    &v(a),
                    &v(b),
                    &v(c),
                ])
                .expect(IO);
            };
            row(lv, None, 0.0);
            for &b in &tree.order {
                if let (Some((f, d)), Some((p, _))) = (feeder[b], tree.parent[b])
                    && f == head
                {
                    row(b, Some(p), d);
                }
            }
        }
    }
    w.into_inner().expect(IO)
}

/// `lmu_voltages.csv`: the watched LMUs' bus phase voltages at every
/// sample. Columns `t_s,lmu,bus,va_pu,vb_pu,vc_pu`: time [s], the LMU's
/// mesh node id, its bus, and the phase-to-neutral voltages [pu] (empty
/// when dead).
pub fn lmu_voltages_csv(net: &Network, rows: &[WatchRow]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["t_s", "lmu", "bus", "va_pu", "vb_pu", "vc_pu"])
        .expect(IO);
    for (t, lmu, bus, [a, b, c]) in rows {
        w.write_record([
            t.as_secs_f64().to_string(),
            lmu.to_string(),
            net.buses[*bus].name.clone(),
            v(*a),
            v(*b),
            v(*c),
        ])
        .expect(IO);
    }
    w.into_inner().expect(IO)
}

/// `breakers.csv`: every operation of the feeder-head breakers, in order.
/// Columns `t_s,breaker,branch,op`: time [s], the breaker's index, the
/// branch it opens, and `trip`, `lockout` (a trip with no reclose left)
/// or `reclose`.
pub fn breakers_csv(net: &Network, log: &[BreakerRecord]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["t_s", "breaker", "branch", "op"])
        .expect(IO);
    for r in log {
        w.write_record([
            r.at.as_secs_f64().to_string(),
            r.breaker.to_string(),
            net.branches[r.branch].name.clone(),
            r.op.as_str().to_string(),
        ])
        .expect(IO);
    }
    w.into_inner().expect(IO)
}

/// `interruptions.csv`: every customer interruption, in order of start.
/// Columns `customer,bus,start_s,end_s,duration_s,sustained`: the
/// customer (load name), its bus, the start and end [s] (end empty when
/// still off at the end of the run), the duration up to `end` [s], and
/// whether it counts as sustained (longer than 3 minutes).
pub fn interruptions_csv(
    net: &Network,
    customers: &[Customer],
    interruptions: &[Interruption],
    end: SimTime,
) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "customer",
        "bus",
        "start_s",
        "end_s",
        "duration_s",
        "sustained",
    ])
    .expect(IO);
    let mut rows: Vec<&Interruption> = interruptions.iter().collect();
    rows.sort_by_key(|i| (i.start, i.customer));
    for i in rows {
        let Some(c) = customers.get(i.customer) else {
            continue;
        };
        let d = i.end.unwrap_or(end).saturating_since(i.start);
        w.write_record([
            c.name.clone(),
            net.buses[c.bus].name.clone(),
            i.start.as_secs_f64().to_string(),
            i.end.map_or(String::new(), |e| e.as_secs_f64().to_string()),
            d.as_secs_f64().to_string(),
            (d > SUSTAINED).to_string(),
        ])
        .expect(IO);
    }
    w.into_inner().expect(IO)
}

/// The LMUs to watch when the scenario names none: the two nearest, along
/// the network's lines, to the first short circuit; without one, the first
/// two LMUs on the grid. `node_buses[n]` is node n's bus (node 0, the
/// coordinator, is never chosen). Returns (node, bus) pairs.
pub fn default_watch(
    net: &Network,
    faults: &[GridFault],
    node_buses: &[Option<usize>],
) -> Vec<(u32, usize)> {
    let lmus = node_buses
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(n, b)| Some((n as u32, (*b)?)));
    let fault_bus = faults.iter().find_map(|f| match f.effect {
        FaultEffect::Short { bus, .. } => Some(bus),
        FaultEffect::Open { .. } => None,
    });
    let Some(fb) = fault_bus.filter(|&b| b < net.buses.len()) else {
        return lmus.take(2).collect();
    };
    // Distances from the fault bus over every branch [m].
    let n = net.buses.len();
    let mut adj: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (k, br) in net.branches.iter().enumerate() {
        let d = length_m(net, k);
        if br.from < n && br.to < n {
            adj[br.from].push((br.to, d));
            adj[br.to].push((br.from, d));
        }
    }
    let mut dist = vec![f64::INFINITY; n];
    dist[fb] = 0.0;
    let mut stack = vec![fb];
    while let Some(b) = stack.pop() {
        for &(c, d) in &adj[b] {
            if dist[b] + d < dist[c] {
                dist[c] = dist[b] + d;
                stack.push(c);
            }
        }
    }
    let mut near: Vec<(u32, usize)> = lmus.filter(|&(_, b)| dist[b].is_finite()).collect();
    near.sort_by(|a, b| dist[a.1].total_cmp(&dist[b.1]).then(a.0.cmp(&b.0)));
    near.truncate(2);
    near
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeders_measure_line_lengths_from_the_lv_bus() {
        // Bus 0 source, transformer to bus 1, 30 m sections below.
        let net = Network::synthetic_radial(6, 3);
        let tree = RadialTree::of(&net);
        let f = feeders(&net, &tree);
        assert_eq!(lv_bus(&net), 1);
        assert_eq!(f[0], None);
        assert_eq!(f[1], None);
        for (b, fb) in f.iter().enumerate().skip(2) {
            let (_, d) = fb.unwrap();
            // 30 m per section on the path up to bus 1.
            let mut hops = 0;
            let mut x = b;
            while x != 1 {
                x = tree.parent[x].unwrap().0;
                hops += 1;
            }
            assert_eq!(d, 30.0 * f64::from(hops), "bus {b}");
        }
    }

    #[test]
    fn default_watch_takes_the_lmus_nearest_the_fault() {
        let net = Network::synthetic_radial(10, 3);
        let nodes: Vec<Option<usize>> = vec![Some(1), Some(9), Some(5), Some(7)];
        // Without faults: the first two LMUs.
        assert_eq!(default_watch(&net, &[], &nodes), vec![(1, 9), (2, 5)]);
        let fault = GridFault {
            at: SimTime::ZERO,
            clear_at: None,
            effect: FaultEffect::Short {
                bus: 7,
                y: crate::grid::mat3::ZM,
            },
        };
        let w = default_watch(&net, &[fault], &nodes);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0], (3, 7), "the LMU at the fault bus comes first");
    }
}
