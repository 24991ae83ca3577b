//! `cohort-store`: the embedded, encrypted store of a Cohort node.
//!
//! A node keeps everything it must not lose or leak in one [`redb`] file: key records and
//! their sealed shares, Paillier aux info, the safe-prime pool, single-use presignatures, the
//! node identity key and the anti-equivocation signing journal. Secret values are sealed with
//! XChaCha20-Poly1305 under a key derived from the node passphrase with Argon2id; the
//! associated data binds every sealed blob to its store, table and record (for a share: its key
//! id and sharing), so a blob moved to another record fails to open. Public metadata (key
//! status, threshold, parties, public key) is kept unsealed so it can be listed cheaply, but the
//! rows a node's safety rests on (key records, journals, presignature and reshare marks, staged
//! records, tombstones) carry a MAC keyed from the unlocked master key, checked on every read
//! and for every row at open (`rows.rs`, `verify.rs`). Deletes are two-step: tombstone with
//! retention, then erase with compaction (`tombstones.rs`, `erase.rs`).
//!
//! On-disk format 2. Stores of format 1 (unauthenticated rows) are refused at open with a clear
//! message; there is no migration.
//!
//! The crate stores opaque bytes and does not depend on the threshold engine.
//!
//! # Use from async code
//! Every operation is one short, blocking redb transaction on small records (well under a
//! millisecond of CPU plus one fsync for writes). Async callers may call the store directly for
//! these small records; wrap [`Store::open`] (Argon2id, tens of milliseconds) and bulk work in
//! `spawn_blocking` if the runtime is latency sensitive. [`Store`] is `Clone + Send + Sync`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod aux;
mod aux_rotate;
mod erase;
mod error;
mod hexser;
mod identity;
mod journal;
mod kdf;
mod keys;
mod meta;
mod presign;
mod primes;
mod reshares;
mod rows;
mod seal;
mod staged;
mod store;
mod tables;
mod tombstones;
mod validate;
mod verify;

pub use erase::EraseReport;
pub use error::StoreError;
pub use journal::{BatchJournalOutcome, JournalOutcome};
pub use kdf::KdfParams;
pub use keys::{BeginKeygen, INTERRUPTED_KEYGEN_REASON, KeyRecord, KeyStatus};
pub use staged::{OpenedStaged, StagedShare};
pub use store::{Store, StoreOptions};
pub use tombstones::{Tombstone, TombstoneOutcome};
