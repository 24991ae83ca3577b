//! In-crate tests of the node: the prepared-session rules, the prepare rules of each operation
//! and the resharing commit — over a temporary store and a loopback p2p host with no peers,
//! without a manager, a socket to one, or another node.

mod prepare_rules;
mod presignatures;
mod reshare_commit;
mod session_rules;

use std::sync::Arc;

use cohort_p2p::{P2p, P2pConfig};
use cohort_store::{BeginKeygen, KdfParams, KeyRecord, Store, StoreOptions};
use cohort_wire::{Address, Bytes32, KeyId, ManagerMsg, NodeMsg};

use crate::config::MemberConfig;
use crate::identity::NodeIdentity;
use crate::{Inner, NodeConfig};

/// A node of a membership of `n` (itself the first), its store in a temporary directory.
pub(crate) struct TestNode {
    pub inner: Arc<Inner>,
    pub members: Vec<Address>,
    pub dir: tempfile::TempDir,
}

pub(crate) fn key(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

pub(crate) fn session(n: u8) -> Bytes32 {
    Bytes32([n; 32])
}

pub(crate) fn fast() -> StoreOptions {
    StoreOptions {
        kdf: KdfParams {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        },
    }
}

const PASS: &[u8] = b"test passphrase";

impl TestNode {
    /// A node whose membership is itself and `n - 1` other addresses.
    pub(crate) async fn new(n: u8) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        Self::in_dir(n, dir).await
    }

    /// A node over the store in `dir`; a second call on the same directory is a restart (the
    /// node key is in the store).
    pub(crate) async fn in_dir(n: u8, dir: tempfile::TempDir) -> TestNode {
        let store = Store::open(dir.path().join("node.redb"), PASS, fast()).unwrap();
        // What `Node::start` does with the store before it answers anyone.
        crate::ops::presign::discard_at_start(&store).unwrap();
        let secret = match store.get_identity().unwrap() {
            Some(s) => s,
            None => {
                let s = NodeIdentity::generate();
                store.put_identity(&s).unwrap();
                s
            }
        };
        let identity = NodeIdentity::from_secret(secret).unwrap();
        let mut members = vec![identity.address()];
        members.extend((2..=n).map(|i| Address([i; 20])));
        let mut config =
            NodeConfig::from_toml(&format!("data_dir = {:?}", dir.path().display())).unwrap();
        config.members = members
            .iter()
            .map(|a| MemberConfig {
                address: *a,
                p2p: None,
            })
            .collect();
        config.insecure_test_primes = true;
        let p2p = P2p::start(P2pConfig::new(
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            identity.secret(),
            Vec::new(),
        ))
        .await
        .unwrap();
        let inner = Arc::new(Inner::new(config, store, p2p, identity, None, None));
        TestNode {
            inner,
            members,
            dir,
        }
    }

    pub(crate) fn me(&self) -> Address {
        self.members[0]
    }

    /// Edits the configuration (before the node is shared).
    pub(crate) fn config(&mut self) -> &mut NodeConfig {
        &mut Arc::get_mut(&mut self.inner).unwrap().config
    }

    /// A READY key record with an opaque (unusable) share: enough for every rule that reads
    /// only the record.
    pub(crate) fn ready_key(
        &self,
        key_id: &str,
        sess: Bytes32,
        t: u16,
        parties: &[Address],
    ) -> KeyRecord {
        let store = &self.inner.store;
        let parties: Vec<[u8; 20]> = parties.iter().map(|p| p.0).collect();
        match store.begin_keygen(key_id, sess.0, t, parties).unwrap() {
            BeginKeygen::Started(_) => {}
            other => panic!("{other:?}"),
        }
        store
            .finish_keygen(key_id, sess.0, &[4u8; 65], b"opaque-share")
            .unwrap()
    }

    /// The answers of this node to `msg`.
    pub(crate) async fn send(&self, msg: ManagerMsg) -> Vec<NodeMsg> {
        crate::dispatch::answers(&self.inner, msg).await
    }

    /// The single answer to `msg`.
    pub(crate) async fn one(&self, msg: ManagerMsg) -> NodeMsg {
        let mut a = self.send(msg).await;
        assert_eq!(a.len(), 1, "{a:?}");
        a.remove(0)
    }
}

/// The error code of a refusal, panicking on anything else.
pub(crate) fn refusal(msg: &NodeMsg) -> (cohort_wire::ErrorCode, String) {
    match msg {
        NodeMsg::Refused { error, .. } => (error.code, error.message.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
