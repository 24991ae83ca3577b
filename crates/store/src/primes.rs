//! The safe-prime pool: filled in the background, drained FIFO by keygen/aux generation so a
//! keygen never waits on prime search.

use crate::error::StoreError;
use crate::store::Store;
use crate::tables::{META, META_PRIMES_NEXT, PRIMES, T_META, T_PRIMES};
use redb::{ReadableTable, ReadableTableMetadata};
use zeroize::Zeroizing;

impl Store {
    /// Adds one sealed entry of prime material to the pool and returns the pool size after
    /// the push (so a filler knows when to stop).
    pub fn push_primes(&self, bytes: &[u8]) -> Result<u64, StoreError> {
        self.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let seq = match meta.get(META_PRIMES_NEXT)? {
                Some(g) => <[u8; 8]>::try_from(g.value())
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        table: T_META,
                        record: META_PRIMES_NEXT.to_owned(),
                    })?,
                None => 0,
            };
            let next = seq
                .checked_add(1)
                .ok_or_else(|| StoreError::Conflict("prime pool sequence exhausted".to_owned()))?;
            meta.insert(META_PRIMES_NEXT, next.to_be_bytes().as_slice())?;
            let sealed = self.sealer().seal(T_PRIMES, &seq.to_be_bytes(), bytes)?;
            let mut primes = txn.open_table(PRIMES)?;
            primes.insert(seq, sealed.as_slice())?;
            Ok((primes.len()?, true))
        })
    }

    /// Removes and returns the oldest pool entry, atomically (a popped entry is never handed
    /// out again, even after a crash). A blob that fails to open is dropped and reported.
    pub fn pop_primes(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.write(|txn| {
            let popped = txn
                .open_table(PRIMES)?
                .pop_first()?
                .map(|(k, v)| (k.value(), v.value().to_vec()));
            let Some((seq, sealed)) = popped else {
                return Ok((Ok(None), false));
            };
            let opened = self
                .sealer()
                .open(T_PRIMES, &seq.to_be_bytes(), || seq.to_string(), &sealed)
                .map(Some);
            Ok((opened, true))
        })?
    }

    /// Entries currently in the pool.
    pub fn primes_count(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(PRIMES)?.len()?))
    }
}
