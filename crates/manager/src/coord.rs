//! Operation coordination: prepare → ready → start → finish for keygen, signing, aux info and
//! deletion; choice of signers; verification; and the operation record.

// `OpError` carries the record's party lists to the API answer; it is built once per failed
// operation, so its size does not matter and boxing would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cohort_engine::{EthSignature, PartialSignature, PublicKey};
use cohort_wire::{
    Address, Bytes32, ErrorBody, ErrorCode, HexBytes, KeyInfo, ManagerMsg, NodeMsg, ReshareSpec,
    SignContext,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::registry::KeyEntry;
use crate::{State, now_ms};

/// A node's refusal, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    /// Who refused.
    pub address: Address,
    /// Why.
    pub error: ErrorBody,
}

/// Everything recorded about one operation (`GET /v1/operations/{session_id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpRecord {
    /// Session id.
    pub session_id: Bytes32,
    /// keygen, sign, delete or aux.
    pub operation: String,
    /// Key concerned.
    pub key_id: String,
    /// Parties asked.
    pub parties: Vec<Address>,
    /// Parties that answered ready.
    pub ready: Vec<Address>,
    /// Parties that refused, with reasons.
    pub refused: Vec<Refusal>,
    /// Parties that did not answer (or were not connected).
    pub absent: Vec<Address>,
    /// Parties chosen to run the protocol.
    pub signers: Vec<Address>,
    /// Digest signed, for signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Bytes32>,
    /// What was signed, for content with a context (a state batch: its blocks and slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// True when a state batch was rejected and its rollback signed instead.
    #[serde(default)]
    pub roll_back: bool,
    /// The presignature this signing used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presignature: Option<Bytes32>,
    /// The failed attempt (with a presignature) this signing retried in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<Bytes32>,
    /// For an answer from the signature cache: the operation that signed it (no protocol
    /// ran in this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_cache: Option<Bytes32>,
    /// Per willing node, how long its L2 look-up of a state batch took (ms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l2_checks: Vec<(Address, u64)>,
    /// ok or failed.
    pub outcome: String,
    /// The failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// Parties blamed.
    pub culprits: Vec<Address>,
    /// Start time (unix ms).
    pub started_at_ms: u64,
    /// Duration in ms.
    pub duration_ms: u64,
}

/// The error of a failed operation, with the record that explains it.
#[derive(Debug, Clone)]
pub struct OpError {
    /// What failed.
    pub error: ErrorBody,
    /// Members that did not answer.
    pub absent: Vec<Address>,
    /// Refusals.
    pub refused: Vec<Refusal>,
    /// Members that were willing.
    pub ready: Vec<Address>,
    /// The session, for `GET /v1/operations/{id}`.
    pub session_id: Bytes32,
}

/// One running operation: its session id and the inbox of node replies for it.
pub(crate) struct Op {
    state: Arc<State>,
    pub(crate) record: OpRecord,
    rx: mpsc::Receiver<(Address, NodeMsg)>,
    started: Instant,
    /// Parties still deciding when the operation went ahead without them, and until when
    /// their answers are awaited: their late refusals are added to the record afterwards, so
    /// that the record names a node whose L2 node is slow or dead, not just the fast ones.
    late: Option<(HashSet<Address>, Instant)>,
}

impl Op {
    pub(crate) fn new(
        state: &Arc<State>,
        operation: &str,
        key_id: &str,
        parties: Vec<Address>,
    ) -> Op {
        let mut s = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        let session_id = Bytes32(s);
        let (tx, rx) = mpsc::channel(4 * parties.len() + 16);
        if let Ok(mut w) = state.waiters.lock() {
            w.insert(session_id, tx);
        }
        Op {
            state: state.clone(),
            record: OpRecord {
                session_id,
                operation: operation.into(),
                key_id: key_id.into(),
                parties,
                ready: Vec::new(),
                refused: Vec::new(),
                absent: Vec::new(),
                signers: Vec::new(),
                digest: None,
                context: None,
                roll_back: false,
                l2_checks: Vec::new(),
                presignature: None,
                retry_of: None,
                from_cache: None,
                outcome: "running".into(),
                error: None,
                culprits: Vec::new(),
                started_at_ms: now_ms(),
                duration_ms: 0,
            },
            rx,
            started: Instant::now(),
            late: None,
        }
    }

    /// Awaits `pending` parties' answers until `until`, after the operation has moved on.
    pub(crate) fn await_late(&mut self, pending: &HashSet<Address>, until: Instant) {
        if !pending.is_empty() {
            self.late = Some((pending.clone(), until));
        }
    }

    /// Notes a refusal that arrived while the operation was already running.
    fn note_late_refusal(&mut self, from: Address, error: ErrorBody) -> bool {
        let Some((pending, _)) = &mut self.late else {
            return false;
        };
        if !pending.remove(&from) {
            return false;
        }
        self.record.refused.push(Refusal {
            address: from,
            error,
        });
        true
    }

    /// Collects the late answers, cancels late volunteers, and rewrites the stored record.
    async fn record_late_answers(mut self) {
        let Some((_, until)) = self.late.clone() else {
            return;
        };
        let session_id = self.record.session_id;
        let mut changed = false;
        while self.late.as_ref().is_some_and(|(p, _)| !p.is_empty()) {
            let Some((from, msg)) = self.next(until).await else {
                break;
            };
            match msg {
                NodeMsg::Refused { error, .. } => changed |= self.note_late_refusal(from, error),
                NodeMsg::KeySignReady { .. } => {
                    if let Some((p, _)) = &mut self.late
                        && p.remove(&from)
                    {
                        self.state
                            .send_to(&from, ManagerMsg::KeySignCancel { session_id });
                    }
                }
                _ => {}
            }
        }
        if changed {
            self.store_record();
        }
    }

    fn store_record(&self) {
        match serde_json::to_vec(&self.record) {
            Ok(bytes) => {
                if let Err(e) = self.state.oplog.put(self.record.session_id.0, &bytes) {
                    tracing::error!(error = %e, "could not record operation");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode operation record"),
        }
    }

    pub(crate) fn session(&self) -> Bytes32 {
        self.record.session_id
    }

    /// Sends `msg` to each of `to`; returns those it could not reach.
    pub(crate) fn broadcast(&self, to: &[Address], msg: impl Fn() -> ManagerMsg) -> Vec<Address> {
        to.iter()
            .filter(|a| !self.state.send_to(a, msg()))
            .copied()
            .collect()
    }

    pub(crate) async fn next(&mut self, deadline: Instant) -> Option<(Address, NodeMsg)> {
        // Past the deadline, answers already queued still count.
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return self.rx.try_recv().ok();
        };
        tokio::time::timeout(left, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    pub(crate) fn finish<T>(
        mut self,
        result: Result<T, ErrorBody>,
    ) -> Result<(T, OpRecord), OpError> {
        self.record.duration_ms = self.started.elapsed().as_millis() as u64;
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => serde_json::to_value(e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "failed".into()),
        };
        self.record.outcome = if result.is_ok() {
            "ok".into()
        } else {
            "failed".into()
        };
        if let Err(e) = &result {
            self.record.culprits = e.culprits.clone();
            self.record.error = Some(e.clone());
        }
        self.state.metrics.record(
            &self.record.operation,
            &outcome,
            self.started.elapsed().as_secs_f64(),
        );
        self.store_record();
        tracing::info!(
            operation = %self.record.operation,
            key_id = %self.record.key_id,
            session = %self.record.session_id,
            outcome = %self.record.outcome,
            ms = self.record.duration_ms,
            absent = ?self.record.absent,
            "operation finished"
        );
        let record = self.record.clone();
        if self.late.is_some() {
            tokio::spawn(self.record_late_answers());
        }
        result
            .map(|v| (v, record.clone()))
            .map_err(|error| OpError {
                error,
                absent: record.absent,
                refused: record.refused,
                ready: record.ready,
                session_id: record.session_id,
            })
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if let Ok(mut w) = self.state.waiters.lock() {
            w.remove(&self.record.session_id);
        }
    }
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s.max(1))
}

fn uncompressed_to_key(pk: &HexBytes) -> Result<PublicKey, ErrorBody> {
    PublicKey::from_sec1(&pk.0).map_err(|_| {
        ErrorBody::new(
            ErrorCode::ProtocolFailed,
            "nodes reported an invalid public key",
        )
    })
}

/// Runs aux-info generation over the whole membership if any connected member lacks it.
/// Needs every member connected; otherwise it does nothing (nodes will refuse to sign with
/// `aux_missing` until it can run).
pub(crate) async fn ensure_aux(state: &Arc<State>) -> Result<(), OpError> {
    let _guard = state.aux_lock.lock().await;
    let members = state.config.members.clone();
    let lacking: Vec<Address> = match state.nodes.lock() {
        Ok(n) => n
            .iter()
            .filter(|(_, c)| c.aux_members.as_ref().is_some_and(|a| *a != members))
            .map(|(a, _)| *a)
            .collect(),
        Err(_) => Vec::new(),
    };
    if lacking.is_empty() {
        return Ok(());
    }
    let connected = state.connected();
    if connected.len() != members.len() {
        tracing::warn!(lacking = ?lacking, "aux info missing but not every member is connected; not generating yet");
        return Ok(());
    }
    let mut op = Op::new(state, "aux", "", members.clone());
    let session_id = op.session();
    let deadline = Instant::now() + secs(state.config.timeouts.prepare_secs);
    op.record.absent = op.broadcast(&members, || ManagerMsg::AuxInfoPrepare {
        session_id,
        members: members.clone(),
    });
    let mut pending: HashSet<Address> = members
        .iter()
        .filter(|m| !op.record.absent.contains(m))
        .copied()
        .collect();
    while !pending.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if !pending.remove(&from) {
            continue;
        }
        match msg {
            NodeMsg::AuxInfoReady { .. } => op.record.ready.push(from),
            NodeMsg::Refused { error, .. } => op.record.refused.push(Refusal {
                address: from,
                error,
            }),
            _ => {}
        }
    }
    op.record.absent.extend(pending);
    if op.record.ready.len() != members.len() {
        let e = ErrorBody::new(
            ErrorCode::NotEnoughParties,
            "aux-info generation needs every member ready",
        );
        return op.finish::<()>(Err(e)).map(|_| ());
    }
    op.record.signers = members.clone();
    op.broadcast(&members, || ManagerMsg::AuxInfoStart {
        session_id,
        members: members.clone(),
    });
    let deadline = Instant::now() + secs(state.config.timeouts.aux_secs);
    let mut pending: HashSet<Address> = members.iter().copied().collect();
    let mut failure: Option<ErrorBody> = None;
    while !pending.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if let NodeMsg::AuxInfoFinish { result, .. } = msg
            && pending.remove(&from)
            && let Err(e) = result
        {
            failure.get_or_insert(e);
        }
    }
    let result = match (failure, pending.is_empty()) {
        (Some(e), _) => Err(e),
        (None, false) => {
            op.record.absent.extend(pending.iter().copied());
            Err(ErrorBody::new(
                ErrorCode::Timeout,
                "aux-info generation timed out",
            ))
        }
        (None, true) => Ok(()),
    };
    // Nodes report their new aux state in a Status right after finishing.
    op.finish(result).map(|_| ())
}

/// A key id with a keygen running; released however the keygen ends (also on a panic or a
/// cancelled future), so that a key id is never left refused as "already running".
struct InflightKeygen {
    state: Arc<State>,
    key_id: String,
}

impl InflightKeygen {
    fn claim(state: &Arc<State>, key_id: &str) -> Option<InflightKeygen> {
        let mut inflight = state.keygen_inflight.lock().ok()?;
        inflight.insert(key_id.to_string()).then(|| InflightKeygen {
            state: state.clone(),
            key_id: key_id.to_string(),
        })
    }
}

impl Drop for InflightKeygen {
    fn drop(&mut self) {
        if let Ok(mut inflight) = self.state.keygen_inflight.lock() {
            inflight.remove(&self.key_id);
        }
    }
}

/// Keygen for `key_id` among `parties` (default: every connected member).
pub(crate) async fn keygen(
    state: &Arc<State>,
    key_id: String,
    threshold: u16,
    parties: Option<Vec<Address>>,
) -> Result<(KeyEntry, Option<OpRecord>), OpError> {
    let bad = |m: String| OpError {
        error: ErrorBody::new(ErrorCode::BadRequest, m),
        absent: Vec::new(),
        refused: Vec::new(),
        ready: Vec::new(),
        session_id: Bytes32([0; 32]),
    };
    if key_id.is_empty() || key_id.len() > 128 {
        return Err(bad("key_id must be 1..=128 bytes".into()));
    }
    if let Ok(Some(k)) = state.registry.get(&key_id)
        && !k.deleted
    {
        return Ok((k, None));
    }
    let parties = parties.unwrap_or_else(|| state.connected());
    let mut uniq = parties.clone();
    uniq.sort();
    uniq.dedup();
    if uniq.len() != parties.len() {
        return Err(bad("duplicate party".into()));
    }
    if let Some(p) = parties.iter().find(|p| !state.config.members.contains(p)) {
        return Err(bad(format!("{p} is not a member")));
    }
    if threshold < 2 || usize::from(threshold) > parties.len() {
        return Err(bad(format!(
            "threshold {threshold} is not in 2..={} (parties available)",
            parties.len()
        )));
    }
    let Some(_inflight) = InflightKeygen::claim(state, &key_id) else {
        return Err(OpError {
            error: ErrorBody::new(
                ErrorCode::KeyPending,
                format!("a keygen for {key_id} is already running"),
            ),
            absent: Vec::new(),
            refused: Vec::new(),
            ready: Vec::new(),
            session_id: Bytes32([0; 32]),
        });
    };
    let _active = crate::pool::ActiveGuard::new(state);
    let result = keygen_inner(state, &key_id, threshold, parties).await;
    result.map(|(k, r)| (k, Some(r)))
}

async fn keygen_inner(
    state: &Arc<State>,
    key_id: &str,
    threshold: u16,
    parties: Vec<Address>,
) -> Result<(KeyEntry, OpRecord), OpError> {
    // Aux info first, so that the key can sign as soon as it exists.
    if let Err(e) = ensure_aux(state).await {
        tracing::warn!(error = %e.error.message, "aux-info generation failed; keygen goes on");
    }
    let mut op = Op::new(state, "keygen", key_id, parties.clone());
    let session_id = op.session();
    let deadline = Instant::now() + secs(state.config.timeouts.prepare_secs);
    op.record.absent = op.broadcast(&parties, || ManagerMsg::KeyGenPrepare {
        session_id,
        key_id: key_id.to_string(),
        threshold,
        parties: parties.clone(),
    });
    let mut pending: HashSet<Address> = parties
        .iter()
        .filter(|p| !op.record.absent.contains(p))
        .copied()
        .collect();
    let mut existing: Vec<KeyInfo> = Vec::new();
    while !pending.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if !pending.contains(&from) {
            continue;
        }
        match msg {
            NodeMsg::KeyGenReady { existing: e, .. } => {
                pending.remove(&from);
                op.record.ready.push(from);
                existing.extend(e);
            }
            // Disconnected: absent (below), without waiting for the deadline.
            NodeMsg::Error { .. } => {
                pending.remove(&from);
                op.record.absent.push(from);
            }
            NodeMsg::Refused { error, .. } => {
                pending.remove(&from);
                op.record.refused.push(Refusal {
                    address: from,
                    error,
                });
            }
            _ => {}
        }
    }
    op.record.absent.extend(pending);
    if !op.record.refused.is_empty() || !op.record.absent.is_empty() {
        let code = op
            .record
            .refused
            .iter()
            .find(|r| r.error.code == ErrorCode::KeyPending)
            .map_or(ErrorCode::NotEnoughParties, |_| ErrorCode::KeyPending);
        let e = ErrorBody::new(code, "keygen needs every party ready");
        return op.finish(Err(e));
    }
    if existing.len() == parties.len()
        && existing.iter().all(|k| *k == existing[0])
        && existing[0].key_id == key_id
        && existing[0].threshold == threshold
        && existing[0].parties == parties
    {
        let k = existing[0].clone();
        let entry = entry_of(&k);
        if let Err(e) = state.registry.put(&entry) {
            tracing::error!(error = %e, "registry write failed");
        }
        return op.finish(Ok(entry));
    }
    if !existing.is_empty() {
        let e = ErrorBody::new(
            ErrorCode::Internal,
            "some parties already hold this key id (or hold it with another threshold or \
             committee); it is not in the registry: recover or remove those shares first",
        );
        return op.finish(Err(e));
    }
    op.record.signers = parties.clone();
    op.broadcast(&parties, || ManagerMsg::KeyGenStart {
        session_id,
        key_id: key_id.to_string(),
        threshold,
        parties: parties.clone(),
    });
    let deadline = Instant::now() + secs(state.config.timeouts.keygen_secs);
    let mut pending: HashSet<Address> = parties.iter().copied().collect();
    let mut results: HashMap<Address, Result<KeyInfo, ErrorBody>> = HashMap::new();
    while !pending.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        let failed = match msg {
            NodeMsg::KeyGenFinish { result, .. } if pending.remove(&from) => {
                let failed = result.is_err();
                results.insert(from, result);
                failed
            }
            // A party that disconnects (or fails outside the protocol) will not finish.
            NodeMsg::Error { error } if pending.remove(&from) => {
                results.insert(
                    from,
                    Err(ErrorBody {
                        code: error.code,
                        message: format!("{from}: {}", error.message),
                        culprits: vec![from],
                    }),
                );
                true
            }
            _ => false,
        };
        // One failure sinks the keygen: the others would only wait on the failed party.
        if failed {
            break;
        }
    }
    let failed_first = results.values().any(Result::is_err);
    if !pending.is_empty() && !failed_first {
        op.record.absent.extend(pending.iter().copied());
        let e = ErrorBody {
            code: ErrorCode::Timeout,
            message: "keygen did not finish on every party".into(),
            culprits: pending.into_iter().collect(),
        };
        discard_failed_keygen(&op, key_id, &parties);
        return op.finish(Err(e));
    }
    let mut infos = Vec::new();
    let mut failure: Option<ErrorBody> = None;
    for (_, r) in results {
        match r {
            Ok(i) => infos.push(i),
            Err(e) => {
                let f = failure.get_or_insert_with(|| e.clone());
                for c in e.culprits {
                    if !f.culprits.contains(&c) {
                        f.culprits.push(c);
                    }
                }
            }
        }
    }
    if let Some(e) = failure {
        discard_failed_keygen(&op, key_id, &parties);
        return op.finish(Err(e));
    }
    // The registry entry is built from what was asked, not from what nodes say; every node
    // must report exactly that key, with one public key.
    let expected = |i: &KeyInfo| {
        i.key_id == key_id
            && i.key_session_id == session_id
            && i.threshold == threshold
            && i.parties == parties
            && i.public_key == infos[0].public_key
    };
    if infos.is_empty() || !infos.iter().all(expected) {
        let e = ErrorBody::new(
            ErrorCode::ProtocolFailed,
            "parties disagree on the key they generated",
        );
        discard_failed_keygen(&op, key_id, &parties);
        return op.finish(Err(e));
    }
    let entry = KeyEntry {
        key_id: key_id.to_string(),
        key_session_id: session_id,
        threshold,
        parties: parties.clone(),
        public_key: infos[0].public_key.clone(),
        deleted: false,
        created_at_ms: now_ms(),
        pending_commit: Vec::new(),
    };
    if let Err(e) = uncompressed_to_key(&entry.public_key) {
        discard_failed_keygen(&op, key_id, &parties);
        return op.finish(Err(e));
    }
    if let Err(e) = state.registry.put(&entry) {
        let e = ErrorBody::new(ErrorCode::Internal, format!("registry: {e}"));
        return op.finish(Err(e));
    }
    op.finish(Ok(entry))
}

/// After a failed keygen nobody may keep a piece of the key: parties that finished would
/// otherwise hold a READY share under an id the registry does not know, and the id could
/// neither be generated again nor deleted. Their acknowledgements are not awaited.
fn discard_failed_keygen(op: &Op, key_id: &str, parties: &[Address]) {
    // A tombstone naming the parties: those that cannot be reached now get the delete when
    // they reconnect (as for a deleted key), so none keeps a stray share.
    let mut holders = parties.to_vec();
    if let Ok(Some(old)) = op.state.registry.get(key_id)
        && old.deleted
    {
        holders.extend(old.parties.into_iter().filter(|p| !parties.contains(p)));
    }
    let tombstone = KeyEntry {
        key_id: key_id.to_string(),
        key_session_id: op.session(),
        threshold: 0,
        parties: holders,
        public_key: HexBytes(Vec::new()),
        deleted: true,
        created_at_ms: now_ms(),
        pending_commit: Vec::new(),
    };
    if let Err(e) = op.state.registry.put(&tombstone) {
        tracing::error!(%key_id, error = %e, "registry write failed");
    }
    let session_id = op.session();
    let missed = op.broadcast(parties, || ManagerMsg::KeyDelete {
        session_id,
        key_id: key_id.to_string(),
    });
    tracing::warn!(%key_id, unreachable = ?missed, "keygen failed: partial shares discarded");
}

fn entry_of(k: &KeyInfo) -> KeyEntry {
    KeyEntry {
        key_id: k.key_id.clone(),
        key_session_id: k.key_session_id,
        threshold: k.threshold,
        parties: k.parties.clone(),
        public_key: k.public_key.clone(),
        deleted: false,
        created_at_ms: now_ms(),
        pending_commit: Vec::new(),
    }
}

fn not_found(key_id: &str) -> OpError {
    OpError {
        error: ErrorBody::new(ErrorCode::KeyNotFound, format!("no key {key_id}")),
        absent: Vec::new(),
        refused: Vec::new(),
        ready: Vec::new(),
        session_id: Bytes32([0; 32]),
    }
}

/// A live key entry.
pub(crate) fn live_key(state: &State, key_id: &str) -> Result<KeyEntry, OpError> {
    match state.registry.get(key_id) {
        Ok(Some(k)) if !k.deleted => Ok(k),
        _ => Err(not_found(key_id)),
    }
}

/// A verified signature and how it came about.
pub(crate) struct Signed {
    /// The verified signature.
    pub signature: EthSignature,
    /// The operation record.
    pub record: OpRecord,
    /// True when the nodes disagreed with a state batch and signed its rollback instead.
    pub roll_back: bool,
}

fn describe_refusals(refused: &[Refusal]) -> String {
    if refused.is_empty() {
        return "none".into();
    }
    refused
        .iter()
        .map(|r| format!("{} ({})", r.address, r.error.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Signs `digest` (of `context`) with `key_id`: exactly t of the willing holders, the fastest
/// first. For a state batch that at least t holders reject as not matching their L2 node, those
/// holders sign the batch's rollback instead.
pub(crate) async fn sign(
    state: &Arc<State>,
    key_id: &str,
    digest: Bytes32,
    context: SignContext,
) -> Result<Signed, OpError> {
    let _active = crate::pool::ActiveGuard::new(state);
    let first = sign_attempt(state, key_id, digest, context.clone(), true, None).await;
    match first {
        Err(Retry(session)) => {
            state.metrics.presignature_fallbacks.inc();
            tracing::warn!(%key_id, %session, "presignature signing failed; signing in full");
            match sign_attempt(state, key_id, digest, context, false, Some(session)).await {
                Ok(s) => Ok(s),
                Err(Retry(_)) => Err(OpError {
                    error: ErrorBody::new(ErrorCode::Internal, "retry loop"),
                    ..bad_request("")
                }),
                Err(Fail(e)) => Err(e),
            }
        }
        Err(Fail(e)) => Err(e),
        Ok(s) => Ok(s),
    }
}

/// Why one signing attempt did not produce a signature.
enum AttemptError {
    /// The presignature path failed (recorded); sign again in full.
    Retry(Bytes32),
    /// A final failure.
    Fail(OpError),
}
use AttemptError::{Fail, Retry};

impl From<OpError> for AttemptError {
    fn from(e: OpError) -> Self {
        Fail(e)
    }
}

async fn sign_attempt(
    state: &Arc<State>,
    key_id: &str,
    digest: Bytes32,
    context: SignContext,
    allow_presig: bool,
    retry_of: Option<Bytes32>,
) -> Result<Signed, AttemptError> {
    let key = live_key(state, key_id)?;
    if let Err(e) = ensure_aux(state).await {
        tracing::warn!(error = %e.error.message, "aux-info generation failed");
    }
    let t = usize::from(key.threshold);
    let is_batch = matches!(context, SignContext::StateBatch { .. });
    let op_name = if is_batch { "sign_state" } else { "sign" };
    let mut op = Op::new(state, op_name, key_id, key.parties.clone());
    op.record.digest = Some(digest);
    op.record.retry_of = retry_of;
    let asked_at = Instant::now();
    if let SignContext::StateBatch {
        start_block,
        offset_starts_at_index,
        state_roots,
    } = &context
    {
        op.record.context = Some(serde_json::json!({
            "start_block": start_block,
            "offset_starts_at_index": offset_starts_at_index,
            "roots": state_roots.len(),
        }));
    }
    let session_id = op.session();
    let deadline = Instant::now() + secs(crate::mantle::prepare_secs(&state.config, &context));
    let unreachable = op.broadcast(&key.parties, || ManagerMsg::KeySignPrepare {
        session_id,
        key_id: key_id.to_string(),
        digest,
        context: context.clone(),
        key_session_id: Some(key.key_session_id),
    });
    op.record.absent = unreachable;
    let mut pending: HashSet<Address> = key
        .parties
        .iter()
        .filter(|p| !op.record.absent.contains(p))
        .copied()
        .collect();
    while !pending.is_empty() && op.record.ready.len() < t {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if !pending.contains(&from) {
            continue;
        }
        match msg {
            NodeMsg::KeySignReady { l2_ms, .. } => {
                pending.remove(&from);
                op.record.ready.push(from);
                crate::pool::observe_latency(state, from, asked_at.elapsed().as_secs_f64() * 1e3);
                if let Some(ms) = l2_ms {
                    op.record.l2_checks.push((from, ms));
                }
            }
            NodeMsg::Refused { error, .. } => {
                pending.remove(&from);
                op.record.refused.push(Refusal {
                    address: from,
                    error,
                });
            }
            // Disconnected while deciding: absent, without waiting for the deadline.
            NodeMsg::Error { .. } => {
                pending.remove(&from);
                op.record.absent.push(from);
            }
            _ => {}
        }
    }
    // With t willing, a ready presignature whose whole set is willing gives a one-round
    // signature; late answers get a short grace to complete such a set.
    let mut presig = None;
    if allow_presig && op.record.ready.len() >= t && crate::pool::depth(state, key_id) > 0 {
        presig = crate::pool::take(state, &key, &op.record.ready);
        let grace = Instant::now() + Duration::from_millis(300);
        while presig.is_none() && !pending.is_empty() {
            let Some((from, msg)) = op.next(grace.min(deadline)).await else {
                break;
            };
            if !pending.remove(&from) {
                continue;
            }
            match msg {
                NodeMsg::KeySignReady { .. } => {
                    op.record.ready.push(from);
                    presig = crate::pool::take(state, &key, &op.record.ready);
                }
                NodeMsg::Refused { error, .. } => {
                    op.record.refused.push(Refusal {
                        address: from,
                        error,
                    });
                }
                NodeMsg::Error { .. } => op.record.absent.push(from),
                _ => {}
            }
        }
    }
    if let Some(entry) = presig {
        op.await_late(&pending, deadline);
        let others: Vec<Address> = op
            .record
            .ready
            .iter()
            .filter(|a| !entry.signers.contains(a))
            .copied()
            .collect();
        op.broadcast(&others, || ManagerMsg::KeySignCancel { session_id });
        let result = run_presigned(&mut op, &key, &entry, digest, context).await;
        let session = op.session();
        return match result {
            Ok(signature) => {
                state.metrics.presignatures_used.inc();
                op.finish(Ok(signature))
                    .map(|(signature, record)| Signed {
                        signature,
                        record,
                        roll_back: false,
                    })
                    .map_err(Fail)
            }
            Err(e) => {
                let _ = op.finish::<EthSignature>(Err(e));
                Err(Retry(session))
            }
        };
    }
    let disagreed: Vec<Address> = op
        .record
        .refused
        .iter()
        .filter(|r| r.error.code == ErrorCode::ContentRejected)
        .map(|r| r.address)
        .collect();
    if op.record.ready.len() < t {
        op.record.absent.extend(pending.iter().copied());
        if is_batch
            && disagreed.len() >= t
            && let SignContext::StateBatch { start_block, .. } = &context
        {
            let start_block = *start_block;
            let others: Vec<Address> = op
                .record
                .ready
                .iter()
                .chain(disagreed[t..].iter())
                .copied()
                .collect();
            op.broadcast(&others, || ManagerMsg::KeySignCancel { session_id });
            let rb = Bytes32(cohort_rollup::rollback_digest(start_block));
            op.record.roll_back = true;
            op.record.digest = Some(rb);
            let signers = disagreed[..t].to_vec();
            let result = run_signing(
                &mut op,
                &key,
                signers,
                rb,
                SignContext::Rollback { start_block },
            )
            .await;
            return op
                .finish(result)
                .map(|(signature, record)| Signed {
                    signature,
                    record,
                    roll_back: true,
                })
                .map_err(Fail);
        }
        let ready = op.record.ready.clone();
        op.broadcast(&ready, || ManagerMsg::KeySignCancel { session_id });
        // Late answers to this session find no operation and are dropped; nodes forget
        // unstarted sessions on their own.
        // A journal conflict (content that changes what was signed) outranks disagreement.
        let code = if op
            .record
            .refused
            .iter()
            .any(|r| r.error.code == ErrorCode::JournalConflict)
        {
            ErrorCode::JournalConflict
        } else if !disagreed.is_empty() {
            ErrorCode::ContentRejected
        } else {
            ErrorCode::NotEnoughParties
        };
        let e = ErrorBody::new(
            code,
            format!(
                "{} of {} holders willing, {t} needed; agreed: {}; refused: {}; absent: {}",
                op.record.ready.len(),
                key.parties.len(),
                list(&op.record.ready),
                describe_refusals(&op.record.refused),
                list(&op.record.absent),
            ),
        );
        return op
            .finish::<EthSignature>(Err(e))
            .map(|(signature, record)| Signed {
                signature,
                record,
                roll_back: false,
            })
            .map_err(Fail);
    }
    op.await_late(&pending, deadline);
    let signers: Vec<Address> = op.record.ready[..t].to_vec();
    let result = run_signing(&mut op, &key, signers, digest, context).await;
    op.finish(result)
        .map(|(signature, record)| Signed {
            signature,
            record,
            roll_back: false,
        })
        .map_err(Fail)
}

/// One-round signing from a presignature: each signer of its set consumes its piece and sends
/// a partial signature; the manager combines and verifies them.
async fn run_presigned(
    op: &mut Op,
    key: &KeyEntry,
    entry: &crate::pool::PoolEntry,
    digest: Bytes32,
    context: SignContext,
) -> Result<EthSignature, ErrorBody> {
    let state = op.state.clone();
    let session_id = op.session();
    op.record.signers = entry.signers.clone();
    op.record.presignature = Some(entry.id);
    let unreachable = op.broadcast(&entry.signers, || ManagerMsg::KeySignStart {
        session_id,
        key_id: key.key_id.clone(),
        digest,
        context: context.clone(),
        signers: entry.signers.clone(),
        presignature: Some(entry.id),
    });
    if !unreachable.is_empty() {
        return Err(ErrorBody {
            code: ErrorCode::NotEnoughParties,
            message: format!("signers went away before the start: {}", list(&unreachable)),
            culprits: unreachable,
        });
    }
    let deadline = Instant::now() + secs(state.config.timeouts.sign_secs);
    let mut waiting: HashSet<Address> = entry.signers.iter().copied().collect();
    let mut partials = Vec::new();
    while !waiting.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if !waiting.contains(&from) {
            match msg {
                NodeMsg::KeySignReady { .. } => {
                    if let Some((p, _)) = &mut op.late {
                        p.remove(&from);
                    }
                    state.send_to(&from, ManagerMsg::KeySignCancel { session_id });
                }
                NodeMsg::Refused { error, .. } => {
                    op.note_late_refusal(from, error);
                }
                _ => {}
            }
            continue;
        }
        let blame = |message: String| ErrorBody {
            code: ErrorCode::ProtocolFailed,
            message,
            culprits: vec![from],
        };
        match msg {
            NodeMsg::KeySignPartial { partial, .. } => {
                waiting.remove(&from);
                let p: PartialSignature = serde_json::from_slice(&partial.0).map_err(|e| {
                    blame(format!("{from} sent a malformed partial signature: {e}"))
                })?;
                // The sender is the authenticated connection, never a field of the message.
                if p.signer.0 != from.0 {
                    return Err(blame(format!(
                        "{from} sent a partial signature of another signer"
                    )));
                }
                partials.push(p);
            }
            NodeMsg::KeySignFinish { result: Err(e), .. } => {
                return Err(blame(format!("{from}: {}", e.message)));
            }
            NodeMsg::Error { error } => {
                return Err(blame(format!("{from}: {}", error.message)));
            }
            _ => {}
        }
    }
    if !waiting.is_empty() {
        let late: Vec<Address> = waiting.into_iter().collect();
        return Err(ErrorBody {
            code: ErrorCode::Timeout,
            message: format!("partial signatures missing from: {}", list(&late)),
            culprits: late,
        });
    }
    let pk = uncompressed_to_key(&key.public_key)?;
    let sig = cohort_engine::sign::combine(&pk, &digest.0, &partials).map_err(|e| {
        ErrorBody::new(
            ErrorCode::ProtocolFailed,
            format!("partials do not combine: {e}"),
        )
    })?;
    match sig.recover_address(&digest.0) {
        Ok(a) if a == pk.address() => Ok(sig),
        _ => Err(ErrorBody::new(
            ErrorCode::ProtocolFailed,
            "combined signature does not verify against the key",
        )),
    }
}

/// Phase 2 of signing: starts exactly `signers`, collects their results, cancels late ready
/// answers, and verifies the signature against the key before anyone sees it.
async fn run_signing(
    op: &mut Op,
    key: &KeyEntry,
    signers: Vec<Address>,
    digest: Bytes32,
    context: SignContext,
) -> Result<EthSignature, ErrorBody> {
    let state = op.state.clone();
    let session_id = op.session();
    op.record.signers = signers.clone();
    let unreachable = op.broadcast(&signers, || ManagerMsg::KeySignStart {
        session_id,
        key_id: key.key_id.clone(),
        digest,
        context: context.clone(),
        signers: signers.clone(),
        presignature: None,
    });
    if !unreachable.is_empty() {
        return Err(ErrorBody {
            code: ErrorCode::NotEnoughParties,
            message: format!("signers went away before the start: {}", list(&unreachable)),
            culprits: unreachable,
        });
    }
    let deadline = Instant::now() + secs(state.config.timeouts.sign_secs);
    let mut waiting: HashSet<Address> = signers.iter().copied().collect();
    let mut sigs: HashMap<Address, Result<HexBytes, ErrorBody>> = HashMap::new();
    while !waiting.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        match msg {
            NodeMsg::KeySignFinish { result, .. } if waiting.remove(&from) => {
                sigs.insert(from, result);
            }
            NodeMsg::Error { error } if waiting.contains(&from) => {
                sigs.insert(
                    from,
                    Err(ErrorBody {
                        code: error.code,
                        message: format!("{from}: {}", error.message),
                        culprits: vec![from],
                    }),
                );
                waiting.remove(&from);
            }
            // Parties that answer ready after the choice are cancelled as they come.
            NodeMsg::KeySignReady { .. } if !signers.contains(&from) => {
                if let Some((p, _)) = &mut op.late {
                    p.remove(&from);
                }
                state.send_to(&from, ManagerMsg::KeySignCancel { session_id });
            }
            NodeMsg::Refused { error, .. } if !signers.contains(&from) => {
                op.note_late_refusal(from, error);
            }
            _ => {}
        }
    }
    if !waiting.is_empty() {
        let late: Vec<Address> = waiting.into_iter().collect();
        return Err(ErrorBody {
            code: ErrorCode::Timeout,
            message: format!("signers did not finish in time: {}", list(&late)),
            culprits: late,
        });
    }
    let mut failure: Option<ErrorBody> = None;
    let mut sig: Option<HexBytes> = None;
    for (_, r) in sigs {
        match r {
            Ok(s) => match &sig {
                Some(prev) if *prev != s => {
                    failure.get_or_insert(ErrorBody::new(
                        ErrorCode::ProtocolFailed,
                        "signers returned different signatures",
                    ));
                }
                _ => sig = Some(s),
            },
            Err(e) => {
                let f = failure.get_or_insert_with(|| e.clone());
                for c in e.culprits {
                    if !f.culprits.contains(&c) {
                        f.culprits.push(c);
                    }
                }
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    sig.and_then(|s| <[u8; 65]>::try_from(s.0.as_slice()).ok())
        .map(EthSignature)
        .filter(|s| {
            let expected = uncompressed_to_key(&key.public_key).map(|k| k.address());
            matches!((s.recover_address(&digest.0), expected), (Ok(a), Ok(b)) if a == b)
        })
        .ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::ProtocolFailed,
                "combined signature does not verify against the key",
            )
        })
}

fn bad_request(m: impl Into<String>) -> OpError {
    OpError {
        error: ErrorBody::new(ErrorCode::BadRequest, m),
        absent: Vec::new(),
        refused: Vec::new(),
        ready: Vec::new(),
        session_id: Bytes32([0; 32]),
    }
}

/// Reshares `key_id` to `new_parties` with threshold `new_threshold` (refresh: the same
/// committee and threshold). At least t_old current holders deal; every new party must take
/// part. New shares are staged and committed only once every new party has succeeded; on any
/// failure they are discarded and the old committee keeps signing.
pub(crate) async fn reshare(
    state: &Arc<State>,
    key_id: &str,
    new_parties: Option<Vec<Address>>,
    new_threshold: Option<u16>,
) -> Result<(KeyEntry, OpRecord), OpError> {
    let key = live_key(state, key_id)?;
    let new_parties = new_parties.unwrap_or_else(|| key.parties.clone());
    let new_threshold = new_threshold.unwrap_or(key.threshold);
    let refresh = new_parties == key.parties && new_threshold == key.threshold;
    let mut uniq = new_parties.clone();
    uniq.sort();
    uniq.dedup();
    if uniq.len() != new_parties.len() {
        return Err(bad_request("duplicate party"));
    }
    if let Some(p) = new_parties
        .iter()
        .find(|p| !state.config.members.contains(p))
    {
        return Err(bad_request(format!("{p} is not a member")));
    }
    if new_threshold < 2 || usize::from(new_threshold) > new_parties.len() {
        return Err(bad_request(format!(
            "threshold {new_threshold} is not in 2..={}",
            new_parties.len()
        )));
    }
    {
        let Ok(mut inflight) = state.keygen_inflight.lock() else {
            return Err(bad_request("internal lock"));
        };
        if !inflight.insert(key_id.to_string()) {
            return Err(OpError {
                error: ErrorBody::new(
                    ErrorCode::KeyPending,
                    format!("another operation on {key_id} is running"),
                ),
                ..bad_request("")
            });
        }
    }
    if let Err(e) = ensure_aux(state).await {
        tracing::warn!(error = %e.error.message, "aux-info generation failed");
    }
    let _active = crate::pool::ActiveGuard::new(state);
    crate::pool::discard(state, key_id);
    let result = reshare_inner(state, &key, new_parties, new_threshold, refresh).await;
    if let Ok(mut inflight) = state.keygen_inflight.lock() {
        inflight.remove(key_id);
    }
    result
}

async fn reshare_inner(
    state: &Arc<State>,
    key: &KeyEntry,
    new_parties: Vec<Address>,
    new_threshold: u16,
    refresh: bool,
) -> Result<(KeyEntry, OpRecord), OpError> {
    let key_id = key.key_id.as_str();
    let mut everyone: Vec<Address> = key.parties.clone();
    everyone.extend(new_parties.iter().filter(|p| !key.parties.contains(p)));
    let mut op = Op::new(
        state,
        if refresh { "refresh" } else { "reshare" },
        key_id,
        everyone.clone(),
    );
    let session_id = op.session();
    let mut spec = ReshareSpec {
        key_id: key_id.to_string(),
        key_session_id: key.key_session_id,
        old_parties: key.parties.clone(),
        old_threshold: key.threshold,
        new_parties: new_parties.clone(),
        new_threshold,
        public_key: key.public_key.clone(),
        dealers: Vec::new(),
    };
    op.record.context = Some(serde_json::json!({
        "old_parties": key.parties,
        "old_threshold": key.threshold,
        "new_parties": new_parties,
        "new_threshold": new_threshold,
    }));
    let deadline = Instant::now() + secs(state.config.timeouts.prepare_secs);
    op.record.absent = op.broadcast(&everyone, || ManagerMsg::KeyResharePrepare {
        session_id,
        spec: spec.clone(),
    });
    let mut pending: HashSet<Address> = everyone
        .iter()
        .filter(|p| !op.record.absent.contains(p))
        .copied()
        .collect();
    while !pending.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if !pending.contains(&from) {
            continue;
        }
        match msg {
            NodeMsg::KeyReshareReady { .. } => {
                pending.remove(&from);
                op.record.ready.push(from);
            }
            NodeMsg::Refused { error, .. } => {
                pending.remove(&from);
                op.record.refused.push(Refusal {
                    address: from,
                    error,
                });
            }
            NodeMsg::Error { .. } => {
                pending.remove(&from);
                op.record.absent.push(from);
            }
            _ => {}
        }
    }
    op.record.absent.extend(pending);
    let old_ready: Vec<Address> = key
        .parties
        .iter()
        .filter(|p| op.record.ready.contains(p))
        .copied()
        .collect();
    let new_missing: Vec<Address> = new_parties
        .iter()
        .filter(|p| !op.record.ready.contains(p))
        .copied()
        .collect();
    if old_ready.len() < usize::from(key.threshold) || !new_missing.is_empty() {
        let participants: Vec<Address> = op.record.ready.clone();
        op.broadcast(&participants, || ManagerMsg::KeyReshareAbort {
            session_id,
            key_id: key_id.to_string(),
        });
        let e = ErrorBody::new(
            ErrorCode::NotEnoughParties,
            format!(
                "resharing needs {} old holders and every new party ready; old holders ready: {}; new parties not ready: {}; refused: {}; absent: {}",
                key.threshold,
                list(&old_ready),
                list(&new_missing),
                describe_refusals(&op.record.refused),
                list(&op.record.absent)
            ),
        );
        return op.finish(Err(e));
    }
    spec.dealers = old_ready[..usize::from(key.threshold)].to_vec();
    let mut participants = spec.dealers.clone();
    participants.extend(new_parties.iter().filter(|p| !spec.dealers.contains(p)));
    op.record.signers = participants.clone();
    // Ready parties that do not take part forget the session.
    let idle: Vec<Address> = op
        .record
        .ready
        .iter()
        .filter(|p| !participants.contains(p))
        .copied()
        .collect();
    op.broadcast(&idle, || ManagerMsg::KeyReshareAbort {
        session_id,
        key_id: key_id.to_string(),
    });
    let unreachable = op.broadcast(&participants, || ManagerMsg::KeyReshareStart {
        session_id,
        spec: spec.clone(),
    });
    let deadline = Instant::now() + secs(state.config.timeouts.keygen_secs);
    let mut waiting: HashSet<Address> = participants
        .iter()
        .filter(|p| !unreachable.contains(p))
        .copied()
        .collect();
    let mut failure: Option<ErrorBody> = (!unreachable.is_empty()).then(|| ErrorBody {
        code: ErrorCode::NotEnoughParties,
        message: format!("went away before the start: {}", list(&unreachable)),
        culprits: unreachable.clone(),
    });
    let mut infos: Vec<(Address, KeyInfo)> = Vec::new();
    while !waiting.is_empty() && failure.is_none() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if !waiting.contains(&from) {
            continue;
        }
        match msg {
            NodeMsg::KeyReshareFinish { result, .. } => {
                waiting.remove(&from);
                match result {
                    Ok(Some(info)) => infos.push((from, info)),
                    Ok(None) => {}
                    Err(e) => {
                        let mut e = e;
                        if e.culprits.is_empty() && e.code != ErrorCode::ProtocolFailed {
                            e.message = format!("{from}: {}", e.message);
                        }
                        failure = Some(e);
                    }
                }
            }
            NodeMsg::Error { error } => {
                waiting.remove(&from);
                failure = Some(ErrorBody {
                    code: ErrorCode::ProtocolFailed,
                    message: format!("{from} went away during the resharing: {}", error.message),
                    culprits: vec![from],
                });
            }
            _ => {}
        }
    }
    if failure.is_none() && !waiting.is_empty() {
        let late: Vec<Address> = waiting.iter().copied().collect();
        failure = Some(ErrorBody {
            code: ErrorCode::Timeout,
            message: format!("resharing did not finish on: {}", list(&late)),
            culprits: late,
        });
    }
    if failure.is_none() {
        let ok = new_parties.iter().all(|p| {
            infos.iter().any(|(a, i)| {
                a == p
                    && i.public_key == key.public_key
                    && i.key_session_id == session_id
                    && i.parties == new_parties
                    && i.threshold == new_threshold
            })
        });
        if !ok {
            failure = Some(ErrorBody::new(
                ErrorCode::ProtocolFailed,
                "new parties did not all report the unchanged key",
            ));
        }
    }
    if let Some(e) = failure {
        op.broadcast(&participants, || ManagerMsg::KeyReshareAbort {
            session_id,
            key_id: key_id.to_string(),
        });
        return op.finish(Err(e));
    }
    // Every new party holds its staged share: switch the registry, then commit everywhere.
    let entry = KeyEntry {
        key_id: key_id.to_string(),
        key_session_id: session_id,
        threshold: new_threshold,
        parties: new_parties.clone(),
        public_key: key.public_key.clone(),
        deleted: false,
        created_at_ms: key.created_at_ms,
        pending_commit: everyone.clone(),
    };
    if let Err(e) = state.registry.put(&entry) {
        op.broadcast(&participants, || ManagerMsg::KeyReshareAbort {
            session_id,
            key_id: key_id.to_string(),
        });
        return op.finish(Err(ErrorBody::new(
            ErrorCode::Internal,
            format!("registry: {e}"),
        )));
    }
    let unreachable = op.broadcast(&everyone, || ManagerMsg::KeyReshareCommit {
        session_id,
        key_id: key_id.to_string(),
        new_parties: new_parties.clone(),
    });
    let deadline = Instant::now() + secs(state.config.timeouts.prepare_secs);
    let mut waiting: HashSet<Address> = everyone
        .iter()
        .filter(|p| !unreachable.contains(p))
        .copied()
        .collect();
    let mut confirmed = Vec::new();
    while !waiting.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if let NodeMsg::KeyReshareDone { result, .. } = msg
            && waiting.remove(&from)
        {
            match result {
                Ok(()) => confirmed.push(from),
                Err(e) => tracing::error!(%from, error = %e.message, "commit failed on node"),
            }
        }
    }
    let mut entry = entry;
    entry.pending_commit.retain(|a| !confirmed.contains(a));
    if !entry.pending_commit.is_empty() {
        tracing::warn!(pending = ?entry.pending_commit, "commit not yet confirmed; resent when they reconnect");
    }
    if let Err(e) = state.registry.put(&entry) {
        tracing::error!(error = %e, "registry write failed");
    }
    op.finish(Ok(entry))
}

/// Deletes a key everywhere: tombstone in the registry, then every holder; holders that are
/// offline are told when they reconnect.
pub(crate) async fn delete(state: &Arc<State>, key_id: &str) -> Result<OpRecord, OpError> {
    let _active = crate::pool::ActiveGuard::new(state);
    let mut key = live_key(state, key_id)?;
    crate::pool::discard(state, key_id);
    key.deleted = true;
    state.registry.put(&key).map_err(|e| OpError {
        error: ErrorBody::new(ErrorCode::Internal, e.to_string()),
        absent: Vec::new(),
        refused: Vec::new(),
        ready: Vec::new(),
        session_id: Bytes32([0; 32]),
    })?;
    let mut op = Op::new(state, "delete", key_id, key.parties.clone());
    let session_id = op.session();
    op.record.absent = op.broadcast(&key.parties, || ManagerMsg::KeyDelete {
        session_id,
        key_id: key_id.to_string(),
    });
    let mut pending: HashSet<Address> = key
        .parties
        .iter()
        .filter(|p| !op.record.absent.contains(p))
        .copied()
        .collect();
    let deadline = Instant::now() + secs(state.config.timeouts.prepare_secs);
    while !pending.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if let NodeMsg::KeyDeleted { .. } = msg
            && pending.remove(&from)
        {
            op.record.ready.push(from);
        }
    }
    op.record.absent.extend(pending);
    op.finish(Ok(())).map(|(_, r)| r)
}

fn list(a: &[Address]) -> String {
    if a.is_empty() {
        "none".into()
    } else {
        a.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
