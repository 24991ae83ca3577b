//! Table definitions and record-key encodings of the store file.
//!
//! Keys scoped to a key id are `u16 BE len(key_id) ‖ key_id ‖ suffix`, which is prefix-free,
//! so a range scan over one key id never strays into another.

use redb::TableDefinition;

// Table names, also used as the first part of the sealing associated data.
pub(crate) const T_META: &str = "meta";
pub(crate) const T_KEYS: &str = "keys";
pub(crate) const T_SHARES: &str = "shares";
pub(crate) const T_AUX: &str = "aux";
pub(crate) const T_PRIMES: &str = "primes";
pub(crate) const T_PRESIGS: &str = "presignatures";
pub(crate) const T_PRESIG_SIGNERS: &str = "presignature_signers";
pub(crate) const T_USED_PRESIGS: &str = "used_presignatures";
pub(crate) const T_IDENTITY: &str = "identity";
pub(crate) const T_JOURNAL: &str = "journal";
pub(crate) const T_RESHARES: &str = "reshares";
pub(crate) const T_STAGED: &str = "staged_shares";
pub(crate) const T_JOURNAL_ROOTS: &str = "journal_roots";
pub(crate) const T_TOMBSTONES: &str = "tombstones";

/// Format parameters: version, salt, KDF parameters, verifier, counters.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new(T_META);
// Rows of KEYS, JOURNAL, JOURNAL_ROOTS, PRESIG_SIGNERS, USED_PRESIGS, RESHARES, STAGED and
// TOMBSTONES carry a MAC tag after the value (`rows.rs`).

/// Key records (public JSON, with tombstones): key id → `StoredKey` JSON.
pub(crate) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new(T_KEYS);
/// Sealed key shares: key id → sealed share (associated data: key id and its sharing).
pub(crate) const SHARES: TableDefinition<&str, &[u8]> = TableDefinition::new(T_SHARES);
/// Sealed aux info: membership id (32 bytes) → sealed aux.
pub(crate) const AUX: TableDefinition<&[u8], &[u8]> = TableDefinition::new(T_AUX);
/// Sealed safe-prime material, FIFO by sequence number.
pub(crate) const PRIMES: TableDefinition<u64, &[u8]> = TableDefinition::new(T_PRIMES);
/// Sealed presignatures: scoped(key id, presig id) → sealed bytes.
pub(crate) const PRESIGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new(T_PRESIGS);
/// Signer sets of stored presignatures (public): scoped(key id, presig id) → 20·n bytes.
pub(crate) const PRESIG_SIGNERS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new(T_PRESIG_SIGNERS);
/// Every presignature id ever consumed or discarded: presig id → used-at ms (u64 BE).
pub(crate) const USED_PRESIGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new(T_USED_PRESIGS);
/// Sealed node identity key: "node" → sealed 32 bytes.
pub(crate) const IDENTITY: TableDefinition<&str, &[u8]> = TableDefinition::new(T_IDENTITY);
/// Signing journal: scoped(key id, slot BE) → 32-byte digest.
pub(crate) const JOURNAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new(T_JOURNAL);
/// Per-element signing journal of state batches: scoped(key id, state-chain element index BE)
/// → the 32-byte root signed for that index.
pub(crate) const JOURNAL_ROOTS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new(T_JOURNAL_ROOTS);
/// Resharings this node prepared as an old holder: session id → sharing held ‖ key id.
pub(crate) const RESHARES: TableDefinition<&[u8], &[u8]> = TableDefinition::new(T_RESHARES);
/// Shares staged by a resharing until its commit: scoped(key id, session id) → `StoredStaged`
/// JSON (public facts and the sealed share).
pub(crate) const STAGED: TableDefinition<&[u8], &[u8]> = TableDefinition::new(T_STAGED);

/// Deleted keys' shares kept sealed for the retention period: scoped(key id, sharing session)
/// → `StoredTombstone` JSON (public facts, erase time and the sealed share).
pub(crate) const TOMBSTONES: TableDefinition<&[u8], &[u8]> = TableDefinition::new(T_TOMBSTONES);

pub(crate) const META_FORMAT: &str = "format";
pub(crate) const META_SALT: &str = "kdf_salt";
pub(crate) const META_KDF: &str = "kdf_params";
pub(crate) const META_VERIFIER: &str = "verifier";
pub(crate) const META_PRIMES_NEXT: &str = "primes_next";
pub(crate) const IDENTITY_RECORD: &str = "node";

/// Current on-disk format. 2: authenticated rows, sharing-bound shares, tombstones. Older
/// formats are refused at open (no migration).
pub(crate) const FORMAT_VERSION: u32 = 2;

/// `len ‖ key_id`: the prefix shared by every scoped record of a key.
pub(crate) fn key_prefix(key_id: &str) -> Vec<u8> {
    // Key ids are validated to at most 256 bytes, so the length always fits.
    let len = u16::try_from(key_id.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(2 + key_id.len() + 32);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(key_id.as_bytes());
    out
}

/// `len ‖ key_id ‖ suffix`.
pub(crate) fn scoped(key_id: &str, suffix: &[u8]) -> Vec<u8> {
    let mut out = key_prefix(key_id);
    out.extend_from_slice(suffix);
    out
}

/// Short human label for a 32-byte id in error messages (ids are public).
pub(crate) fn short_hex(id: &[u8]) -> String {
    let n = id.len().min(8);
    format!("{}…", hex::encode(&id[..n]))
}
