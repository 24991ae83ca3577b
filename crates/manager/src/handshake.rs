//! The coordination runtime: one operation's life, written once for every operation.
//!
//! An [`Op`] owns a session id, the inbox [`links`](crate::links) feeds by that id, the
//! operation's tracing span and its [`OpRecord`]. Its phases are the handshake:
//!
//! 1. [`Op::prepare`] — ask every party, collect ready / refused answers until the operation
//!    has enough or the deadline passes. A party that cannot be reached, or that disconnects
//!    while deciding, is absent at once.
//! 2. [`Op::await_late`] — parties still deciding when the operation went ahead: their late
//!    readies are cancelled and their late refusals recorded, in [`Op::late_answer`] only.
//! 3. [`Op::run_phase`] — send a start (or a commit, or a delete) to the chosen parties and
//!    collect each one's result under a [`Rule`]: a protocol phase ends at once when a party
//!    disconnects (and at the first failure if the operation says so); an acknowledgement
//!    phase only counts the party absent.
//! 4. [`Op::finish`] — outcome, metrics, the stored record, late answers gathered afterwards.
//!
//! The operations ([`crate::ops`]) say only who must be ready, how parties are chosen and what
//! a result must contain.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cohort_wire::{
    Address, AnswerKind, Bytes32, ErrorBody, ErrorCode, ManagerMsg, NodeMsg, OpKind, OpOutcome,
};
use rand::RngCore;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::State;
use crate::links::Inbound;
use crate::record::{OpError, OpRecord, Refusal};

/// A timeout from the configuration, never zero.
pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s.max(1))
}

/// How a phase after the prepare treats a party that fails or goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// A protocol that stops at its first failed party (the others would only wait on it).
    FailFast,
    /// A protocol whose every result is wanted; a disconnect still ends it at once, since the
    /// protocol cannot finish without that party.
    WaitAll,
    /// Acknowledgements (commit, delete): a party that goes away is absent; the others go on.
    Acks,
}

/// The results of one phase after the prepare.
pub(crate) struct Results<T> {
    /// Each answering party's result, in arrival order (unreachable parties first).
    pub results: Vec<(Address, Result<T, ErrorBody>)>,
    /// Parties that gave no result before the phase ended, in the order they were asked.
    pub missing: Vec<Address>,
}

impl<T> Results<T> {
    /// The first failure, with the culprits of every failure merged into it (only what the
    /// nodes' engines named: a party that went away adds none, see [`gone`]).
    pub(crate) fn failure(&self) -> Option<ErrorBody> {
        let mut failure: Option<ErrorBody> = None;
        for (_, r) in &self.results {
            if let Err(e) = r {
                let f = failure.get_or_insert_with(|| e.clone());
                for c in &e.culprits {
                    if !f.culprits.contains(c) {
                        f.culprits.push(*c);
                    }
                }
            }
        }
        failure
    }

    /// The successful results.
    pub(crate) fn oks(self) -> Vec<(Address, T)> {
        self.results
            .into_iter()
            .filter_map(|(a, r)| r.ok().map(|v| (a, v)))
            .collect()
    }
}

/// Parties still deciding when the operation went ahead without them.
struct Late {
    pending: HashSet<Address>,
    until: Instant,
    cancel: fn(Bytes32) -> ManagerMsg,
    changed: bool,
}

/// One running operation.
pub(crate) struct Op {
    pub(crate) state: Arc<State>,
    /// What is recorded; the operations fill in their own fields (digest, context…).
    pub(crate) record: OpRecord,
    rx: mpsc::Receiver<(Address, Inbound)>,
    started: Instant,
    span: tracing::Span,
    /// Asked in the prepare and not yet answered.
    pending: HashSet<Address>,
    asked_at: Instant,
    observe_latency: bool,
    late: Option<Late>,
}

impl Op {
    /// A fresh session for `kind` on `key_id` among `parties`, with its inbox registered.
    pub(crate) fn new(state: &Arc<State>, kind: OpKind, key_id: &str, parties: Vec<Address>) -> Op {
        let mut s = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        let session_id = Bytes32(s);
        let rx = state.links.open_inbox(session_id, 4 * parties.len() + 16);
        let span = tracing::info_span!("op", session = %session_id, op = %kind, key_id = %key_id);
        Op {
            state: state.clone(),
            record: OpRecord::new(session_id, kind, key_id, parties),
            rx,
            started: Instant::now(),
            span,
            pending: HashSet::new(),
            asked_at: Instant::now(),
            observe_latency: false,
            late: None,
        }
    }

    /// Feeds this operation's prepare → ready times to the [`crate::latency`] model (the
    /// operations whose signer choice it serves say so).
    pub(crate) fn learn_latency(&mut self) {
        self.observe_latency = true;
    }

    /// The session id.
    pub(crate) fn session(&self) -> Bytes32 {
        self.record.session_id
    }

    /// The operation's span: the operations run inside it, so one grep of the session id
    /// follows the operation.
    pub(crate) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Sends `msg` to each of `to`; returns those it could not reach.
    pub(crate) fn broadcast(&self, to: &[Address], msg: impl Fn() -> ManagerMsg) -> Vec<Address> {
        to.iter()
            .filter(|a| !self.state.links.send(a, msg()))
            .copied()
            .collect()
    }

    async fn next(&mut self, until: Instant) -> Option<(Address, Inbound)> {
        // Past the deadline, answers already queued still count.
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            return self.rx.try_recv().ok();
        };
        tokio::time::timeout(left, self.rx.recv())
            .instrument(self.span.clone())
            .await
            .ok()
            .flatten()
    }

    /// Phase 1: asks `to` with `msg` and collects answers until `enough`, everyone answered,
    /// or `until`. Returns the ready answers (for what they carry).
    pub(crate) async fn prepare(
        &mut self,
        to: &[Address],
        msg: impl Fn() -> ManagerMsg,
        until: Instant,
        enough: impl FnMut(&OpRecord) -> bool,
    ) -> Vec<(Address, NodeMsg)> {
        self.asked_at = Instant::now();
        let unreachable = self.broadcast(to, msg);
        self.record.absent.extend(unreachable.iter().copied());
        self.pending = to
            .iter()
            .filter(|a| !unreachable.contains(a))
            .copied()
            .collect();
        self.collect_ready(until, enough).await
    }

    /// Goes on collecting phase-1 answers of the parties still deciding (a grace period).
    pub(crate) async fn collect_ready(
        &mut self,
        until: Instant,
        mut enough: impl FnMut(&OpRecord) -> bool,
    ) -> Vec<(Address, NodeMsg)> {
        let mut ready = Vec::new();
        // `enough` is asked after every answer, the last one included.
        while !enough(&self.record) && !self.pending.is_empty() {
            let Some((from, inbound)) = self.next(until).await else {
                break;
            };
            if !self.pending.contains(&from) {
                continue;
            }
            match inbound {
                Inbound::Gone(why) => {
                    self.pending.remove(&from);
                    tracing::info!(parent: &self.span, %from, %why, "party gone while deciding");
                    self.record.absent.push(from);
                }
                Inbound::Msg(msg) => match (msg.answer_kind(), msg) {
                    (AnswerKind::Ready, msg) => {
                        self.pending.remove(&from);
                        self.record.ready.push(from);
                        if self.observe_latency {
                            let ms = self.asked_at.elapsed().as_secs_f64() * 1e3;
                            self.state.latency.observe(from, ms);
                        }
                        ready.push((from, msg));
                    }
                    (AnswerKind::Refused, NodeMsg::Refused { error, .. }) => {
                        self.pending.remove(&from);
                        self.record.refused.push(Refusal {
                            address: from,
                            error,
                        });
                    }
                    _ => {}
                },
            }
        }
        ready
    }

    /// The parties still deciding are absent (operations that need every answer now).
    pub(crate) fn pending_absent(&mut self) {
        let mut left: Vec<Address> = self.pending.drain().collect();
        left.sort_by_key(|a| self.record.parties.iter().position(|p| p == a));
        self.record.absent.extend(left);
    }

    /// The operation goes ahead without the parties still deciding: until `until`, their late
    /// readies are answered with `cancel` and their late refusals recorded (also after
    /// [`Op::finish`], which then rewrites the stored record).
    pub(crate) fn await_late(&mut self, until: Instant, cancel: fn(Bytes32) -> ManagerMsg) {
        let pending: HashSet<Address> = self.pending.drain().collect();
        if !pending.is_empty() {
            self.late = Some(Late {
                pending,
                until,
                cancel,
                changed: false,
            });
        }
    }

    /// The one place late answers land: a refusal is recorded, a ready is cancelled.
    fn late_answer(&mut self, from: Address, inbound: Inbound) {
        let session_id = self.session();
        let Some(late) = &mut self.late else {
            return;
        };
        if !late.pending.contains(&from) {
            return;
        }
        match inbound {
            Inbound::Msg(NodeMsg::Refused { error, .. }) => {
                late.pending.remove(&from);
                late.changed = true;
                self.record.refused.push(Refusal {
                    address: from,
                    error,
                });
            }
            Inbound::Msg(msg) if msg.answer_kind() == AnswerKind::Ready => {
                late.pending.remove(&from);
                self.state.links.send(&from, (late.cancel)(session_id));
            }
            Inbound::Gone(_) => {
                late.pending.remove(&from);
            }
            Inbound::Msg(_) => {}
        }
    }

    /// A later phase: sends `msg` to `to` and collects each one's result, as `extract` reads
    /// it from the frames of this session, under `rule`, until `until`.
    pub(crate) async fn run_phase<T>(
        &mut self,
        to: &[Address],
        msg: impl Fn() -> ManagerMsg,
        until: Instant,
        rule: Rule,
        mut extract: impl FnMut(Address, NodeMsg) -> Option<Result<T, ErrorBody>>,
    ) -> Results<T> {
        let unreachable = self.broadcast(to, msg);
        let mut waiting: HashSet<Address> = to
            .iter()
            .filter(|a| !unreachable.contains(a))
            .copied()
            .collect();
        let mut results = Vec::new();
        let mut stop = false;
        for a in unreachable {
            self.record.absent.push(a);
            results.push((a, Err(gone(a, "not connected"))));
            stop |= rule != Rule::Acks;
        }
        while !stop && !waiting.is_empty() {
            let Some((from, inbound)) = self.next(until).await else {
                break;
            };
            if !waiting.contains(&from) {
                self.late_answer(from, inbound);
                continue;
            }
            match inbound {
                Inbound::Gone(why) => {
                    waiting.remove(&from);
                    self.record.absent.push(from);
                    results.push((from, Err(gone(from, &why))));
                    stop = rule != Rule::Acks;
                }
                Inbound::Msg(msg) => {
                    if let Some(r) = extract(from, msg) {
                        waiting.remove(&from);
                        stop = r.is_err() && rule == Rule::FailFast;
                        results.push((from, r));
                    }
                }
            }
        }
        let missing = to.iter().filter(|a| waiting.contains(a)).copied().collect();
        Results { results, missing }
    }

    /// The outcome of a protocol phase: its first failure; else, if anyone gave no result, a
    /// timeout naming them in its message and counting them absent — never as culprits (a
    /// timeout is absence: a slow or cut-off party is not proven to cheat); else every party's
    /// result.
    pub(crate) fn completed<T>(
        &mut self,
        results: Results<T>,
        what: &str,
    ) -> Result<Vec<(Address, T)>, ErrorBody> {
        if let Some(e) = results.failure() {
            return Err(e);
        }
        if !results.missing.is_empty() {
            self.record.absent.extend(results.missing.iter().copied());
            return Err(ErrorBody {
                code: ErrorCode::Timeout,
                message: format!(
                    "{what} did not finish in time on: {}",
                    crate::record::list(&results.missing)
                ),
                culprits: Vec::new(),
            });
        }
        Ok(results.oks())
    }

    /// Ends the operation: outcome, metrics, the stored record, the log line; late answers
    /// are still gathered afterwards.
    pub(crate) fn finish<T>(
        mut self,
        result: Result<T, ErrorBody>,
    ) -> Result<(T, OpRecord), OpError> {
        let elapsed = self.started.elapsed();
        self.record.duration_ms = elapsed.as_millis() as u64;
        let outcome = match &result {
            Ok(_) => {
                self.record.outcome = OpOutcome::Ok;
                "ok"
            }
            Err(e) => {
                self.record.outcome = OpOutcome::Failed;
                self.record.culprits = e.culprits.clone();
                self.record.error = Some(e.clone());
                e.code.as_str()
            }
        };
        self.state
            .metrics
            .record(self.record.operation, outcome, elapsed.as_secs_f64());
        self.store_record();
        tracing::info!(
            parent: &self.span,
            outcome = %self.record.outcome,
            ms = self.record.duration_ms,
            absent = ?self.record.absent,
            "operation finished"
        );
        let record = self.record.clone();
        if self.late.as_ref().is_some_and(|l| !l.pending.is_empty()) {
            let span = self.span.clone();
            tokio::spawn(self.record_late_answers().instrument(span));
        }
        match result {
            Ok(v) => Ok((v, record)),
            Err(e) => Err(OpError::from_record(&record, e)),
        }
    }

    /// After the finish: collects the late answers and rewrites the stored record if any
    /// refusal came in.
    async fn record_late_answers(mut self) {
        let until = match &self.late {
            Some(l) => l.until,
            None => return,
        };
        while self.late.as_ref().is_some_and(|l| !l.pending.is_empty()) {
            let Some((from, inbound)) = self.next(until).await else {
                break;
            };
            self.late_answer(from, inbound);
        }
        if self.late.as_ref().is_some_and(|l| l.changed) {
            self.store_record();
        }
    }

    fn store_record(&self) {
        match serde_json::to_vec(&self.record) {
            Ok(bytes) => {
                if let Err(e) = self.state.oplog.put(self.record.session_id.0, &bytes) {
                    tracing::error!(parent: &self.span, error = %e, "could not record operation");
                }
            }
            Err(e) => {
                tracing::error!(parent: &self.span, error = %e, "could not encode operation record")
            }
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        self.state.links.close_inbox(&self.record.session_id);
    }
}

/// The failure of a party that went away (or could not be reached). It is recorded absent,
/// never a culprit: going away proves nothing (a crash, a network cut, or a path attacker
/// between it and the manager look the same), and culprits come only from the nodes' own
/// engine checks.
pub(crate) fn gone(from: Address, why: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::Timeout, format!("{from}: {why}"))
}
