//! The log follower: reads the contracts' events in confirmed blocks only, in ranges of at most
//! 1000 blocks, and hands each range to a consumer as one [`Batch`] (range, events in chain
//! order, new cursor) which the consumer commits with the batch's effects in one transaction.
//!
//! Reorg safety, the simple and sound way: only blocks at least `confirmations` deep are read,
//! so a reorg shallower than that never reaches the consumer. Before each batch the follower
//! checks that the cursor's block is still canonical and that the range's first block builds on
//! it; if not, the reorg was deeper than the confirmations and it stops with
//! [`L1Error::DeepReorg`] (naming the newest still-canonical block of the cursor's ring) rather
//! than apply events on a fork or guess what to undo.

use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy_primitives::B256;
use tokio::sync::watch;

use crate::cursor::Cursor;
use crate::error::L1Error;
use crate::events::{Contracts, EventLog, decode};
use crate::provider::L1Provider;
use crate::retry::retry;

/// The largest scan range: providers commonly cap `eth_getLogs` there.
pub const MAX_SCAN_RANGE: u64 = 1000;

/// The follower's settings (`[l1] confirmations, poll_secs, scan_range, start_block`).
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// The watched contracts.
    pub contracts: Contracts,
    /// Blocks below the head a block must be before it is read (0 reads the head).
    pub confirmations: u64,
    /// Blocks per `eth_getLogs`, 1..=1000.
    pub scan_range: u64,
    /// Pause between polls once caught up.
    pub poll_interval: Duration,
    /// The first block to read when there is no cursor (the contracts' deployment block).
    pub start_block: u64,
    /// How many recent `(height, hash)` pairs the cursor keeps.
    pub ring: usize,
}

impl FollowerConfig {
    /// The spec's defaults: 10 confirmations, 1000-block ranges, 10 s polls, a 64-entry ring.
    pub fn new(contracts: Contracts, start_block: u64) -> Self {
        FollowerConfig {
            contracts,
            confirmations: 10,
            scan_range: MAX_SCAN_RANGE,
            poll_interval: Duration::from_secs(10),
            start_block,
            ring: 64,
        }
    }
}

/// One range of confirmed blocks, its events in chain order and the cursor after it. The
/// consumer applies `events` and persists `cursor` in the same store transaction.
#[derive(Debug, Clone)]
pub struct Batch {
    /// First block of the range.
    pub from: u64,
    /// Last block of the range (the new cursor's height).
    pub to: u64,
    /// Decoded events, ordered by `(block, log_index)`.
    pub events: Vec<EventLog>,
    /// The cursor to persist with the effects.
    pub cursor: Cursor,
    /// The newest confirmed block when the batch was read; `to < safe_head` means more follow.
    pub safe_head: u64,
}

impl Batch {
    /// Whether this batch continues `current` (the consumer's persisted cursor): its range
    /// starts right after it and it was read on top of the same block. A consumer checks this
    /// inside its write transaction, so a stale or duplicated batch is never applied.
    pub fn follows(&self, current: Option<&Cursor>) -> bool {
        match current {
            None => true,
            Some(c) => {
                self.from == c.height + 1 && self.cursor.recent().any(|p| p == (c.height, c.hash))
            }
        }
    }
}

/// The consumer side of [`Follower::run`]: the store of the cursor and the applied effects.
pub trait Consumer {
    /// The persisted cursor (None before the first batch).
    fn cursor(&mut self) -> Result<Option<Cursor>, L1Error>;
    /// Applies `batch.events` and persists `batch.cursor` atomically (one store transaction).
    /// It must refuse a batch that does not [`Batch::follows`] its persisted cursor.
    fn apply(&mut self, batch: &Batch) -> Result<(), L1Error>;
}

/// Follows the watched contracts' events on a connected [`L1Provider`].
#[derive(Debug, Clone)]
pub struct Follower {
    provider: L1Provider,
    cfg: FollowerConfig,
}

struct BlockRef {
    hash: B256,
    parent: B256,
}

impl Follower {
    /// A follower; refuses a scan range outside 1..=1000 or an empty ring.
    pub fn new(provider: L1Provider, cfg: FollowerConfig) -> Result<Follower, L1Error> {
        if cfg.scan_range == 0 || cfg.scan_range > MAX_SCAN_RANGE {
            return Err(L1Error::Config(format!(
                "scan_range must be 1..={MAX_SCAN_RANGE}, got {}",
                cfg.scan_range
            )));
        }
        if cfg.ring < 2 {
            return Err(L1Error::Config(
                "ring must keep at least two blocks (the cursor and its predecessor)".into(),
            ));
        }
        Ok(Follower { provider, cfg })
    }

    /// The configuration.
    pub fn config(&self) -> &FollowerConfig {
        &self.cfg
    }

    async fn block(&self, n: u64) -> Result<Option<BlockRef>, L1Error> {
        let p = self.provider.inner();
        let b = retry(self.provider.retry_policy(), "eth_getBlockByNumber", || {
            p.get_block_by_number(BlockNumberOrTag::Number(n))
        })
        .await?;
        Ok(b.map(|b| BlockRef {
            hash: b.header.hash,
            parent: b.header.inner.parent_hash,
        }))
    }

    async fn must_block(&self, n: u64) -> Result<BlockRef, L1Error> {
        self.block(n).await?.ok_or_else(|| L1Error::Missing {
            what: format!("block {n}"),
        })
    }

    /// Checks that the cursor's block is still canonical; otherwise [`L1Error::DeepReorg`].
    pub async fn check_cursor(&self, cursor: &Cursor) -> Result<(), L1Error> {
        let now = self.block(cursor.height).await?.map(|b| b.hash);
        if now == Some(cursor.hash) {
            return Ok(());
        }
        let mut common = None;
        for (h, hash) in cursor.recent().skip(1) {
            if self.block(h).await?.map(|b| b.hash) == Some(hash) {
                common = Some((h, hash));
                break;
            }
        }
        tracing::error!(height = cursor.height, stored = %cursor.hash, chain = ?now, ?common,
            "L1 reorg deeper than the confirmations: the follower stops");
        Err(L1Error::DeepReorg {
            height: cursor.height,
            stored: cursor.hash,
            chain: now,
            common,
        })
    }

    /// The next batch after `cursor` (or from `start_block`), or `None` when caught up with the
    /// confirmed head. Nothing is applied here: the consumer commits the batch.
    pub async fn next_batch(&self, cursor: Option<&Cursor>) -> Result<Option<Batch>, L1Error> {
        let head = self.provider.head().await?;
        let Some(safe_head) = head.checked_sub(self.cfg.confirmations) else {
            return Ok(None);
        };
        if let Some(c) = cursor {
            self.check_cursor(c).await?;
        }
        let from = match cursor {
            Some(c) => c.height + 1,
            None => self.cfg.start_block,
        };
        if from > safe_head {
            return Ok(None);
        }
        let to = safe_head.min(from + self.cfg.scan_range - 1);
        let last = self.must_block(to).await?;
        let filter = Filter::new()
            .from_block(from)
            .to_block(to)
            .address(self.cfg.contracts.addresses())
            .event_signature(self.cfg.contracts.topics());
        let p = self.provider.inner();
        let logs = retry(self.provider.retry_policy(), "eth_getLogs", || {
            p.get_logs(&filter)
        })
        .await?;
        let first = if from == to {
            BlockRef {
                hash: last.hash,
                parent: last.parent,
            }
        } else {
            self.must_block(from).await?
        };
        let last_again = self.must_block(to).await?;
        if let Some(c) = cursor
            && first.parent != c.hash
        {
            // The range does not build on the cursor: either a deep reorg (reported) or the
            // chain moved under the scan (retried).
            self.check_cursor(c).await?;
            return Err(L1Error::Rpc {
                method: "eth_getLogs",
                message: "the chain changed during the scan".into(),
            });
        }
        if last_again.hash != last.hash {
            return Err(L1Error::Rpc {
                method: "eth_getLogs",
                message: "the chain changed during the scan".into(),
            });
        }
        let mut events = Vec::with_capacity(logs.len());
        for log in &logs {
            if log.removed {
                continue;
            }
            if let Some(e) = decode(&self.cfg.contracts, log)? {
                if e.block < from || e.block > to {
                    return Err(L1Error::Rpc {
                        method: "eth_getLogs",
                        message: format!("log of block {} outside {from}..={to}", e.block),
                    });
                }
                if e.block == to && e.block_hash != last.hash {
                    return Err(L1Error::Rpc {
                        method: "eth_getLogs",
                        message: "the chain changed during the scan".into(),
                    });
                }
                events.push(e);
            }
        }
        events.sort_by_key(|e| (e.block, e.log_index));
        let cursor = match cursor {
            Some(c) => c.advanced(to, last.hash, self.cfg.ring),
            None => Cursor::new(to, last.hash),
        };
        tracing::debug!(from, to, events = events.len(), safe_head, "L1 batch read");
        Ok(Some(Batch {
            from,
            to,
            events,
            cursor,
            safe_head,
        }))
    }

    /// Reads and applies batches until caught up with the confirmed head; returns how many
    /// batches were applied. Stops at the first error.
    pub async fn sync<C: Consumer>(&self, consumer: &mut C) -> Result<usize, L1Error> {
        let mut applied = 0;
        loop {
            let cursor = consumer.cursor()?;
            match self.next_batch(cursor.as_ref()).await? {
                Some(batch) => {
                    consumer.apply(&batch)?;
                    applied += 1;
                    if batch.to >= batch.safe_head {
                        return Ok(applied);
                    }
                }
                None => return Ok(applied),
            }
        }
    }

    /// Follows until `shutdown` turns true or a fatal error: polls every `poll_interval`,
    /// retries RPC failures (after [`retry`]'s own attempts) at the poll pace, and returns at
    /// once on a deep reorg, an undecodable event, or a store error.
    pub async fn run<C: Consumer>(
        &self,
        consumer: &mut C,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), L1Error> {
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match self.sync(consumer).await {
                Ok(_) => {}
                Err(
                    e @ (L1Error::Rpc { .. } | L1Error::Timeout { .. } | L1Error::Missing { .. }),
                ) => {
                    tracing::warn!(error = %e, "L1 follower: RPC trouble, retrying at the next poll");
                }
                Err(e) => {
                    tracing::error!(error = %e, "L1 follower stopped");
                    return Err(e);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                r = shutdown.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
