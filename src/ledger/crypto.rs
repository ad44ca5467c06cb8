//! Keys and signature verification.
//!
//! Every signature is verified for real with ed25519-dalek (strict
//! verification), once: results are cached by the transaction's hash.
//! Uncached signatures of a block are checked together with batch
//! verification; if the batch fails, each is checked alone to find the
//! culprits.
//!
//! The simulated CPU time a validator spends is charged from constants, not
//! measured during a run (that would make results depend on the machine):
//! [`VERIFY_NS`] per signature checked alone and [`BATCH_VERIFY_NS`] per
//! signature in a batch, both measured by `cargo bench --bench ledger`
//! (`ledger/verify/single` and `ledger/verify/batch_1000`, see
//! `results/bench/ledger.md`).

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use rand::RngExt;

use super::tx::{Hash, Tx};
use crate::kernel::SimDuration;
use crate::kernel::rng::stream;

/// Simulated CPU time of one ed25519 verification on its own [ns]
/// (`ledger/verify/single`, results/bench/ledger.md).
pub const VERIFY_NS: u64 = 38_000;

/// Simulated CPU time per signature of a batch verification [ns]
/// (`ledger/verify/batch_1000` divided by 1 000, results/bench/ledger.md).
pub const BATCH_VERIFY_NS: u64 = 12_400;

/// A deterministic key for an entity: 32 secret bytes from its own random
/// stream. (A simulation's keys need to be reproducible, not secret.)
pub fn key_for(seed: u64, kind: &'static str, id: u64) -> SigningKey {
    let mut rng = stream(seed, kind, id, "ed25519");
    let mut secret = [0u8; 32];
    rng.fill(&mut secret[..]);
    SigningKey::from_bytes(&secret)
}

/// Why a signature did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the signature does not verify")]
pub struct BadSignature;

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// Signatures verified (each once).
    pub verified: u64,
    /// Of which in batches.
    pub batched: u64,
    /// Lookups answered from the cache.
    pub cache_hits: u64,
    /// Signatures that failed.
    pub failed: u64,
}

/// A signature verifier with a cache by transaction hash.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    cache: BTreeMap<Hash, bool>,
    stats: VerifierStats,
}

impl Verifier {
    /// An empty cache.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> VerifierStats {
        self.stats
    }

    /// Verifies transactions signed by `keys[i]`; returns each outcome and
    /// the CPU time charged.
    pub fn verify(&mut self, txs: &[&Tx], keys: &[VerifyingKey]) -> (Vec<bool>, SimDuration) {
        let hashes: Vec<Hash> = txs.iter().map(|t| t.hash()).collect();
        let mut out = vec![false; txs.len()];
        let mut todo = Vec::new();
        for (i, h) in hashes.iter().enumerate() {
            match self.cache.get(h) {
                Some(&ok) => {
                    self.stats.cache_hits += 1;
                    out[i] = ok;
                }
                None => todo.push(i),
            }
        }
        let mut cpu_ns = 0u64;
        if todo.len() >= 2 {
            let msgs: Vec<Vec<u8>> = todo.iter().map(|&i| txs[i].signing_bytes()).collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let sigs: Vec<Signature> = todo.iter().map(|&i| txs[i].signature()).collect();
            let ks: Vec<VerifyingKey> = todo.iter().map(|&i| keys[i]).collect();
            cpu_ns += BATCH_VERIFY_NS * todo.len() as u64;
            if ed25519_dalek::verify_batch(&refs, &sigs, &ks).is_ok() {
                self.stats.verified += todo.len() as u64;
                self.stats.batched += todo.len() as u64;
                for &i in &todo {
                    out[i] = true;
                    self.cache.insert(hashes[i], true);
                }
                todo.clear();
            }
        }
        for &i in &todo {
            cpu_ns += VERIFY_NS;
            let ok = keys[i]
                .verify_strict(&txs[i].signing_bytes(), &txs[i].signature())
                .is_ok();
            self.stats.verified += 1;
            if !ok {
                self.stats.failed += 1;
            }
            out[i] = ok;
            self.cache.insert(hashes[i], ok);
        }
        (out, SimDuration::from_nanos(cpu_ns))
    }

    /// Verifies one signature over `msg` (a block header), uncached.
    pub fn verify_one(
        &mut self,
        key: &VerifyingKey,
        msg: &[u8],
        sig: &[u8; 64],
    ) -> (Result<(), BadSignature>, SimDuration) {
        self.stats.verified += 1;
        let ok = key.verify_strict(msg, &Signature::from_bytes(sig)).is_ok();
        if !ok {
            self.stats.failed += 1;
        }
        (
            if ok { Ok(()) } else { Err(BadSignature) },
            SimDuration::from_nanos(VERIFY_NS),
        )
    }
}
