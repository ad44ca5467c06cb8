//! The ledger: a private, permissioned blockchain that records every
//! generated kWh as a certificate with a unique registration code (plant,
//! sequence), and traces consumed kWh to their plant through the consumers'
//! wallets.
//!
//! So far: the exact state machine ([`state`]: roles and permissions, meter
//! readings, certificate ranges, issue / transfer / claim / revoke, the
//! invariants), signed transactions ([`tx`]), real ed25519 verification with
//! batching, a cache and a simulated CPU cost ([`crypto`]), and blocks on a
//! hash chain with Merkle roots, block validation and a tamper audit
//! ([`block`]); Tendermint-style BFT consensus as a sans-IO validator
//! ([`bft`]) over a backhaul with latency, jitter, loss and partitions
//! ([`net`]), driven by the kernel with per-validator CPU time and faults
//! ([`consensus`]); proof-of-authority round robin with n/2 finality
//! ([`aura`]), safe under crashes and partitions and, as its tests show,
//! not under equivocation; the uniform-price double auction of the P2P
//! market ([`market`]); the synthetic workload with supplier-preference
//! matching ([`workload`]); and the ledger in a run ([`chain`]).

pub mod aura;
pub mod bft;
pub mod block;
pub mod chain;
pub mod consensus;
pub mod crypto;
pub mod market;
pub mod net;
pub mod state;
pub mod tx;
pub mod workload;

#[cfg(test)]
mod aura_tests;
#[cfg(test)]
mod consensus_tests;
#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod tests;
