//! RPL-like routing over the radio: a self-healing tree towards the
//! coordinator (the root), downward routes for commands, and peer-to-peer
//! delivery through the tree.
//!
//! - **Rank** is the path cost to the root in expected transmissions
//!   (MRHOF with the ETX metric, RFC 6719): `rank = rank(parent) +
//!   ETX(link)`; the root has rank 0.
//! - **ETX** per neighbour starts from the link's signal strength (the
//!   packet success rate of a 20-octet frame at that RSSI, as radios map
//!   LQI to a first estimate) and is then learned from every unicast: an
//!   exponentially weighted average (α = 0.2) of the transmissions the MAC
//!   needed, a failure counting as [`FAIL_ETX`].
//! - **Parent selection:** the neighbour minimising `rank + ETX` among
//!   those of lower rank, switching only for an improvement over
//!   [`PARENT_SWITCH_THRESHOLD`] (hysteresis, as MRHOF).
//! - **DIO** advertisements (broadcast) are timed by Trickle (RFC 6206) with
//!   `Imin`, `Imax` and redundancy `k`; a parent change, a large rank
//!   change or detachment resets the timer. A detached node advertises an
//!   infinite rank so that its children move away (poisoning).
//! - **DAO** (storing mode): each node reports itself to its parent on
//!   joining, on every parent change, and every `dao_interval`; every
//!   ancestor stores the child through which the target lies, for three
//!   intervals.
//! - **Forwarding:** to a destination that is itself a neighbour over a
//!   good link (ETX ≤ [`P2P_DIRECT_ETX`]), directly, in one hop (the
//!   on-link shortcut that RFC 6550 leaves to the implementation: a
//!   neighbour-table hit); else towards a destination the node has a
//!   downward route for, down; otherwise up. So upward traffic reaches the
//!   root, commands reach any node, and peer-to-peer traffic between
//!   neighbours takes one hop, or climbs to the first common ancestor and
//!   descends (RPL storing-mode P2P). A hop limit of 64 stops transient
//!   loops. A shortcut that fails raises the link's ETX like any unicast,
//!   so traffic falls back to the tree.
//! - **Repair:** a unicast to the parent that the MAC gives up on raises
//!   that link's ETX by a [`FAIL_ETX`] sample, and the node reselects its
//!   parent at once, or detaches if no neighbour qualifies. A detached node
//!   poisons once and then broadcasts a DIS after [`DIS_INTERVAL`], the
//!   interval doubling up to [`DIS_INTERVAL_MAX`]; an attached node that
//!   hears one restarts its Trickle timer, so the tree regrows in seconds
//!   even when every timer had reached Imax. A node that (re)boots
//!   solicits DIOs the same way.
//! - **Loops:** a node's rank may not exceed the lowest it has had by more
//!   than [`MAX_RANK_INCREASE`] (RFC 6550's DAGMaxRankIncrease): past it,
//!   it detaches instead, which bounds counting to infinity when the root
//!   is gone (a detached node forgets the bound after [`RANK_HOLD_DOWN`],
//!   as a new DODAG version would let it). A DAO that arrives from the
//!   node's own parent, or after 64 hops, is in a loop and is dropped; so
//!   is a data packet going up that arrives from the node's own parent
//!   (RFC 6550 §11.2).
//! - **Versions:** a root that (re)boots starts a new DODAG version; a node
//!   that hears it forgets every rank of the old one and joins afresh, and
//!   a DIO of an old version is no parent candidate (RFC 6550 global
//!   repair), so no ghost of the old tree survives the root's return.
//! - **Several roots** (one coordinator per gateway) make several DODAGs
//!   of one RPL instance: a DIO names its DODAG, each DODAG has its own
//!   version, and a node joins whichever DODAG its best parent belongs to
//!   (MRHOF over every DODAG heard; RFC 6550 lets a node move between the
//!   DODAGs of an instance). Upward data goes to [`ANY_ROOT`] and is
//!   delivered at the first root it reaches.

use std::collections::BTreeMap;

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::phy;
use super::radio::{BROADCAST, Link, MacFrame, Radio, RadioEvent, RadioOutput, TxFailure};
use crate::kernel::rng::stream;
use crate::kernel::{SimDuration, SimTime};

/// Largest ETX of a link over which data goes straight to a destination
/// that is a neighbour, bypassing the tree.
pub const P2P_DIRECT_ETX: f64 = 1.5;

/// ETX sample of a unicast the MAC gave up on: twice its 4 attempts.
pub const FAIL_ETX: f64 = 8.0;
/// Weight of a DIO heard from a neighbour, pulling its ETX back towards
/// the estimate from its signal strength: a link left unused after losses
/// can be tried again (the role of probing in RPL implementations).
pub const DIO_ETX_WEIGHT: f64 = 0.1;
/// A parent is replaced only by one better by this much [ETX]: RFC 6719's
/// PARENT_SWITCH_THRESHOLD of 192 rank units at MinHopRankIncrease 128.
pub const PARENT_SWITCH_THRESHOLD: f64 = 1.5;
/// Links worse than this are not used: RFC 6719's MAX_LINK_METRIC of 512
/// rank units [ETX].
pub const MAX_LINK_ETX: f64 = 4.0;
/// Hop limit of a packet.
pub const HOP_LIMIT: u8 = 64;
/// The destination of upward data: whichever root the packet reaches
/// (the root of its source's DODAG, as the tree stands on the way).
pub const ANY_ROOT: u32 = u32::MAX - 1;
/// Most roots (DODAGs) a mesh may have: the DODAG's number travels in 14
/// bits of a DIO.
pub const MAX_ROOTS: usize = 1 << 14;
/// EWMA weight of a new ETX sample.
pub const ETX_ALPHA: f64 = 0.2;

/// Routing settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoutingSettings {
    /// Trickle Imin.
    pub trickle_imin: SimDuration,
    /// Trickle doublings: Imax = Imin·2^doublings.
    pub trickle_doublings: u32,
    /// Trickle redundancy constant k.
    pub trickle_k: u32,
    /// Interval between DAO refreshes.
    pub dao_interval: SimDuration,
    /// DIO and DAO payload octets.
    pub control_octets: usize,
}

impl Default for RoutingSettings {
    /// Imin 1 s, 8 doublings (Imax ≈ 4.3 min), k = 3, DAO every 15 s,
    /// 30-octet control messages.
    fn default() -> Self {
        RoutingSettings {
            trickle_imin: SimDuration::from_secs(1).expect("fits"),
            trickle_doublings: 8,
            trickle_k: 3,
            dao_interval: SimDuration::from_secs(15).expect("fits"),
            control_octets: 30,
        }
    }
}

/// An event of the mesh: the radio's, or routing timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeshEvent {
    /// A radio event.
    Radio(RadioEvent),
    /// Trickle: time to maybe send a DIO (generation guards old timers).
    TrickleFire {
        /// Node.
        node: u32,
        /// Timer generation.
        generation: u64,
    },
    /// Trickle: the interval ends.
    TrickleEnd {
        /// Node.
        node: u32,
        /// Timer generation.
        generation: u64,
    },
    /// Time for a node's DAO refresh.
    DaoTimer(u32),
    /// A DAO after a parent change.
    DaoSoon(u32),
    /// A detached node solicits DIOs (the boot count guards timers from
    /// before a crash).
    Dis {
        /// Node.
        node: u32,
        /// The node's boot count when the timer was set.
        boot: u64,
    },
}

/// A MAC tag marking a DIS (DODAG information solicitation).
const DIS_TAG: u64 = 1 << 62;

/// First interval between DIS broadcasts of a detached node; it doubles
/// after each, up to [`DIS_INTERVAL_MAX`].
pub const DIS_INTERVAL: SimDuration = SimDuration::from_nanos(5_000_000_000);

/// Longest interval between DIS broadcasts of a detached node.
pub const DIS_INTERVAL_MAX: SimDuration = SimDuration::from_nanos(60_000_000_000);

/// How far a node's rank may grow above the lowest it has had before it
/// must detach instead [ETX] (RFC 6550's DAGMaxRankIncrease): this bounds
/// counting to infinity when the root or a whole region is gone.
pub const MAX_RANK_INCREASE: f64 = 8.0;

/// How long a detached node keeps its lowest rank as the bound before it
/// forgets it and may join at any rank (standing in for the new DODAG
/// version of a global repair).
pub const RANK_HOLD_DOWN: SimDuration = SimDuration::from_nanos(60_000_000_000);

/// Marks a MAC tag that carries a DIO's rank itself (broadcasts have no
/// acknowledgement to clear a table entry).
const DIO_TAG: u64 = 1 << 63;

/// A DIO's content as carried in its tag: the DODAG (the root's number
/// among the roots) in bits 48–61, its version in bits 32–47, the rank in
/// milli-ETX in bits 0–31 (`u32::MAX` for infinite).
fn dio_tag(rank: f64, dodag: u16, version: u16) -> u64 {
    let r = if rank.is_finite() {
        (rank * 1000.0).round().min(f64::from(u32::MAX - 1)) as u64
    } else {
        u64::from(u32::MAX)
    };
    DIO_TAG | (u64::from(dodag & 0x3fff) << 48) | (u64::from(version) << 32) | r
}

/// The rank, DODAG and version of a DIO tag.
fn dio_content(tag: u64) -> Option<(f64, u16, u16)> {
    if tag & DIO_TAG == 0 || tag == DIS_TAG {
        return None;
    }
    let r = (tag & u64::from(u32::MAX)) as u32;
    let version = ((tag >> 32) & 0xffff) as u16;
    let dodag = ((tag >> 48) & 0x3fff) as u16;
    let rank = if r == u32::MAX {
        f64::INFINITY
    } else {
        f64::from(r) / 1000.0
    };
    Some((rank, dodag, version))
}

/// Whether DODAG version `a` is newer than `b` (RFC 6550 §7.2 lollipop
/// counters, here a plain circular comparison).
fn newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

#[derive(Clone, Debug, PartialEq)]
enum Packet {
    Dio {
        rank: f64,
        dodag: u16,
        version: u16,
    },
    Dao {
        target: u32,
        /// Hops travelled so far.
        hops: u8,
    },
    Data {
        src: u32,
        dst: u32,
        tag: u64,
        hops: u8,
        octets: usize,
        urgent: bool,
    },
}

#[derive(Clone, Copy, Debug)]
struct Neighbour {
    rank: f64,
    etx: f64,
    /// The DODAG it advertised.
    dodag: u16,
}

/// A node's neighbour table: a slot per radio link of the node (its
/// neighbours in range, in node order), filled as they are heard, so that
/// a frame's reverse link finds its sender's entry without a search; and a
/// map for a sender heard over a link the node's own list lacks (links
/// are symmetric unless a link's loss is).
///
/// It keeps its best parent candidate up to date as entries change, so
/// that parent selection on every DIO heard need not scan the table: a
/// change that makes the best worse forgets it, and the next selection
/// scans once.
#[derive(Clone, Debug, Default)]
struct Neighbours {
    by_link: Vec<Option<Neighbour>>,
    extra: litemap::LiteMap<u32, Neighbour>,
    /// The usable entry of least cost (then of least number), `Some(None)`
    /// when none is usable, `None` when not known.
    best: Option<Option<Candidate>>,
}

/// A parent candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    id: u32,
    /// Its slot among the node's links, if it is one.
    slot: Option<usize>,
    /// Its rank plus the link's ETX.
    cost: f64,
    dodag: u16,
}

impl Candidate {
    /// `nb` (neighbour `id`) as a candidate, if usable: a finite rank over
    /// a link of ETX at most [`MAX_LINK_ETX`].
    fn of(id: u32, slot: Option<usize>, nb: &Neighbour) -> Option<Candidate> {
        (nb.rank.is_finite() && nb.etx <= MAX_LINK_ETX).then_some(Candidate {
            id,
            slot,
            cost: nb.rank + nb.etx,
            dodag: nb.dodag,
        })
    }

    /// Cheaper, or as cheap with a lower number.
    fn beats(&self, other: &Candidate) -> bool {
        self.cost
            .total_cmp(&other.cost)
            .then(self.id.cmp(&other.id))
            .is_lt()
    }
}

impl Neighbours {
    /// The entry of neighbour `id`, at `slot` if it is one of the node's
    /// links.
    fn get(&self, slot: Option<usize>, id: u32) -> Option<&Neighbour> {
        match slot {
            Some(k) => self.by_link.get(k)?.as_ref(),
            None => self.extra.get(&id),
        }
    }

    /// Changes the entry of neighbour `id` with `f`, inserting `new` first
    /// if it is absent and `new` is given; `None` if there is no entry.
    fn update<R>(
        &mut self,
        slot: Option<usize>,
        id: u32,
        new: Option<Neighbour>,
        f: impl FnOnce(&mut Neighbour) -> R,
    ) -> Option<R> {
        let nb = match (slot, new) {
            (Some(k), Some(new)) => Some(self.by_link[k].get_or_insert(new)),
            (Some(k), None) => self.by_link.get_mut(k).and_then(Option::as_mut),
            (None, Some(new)) => Some(self.extra.entry(id).or_insert(new)),
            (None, None) => self.extra.get_mut(&id),
        }?;
        let r = f(nb);
        let now = Candidate::of(id, slot, nb);
        // The best stays known unless it got worse.
        self.best = match self.best {
            Some(Some(b)) if b.id == id => match now {
                Some(c) if c.cost.total_cmp(&b.cost).is_le() => Some(Some(c)),
                _ => None,
            },
            Some(Some(b)) => Some(Some(now.filter(|c| c.beats(&b)).unwrap_or(b))),
            Some(None) => Some(now),
            None => None,
        };
        Some(r)
    }

    /// Changes every entry with `f`.
    fn update_all(&mut self, mut f: impl FnMut(&mut Neighbour)) {
        self.by_link.iter_mut().flatten().for_each(&mut f);
        self.extra.iter_mut().for_each(|(_, nb)| f(nb));
        self.best = None;
    }

    /// The best parent candidate; `links` are the node's radio links.
    fn best(&mut self, links: &[Link]) -> Option<Candidate> {
        if let Some(b) = self.best {
            return b;
        }
        let mut best: Option<Candidate> = None;
        let mut consider = |c: Option<Candidate>| {
            if let Some(c) = c
                && best.is_none_or(|b| c.beats(&b))
            {
                best = Some(c);
            }
        };
        for (k, (nb, l)) in self.by_link.iter().zip(links).enumerate() {
            if let Some(nb) = nb {
                consider(Candidate::of(l.to, Some(k), nb));
            }
        }
        for (&id, nb) in self.extra.iter() {
            consider(Candidate::of(id, None, nb));
        }
        self.best = Some(best);
        best
    }
}

#[derive(Clone, Debug)]
struct Node {
    up: bool,
    rank: f64,
    parent: Option<u32>,
    /// The parent's slot among the node's links, if it is one.
    parent_slot: Option<usize>,
    neighbours: Neighbours,
    down: BTreeMap<u32, (u32, SimTime)>,
    trickle_i: SimDuration,
    trickle_c: u32,
    generation: u64,
    dao_soon: bool,
    /// The lowest rank this node has had since it booted (RFC 6550's L,
    /// which bounds its rank to `L + MAX_RANK_INCREASE`).
    min_rank: f64,
    /// When it last detached, while detached.
    detached_at: Option<SimTime>,
    /// Its current DIS interval, while detached (doubling).
    dis_i: SimDuration,
    /// The DODAG it belongs to (its parent's; a root's own), as the
    /// root's number.
    dodag: u16,
    /// The latest version heard of each DODAG (survives reboots); a root's
    /// entry for its own DODAG is the version it runs.
    versions: BTreeMap<u16, u16>,
    /// Times it has been brought up or down (guards its DIS timers).
    boot: u64,
}

impl Node {
    /// The version of its DODAG, as it knows it.
    fn version(&self) -> u16 {
        self.versions.get(&self.dodag).copied().unwrap_or(0)
    }

    /// A node that has heard nothing, with `links` radio links.
    fn fresh(links: usize) -> Node {
        Node {
            up: true,
            rank: f64::INFINITY,
            parent: None,
            parent_slot: None,
            neighbours: Neighbours {
                by_link: vec![None; links],
                extra: litemap::LiteMap::new(),
                best: Some(None),
            },
            down: BTreeMap::new(),
            trickle_i: SimDuration::ZERO,
            trickle_c: 0,
            generation: 0,
            dao_soon: false,
            min_rank: f64::INFINITY,
            detached_at: None,
            dis_i: DIS_INTERVAL,
            dodag: 0,
            versions: BTreeMap::new(),
            boot: 0,
        }
    }
}

/// What the mesh delivered to applications.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delivery {
    /// When.
    pub at: SimTime,
    /// Origin.
    pub src: u32,
    /// Destination (where it arrived).
    pub dst: u32,
    /// The application's handle.
    pub tag: u64,
    /// Hops taken.
    pub hops: u8,
}

/// Routing counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoutingStats {
    /// DIOs sent.
    pub dio: u64,
    /// DAOs sent (each hop).
    pub dao: u64,
    /// Data frames forwarded (each hop).
    pub data_hops: u64,
    /// Data packets dropped: no route, hop limit, or a MAC failure.
    pub data_dropped: u64,
    /// Parent changes.
    pub parent_changes: u64,
    /// DIS solicitations sent.
    pub dis: u64,
    /// DAOs dropped as travelling in a loop.
    pub dao_loops: u64,
    /// Data packets dropped as travelling in a loop.
    pub data_loops: u64,
}

/// The radio plus routing of a whole mesh.
#[derive(Debug)]
pub struct Mesh {
    radio: Radio,
    /// The roots, in order: a root's index here numbers its DODAG.
    roots: Vec<u32>,
    /// Whether each node is a root.
    root_flags: Vec<bool>,
    cfg: RoutingSettings,
    nodes: Vec<Node>,
    rngs: Vec<Xoshiro256PlusPlus>,
    packets: BTreeMap<u64, Packet>,
    next_packet: u64,
    stats: RoutingStats,
    /// The radio's noise floor [dBm].
    noise_dbm: f64,
}

type Out = (Vec<(SimTime, MeshEvent)>, Vec<Delivery>);

impl Mesh {
    /// A mesh over `radio` with these roots (the coordinators; at least
    /// one, at most [`MAX_ROOTS`], distinct nodes of the radio).
    pub fn new(radio: Radio, roots: Vec<u32>, cfg: RoutingSettings, seed: u64) -> Mesh {
        let n = radio.len();
        assert!(
            !roots.is_empty() && roots.len() <= MAX_ROOTS,
            "1 to {MAX_ROOTS} roots"
        );
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| Node::fresh(radio.links_of(i as u32).len()))
            .collect();
        for (d, &r) in roots.iter().enumerate() {
            let node = &mut nodes[r as usize];
            node.rank = 0.0;
            node.dodag = d as u16;
            node.versions.insert(d as u16, 0);
        }
        let mut root_flags = vec![false; n];
        for &r in &roots {
            root_flags[r as usize] = true;
        }
        Mesh {
            roots,
            root_flags,
            cfg,
            nodes,
            rngs: (0..n)
                .map(|i| stream(seed, "node", i as u64, "routing"))
                .collect(),
            packets: BTreeMap::new(),
            next_packet: 0,
            stats: RoutingStats::default(),
            noise_dbm: radio.noise_dbm(),
            radio,
        }
    }

    /// The events that start every node's timers at `now`.
    pub fn start(&mut self, now: SimTime) -> Vec<(SimTime, MeshEvent)> {
        let mut ev = Vec::new();
        for n in 0..self.nodes.len() as u32 {
            self.trickle_reset(now, n, &mut ev);
            let jitter =
                self.rngs[n as usize].random_range(0..self.cfg.dao_interval.as_nanos().max(1));
            ev.push((
                now.saturating_add(SimDuration::from_nanos(jitter)),
                MeshEvent::DaoTimer(n),
            ));
        }
        ev
    }

    /// The radio underneath.
    pub fn radio(&self) -> &Radio {
        &self.radio
    }

    /// Routing counters.
    pub fn stats(&self) -> RoutingStats {
        self.stats
    }

    /// A node's preferred parent.
    pub fn parent(&self, n: u32) -> Option<u32> {
        self.nodes[n as usize].parent
    }

    /// A node's rank (path ETX to its root; infinite when detached).
    pub fn rank(&self, n: u32) -> f64 {
        self.nodes[n as usize].rank
    }

    /// Whether `n` is a root.
    pub fn is_root(&self, n: u32) -> bool {
        self.root_flags.get(n as usize).copied().unwrap_or(false)
    }

    /// The roots.
    pub fn roots(&self) -> &[u32] {
        &self.roots
    }

    /// The root of the DODAG `n` belongs to, while it is attached (a root:
    /// itself).
    pub fn root_of(&self, n: u32) -> Option<u32> {
        let node = &self.nodes[n as usize];
        (node.rank.is_finite()).then(|| self.roots[node.dodag as usize])
    }

    /// Whether following parents from `n` reaches a root through nodes
    /// that are all up, without a loop.
    pub fn has_route(&self, n: u32) -> bool {
        let mut x = n;
        for _ in 0..self.nodes.len() {
            if !self.nodes[x as usize].up {
                return false;
            }
            if self.is_root(x) {
                return true;
            }
            match self.nodes[x as usize].parent {
                Some(p) => x = p,
                None => return false,
            }
        }
        false
    }

    /// Whether `n` has a route both ways: up to its root
    /// ([`Mesh::has_route`]), and down, its root having learnt it from a
    /// DAO.
    pub fn routed_both_ways(&self, n: u32) -> bool {
        self.has_route(n)
            && self
                .root_of(n)
                .is_some_and(|r| r == n || self.nodes[r as usize].down.contains_key(&n))
    }

    /// Crashes (`up = false`) or reboots a node; a rebooted node starts
    /// from scratch.
    pub fn set_up(&mut self, now: SimTime, n: u32, up: bool) -> Vec<(SimTime, MeshEvent)> {
        self.radio.set_up(n, up);
        let generation = self.nodes[n as usize].generation + 1;
        // DODAG versions survive a reboot (non-volatile); a root that
        // comes up starts a new one, so that no node keeps a rank from the
        // old tree (RFC 6550 global repair).
        let mut versions = std::mem::take(&mut self.nodes[n as usize].versions);
        let dodag = self.roots.iter().position(|&r| r == n);
        let boot = self.nodes[n as usize].boot + 1;
        if let (true, Some(d)) = (up, dodag) {
            let v = versions.entry(d as u16).or_insert(0);
            *v = v.wrapping_add(1);
        }
        self.nodes[n as usize] = Node::fresh(self.radio.links_of(n).len());
        self.nodes[n as usize].generation = generation;
        self.nodes[n as usize].up = up;
        self.nodes[n as usize].versions = versions;
        self.nodes[n as usize].boot = boot;
        let mut ev = Vec::new();
        if up {
            if let Some(d) = dodag {
                self.nodes[n as usize].rank = 0.0;
                self.nodes[n as usize].dodag = d as u16;
            } else {
                // A node that boots solicits DIOs at once (within a second,
                // jittered), rather than waiting for its neighbours' Trickle
                // timers, which may sit at Imax.
                let d = self.rngs[n as usize].random_range(0..1_000_000_000u64);
                ev.push((
                    now.saturating_add(SimDuration::from_nanos(d)),
                    MeshEvent::Dis { node: n, boot },
                ));
            }
            self.trickle_reset(now, n, &mut ev);
            ev.push((
                now.saturating_add(self.cfg.dao_interval),
                MeshEvent::DaoTimer(n),
            ));
        }
        ev
    }

    /// Switches a jammer on or off (see [`Radio::jam`]).
    pub fn jam(
        &mut self,
        now: SimTime,
        at: &super::propagation::Position,
        power_dbm: f64,
        on: bool,
    ) {
        self.radio.jam(now, at, power_dbm, on);
    }

    /// Degrades (or, with 0 dB, restores) a link (see [`Radio::degrade_link`]).
    pub fn degrade_link(&mut self, now: SimTime, a: u32, b: u32, extra_db: f64) {
        self.radio.degrade_link(now, a, b, extra_db);
    }

    /// Sends application data from `src` to `dst`.
    pub fn send(&mut self, now: SimTime, src: u32, dst: u32, octets: usize, tag: u64) -> Out {
        self.send_class(now, src, dst, octets, tag, false)
    }

    /// Sends application data, urgent (protection traffic, queued ahead of
    /// the rest at every hop) or not.
    pub fn send_class(
        &mut self,
        now: SimTime,
        src: u32,
        dst: u32,
        octets: usize,
        tag: u64,
        urgent: bool,
    ) -> Out {
        let mut ev = Vec::new();
        let mut del = Vec::new();
        let p = Packet::Data {
            src,
            dst,
            tag,
            hops: 0,
            octets,
            urgent,
        };
        self.forward(now, src, None, p, &mut ev, &mut del);
        (ev, del)
    }

    fn trickle_reset(&mut self, now: SimTime, n: u32, ev: &mut Vec<(SimTime, MeshEvent)>) {
        let imin = self.cfg.trickle_imin;
        let node = &mut self.nodes[n as usize];
        node.trickle_i = imin;
        self.trickle_interval(now, n, ev);
    }

    fn trickle_interval(&mut self, now: SimTime, n: u32, ev: &mut Vec<(SimTime, MeshEvent)>) {
        let node = &mut self.nodes[n as usize];
        node.generation += 1;
        node.trickle_c = 0;
        let i = node.trickle_i.as_nanos().max(2);
        let t = i / 2 + self.rngs[n as usize].random_range(0..i / 2);
        let generation = node.generation;
        ev.push((
            now.saturating_add(SimDuration::from_nanos(t)),
            MeshEvent::TrickleFire {
                node: n,
                generation,
            },
        ));
        ev.push((
            now.saturating_add(SimDuration::from_nanos(i)),
            MeshEvent::TrickleEnd {
                node: n,
                generation,
            },
        ));
    }

    fn new_packet(&mut self, p: Packet) -> u64 {
        let id = self.next_packet;
        self.next_packet += 1;
        self.packets.insert(id, p);
        id
    }

    fn mac_send(
        &mut self,
        now: SimTime,
        src: u32,
        dst: u32,
        p: Packet,
        octets: usize,
        ev: &mut Vec<(SimTime, MeshEvent)>,
    ) {
        let urgent = matches!(p, Packet::Data { urgent: true, .. });
        let tag = self.new_packet(p);
        let (e, out) = self.radio.send(
            now,
            MacFrame {
                src,
                dst,
                payload_octets: octets,
                tag,
                attempts: 0,
                urgent,
            },
        );
        ev.extend(e.into_iter().map(|(t, e)| (t, MeshEvent::Radio(e))));
        // A frame refused at once (node down, queue full) is a failure.
        for o in out {
            if let RadioOutput::Failed(f, why) = o {
                self.failed(now, f, why, ev);
            }
        }
    }

    /// Handles one event at `now`.
    pub fn handle(&mut self, now: SimTime, e: MeshEvent) -> Out {
        let mut ev = Vec::new();
        let mut del = Vec::new();
        match e {
            MeshEvent::Radio(r) => {
                let (e, out) = self.radio.handle(now, r);
                ev.extend(e.into_iter().map(|(t, e)| (t, MeshEvent::Radio(e))));
                for o in out {
                    self.radio_output(now, o, &mut ev, &mut del);
                }
            }
            MeshEvent::TrickleFire { node, generation } => {
                let k = self.cfg.trickle_k;
                let s = &self.nodes[node as usize];
                // A detached node does not advertise (it poisoned once when
                // it detached).
                if s.up && s.generation == generation && s.trickle_c < k && s.rank.is_finite() {
                    let tag = dio_tag(s.rank, s.dodag, s.version());
                    self.stats.dio += 1;
                    self.broadcast(now, node, tag, &mut ev);
                }
            }
            MeshEvent::TrickleEnd { node, generation } => {
                let imax = self.cfg.trickle_imin.as_nanos() << self.cfg.trickle_doublings;
                let s = &mut self.nodes[node as usize];
                if s.up && s.generation == generation {
                    s.trickle_i = SimDuration::from_nanos((s.trickle_i.as_nanos() * 2).min(imax));
                    self.trickle_interval(now, node, &mut ev);
                }
            }
            MeshEvent::Dis { node, boot } => {
                let s = &self.nodes[node as usize];
                if s.up && s.boot == boot && s.rank.is_infinite() && !self.is_root(node) {
                    self.send_dis(now, node, &mut ev);
                }
            }
            MeshEvent::DaoSoon(n) => {
                self.nodes[n as usize].dao_soon = false;
                if self.nodes[n as usize].up {
                    self.send_dao(now, n, n, 0, &mut ev);
                }
            }
            MeshEvent::DaoTimer(n) => {
                if self.nodes[n as usize].up {
                    self.send_dao(now, n, n, 0, &mut ev);
                    ev.push((
                        now.saturating_add(self.cfg.dao_interval),
                        MeshEvent::DaoTimer(n),
                    ));
                }
            }
        }
        (ev, del)
    }

    /// Broadcasts a control message whose content is its tag (DIO, DIS).
    fn broadcast(&mut self, now: SimTime, n: u32, tag: u64, ev: &mut Vec<(SimTime, MeshEvent)>) {
        let frame = MacFrame {
            src: n,
            dst: BROADCAST,
            payload_octets: self.cfg.control_octets,
            tag,
            attempts: 0,
            urgent: false,
        };
        let (e, _) = self.radio.send(now, frame);
        ev.extend(e.into_iter().map(|(t, e)| (t, MeshEvent::Radio(e))));
    }

    /// Broadcasts a DIS and schedules the next while still detached.
    fn send_dis(&mut self, now: SimTime, n: u32, ev: &mut Vec<(SimTime, MeshEvent)>) {
        self.stats.dis += 1;
        self.broadcast(now, n, DIS_TAG, ev);
        let node = &mut self.nodes[n as usize];
        let boot = node.boot;
        let wait = node.dis_i;
        node.dis_i =
            SimDuration::from_nanos((wait.as_nanos() * 2).min(DIS_INTERVAL_MAX.as_nanos()));
        ev.push((now.saturating_add(wait), MeshEvent::Dis { node: n, boot }));
    }

    fn send_dao(
        &mut self,
        now: SimTime,
        from: u32,
        target: u32,
        hops: u8,
        ev: &mut Vec<(SimTime, MeshEvent)>,
    ) {
        if let Some(p) = self.nodes[from as usize].parent {
            self.stats.dao += 1;
            let octets = self.cfg.control_octets;
            self.mac_send(now, from, p, Packet::Dao { target, hops }, octets, ev);
        }
    }

    fn radio_output(
        &mut self,
        now: SimTime,
        o: RadioOutput,
        ev: &mut Vec<(SimTime, MeshEvent)>,
        del: &mut Vec<Delivery>,
    ) {
        match o {
            RadioOutput::Delivered {
                at,
                frame,
                rssi_dbm,
                back,
            } => {
                if frame.tag == DIS_TAG {
                    // An attached node answers a solicitation by restarting
                    // its Trickle timer (RFC 6550 §8.3).
                    if self.nodes[at as usize].up && self.nodes[at as usize].rank.is_finite() {
                        self.trickle_reset(now, at, ev);
                    }
                    return;
                }
                let p = match dio_content(frame.tag) {
                    Some((rank, dodag, version)) => Packet::Dio {
                        rank,
                        dodag,
                        version,
                    },
                    None => match self.packets.get(&frame.tag) {
                        Some(p) => p.clone(),
                        None => return,
                    },
                };
                if !self.nodes[at as usize].up {
                    return;
                }
                let slot = back.map(|k| k as usize);
                self.heard(now, at, frame.src, slot, rssi_dbm, &p, ev);
                match p {
                    Packet::Dio { .. } => {}
                    Packet::Dao { target, hops } => {
                        // A DAO from this node's own parent, or one that
                        // has gone round too long, travels in a loop: drop
                        // it (RFC 6550 §11.2 loop detection).
                        let node = &self.nodes[at as usize];
                        if node.parent == Some(frame.src) || hops >= HOP_LIMIT {
                            self.stats.dao_loops += 1;
                            return;
                        }
                        let expiry = now.saturating_add(SimDuration::from_nanos(
                            3 * self.cfg.dao_interval.as_nanos(),
                        ));
                        self.nodes[at as usize]
                            .down
                            .insert(target, (frame.src, expiry));
                        if !self.is_root(at) {
                            self.send_dao(now, at, target, hops + 1, ev);
                        }
                    }
                    Packet::Data {
                        src,
                        dst,
                        tag,
                        hops,
                        octets,
                        urgent,
                    } => {
                        let p = Packet::Data {
                            src,
                            dst,
                            tag,
                            hops: hops + 1,
                            octets,
                            urgent,
                        };
                        self.forward(now, at, Some(frame.src), p, ev, del);
                    }
                }
            }
            RadioOutput::Acked(f) => {
                self.learn(f.src, f.dst, f64::from(f.attempts.max(1)));
                self.packets.remove(&f.tag);
            }
            RadioOutput::Failed(f, why) => self.failed(now, f, why, ev),
        }
    }

    /// A unicast was given up. Only a missing ACK says something about the
    /// link: a busy channel, a full queue or a node that is down do not
    /// touch its ETX nor the parent (as Contiki-NG's link statistics skip
    /// collisions and transmission errors).
    fn failed(
        &mut self,
        now: SimTime,
        f: MacFrame,
        why: TxFailure,
        ev: &mut Vec<(SimTime, MeshEvent)>,
    ) {
        if f.dst == BROADCAST {
            return;
        }
        let p = self.packets.remove(&f.tag);
        if matches!(p, Some(Packet::Data { .. })) {
            self.stats.data_dropped += 1;
        }
        if why != TxFailure::NoAck {
            return;
        }
        self.learn(f.src, f.dst, FAIL_ETX);
        if self.nodes[f.src as usize].parent == Some(f.dst) {
            self.select_parent(now, f.src, ev);
        }
    }

    fn learn(&mut self, n: u32, neighbour: u32, sample: f64) {
        let node = &self.nodes[n as usize];
        let slot = if node.parent == Some(neighbour) {
            node.parent_slot
        } else {
            self.slot(n, neighbour)
        };
        self.nodes[n as usize]
            .neighbours
            .update(slot, neighbour, None, |nb| {
                nb.etx = (1.0 - ETX_ALPHA) * nb.etx + ETX_ALPHA * sample;
            });
    }

    /// The slot of `id` among `n`'s radio links, if it is one.
    fn slot(&self, n: u32, id: u32) -> Option<usize> {
        self.radio
            .links_of(n)
            .binary_search_by_key(&id, |l| l.to)
            .ok()
    }

    /// A frame from `from` (`at`'s link `slot`) was heard at `at`.
    #[allow(clippy::too_many_arguments)]
    fn heard(
        &mut self,
        now: SimTime,
        at: u32,
        from: u32,
        slot: Option<usize>,
        rssi_dbm: f64,
        p: &Packet,
        ev: &mut Vec<(SimTime, MeshEvent)>,
    ) {
        let profile_noise = self.noise_dbm;
        let node = &mut self.nodes[at as usize];
        // An estimate from the signal strength: 1 / PSR of a 20-octet frame,
        // capped at FAIL_ETX.
        let psr = phy::psr(phy::lin(rssi_dbm - profile_noise), 160.0);
        let etx0 = (1.0 / psr.max(1.0 / FAIL_ETX)).min(FAIL_ETX);
        if let &Packet::Dio { dodag, version, .. } = p {
            let known = node.versions.get(&dodag).copied();
            if known.is_none_or(|k| newer(version, k)) {
                node.versions.insert(dodag, version);
            }
            if known.is_some_and(|k| newer(version, k)) {
                // A new version of that DODAG (its root rebooted): every
                // rank heard in it so far belongs to the old one, and so
                // does this node's, if it belongs to it.
                if node.dodag == dodag && node.rank > 0.0 {
                    node.parent = None;
                    node.rank = f64::INFINITY;
                    node.min_rank = f64::INFINITY;
                    node.detached_at = None;
                }
                node.neighbours.update_all(|other| {
                    if other.dodag == dodag {
                        other.rank = f64::INFINITY;
                    }
                });
            } else if known.is_some_and(|k| newer(k, version)) {
                // An old version: not a parent candidate; tell it at once.
                node.neighbours
                    .update(slot, from, None, |nb| nb.rank = f64::INFINITY);
                if node.rank.is_finite() {
                    self.trickle_reset(now, at, ev);
                }
                return;
            }
        }
        let node = &mut self.nodes[at as usize];
        let new = Neighbour {
            rank: f64::INFINITY,
            etx: etx0,
            dodag: 0,
        };
        let own = node.dodag;
        let dio = match *p {
            Packet::Dio { rank, dodag, .. } => Some((rank, dodag)),
            _ => None,
        };
        let consistent = node.neighbours.update(slot, from, Some(new), |nb| {
            let (rank, dodag) = dio?;
            nb.etx = (1.0 - DIO_ETX_WEIGHT) * nb.etx + DIO_ETX_WEIGHT * etx0;
            // Only an unchanged finite rank, in this node's own DODAG, is
            // consistent (Trickle's c): another DODAG's adverts must not
            // quiet this one's.
            let consistent =
                rank.is_finite() && nb.rank == rank && nb.dodag == dodag && dodag == own;
            nb.rank = rank;
            nb.dodag = dodag;
            Some(consistent)
        });
        if let Some(consistent) = consistent.flatten() {
            if consistent {
                node.trickle_c += 1;
            }
            if !self.is_root(at) {
                self.select_parent(now, at, ev);
            }
        }
    }

    /// MRHOF parent selection with hysteresis.
    fn select_parent(&mut self, now: SimTime, n: u32, ev: &mut Vec<(SimTime, MeshEvent)>) {
        if self.is_root(n) {
            return;
        }
        let best = self.nodes[n as usize]
            .neighbours
            .best(self.radio.links_of(n));
        let node = &self.nodes[n as usize];
        let current = node.parent.and_then(|p| {
            let slot = node.parent_slot;
            Candidate::of(p, slot, node.neighbours.get(slot, p)?)
        });
        let choice = match (current, best) {
            (Some(cur), Some(b)) if b.cost + PARENT_SWITCH_THRESHOLD < cur.cost => Some(b),
            (Some(cur), _) => Some(cur),
            (None, b) => b,
        };
        // The rank bound, forgotten after a hold-down while detached.
        let bound = match node.detached_at {
            Some(t) if now.saturating_since(t) >= RANK_HOLD_DOWN => f64::INFINITY,
            _ => node.min_rank + MAX_RANK_INCREASE,
        };
        let choice = choice.filter(|c| c.cost <= bound);
        let old_rank = node.rank;
        let old_parent = node.parent;
        let node = &mut self.nodes[n as usize];
        match choice {
            Some(Candidate {
                id: p,
                slot,
                cost: c,
                dodag,
            }) => {
                node.parent = Some(p);
                node.parent_slot = slot;
                node.rank = c;
                node.dodag = dodag;
                node.min_rank = if node.detached_at.is_some() && bound.is_infinite() {
                    c
                } else {
                    node.min_rank.min(c)
                };
                node.detached_at = None;
                node.dis_i = DIS_INTERVAL;
            }
            None => {
                node.parent = None;
                node.rank = f64::INFINITY;
                if old_rank.is_finite() {
                    node.detached_at = Some(now);
                }
            }
        }
        let (new_parent, new_rank) = (node.parent, node.rank);
        if new_rank.is_infinite() && old_rank.is_finite() {
            // Detached: poison once, so children look elsewhere, then
            // solicit DIOs until a parent is found.
            self.send_dis(now, n, ev);
            self.stats.dio += 1;
            let node = &self.nodes[n as usize];
            let tag = dio_tag(f64::INFINITY, node.dodag, node.version());
            self.broadcast(now, n, tag, ev);
        }
        if new_parent != old_parent {
            self.stats.parent_changes += 1;
            self.trickle_reset(now, n, ev);
            self.dao_soon(now, n, ev);
        } else if (new_rank - old_rank).abs() > PARENT_SWITCH_THRESHOLD
            || new_rank.is_finite() != old_rank.is_finite()
        {
            self.trickle_reset(now, n, ev);
        }
    }

    /// Schedules one DAO within a second (coalescing changes).
    fn dao_soon(&mut self, now: SimTime, n: u32, ev: &mut Vec<(SimTime, MeshEvent)>) {
        let node = &mut self.nodes[n as usize];
        if node.dao_soon || node.parent.is_none() {
            return;
        }
        node.dao_soon = true;
        let d = self.rngs[n as usize].random_range(0..1_000_000_000u64);
        ev.push((
            now.saturating_add(SimDuration::from_nanos(d)),
            MeshEvent::DaoSoon(n),
        ));
    }

    /// Forwards a data packet at `at`, which it reached from `from` (`None`
    /// at its source).
    fn forward(
        &mut self,
        now: SimTime,
        at: u32,
        from: Option<u32>,
        p: Packet,
        ev: &mut Vec<(SimTime, MeshEvent)>,
        del: &mut Vec<Delivery>,
    ) {
        let Packet::Data {
            src,
            dst,
            tag,
            hops,
            octets,
            urgent,
        } = p
        else {
            return;
        };
        if at == dst || (dst == ANY_ROOT && self.is_root(at)) {
            del.push(Delivery {
                at: now,
                src,
                dst: at,
                tag,
                hops,
            });
            return;
        }
        if hops >= HOP_LIMIT {
            self.stats.data_dropped += 1;
            return;
        }
        let node = &self.nodes[at as usize];
        // Upward data may go straight to the node's own root when that is
        // a good neighbour, as to any destination.
        let target = if dst == ANY_ROOT {
            self.roots[node.dodag as usize]
        } else {
            dst
        };
        let direct = node
            .neighbours
            .get(self.slot(at, target), target)
            .is_some_and(|nb| nb.etx <= P2P_DIRECT_ETX);
        let (next, upward) = match node.down.get(&dst) {
            _ if direct => (Some(target), false),
            Some(&(child, expiry)) if expiry >= now => (Some(child), false),
            _ => (node.parent, true),
        };
        // Going up, a packet must come from below: from this node's own
        // parent, it travels in a loop (RFC 6550 §11.2 data-path
        // validation, with the previous hop standing in for the sender's
        // rank, which ranks heard in older DIOs would misjudge). Drop it.
        let looped = upward && from.is_some() && node.parent == from;
        if looped {
            self.stats.data_dropped += 1;
            self.stats.data_loops += 1;
            return;
        }
        let Some(next) = next else {
            self.stats.data_dropped += 1;
            return;
        };
        self.stats.data_hops += 1;
        self.mac_send(
            now,
            at,
            next,
            Packet::Data {
                src,
                dst,
                tag,
                hops,
                octets,
                urgent,
            },
            octets,
            ev,
        );
    }
}

#[cfg(test)]
mod neighbour_tests {
    use super::*;

    /// Node 0's links as a radio makes them, to `count` nodes 10 m apart
    /// on a line (all in range).
    fn links(count: usize) -> Vec<Link> {
        let pos: Vec<_> = (0..=count)
            .map(|i| crate::mesh::propagation::Position::new(10.0 * i as f64, 0.0, 8.0))
            .collect();
        let radio = Radio::new(crate::mesh::radio::RadioConfig::default(), pos, 1);
        let links = radio.links_of(0).to_vec();
        assert_eq!(links.len(), count);
        links
    }

    proptest::proptest! {
        /// After any sequence of changes (DIO-like rank and ETX updates,
        /// ACK-like ETX samples, whole-DODAG poisoning, entries over a
        /// missing link), the kept best candidate is the one a full scan
        /// finds: the usable entry of least rank + ETX, then of least
        /// number.
        #[test]
        fn the_kept_best_candidate_is_the_scanned_one(
            ops in proptest::collection::vec(
                (0u8..4, 0usize..12, proptest::option::of(0.0f64..6.0), 0.5f64..6.0, 0u16..2),
                1..80,
            )
        ) {
            let links = links(8);
            let n = links.len();
            let mut kept = Neighbours {
                by_link: vec![None; n],
                extra: litemap::LiteMap::new(),
                best: Some(None),
            };
            for (op, who, rank, etx, dodag) in ops {
                // Slots past the links stand for senders over a missing
                // link (numbers far above the links').
                let (slot, id) = if who < n { (Some(who), links[who].to) } else { (None, 1000 + who as u32) };
                let new = Neighbour { rank: f64::INFINITY, etx, dodag: 0 };
                match op {
                    0 => {
                        kept.update(slot, id, Some(new), |nb| {
                            nb.rank = rank.unwrap_or(f64::INFINITY);
                            nb.etx = 0.5 * nb.etx + 0.5 * etx;
                            nb.dodag = dodag;
                        });
                    }
                    1 => {
                        kept.update(slot, id, None, |nb| nb.etx = 0.9 * nb.etx + 0.1 * etx);
                    }
                    2 => kept.update_all(|nb| if nb.dodag == dodag { nb.rank = f64::INFINITY }),
                    _ => {
                        kept.update(slot, id, Some(new), |_| ());
                    }
                }
                let mut fresh = kept.clone();
                fresh.best = None;
                let scanned = fresh.best(&links);
                proptest::prop_assert_eq!(kept.best(&links), scanned);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Context, Handler, RunLimits, Simulation};
    use crate::mesh::propagation::Position;
    use crate::mesh::radio::RadioConfig;

    struct Driver {
        mesh: Mesh,
        delivered: Vec<Delivery>,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Mesh(MeshEvent),
        Send(u32, u32, u64),
    }

    impl Handler for Driver {
        type Event = Ev;
        fn handle(&mut self, e: Ev, cx: &mut Context<'_, Ev>) {
            let now = cx.now();
            let (ev, del) = match e {
                Ev::Mesh(m) => self.mesh.handle(now, m),
                Ev::Send(s, d, tag) => self.mesh.send(now, s, d, 20, tag),
            };
            for (t, e) in ev {
                cx.schedule_at(t, Ev::Mesh(e)).unwrap();
            }
            self.delivered.extend(del);
        }
    }

    /// A trunk of 30 LMUs 300 m apart from the coordinator (node 0), with
    /// branches of 5 going north from trunk nodes 6, 12, 18 and 24.
    fn line_and_branch() -> Vec<Position> {
        let mut p: Vec<Position> = (0..30)
            .map(|i| Position::new(i as f64 * 300.0, 0.0, 8.0))
            .collect();
        for &at in &[6usize, 12, 18, 24] {
            for k in 1..=5 {
                p.push(Position::new(at as f64 * 300.0, k as f64 * 300.0, 8.0));
            }
        }
        p
    }

    fn mesh(seed: u64) -> Mesh {
        let radio = Radio::new(RadioConfig::default(), line_and_branch(), seed);
        Mesh::new(radio, vec![0], RoutingSettings::default(), seed)
    }

    fn run_until(sim: &mut Simulation<Ev>, d: &mut Driver, t_s: u64) {
        sim.run(
            d,
            RunLimits {
                stop_at: SimTime::from_nanos(t_s * 1_000_000_000),
                max_events: None,
            },
            &mut (),
        );
    }

    /// Nodes joined to the root by links of mean PSR ≥ 0.2, avoiding
    /// `failed`: those that physically can still reach the coordinator.
    fn physically_connected(m: &Mesh, failed: Option<u32>) -> Vec<u32> {
        let noise = m.radio().noise_dbm();
        let n = m.radio().len() as u32;
        let mut seen = vec![false; n as usize];
        let mut stack = vec![0u32];
        seen[0] = true;
        while let Some(x) = stack.pop() {
            for l in m.radio().links_of(x) {
                let (y, p) = (l.to, l.mw);
                let ok = phy::psr(phy::lin(phy::db(p) - noise), 160.0) >= 0.2;
                if ok && Some(y) != failed && !seen[y as usize] {
                    seen[y as usize] = true;
                    stack.push(y);
                }
            }
        }
        (0..n).filter(|&i| seen[i as usize]).collect()
    }

    #[test]
    fn the_tree_forms_carries_traffic_both_ways_and_heals_after_a_node_fails() {
        let mut d = Driver {
            mesh: mesh(3),
            delivered: Vec::new(),
        };
        let mut sim = Simulation::new();
        for (t, e) in d.mesh.start(SimTime::ZERO) {
            sim.schedule_at(t, Ev::Mesh(e)).unwrap();
        }
        run_until(&mut sim, &mut d, 120);
        let n = d.mesh.radio().len() as u32;
        let unrouted: Vec<u32> = (0..n).filter(|&i| !d.mesh.has_route(i)).collect();
        assert!(unrouted.is_empty(), "no route from {unrouted:?}");

        // Upward from every node, and a command down to every node.
        for i in 1..n {
            // Reports 100 ms apart, as periodic telemetry would be.
            sim.schedule_at(
                SimTime::from_nanos(121_000_000_000 + u64::from(i) * 100_000_000),
                Ev::Send(i, 0, u64::from(i)),
            )
            .unwrap();
            sim.schedule_at(
                SimTime::from_nanos(127_000_000_000 + u64::from(i) * 100_000_000),
                Ev::Send(0, i, 1000 + u64::from(i)),
            )
            .unwrap();
        }
        // And peer to peer between the ends of two branches.
        sim.schedule_at(SimTime::from_nanos(133_000_000_000), Ev::Send(34, 49, 5000))
            .unwrap();
        run_until(&mut sim, &mut d, 136);
        let up = d.delivered.iter().filter(|x| x.dst == 0).count();
        let down = d.delivered.iter().filter(|x| x.src == 0).count();
        // Only the MAC retries here (hop by hop, 4 attempts); over paths of
        // up to 15 hops a few packets are lost. End-to-end reliability is the
        // application's (the LMU retries its FLISR messages). At least 90 %.
        let min = (0.9 * f64::from(n - 1)).ceil() as usize;
        assert!(up >= min, "upward {up} of {}", n - 1);
        assert!(down >= min, "downward {down} of {}", n - 1);
        assert!(d.delivered.iter().any(|x| x.tag == 5000 && x.dst == 49));

        // A mid-trunk node fails; everyone that still has a physical path
        // must route again. Bound: 60 s (DAO refresh 15 s finds a dead
        // parent; Trickle restarts at 1 s after every change).
        let failed = 10u32;
        let t_fail = 136u64;
        for (t, e) in d
            .mesh
            .set_up(SimTime::from_nanos(t_fail * 1_000_000_000), failed, false)
        {
            sim.schedule_at(t, Ev::Mesh(e)).unwrap();
        }
        let reachable = physically_connected(&d.mesh, Some(failed));
        assert!(reachable.len() > 40, "{}", reachable.len());
        let mut healed_at = None;
        for t in t_fail + 1..=t_fail + 120 {
            run_until(&mut sim, &mut d, t);
            if reachable.iter().all(|&i| d.mesh.has_route(i)) {
                healed_at = Some(t - t_fail);
                break;
            }
        }
        let healed = healed_at.expect("the mesh reconverged within 120 s");
        eprintln!(
            "route repair after node {failed} failed: {healed} s; {:?}",
            d.mesh.stats()
        );
        assert!(healed <= 60, "{healed} s");
    }

    /// Two coordinators at the ends of a line of ten nodes 300 m apart:
    /// each node joins the nearer root's DODAG, upward data goes to
    /// whichever root its tree leads to, and when one root fails its
    /// DODAG's nodes move to the other; when it returns with a new
    /// version, its neighbourhood joins it again.
    #[test]
    fn two_roots_make_two_dodags_that_take_over_from_each_other() {
        let pos: Vec<Position> = (0..10)
            .map(|i| Position::new(i as f64 * 300.0, 0.0, 8.0))
            .collect();
        let radio = Radio::new(RadioConfig::default(), pos, 9);
        let mut d = Driver {
            mesh: Mesh::new(radio, vec![0, 9], RoutingSettings::default(), 9),
            delivered: Vec::new(),
        };
        let mut sim = Simulation::new();
        for (t, e) in d.mesh.start(SimTime::ZERO) {
            sim.schedule_at(t, Ev::Mesh(e)).unwrap();
        }
        run_until(&mut sim, &mut d, 120);
        for n in 1..9 {
            let want = if n <= 4 { 0 } else { 9 };
            assert_eq!(d.mesh.root_of(n), Some(want), "node {n}");
        }
        sim.schedule_at(
            SimTime::from_nanos(121_000_000_000),
            Ev::Send(2, ANY_ROOT, 1),
        )
        .unwrap();
        sim.schedule_at(
            SimTime::from_nanos(122_000_000_000),
            Ev::Send(7, ANY_ROOT, 2),
        )
        .unwrap();
        run_until(&mut sim, &mut d, 125);
        let at = |tag| d.delivered.iter().find(|x| x.tag == tag).map(|x| x.dst);
        assert_eq!((at(1), at(2)), (Some(0), Some(9)));

        // Root 9 fails: its DODAG's nodes join root 0's within a minute.
        for (t, e) in d
            .mesh
            .set_up(SimTime::from_nanos(130_000_000_000), 9, false)
        {
            sim.schedule_at(t, Ev::Mesh(e)).unwrap();
        }
        run_until(&mut sim, &mut d, 190);
        for n in 1..9 {
            assert_eq!(d.mesh.root_of(n), Some(0), "node {n} after root 9 failed");
        }
        // It returns with a new version of its DODAG: its neighbour moves
        // back once the link's ETX, raised by the failures, has recovered
        // through the root's DIOs (a one-hop path to a root beats a
        // four-hop one by more than the switching threshold).
        for (t, e) in d.mesh.set_up(SimTime::from_nanos(200_000_000_000), 9, true) {
            sim.schedule_at(t, Ev::Mesh(e)).unwrap();
        }
        run_until(&mut sim, &mut d, 800);
        assert_eq!(d.mesh.root_of(8), Some(9));
        assert!((1..9).all(|n| d.mesh.has_route(n)));
    }

    /// Two LMUs 60 m apart, both children of the coordinator 400 m away:
    /// a frame between them takes the one-hop shortcut, not the two hops
    /// through their common parent.
    #[test]
    fn neighbours_talk_directly_and_others_through_the_tree() {
        let pos = vec![
            Position::new(0.0, 0.0, 8.0),
            Position::new(400.0, 0.0, 8.0),
            Position::new(400.0, 60.0, 8.0),
        ];
        let radio = Radio::new(RadioConfig::default(), pos, 5);
        let mut d = Driver {
            mesh: Mesh::new(radio, vec![0], RoutingSettings::default(), 5),
            delivered: Vec::new(),
        };
        let mut sim = Simulation::new();
        for (t, e) in d.mesh.start(SimTime::ZERO) {
            sim.schedule_at(t, Ev::Mesh(e)).unwrap();
        }
        run_until(&mut sim, &mut d, 60);
        assert!(d.mesh.has_route(1) && d.mesh.has_route(2));
        sim.schedule_at(SimTime::from_nanos(61_000_000_000), Ev::Send(1, 2, 7))
            .unwrap();
        sim.schedule_at(SimTime::from_nanos(62_000_000_000), Ev::Send(2, 0, 8))
            .unwrap();
        run_until(&mut sim, &mut d, 63);
        let p2p = d.delivered.iter().find(|x| x.tag == 7).expect("delivered");
        assert_eq!((p2p.src, p2p.dst, p2p.hops), (1, 2, 1));
        let up = d.delivered.iter().find(|x| x.tag == 8).expect("delivered");
        assert_eq!(up.dst, 0);
    }
}
