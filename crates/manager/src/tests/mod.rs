//! In-crate tests of the coordination runtime and of every operation, against scripted fake
//! nodes: no processes, no sockets. A fake node is attached to the real [`Links`] (as a
//! WebSocket would be), sees every frame the manager sends it, and answers by a script —
//! honestly by default (with real signatures of a k256 key the test holds), or silent, refusing,
//! late, or disconnecting wherever a test says.

mod api;
mod disconnects;
mod late_answers;
mod listener;
mod refusals;
mod reshare_commit;
mod runtime;
mod sign_choice;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cohort_wire::{
    Address, Bytes32, ErrorBody, ErrorCode, HexBytes, KeyId, KeyInfo, ManagerMsg, NodeMsg,
};
use k256::ecdsa::SigningKey;
use tokio::sync::mpsc;

use crate::config::{ManagerConfig, ManagerTimeouts};
use crate::persist::oplog::OperationLog;
use crate::persist::registry::{KeyEntry, Registry};
use crate::record::OpRecord;
use crate::{State, links};

/// A temporary directory removed on drop.
pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        let mut b = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
        let p = std::env::temp_dir().join(format!("cohort-manager-test-{}", hex::encode(b)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn addr(i: usize) -> Address {
    Address([i as u8 + 1; 20])
}

/// What a fake node does with one frame.
pub(crate) enum Act {
    /// Answers with this frame.
    Reply(NodeMsg),
    /// Answers after a pause.
    Later(Duration, NodeMsg),
    /// Disconnects (its socket closes).
    Drop,
}

/// A manager state over `n` members with a test key, and fake nodes attached to its links.
pub(crate) struct Net {
    pub state: Arc<State>,
    pub members: Vec<Address>,
    /// The key the fake nodes "hold": they sign with it, the manager verifies against it.
    pub key: SigningKey,
    /// Every frame each fake node received, in order.
    pub seen: Arc<Mutex<Vec<(Address, ManagerMsg)>>>,
    conns: Mutex<std::collections::HashMap<Address, u64>>,
    _dir: TempDir,
}

pub(crate) type Script = Box<dyn FnMut(&Net1, &ManagerMsg) -> Vec<Act> + Send>;

/// What a script can read: who it is, and the key it signs with.
pub(crate) struct Net1 {
    pub me: Address,
    pub key: SigningKey,
}

impl Net {
    /// `n` members; timeouts in seconds (prepare, protocol).
    pub(crate) fn new(n: usize, prepare_secs: u64, run_secs: u64) -> Net {
        Net::with_http(n, prepare_secs, run_secs, Default::default())
    }

    /// As [`Net::new`], with these listener limits.
    pub(crate) fn with_http(
        n: usize,
        prepare_secs: u64,
        run_secs: u64,
        http: crate::config::HttpLimits,
    ) -> Net {
        let dir = TempDir::new();
        let members: Vec<Address> = (0..n).map(addr).collect();
        let config = ManagerConfig {
            listen: "127.0.0.1:0".into(),
            ws_listen: None,
            tls: None,
            data_dir: dir.path().to_path_buf(),
            members: members.clone(),
            state_key_id: "state".into(),
            presign_pool_depth: 0,
            api_token_file: None,
            jwt_secret_file: None,
            max_state_roots: 8192,
            signature_cache_entries: 1000,
            oplog_retention: 1000,
            timeouts: ManagerTimeouts {
                prepare_secs,
                keygen_secs: run_secs,
                sign_secs: run_secs,
                aux_secs: run_secs,
                handshake_secs: 1,
                prepare_per_1000_roots_secs: 3,
            },
            http,
            l1: None,
        };
        let registry = Registry::open(&dir.path().join("keys.redb")).unwrap();
        let oplog = OperationLog::open(dir.path().join("operations.redb")).unwrap();
        Net {
            state: Arc::new(State::new(
                config,
                crate::identity::ManagerIdentity::load_or_create(dir.path()).unwrap(),
                registry,
                oplog,
                crate::auth::Credentials::default(),
                None,
            )),
            members,
            key: SigningKey::random(&mut rand::thread_rng()),
            seen: Arc::new(Mutex::new(Vec::new())),
            conns: Mutex::new(std::collections::HashMap::new()),
            _dir: dir,
        }
    }

    /// The uncompressed public key of the test key.
    pub(crate) fn public_key(&self) -> HexBytes {
        HexBytes(
            self.key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        )
    }

    /// Registers key `id` held by the first `n` members, `t` of them signing.
    pub(crate) fn seed_key(&self, id: &str, t: u16, n: usize) -> KeyEntry {
        let entry = KeyEntry {
            key_id: KeyId::new(id).unwrap(),
            key_session_id: Bytes32([9; 32]),
            threshold: t,
            parties: self.members[..n].to_vec(),
            public_key: self.public_key(),
            deleted: false,
            created_at_ms: 1,
            pending_commit: Vec::new(),
            acks: Vec::new(),
        };
        self.state.registry.put(&entry).unwrap();
        entry
    }

    /// Attaches every member as an honest fake node.
    pub(crate) fn honest_all(&self) {
        for i in 0..self.members.len() {
            self.node(i, Box::new(honest));
        }
    }

    /// Attaches member `i` with `script` (a new connection: the reconnect hooks run).
    pub(crate) fn node(&self, i: usize, mut script: Script) {
        let me = self.members[i];
        let state = self.state.clone();
        let seen = self.seen.clone();
        let ctx = Net1 {
            me,
            key: self.key.clone(),
        };
        let (conn_id, mut rx) = links::attach(&state, me, format!("peer-{i}"));
        self.conns.lock().unwrap().insert(me, conn_id);
        let (tx, mut replies) = mpsc::channel::<(Duration, NodeMsg)>(64);
        // Answers go through the router as a socket's frames would, in order per pause.
        {
            let state = state.clone();
            tokio::spawn(async move {
                while let Some((pause, msg)) = replies.recv().await {
                    let state = state.clone();
                    if pause.is_zero() {
                        links::route(&state, me, conn_id, msg);
                    } else {
                        tokio::spawn(async move {
                            tokio::time::sleep(pause).await;
                            links::route(&state, me, conn_id, msg);
                        });
                    }
                }
            });
        }
        links::on_connected(&state, &me);
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                seen.lock().unwrap().push((me, msg.clone()));
                for act in script(&ctx, &msg) {
                    match act {
                        Act::Reply(m) => {
                            let _ = tx.send((Duration::ZERO, m)).await;
                        }
                        Act::Later(d, m) => {
                            let _ = tx.send((d, m)).await;
                        }
                        Act::Drop => {
                            links::detach(&state, &me, conn_id);
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Member `i` reports a status without aux info for the membership.
    pub(crate) fn lacks_aux(&self, i: usize) {
        let me = self.members[i];
        let conn_id = self.conns.lock().unwrap()[&me];
        links::route(
            &self.state,
            me,
            conn_id,
            NodeMsg::Status {
                aux_members: Vec::new(),
                keys: 0,
                primes_ready: 0,
                tombstoned: Vec::new(),
                l1: None,
            },
        );
    }

    /// Lets the fake nodes take in what was just sent to them.
    pub(crate) async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// The frames `a` received that `pick` selects.
    pub(crate) fn received(&self, a: Address, pick: fn(&ManagerMsg) -> bool) -> Vec<ManagerMsg> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, m)| *to == a && pick(m))
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// The stored record of `session`.
    pub(crate) fn record(&self, session: Bytes32) -> OpRecord {
        let e = self.state.oplog.get(session.0).unwrap().unwrap();
        serde_json::from_slice(&e.record_json).unwrap()
    }

    /// Every stored record, newest first.
    pub(crate) fn records(&self) -> Vec<OpRecord> {
        self.state
            .oplog
            .list_recent(100)
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_slice(&e.record_json).unwrap())
            .collect()
    }
}

/// A real signature of `digest` with `key`, as a node's KeySignFinish carries it.
pub(crate) fn signature(key: &SigningKey, digest: &Bytes32) -> HexBytes {
    let (sig, recid) = key.sign_prehash_recoverable(&digest.0).unwrap();
    let mut out = sig.to_bytes().to_vec();
    out.push(27 + recid.to_byte());
    HexBytes(out)
}

pub(crate) fn refused(session_id: Bytes32, code: ErrorCode, why: &str) -> NodeMsg {
    NodeMsg::Refused {
        session_id,
        error: ErrorBody::new(code, why),
    }
}

/// A node that agrees to everything and does its part right.
pub(crate) fn honest(n: &Net1, m: &ManagerMsg) -> Vec<Act> {
    let public_key = HexBytes(
        n.key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
    );
    let reply = match m.clone() {
        ManagerMsg::AuxInfoPrepare { session_id, .. } => NodeMsg::AuxInfoReady {
            session_id,
            test_primes: false,
        },
        ManagerMsg::AuxInfoStart { session_id, .. } => NodeMsg::AuxInfoFinish {
            session_id,
            result: Ok(()),
        },
        ManagerMsg::KeyGenPrepare { session_id, .. } => NodeMsg::KeyGenReady {
            session_id,
            existing: None,
        },
        ManagerMsg::KeyGenStart {
            session_id,
            key_id,
            threshold,
            parties,
        } => NodeMsg::KeyGenFinish {
            session_id,
            result: Ok(KeyInfo {
                key_id,
                key_session_id: session_id,
                threshold,
                parties,
                public_key,
            }),
        },
        ManagerMsg::KeySignPrepare { session_id, .. } => NodeMsg::KeySignReady {
            session_id,
            l2_ms: None,
        },
        ManagerMsg::KeySignStart {
            session_id,
            digest,
            presignature: None,
            ..
        } => NodeMsg::KeySignFinish {
            session_id,
            result: Ok(signature(&n.key, &digest)),
        },
        ManagerMsg::KeySignStart { session_id, .. } => NodeMsg::KeySignFinish {
            session_id,
            result: Err(ErrorBody::new(
                ErrorCode::ProtocolFailed,
                "this fake node has no presignature",
            )),
        },
        ManagerMsg::PresignPrepare { session_id, .. } => NodeMsg::PresignReady { session_id },
        ManagerMsg::PresignStart { session_id, .. } => NodeMsg::PresignFinish {
            session_id,
            result: Ok(()),
        },
        ManagerMsg::KeyResharePrepare { session_id, .. } => NodeMsg::KeyReshareReady { session_id },
        ManagerMsg::KeyReshareStart { session_id, spec } => NodeMsg::KeyReshareFinish {
            session_id,
            result: Ok(spec.new_parties.contains(&n.me).then(|| KeyInfo {
                key_id: spec.key_id.clone(),
                key_session_id: session_id,
                threshold: spec.new_threshold,
                parties: spec.new_parties.clone(),
                public_key: spec.public_key.clone(),
            })),
            ack: spec
                .new_parties
                .contains(&n.me)
                .then(|| cohort_wire::ReshareAck {
                    party: n.me,
                    public_shares: Vec::new(),
                    aux_modulus: cohort_wire::Bytes32([0; 32]),
                    signature: cohort_wire::HexBytes(vec![0; 65]),
                }),
        },
        ManagerMsg::KeyReshareCommit {
            session_id, key_id, ..
        } => NodeMsg::KeyReshareDone {
            session_id,
            key_id,
            result: Ok(()),
        },
        ManagerMsg::KeyDelete {
            session_id, key_id, ..
        } => NodeMsg::KeyDeleted {
            session_id,
            key_id,
            existed: true,
        },
        _ => return Vec::new(),
    };
    vec![Act::Reply(reply)]
}

/// A script: honest except where `f` says otherwise (`None` = honest).
pub(crate) fn except(
    mut f: impl FnMut(&Net1, &ManagerMsg) -> Option<Vec<Act>> + Send + 'static,
) -> Script {
    Box::new(move |n, m| f(n, m).unwrap_or_else(|| honest(n, m)))
}

/// How long an operation took, to tell "at once" from "at the deadline".
pub(crate) async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = std::time::Instant::now();
    let v = f.await;
    (v, t.elapsed())
}

#[test]
fn refusal_codes() {
    use crate::record::{Refusal, refusal_code};
    let r = |c| Refusal {
        address: addr(0),
        error: ErrorBody::new(c, "x"),
    };
    assert_eq!(refusal_code(&[]), ErrorCode::NotEnoughParties);
    assert_eq!(
        refusal_code(&[r(ErrorCode::KeyNotReady), r(ErrorCode::AuxMissing)]),
        ErrorCode::NotEnoughParties
    );
    assert_eq!(
        refusal_code(&[r(ErrorCode::L2Unavailable), r(ErrorCode::JournalConflict)]),
        ErrorCode::JournalConflict
    );
    assert_eq!(
        refusal_code(&[
            r(ErrorCode::L2Unavailable),
            r(ErrorCode::JournalConflict),
            r(ErrorCode::ContentRejected)
        ]),
        ErrorCode::JournalConflict
    );
    assert_eq!(
        refusal_code(&[r(ErrorCode::L2Unavailable), r(ErrorCode::ContentRejected)]),
        ErrorCode::ContentRejected
    );
    assert_eq!(
        refusal_code(&[r(ErrorCode::KeyNotReady), r(ErrorCode::L2Unavailable)]),
        ErrorCode::L2Unavailable
    );
    assert_eq!(
        refusal_code(&[r(ErrorCode::KeyPending)]),
        ErrorCode::KeyPending
    );
}
