//! Blocks and the chain.
//!
//! A header holds the height, the previous block's hash, the Merkle root of
//! the transactions, the proposer, a time and the proposer's signature. A
//! block's hash is SHA-256 of its header's canonical encoding without the
//! signature; the signature covers that hash. The Merkle tree is over the
//! transactions' hashes in block order (RFC 6962 leaf and node domain
//! prefixes; an odd node is promoted, never duplicated).
//!
//! Validation of a received block ([`Ledger::validate`]): the height and
//! previous hash continue the chain, the proposer is a validator and its
//! signature verifies, the Merkle root matches, every transaction's
//! signature verifies (batched, cached), and every transaction applies in
//! order to the state; then the invariants hold. Tampering with any stored
//! block breaks its root or the next block's previous hash
//! ([`Ledger::audit`]).

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rs_merkle::MerkleTree;
use rs_merkle::algorithms::Sha256 as MerkleSha256;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::crypto::Verifier;
use super::state::{State, TxError, Violation};
use super::tx::{CHAIN_ID, Hash, Tx};
use crate::kernel::SimDuration;

/// A block header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Height (the genesis state is below height 1).
    pub height: u64,
    /// The previous block's hash (zeros for height 1).
    pub prev: Hash,
    /// Merkle root of the transactions.
    pub tx_root: Hash,
    /// The proposing validator (index).
    pub proposer: u32,
    /// Proposal time [ns of simulated time].
    pub time_ns: u64,
}

impl Header {
    /// The block's hash.
    pub fn hash(&self) -> Hash {
        let bytes = postcard::to_stdvec(&(CHAIN_ID, self)).expect("headers serialise");
        Sha256::digest(bytes).into()
    }
}

/// A block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Its header.
    pub header: Header,
    /// The proposer's signature of the header's hash.
    pub sig: [u8; 64],
    /// The transactions, in order.
    pub txs: Vec<Tx>,
}

impl Block {
    /// Builds and signs a block.
    pub fn new(
        height: u64,
        prev: Hash,
        proposer: u32,
        time_ns: u64,
        txs: Vec<Tx>,
        key: &SigningKey,
    ) -> Block {
        let header = Header {
            height,
            prev,
            tx_root: merkle_root(&txs),
            proposer,
            time_ns,
        };
        let sig = key.sign(&header.hash()).to_bytes();
        Block { header, sig, txs }
    }

    /// Its hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Its size on the wire [bytes].
    pub fn size(&self) -> usize {
        120 + self.txs.iter().map(Tx::size).sum::<usize>()
    }
}

/// The Merkle root of transactions (all zeros for none).
pub fn merkle_root(txs: &[Tx]) -> Hash {
    let leaves: Vec<Hash> = txs
        .iter()
        .map(|t| {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(t.hash());
            h.finalize().into()
        })
        .collect();
    MerkleTree::<MerkleSha256>::from_leaves(&leaves)
        .root()
        .unwrap_or([0; 32])
}

/// Why a block was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Not the next height.
    #[error("height {got}, expected {want}")]
    Height {
        /// In the block.
        got: u64,
        /// Next.
        want: u64,
    },
    /// The previous hash does not match the chain's tip.
    #[error("block {0}: previous hash does not match the chain")]
    Prev(u64),
    /// The Merkle root does not match the transactions.
    #[error("block {0}: Merkle root does not match its transactions")]
    Root(u64),
    /// The proposer is not a validator.
    #[error("block {0}: proposer {1} is not a validator")]
    Proposer(u64, u32),
    /// The proposer's signature does not verify.
    #[error("block {0}: the proposer's signature does not verify")]
    Signature(u64),
    /// A transaction is invalid.
    #[error("block {height}: transaction {index}: {error}")]
    Tx {
        /// The block.
        height: u64,
        /// Its position.
        index: usize,
        /// Why.
        error: TxError,
    },
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Blocks appended.
    pub blocks: u64,
    /// Transactions committed.
    pub committed: u64,
    /// Transactions rejected when building blocks, by any cause.
    pub rejected: u64,
    /// Blocks refused in validation.
    pub blocks_refused: u64,
}

/// What a block builds on: a state, the hash of the block that made it,
/// and the next height.
#[derive(Clone, Copy, Debug)]
pub struct Base<'a> {
    /// The state after `prev`.
    pub state: &'a State,
    /// The parent block's hash (zeros for the first).
    pub prev: Hash,
    /// The height of the block on top.
    pub height: u64,
}

/// Checks `block` on `base`: height, parent, proposer signature, Merkle
/// root, and every transaction (signatures batched); returns the state
/// after it, `None` for an empty block (the base's).
fn check_block(
    verifier: &mut Verifier,
    validators: &[VerifyingKey],
    base: Base<'_>,
    block: &Block,
    cpu: &mut SimDuration,
) -> Result<Option<State>, BlockError> {
    let h = block.header.height;
    let mut charge = |c: SimDuration| *cpu = cpu.checked_add(c).unwrap_or(SimDuration::MAX);
    if h != base.height {
        return Err(BlockError::Height {
            got: h,
            want: base.height,
        });
    }
    if block.header.prev != base.prev {
        return Err(BlockError::Prev(h));
    }
    let Some(pkey) = validators.get(block.header.proposer as usize).copied() else {
        return Err(BlockError::Proposer(h, block.header.proposer));
    };
    let (sig, c) = verifier.verify_one(&pkey, &block.header.hash(), &block.sig);
    charge(c);
    if sig.is_err() {
        return Err(BlockError::Signature(h));
    }
    if merkle_root(&block.txs) != block.header.tx_root {
        return Err(BlockError::Root(h));
    }
    if block.txs.is_empty() {
        return Ok(None);
    }
    let tx_error = |(index, error)| BlockError::Tx {
        height: h,
        index,
        error,
    };
    let refs: Vec<&Tx> = block.txs.iter().collect();
    let keys = refs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            base.state
                .account(t.from)
                .map(|a| a.key)
                .ok_or((i, TxError::UnknownAccount(t.from)))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(tx_error)?;
    let (oks, c) = verifier.verify(&refs, &keys);
    charge(c);
    let mut next = base.state.clone();
    for (index, (tx, ok)) in block.txs.iter().zip(oks).enumerate() {
        if ok {
            next.apply(tx)
        } else {
            Err(TxError::BadSignature)
        }
        .map_err(|e| tx_error((index, e)))?;
    }
    Ok(Some(next))
}

/// One node's copy of the chain and its state.
#[derive(Clone, Debug)]
pub struct Ledger {
    state: State,
    genesis: State,
    blocks: Vec<Block>,
    validators: Vec<VerifyingKey>,
    verifier: Verifier,
    violations: Vec<(u64, Violation)>,
    stats: LedgerStats,
}

impl Ledger {
    /// A chain at its genesis state, with its validators' keys.
    pub fn new(genesis: State, validators: Vec<VerifyingKey>) -> Ledger {
        Ledger {
            state: genesis.clone(),
            genesis,
            blocks: Vec::new(),
            validators,
            verifier: Verifier::new(),
            violations: Vec::new(),
            stats: LedgerStats::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The blocks, height 1 first.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The tip's hash (zeros before the first block).
    pub fn tip(&self) -> Hash {
        self.blocks.last().map_or([0; 32], Block::hash)
    }

    /// The next height.
    pub fn next_height(&self) -> u64 {
        self.blocks.len() as u64 + 1
    }

    /// Counters so far.
    pub fn stats(&self) -> LedgerStats {
        self.stats
    }

    /// Invariant violations seen, with the height after which each was
    /// found.
    pub fn violations(&self) -> &[(u64, Violation)] {
        &self.violations
    }

    /// The signature verifier (its counters).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Builds the next block from candidate transactions as a proposer
    /// would: each is verified and applied to a scratch copy of the state,
    /// in order; those that fail are left out with their error. Returns
    /// the block, the refused transactions and the CPU time spent.
    #[allow(clippy::type_complexity)]
    pub fn propose(
        &mut self,
        candidates: Vec<Tx>,
        proposer: u32,
        time_ns: u64,
        key: &SigningKey,
    ) -> (Block, Vec<(Tx, TxError)>, SimDuration) {
        let base = Base {
            state: &self.state.clone(),
            prev: self.tip(),
            height: self.next_height(),
        };
        self.propose_on(base, candidates, proposer, time_ns, key)
    }

    /// [`Ledger::propose`] on another base than the tip: a block not yet
    /// final (a fork-choice chain builds on those).
    #[allow(clippy::type_complexity)]
    pub fn propose_on(
        &mut self,
        base: Base<'_>,
        candidates: Vec<Tx>,
        proposer: u32,
        time_ns: u64,
        key: &SigningKey,
    ) -> (Block, Vec<(Tx, TxError)>, SimDuration) {
        let mut scratch = base.state.clone();
        let refs: Vec<&Tx> = candidates.iter().collect();
        // Keys of unknown accounts cannot be looked up: those fail apply.
        let keys: Vec<Option<VerifyingKey>> = refs
            .iter()
            .map(|t| base.state.account(t.from).map(|a| a.key))
            .collect();
        let known: Vec<usize> = (0..refs.len()).filter(|&i| keys[i].is_some()).collect();
        let (oks, cpu) = self.verifier.verify(
            &known.iter().map(|&i| refs[i]).collect::<Vec<_>>(),
            &known.iter().filter_map(|&i| keys[i]).collect::<Vec<_>>(),
        );
        let mut sig_ok = vec![false; refs.len()];
        for (k, &i) in known.iter().enumerate() {
            sig_ok[i] = oks[k];
        }
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for (i, tx) in candidates.into_iter().enumerate() {
            let r = if keys[i].is_none() {
                Err(TxError::UnknownAccount(tx.from))
            } else if !sig_ok[i] {
                Err(TxError::BadSignature)
            } else {
                scratch.apply(&tx)
            };
            match r {
                Ok(()) => accepted.push(tx),
                Err(e) => refused.push((tx, e)),
            }
        }
        self.stats.rejected += refused.len() as u64;
        let block = Block::new(base.height, base.prev, proposer, time_ns, accepted, key);
        (block, refused, cpu)
    }

    /// Validates a block against the tip and the state, then appends it.
    /// Returns the CPU time spent (signature checks).
    pub fn validate(&mut self, block: Block) -> Result<SimDuration, (BlockError, SimDuration)> {
        let mut cpu = SimDuration::ZERO;
        let base = Base {
            state: &self.state,
            prev: self.tip(),
            height: self.next_height(),
        };
        let next = match check_block(&mut self.verifier, &self.validators, base, &block, &mut cpu) {
            Ok(next) => next,
            Err(e) => {
                self.stats.blocks_refused += 1;
                return Err((e, cpu));
            }
        };
        let h = block.header.height;
        if let Some(next) = next {
            for v in next.check() {
                self.violations.push((h, v));
            }
            self.state = next;
        }
        self.stats.blocks += 1;
        self.stats.committed += block.txs.len() as u64;
        self.blocks.push(block);
        Ok(cpu)
    }

    /// Every check of [`Ledger::validate`] against another base, without
    /// appending: the state after the block (`None`: an empty block leaves
    /// the base as it was) and the CPU time spent.
    pub fn check_on(
        &mut self,
        base: Base<'_>,
        block: &Block,
    ) -> Result<(Option<State>, SimDuration), (BlockError, SimDuration)> {
        let mut cpu = SimDuration::ZERO;
        match check_block(&mut self.verifier, &self.validators, base, block, &mut cpu) {
            Ok(next) => Ok((next, cpu)),
            Err(e) => Err((e, cpu)),
        }
    }

    /// [`Ledger::check_on`] the tip.
    pub fn check(&mut self, block: &Block) -> Result<SimDuration, (BlockError, SimDuration)> {
        let mut cpu = SimDuration::ZERO;
        let base = Base {
            state: &self.state,
            prev: self.tip(),
            height: self.next_height(),
        };
        match check_block(&mut self.verifier, &self.validators, base, block, &mut cpu) {
            Ok(_) => Ok(cpu),
            Err(e) => Err((e, cpu)),
        }
    }

    /// Re-checks the whole stored chain from genesis: heights, the hash
    /// chain, every proposer signature and Merkle root, and a replay of
    /// every transaction. Finds tampering with any stored block.
    pub fn audit(&self) -> Result<(), BlockError> {
        let mut replay = Ledger::new(self.genesis.clone(), self.validators.clone());
        for b in &self.blocks {
            replay.validate(b.clone()).map_err(|(e, _)| e)?;
        }
        Ok(())
    }

    /// Mutable access to a stored block, to test tamper detection.
    #[doc(hidden)]
    pub fn block_mut(&mut self, i: usize) -> Option<&mut Block> {
        self.blocks.get_mut(i)
    }
}
