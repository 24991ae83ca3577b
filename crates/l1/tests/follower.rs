//! The log follower on a real anvil with a real redb store: a restart mid-range resumes from
//! the persisted cursor without applying an event twice, a reorg shallower than the
//! confirmations never reaches the store, and a deeper one stops the follower loudly with the
//! store untouched. One anvil for the file (`evm_snapshot` / `evm_revert` act on the chain).

mod common;

use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use cohort_l1::bindings::TestChallenge as C;
use cohort_l1::bindings::TestChallenge::TestChallengeEvents;
use cohort_l1::cursor::{read_cursor, read_cursor_in, write_cursor};
use cohort_l1::{
    Batch, Consumer, Contracts, Cursor, Event, Follower, FollowerConfig, L1Error, L1Provider,
    ProviderConfig,
};
use common::{Chain, Deployment};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::json;

/// How many times each event `(block, log_index)` was applied.
const APPLIED: TableDefinition<(u64, u64), u64> = TableDefinition::new("applied");
/// `ChallengeSet.startInboxSize` (the test's marker) → times applied.
const MARKERS: TableDefinition<u64, u64> = TableDefinition::new("markers");

/// A consumer over a real redb file: the effects and the cursor in one write transaction.
struct Store {
    db: redb::Database,
}

impl Store {
    fn open(path: &std::path::Path) -> Store {
        Store {
            db: redb::Database::create(path).unwrap(),
        }
    }

    fn markers(&self) -> Vec<(u64, u64)> {
        let txn = self.db.begin_read().unwrap();
        let Ok(t) = txn.open_table(MARKERS) else {
            return vec![];
        };
        t.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value())
            })
            .collect()
    }

    fn max_applied(&self) -> u64 {
        let txn = self.db.begin_read().unwrap();
        let Ok(t) = txn.open_table(APPLIED) else {
            return 0;
        };
        t.iter()
            .unwrap()
            .map(|r| r.unwrap().1.value())
            .max()
            .unwrap_or(0)
    }
}

impl Consumer for Store {
    fn cursor(&mut self) -> Result<Option<Cursor>, L1Error> {
        read_cursor(&self.db)
    }

    fn apply(&mut self, batch: &Batch) -> Result<(), L1Error> {
        let e = |e: redb::Error| L1Error::Store(e.to_string());
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        let current = read_cursor_in(&txn)?;
        if !batch.follows(current.as_ref()) {
            return Err(L1Error::Store(format!(
                "batch {}..={} does not follow the cursor {current:?}",
                batch.from, batch.to
            )));
        }
        {
            let mut applied = txn.open_table(APPLIED).map_err(|x| e(x.into()))?;
            let mut markers = txn.open_table(MARKERS).map_err(|x| e(x.into()))?;
            for ev in &batch.events {
                let k = (ev.block, ev.log_index);
                let n = applied
                    .get(k)
                    .map_err(|x| e(x.into()))?
                    .map_or(0, |g| g.value());
                applied.insert(k, n + 1).map_err(|x| e(x.into()))?;
                if let Event::Challenge(TestChallengeEvents::ChallengeSet(s)) = &ev.event {
                    let m: u64 = s.startInboxSize.to();
                    let n = markers
                        .get(m)
                        .map_err(|x| e(x.into()))?
                        .map_or(0, |g| g.value());
                    markers.insert(m, n + 1).map_err(|x| e(x.into()))?;
                }
            }
        }
        write_cursor(&txn, &batch.cursor)?;
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(())
    }
}

async fn mark(chain: &Chain, challenge: Address, marker: u64) {
    let a = Address::repeat_byte(0x11);
    chain
        .exec(
            chain.accounts[1],
            challenge,
            &C::setCall {
                _defender: a,
                _challenger: a,
                _winner: a,
                _rollback: false,
                _startInboxSize: U256::from(marker),
            },
        )
        .await;
}

async fn follower(
    chain: &Chain,
    contracts: &Contracts,
    start: u64,
    conf: u64,
    range: u64,
) -> Follower {
    let provider = L1Provider::connect(&ProviderConfig::new(chain.url(), 31337))
        .await
        .unwrap();
    let mut cfg = FollowerConfig::new(contracts.clone(), start);
    cfg.confirmations = conf;
    cfg.scan_range = range;
    cfg.poll_interval = Duration::from_millis(100);
    cfg.ring = 16;
    Follower::new(provider, cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_restart_and_reorgs_apply_each_event_once() {
    let chain = Chain::start().await;
    let d = Deployment::new(&chain).await;
    let challenge = chain.deploy(&C::BYTECODE, vec![]).await;
    let contracts = Contracts {
        group_manager: d.gm,
        staking: d.staking,
        scc: Address::repeat_byte(0xcc),
        challenge: Some(challenge),
    };
    let dir = tempfile::tempdir().unwrap();

    // The configuration is checked: no scan range above 1000 blocks.
    let provider = L1Provider::connect(&ProviderConfig::new(chain.url(), 31337))
        .await
        .unwrap();
    let mut bad = FollowerConfig::new(contracts.clone(), 0);
    bad.scan_range = 1001;
    assert!(matches!(
        Follower::new(provider, bad),
        Err(L1Error::Config(_))
    ));

    // --- 1. Restart mid-range. 12 marked events, 3 blocks per range, 2 confirmations.
    let start = 1;
    for m in 1..=12 {
        mark(&chain, challenge, m).await;
    }
    chain.mine(2).await;
    let path = dir.path().join("restart.redb");
    {
        let mut store = Store::open(&path);
        let f = follower(&chain, &contracts, start, 2, 3).await;
        // Two batches applied, then a third read but "crashed" before its commit.
        let mut done = Vec::new();
        for _ in 0..2 {
            let b = f
                .next_batch(store.cursor().unwrap().as_ref())
                .await
                .unwrap()
                .unwrap();
            assert!(b.to - b.from < 3, "range above scan_range: {b:?}");
            store.apply(&b).unwrap();
            done.push(b);
        }
        let lost = f
            .next_batch(store.cursor().unwrap().as_ref())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lost.from, start + 6);
        let c = store.cursor().unwrap().unwrap();
        assert_eq!(c.height, start + 5);
        // A batch delivered again (a retry after an unknown commit outcome) is refused by the
        // consumer's check inside its transaction, and nothing is written.
        let markers = store.markers();
        assert!(matches!(store.apply(&done[1]), Err(L1Error::Store(_))));
        assert_eq!(store.markers(), markers);
        assert_eq!(store.cursor().unwrap().unwrap(), c);
        // A cursor the chain does not have is a deep reorg, not a silent restart.
        let bogus = f
            .next_batch(Some(&Cursor::new(start + 2, B256::ZERO)))
            .await;
        assert!(matches!(bogus, Err(L1Error::DeepReorg { .. })), "{bogus:?}");
        // store and follower dropped here: the process "stops".
    }
    let mut store = Store::open(&path);
    let f = follower(&chain, &contracts, start, 2, 3).await;
    let n = f.sync(&mut store).await.unwrap();
    assert!(n >= 3, "{n} batches after restart");
    let head = chain.head().await;
    assert_eq!(store.cursor().unwrap().unwrap().height, head - 2);
    let markers = store.markers();
    assert_eq!(
        markers,
        (1..=12).map(|m| (m, 1)).collect::<Vec<_>>(),
        "each event exactly once"
    );
    assert_eq!(store.max_applied(), 1, "an event was applied twice");
    // A second sync finds nothing new and changes nothing.
    assert_eq!(f.sync(&mut store).await.unwrap(), 0);
    assert_eq!(store.markers().len(), 12);
    drop(store);

    // --- 2. A reorg shallower than the confirmations (3): the orphaned event is never applied.
    let path = dir.path().join("reorg.redb");
    let mut store = Store::open(&path);
    let f = follower(&chain, &contracts, chain.head().await + 1, 3, 4).await;
    f.sync(&mut store).await.unwrap();
    let snap = chain.rpc("evm_snapshot", json!([])).await.unwrap();
    mark(&chain, challenge, 100).await;
    chain.mine(1).await;
    f.sync(&mut store).await.unwrap();
    chain.rpc("evm_revert", json!([snap])).await.unwrap();
    mark(&chain, challenge, 101).await;
    chain.mine(4).await;
    f.sync(&mut store).await.unwrap();
    assert_eq!(
        store.markers(),
        vec![(101, 1)],
        "orphaned marker 100 must not be applied"
    );

    // --- 3. A reorg deeper than the confirmations: a typed error, the store untouched.
    let before = store.cursor().unwrap().unwrap();
    let snap = chain.rpc("evm_snapshot", json!([])).await.unwrap();
    let fork_at = chain.head().await;
    mark(&chain, challenge, 200).await;
    chain.mine(4).await;
    f.sync(&mut store).await.unwrap();
    assert_eq!(store.markers(), vec![(101, 1), (200, 1)]);
    let applied = store.cursor().unwrap().unwrap();
    assert!(applied.height > fork_at && applied.height > before.height);
    chain.rpc("evm_revert", json!([snap])).await.unwrap();
    mark(&chain, challenge, 201).await;
    chain.mine(6).await;
    let err = f.sync(&mut store).await.unwrap_err();
    match &err {
        L1Error::DeepReorg {
            height,
            stored,
            chain: now,
            common,
        } => {
            assert_eq!(*height, applied.height);
            assert_eq!(*stored, applied.hash);
            assert!(now.is_some_and(|h| h != applied.hash));
            let (h, _) = common.expect("a common block in the ring");
            assert!(
                h <= fork_at,
                "common block {h} above the fork point {fork_at}"
            );
        }
        other => panic!("want DeepReorg, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("reorg deeper than the confirmations")
    );
    // `run` stops on it too, instead of looping.
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let r = tokio::time::timeout(Duration::from_secs(20), f.run(&mut store, rx))
        .await
        .expect("run must stop on a deep reorg");
    assert!(matches!(r, Err(L1Error::DeepReorg { .. })));
    assert_eq!(
        store.cursor().unwrap().unwrap(),
        applied,
        "cursor moved after a deep reorg"
    );
    assert_eq!(
        store.markers(),
        vec![(101, 1), (200, 1)],
        "store changed after a deep reorg"
    );
}
