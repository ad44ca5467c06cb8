//! Transactions: what an account asks the ledger to do, signed with its
//! ed25519 key.
//!
//! The signed bytes are the canonical postcard encoding of
//! `(CHAIN_ID, from, nonce, body)`; a transaction's hash is SHA-256 of
//! those bytes followed by the signature. Nonces are per account and
//! strictly sequential, so a transaction cannot be replayed.

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separation: signatures of this chain mean nothing elsewhere.
pub const CHAIN_ID: &[u8; 16] = b"gridtwin-ledger1";

/// A 32-byte SHA-256 digest.
pub type Hash = [u8; 32];

/// An account (a key with a role).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId(pub u32);

/// A plant (a generator with a registered meter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PlantId(pub u32);

/// A range of certificates of one plant: ids `first .. first + count`.
/// A certificate is one kWh; its registration code is (plant, sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certs {
    /// The plant.
    pub plant: PlantId,
    /// First sequence number.
    pub first: u64,
    /// How many [kWh].
    pub count: u64,
}

impl Certs {
    /// One past the last sequence number.
    pub fn end(&self) -> u64 {
        self.first.saturating_add(self.count)
    }
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxBody {
    /// A meter's reading for a metering interval: generation for a plant's
    /// meter, consumption for a consumer's [Wh].
    Reading {
        /// Metering interval index.
        interval: u32,
        /// Energy in the interval [Wh].
        wh: u64,
    },
    /// A plant's meter issues certificates for its metered generation in an
    /// interval: the next `kwh` sequence numbers of the plant, as one range.
    Issue {
        /// The plant.
        plant: PlantId,
        /// Metering interval index.
        interval: u32,
        /// Certificates [kWh].
        kwh: u64,
    },
    /// Moves held certificates to another account.
    Transfer {
        /// The recipient.
        to: AccountId,
        /// The certificates.
        certs: Certs,
    },
    /// Retires held certificates against the holder's metered consumption
    /// in an interval.
    Claim {
        /// The certificates.
        certs: Certs,
        /// The consumption interval they cover.
        interval: u32,
    },
    /// The operator revokes held (unclaimed) certificates, e.g. after a
    /// meter correction.
    Revoke {
        /// The certificates.
        certs: Certs,
    },
    /// A consumer's supplier preference: the plants it ranks, best first
    /// (only plants selling on the local market are matched).
    Prefer {
        /// The ranking, at most [`MAX_PREFERENCES`] plants.
        plants: Vec<PlantId>,
    },
    /// Pays money to another account.
    Pay {
        /// The recipient.
        to: AccountId,
        /// The amount [µ-currency].
        amount: u64,
    },
    /// A P2P market bid for an interval's energy; `kwh × price` is held in
    /// escrow until the interval is settled.
    Bid {
        /// The consumption interval.
        interval: u32,
        /// Quantity [kWh].
        kwh: u64,
        /// Limit price [µ-currency/kWh].
        price: u64,
    },
    /// A P2P market ask: certificates of the seller's plant from an
    /// interval, sold at the settlement from what the seller still holds.
    Ask {
        /// The seller's plant.
        plant: PlantId,
        /// The generation interval.
        interval: u32,
        /// Quantity [kWh].
        kwh: u64,
        /// Limit price [µ-currency/kWh].
        price: u64,
    },
    /// The operator settles an interval once its readings are final: the
    /// supplier-preference matching and the P2P market clear on-chain.
    Settle {
        /// The interval.
        interval: u32,
    },
    /// The operator posts a demand-response incentive over intervals
    /// `first..=last`.
    DrOffer {
        /// First interval of the event.
        first: u32,
        /// Last interval of the event.
        last: u32,
        /// Reward per kWh reduced below the baseline [µ-currency/kWh].
        rate: u64,
        /// Intervals before `first` whose mean consumption is the baseline.
        baseline: u32,
    },
    /// A consumer enrols in a demand-response event (before its meter has
    /// read the event's first interval).
    DrEnroll {
        /// The event (its index in posting order).
        event: u32,
    },
    /// The operator settles a demand-response event once its readings are
    /// in: each enrolled consumer is paid for its reduction.
    DrSettle {
        /// The event.
        event: u32,
    },
}

/// Most plants a supplier preference may rank.
pub const MAX_PREFERENCES: usize = 16;

impl TxBody {
    /// A short name for tables and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::Reading { .. } => "reading",
            TxBody::Issue { .. } => "issue",
            TxBody::Transfer { .. } => "transfer",
            TxBody::Claim { .. } => "claim",
            TxBody::Revoke { .. } => "revoke",
            TxBody::Prefer { .. } => "preference",
            TxBody::Pay { .. } => "payment",
            TxBody::Bid { .. } => "bid",
            TxBody::Ask { .. } => "ask",
            TxBody::Settle { .. } => "settlement",
            TxBody::DrOffer { .. } => "DR offer",
            TxBody::DrEnroll { .. } => "DR enrolment",
            TxBody::DrSettle { .. } => "DR settlement",
        }
    }
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// The signer.
    pub from: AccountId,
    /// The signer's nonce (0, 1, 2, … per account).
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
    /// ed25519 signature of [`Tx::signing_bytes`].
    #[serde(with = "serde_big_array::BigArray")]
    pub sig: [u8; 64],
}

/// The canonical bytes of a transaction's content.
pub fn signing_bytes(from: AccountId, nonce: u64, body: &TxBody) -> Vec<u8> {
    postcard::to_stdvec(&(CHAIN_ID, from, nonce, body)).expect("transactions serialise")
}

impl Tx {
    /// A transaction signed with `key`.
    pub fn signed(key: &SigningKey, from: AccountId, nonce: u64, body: TxBody) -> Tx {
        let sig = key.sign(&signing_bytes(from, nonce, &body)).to_bytes();
        Tx {
            from,
            nonce,
            body,
            sig,
        }
    }

    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(self.from, self.nonce, &self.body)
    }

    /// The signature.
    pub fn signature(&self) -> Signature {
        Signature::from_bytes(&self.sig)
    }

    /// SHA-256 of the signed bytes and the signature.
    pub fn hash(&self) -> Hash {
        let mut h = Sha256::new();
        h.update(self.signing_bytes());
        h.update(self.sig);
        h.finalize().into()
    }

    /// Its size on the wire [bytes] (postcard).
    pub fn size(&self) -> usize {
        postcard::to_stdvec(self).map_or(0, |v| v.len())
    }
}
