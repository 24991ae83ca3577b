//! The check run by [`crate::Store::open`] before a store is used: every authenticated row's
//! MAC (`rows.rs`), and every READY key's share opened under its record's sharing, so a
//! tampered row or a share swapped in from another sharing refuses the open with an error
//! that names the record (never its content).

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use crate::error::{Result, StoreError};
use crate::keys::{self, KeyStatus};
use crate::rows::RowMac;
use crate::seal::Sealer;
use crate::tables::{
    JOURNAL, JOURNAL_ROOTS, KEYS, PRESIG_SIGNERS, RESHARES, SHARES, STAGED, T_JOURNAL,
    T_JOURNAL_ROOTS, T_PRESIG_SIGNERS, T_RESHARES, T_SHARES, T_STAGED, T_TOMBSTONES,
    T_USED_PRESIGS, TOMBSTONES, USED_PRESIGS, short_hex,
};

/// Checks the MAC of every row of a byte-keyed authenticated table.
fn rows_of(
    txn: &WriteTransaction,
    rows: &RowMac,
    def: TableDefinition<&'static [u8], &'static [u8]>,
    name: &'static str,
) -> Result<()> {
    let table = txn.open_table(def)?;
    for entry in table.iter()? {
        let (k, v) = entry?;
        rows.unwrap(name, k.value(), v.value(), || short_hex(k.value()))?;
    }
    Ok(())
}

/// Every check of the module doc, inside the open's write transaction.
pub(crate) fn all(txn: &WriteTransaction, sealer: &Sealer, rows: &RowMac) -> Result<()> {
    for (def, name) in [
        (JOURNAL, T_JOURNAL),
        (JOURNAL_ROOTS, T_JOURNAL_ROOTS),
        (PRESIG_SIGNERS, T_PRESIG_SIGNERS),
        (USED_PRESIGS, T_USED_PRESIGS),
        (RESHARES, T_RESHARES),
        (STAGED, T_STAGED),
        (TOMBSTONES, T_TOMBSTONES),
    ] {
        rows_of(txn, rows, def, name)?;
    }
    let keys_table = txn.open_table(KEYS)?;
    let shares = txn.open_table(SHARES)?;
    for entry in keys_table.iter()? {
        let (k, v) = entry?;
        let key_id = k.value();
        let stored = keys::decode(rows, key_id, v.value())?;
        if stored.deleted_at_ms.is_some() || stored.record.status != KeyStatus::Ready {
            continue;
        }
        let corrupt = || StoreError::Corrupt {
            table: T_SHARES,
            record: key_id.to_owned(),
        };
        let guard = shares.get(key_id)?.ok_or_else(corrupt)?;
        let record = keys::share_record(key_id, &stored.record.key_session_id);
        // Opened only to authenticate it; the plaintext is zeroized when dropped.
        sealer
            .try_open(T_SHARES, &record, guard.value())
            .ok_or_else(corrupt)?;
    }
    Ok(())
}
