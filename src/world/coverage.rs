//! The LMUs' protection settings from the scenario (`mesh.lmu_protection`),
//! and the coverage of the LMUs' and breakers' pickups: which sections a
//! fault through up to the stated resistance could pass unseen.
//!
//! The figures come from [`crate::grid::coverage`]: the least fault
//! current at the far ends (leaves) of the network below each LMU and
//! each feeder-head breaker, over every kind of fault, under IEC 60909's
//! minimum conditions; and the largest healthy current and change of
//! current through each LMU over the day's profiles. A section is
//! *uncovered* when a pickup lies above the least fault current at its
//! far end; a pickup is *insecure* when it lies below the largest healthy
//! value it must ignore. Both are warnings: a study of a deliberately
//! uncovered set-up still runs.

use std::collections::BTreeMap;

use gridtwin_lmu::protection::ProtectionSettings;

use super::lmu::{Place, RadialTree};
use crate::grid::coverage::{self, Healthy, MinFault, Thevenin};
use crate::grid::model::GridSetup;
use crate::grid::network::BranchKind;
use crate::grid::powerflow::PowerFlowError;
use crate::scenario::dto::LmuProtectionFile;

/// Settings per node and the coverage warnings.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Each node's protection settings (`None`: no place on the grid).
    pub settings: Vec<Option<ProtectionSettings>>,
    /// One sentence per uncovered section or insecure pickup.
    pub warnings: Vec<String>,
}

/// `lmu_protection`'s settings for `nodes` nodes when they need no
/// figures from the feeder (`Fixed`; `Derived` falls back to the
/// firmware's defaults here).
pub fn fixed(prot: &LmuProtectionFile, nodes: usize) -> Vec<Option<ProtectionSettings>> {
    let mut s = ProtectionSettings::default();
    if let LmuProtectionFile::Fixed(f) = prot {
        s.delta_phase_a = f.delta_phase_a as f32;
        s.delta_earth_a = f.delta_earth_a as f32;
        s.fault_detect_a = f.fault_detect_a as f32;
    }
    vec![Some(s); nodes]
}

/// The least fault current below a bus: the figure and where it occurs.
#[derive(Clone, Copy, Debug)]
struct Least {
    phase: (f64, usize, &'static str),
    earth: (f64, usize, &'static str),
}

fn kind_name(k: crate::grid::fault::FaultKind) -> &'static str {
    crate::campaign::KINDS
        .iter()
        .copied()
        .find(|n| crate::grid::fault::FaultKind::parse(n) == Some(k))
        .unwrap_or("?")
}

/// The plan of `lmu_protection` for the LMUs at `places` (index = node;
/// nodes below `first` are coordinators, not LMUs) on `setup`'s grid, with
/// the breakers' settings `setup.protection` at the heads
/// `setup.breakers`.
pub fn plan(
    prot: &LmuProtectionFile,
    setup: &GridSetup,
    places: &[Option<Place>],
    first: u32,
) -> Result<Plan, PowerFlowError> {
    let lmu = |node: usize, p: &Option<Place>| -> Option<usize> {
        (node >= first as usize).then_some(p.as_ref()?.bus)
    };
    let net = &setup.net;
    let n = net.buses.len();
    let tree = RadialTree::of(net);
    let parent: Vec<Option<usize>> = tree.parent.iter().map(|p| p.map(|(b, _)| b)).collect();
    let mut children = vec![0usize; n];
    for p in parent.iter().flatten() {
        children[*p] += 1;
    }
    let leaves: Vec<usize> = tree
        .order
        .iter()
        .copied()
        .filter(|&b| children[b] == 0 && parent[b].is_some())
        .collect();
    let r = prot.r_fault_ohm();
    let min_net = coverage::iec60909_min_network(net);
    // Each LV board's Thévenin equivalent, carried down the lines.
    let heads: Vec<(usize, usize, usize)> = super::grid::feeder_heads(net)
        .into_iter()
        .map(|k| {
            let br = &net.branches[k];
            if parent[br.to] == Some(br.from) {
                (k, br.from, br.to)
            } else {
                (k, br.to, br.from)
            }
        })
        .collect();
    let board_buses: Vec<usize> = heads
        .iter()
        .map(|h| h.1)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let boards: BTreeMap<usize, Thevenin> = board_buses
        .iter()
        .copied()
        .zip(coverage::thevenins(&min_net, &board_buses)?)
        .collect();
    let mut th: Vec<Option<Thevenin>> = vec![None; n];
    for &(k, near, far) in &heads {
        let br = &net.branches[k];
        if let (Some(board), BranchKind::Line { z, .. }) = (boards.get(&near), &br.kind) {
            th[far] = Some(board.through(z, br.phases));
        }
    }
    for &b in &tree.order {
        if let (None, Some((p, k))) = (th[b], tree.parent[b])
            && let (Some(up), BranchKind::Line { z, .. }) = (th[p], &net.branches[k].kind)
        {
            th[b] = Some(up.through(z, net.branches[k].phases));
        }
    }
    let leaves: Vec<usize> = leaves.into_iter().filter(|&b| th[b].is_some()).collect();
    let at_leaves: Vec<MinFault> = leaves
        .iter()
        .map(|&b| th[b].map(|t| t.least(r)).expect("kept above"))
        .collect();
    // The least figures below each bus, gathered up the tree.
    let none = (f64::INFINITY, usize::MAX, "");
    let mut least = vec![
        Least {
            phase: none,
            earth: none,
        };
        n
    ];
    for (&b, m) in leaves.iter().zip(&at_leaves) {
        least[b] = Least {
            phase: (m.phase_a, b, kind_name(m.phase_kind)),
            earth: (m.earth_a, b, kind_name(m.earth_kind)),
        };
    }
    for &b in tree.order.iter().rev() {
        if let Some(p) = parent[b] {
            let x = least[b];
            let y = &mut least[p];
            if x.phase.0 < y.phase.0 {
                y.phase = x.phase;
            }
            if x.earth.0 < y.earth.0 {
                y.earth = x.earth;
            }
        }
    }
    let name = |b: usize| net.buses.get(b).map_or("?", |x| x.name.as_str());
    let lmu_buses: Vec<usize> = places
        .iter()
        .enumerate()
        .filter_map(|(node, p)| lmu(node, p))
        .collect();
    let healthy: Vec<Healthy> = coverage::healthy_currents(
        net,
        &setup.load_profiles,
        &setup.pv_profiles,
        &setup.pv_peak_w,
        setup.profile_step.as_secs_f64(),
        &parent,
        &tree.order,
        &lmu_buses,
    );
    let mut warnings = Vec::new();
    let mut healthy_of = healthy.iter();
    let defaults = ProtectionSettings::default();
    let settings = places
        .iter()
        .enumerate()
        .map(|(node, place)| {
            lmu(node, place)?;
            let p = place.as_ref()?;
            let h = healthy_of.next().copied().unwrap_or_default();
            let l = least[p.bus];
            let mut s = defaults;
            match prot {
                LmuProtectionFile::Fixed(f) => {
                    s.delta_phase_a = f.delta_phase_a as f32;
                    s.delta_earth_a = f.delta_earth_a as f32;
                    s.fault_detect_a = f.fault_detect_a as f32;
                }
                LmuProtectionFile::Derived(d) => {
                    let m = d.margin;
                    let floor = |x: f64| m * x.max(coverage::MIN_HEALTHY_STEP_A);
                    s.delta_phase_a =
                        coverage::pickup_between(floor(h.phase_step_a), l.phase.0 / m) as f32;
                    s.delta_earth_a =
                        coverage::pickup_between(floor(h.earth_step_a), l.earth.0 / m) as f32;
                    s.fault_detect_a =
                        coverage::pickup_between(floor(h.phase_max_a), l.phase.0 / m) as f32;
                }
            }
            for (what, pickup, healthy, (fault, at, kind)) in [
                ("phase", s.delta_phase_a, h.phase_step_a, l.phase),
                ("earth", s.delta_earth_a, h.earth_step_a, l.earth),
            ] {
                let pickup = f64::from(pickup);
                if fault.is_finite() && pickup > fault {
                    warnings.push(format!(
                        "LMU {node} at bus {}: faults through {r} Ω at the far end of its zone draw \
                         {fault:.0} A ({kind} at bus {}, IEC 60909 minimum), below its superimposed \
                         {what} start of {pickup:.0} A: they would pass unseen",
                        name(p.bus),
                        name(at),
                    ));
                }
                if pickup < healthy {
                    warnings.push(format!(
                        "LMU {node} at bus {}: its superimposed {what} start of {pickup:.0} A lies \
                         below the largest healthy change of {healthy:.0} A between two profile \
                         steps: it would start with no fault",
                        name(p.bus),
                    ));
                }
            }
            Some(s)
        })
        .collect();
    for &k in &setup.breakers {
        let br = &net.branches[k];
        let far = if parent[br.to] == Some(br.from) {
            br.to
        } else {
            br.from
        };
        let (fault, at, kind) = least[far].phase;
        if fault.is_finite() && fault < setup.protection.pickup_a {
            warnings.push(format!(
                "the breaker on {}: faults through {r} Ω at bus {} draw {fault:.0} A ({kind}, IEC \
                 60909 minimum), below its pickup of {:.0} A: it would not trip, and the LMUs \
                 act only once it has",
                br.name,
                name(at),
                setup.protection.pickup_a
            ));
        }
    }
    Ok(Plan { settings, warnings })
}
