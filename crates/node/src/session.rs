//! The prepared-session rules, in one place: what a node agreed to in phase 1 (a [`Prepared`]
//! remembered under the session id), and the check that a phase-2 start is exactly that.
//!
//! A start is run only if
//! 1. its session id was never started before (a second start is a replay: refused),
//! 2. this node prepared that session id, and the prepare has not expired
//!    (`timeouts.prepared_secs`; the sweeper forgets expired prepares),
//! 3. the start names what the prepare approved — checked by one typed method per operation
//!    ([`Sessions::start_keygen`], [`Sessions::start_sign`], …), never by hand in the operation.
//!
//! A start that fails 2 or 3 consumes the prepare: the manager must prepare again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cohort_wire::{
    Address, Bytes32, Committee, ErrorBody, ErrorCode, KeyId, ReshareSpec, SignContext,
};

use crate::Inner;
use crate::errors::err;

/// How many started session ids are remembered to refuse replays.
const REMEMBERED_SESSIONS: usize = 4096;

/// What this node approved in phase 1 of a session, waiting for its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// Aux-info generation for this ordered membership.
    Aux { members: Vec<Address> },
    /// Keygen of a key for this committee.
    Keygen { key_id: KeyId, committee: Committee },
    /// Signing this digest (content checked in prepare).
    Sign {
        key_id: KeyId,
        digest: Bytes32,
        /// Journal slot, for content with one (a state batch's offset).
        slot: Option<u64>,
    },
    /// Generating a presignature for this signer set.
    Presign {
        key_id: KeyId,
        key_session_id: Bytes32,
        signers: Vec<Address>,
    },
    /// Resharing this key as described (dealers empty: the start chooses them).
    Reshare(ReshareSpec),
    /// The node disagreed with a state batch in this session: it may sign that batch's
    /// rollback, and nothing else.
    Rollback { key_id: KeyId, start_block: u64 },
}

/// The prepared sessions of this node and the session ids it has started.
pub(crate) struct Sessions {
    prepared: Mutex<HashMap<Bytes32, (Prepared, Instant)>>,
    started: Mutex<VecDeque<Bytes32>>,
    ttl: Duration,
}

/// The refusal of a second start of one session id.
fn replayed() -> ErrorBody {
    err(ErrorCode::Replayed, "session already started")
}

impl Sessions {
    /// Prepares expire `ttl` after they are remembered.
    pub(crate) fn new(ttl: Duration) -> Sessions {
        Sessions {
            prepared: Mutex::new(HashMap::new()),
            started: Mutex::new(VecDeque::new()),
            ttl,
        }
    }

    /// Remembers what this node approved for `session` (replacing an earlier prepare of it).
    pub(crate) fn prepare(&self, session: Bytes32, p: Prepared) {
        let deadline = Instant::now() + self.ttl;
        if let Ok(mut map) = self.prepared.lock() {
            map.insert(session, (p, deadline));
        }
    }

    /// Forgets the prepare of `session` (a cancel or an abort); true if there was one.
    pub(crate) fn cancel(&self, session: &Bytes32) -> bool {
        self.prepared
            .lock()
            .ok()
            .and_then(|mut m| m.remove(session))
            .is_some()
    }

    /// Forgets every prepare whose deadline is past `now`.
    pub(crate) fn sweep(&self, now: Instant) {
        if let Ok(mut m) = self.prepared.lock() {
            m.retain(|_, (_, deadline)| *deadline > now);
        }
    }

    /// How many prepares are waiting (for tests and status).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.prepared.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The rules of the module doc: `approve` maps the prepare to what the start needs, or
    /// `None` if the start does not match it (answered with `mismatch`).
    fn start<T>(
        &self,
        session: Bytes32,
        mismatch: &'static str,
        approve: impl FnOnce(Prepared) -> Option<T>,
    ) -> Result<T, ErrorBody> {
        let Ok(mut seen) = self.started.lock() else {
            return Err(err(ErrorCode::Internal, "session state unavailable"));
        };
        if seen.contains(&session) {
            return Err(replayed());
        }
        let taken = self
            .prepared
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&session));
        let approved = match taken {
            Some((p, deadline)) if deadline > Instant::now() => approve(p),
            Some(_) => {
                return Err(err(
                    ErrorCode::BadRequest,
                    format!("{mismatch} (the prepare expired)"),
                ));
            }
            None => None,
        };
        let Some(out) = approved else {
            return Err(err(ErrorCode::BadRequest, mismatch));
        };
        seen.push_back(session);
        while seen.len() > REMEMBERED_SESSIONS {
            seen.pop_front();
        }
        Ok(out)
    }

    /// An aux-info start: the membership prepared.
    pub(crate) fn start_aux(&self, session: Bytes32, members: &[Address]) -> Result<(), ErrorBody> {
        self.start(
            session,
            "aux-info start without a matching prepare",
            |p| match p {
                Prepared::Aux { members: m } if m == members => Some(()),
                _ => None,
            },
        )
    }

    /// A keygen start: the key id and the committee (parties in order, threshold) prepared.
    pub(crate) fn start_keygen(
        &self,
        session: Bytes32,
        key_id: &KeyId,
        threshold: u16,
        parties: &[Address],
    ) -> Result<Committee, ErrorBody> {
        self.start(
            session,
            "keygen start without a matching prepare",
            |p| match p {
                Prepared::Keygen {
                    key_id: k,
                    committee,
                } if k == *key_id
                    && committee.threshold() == threshold
                    && committee.parties() == parties =>
                {
                    Some(committee)
                }
                _ => None,
            },
        )
    }

    /// A signing start: the digest approved for that key — or, after a disagreement, only that
    /// batch's rollback. Returns the journal slot to record, if any.
    pub(crate) fn start_sign(
        &self,
        session: Bytes32,
        key_id: &KeyId,
        digest: &Bytes32,
        context: &SignContext,
    ) -> Result<Option<u64>, ErrorBody> {
        self.start(
            session,
            "sign start does not match what this node approved in prepare",
            |p| match (p, context) {
                (
                    Prepared::Sign {
                        key_id: k,
                        digest: d,
                        slot,
                    },
                    SignContext::Digest | SignContext::StateBatch { .. },
                ) if k == *key_id && d == *digest => Some(slot),
                (
                    Prepared::Rollback {
                        key_id: k,
                        start_block,
                    },
                    SignContext::Rollback { start_block: b },
                ) if k == *key_id
                    && start_block == *b
                    && digest.0 == cohort_rollup::rollback_digest(start_block) =>
                {
                    Some(None)
                }
                _ => None,
            },
        )
    }

    /// A presigning start: the sharing and the ordered signer set prepared.
    pub(crate) fn start_presign(
        &self,
        session: Bytes32,
        key_id: &KeyId,
        key_session_id: &Bytes32,
        signers: &[Address],
    ) -> Result<(), ErrorBody> {
        self.start(
            session,
            "presign start without a matching prepare",
            |p| match p {
                Prepared::Presign {
                    key_id: k,
                    key_session_id: s,
                    signers: g,
                } if k == *key_id && s == *key_session_id && g == signers => Some(()),
                _ => None,
            },
        )
    }

    /// A resharing start: the prepared spec, with the dealers the start chose.
    pub(crate) fn start_reshare(
        &self,
        session: Bytes32,
        spec: &ReshareSpec,
    ) -> Result<(), ErrorBody> {
        self.start(
            session,
            "reshare start without a matching prepare",
            |p| match p {
                Prepared::Reshare(p)
                    if p == ReshareSpec {
                        dealers: Vec::new(),
                        ..spec.clone()
                    } =>
                {
                    Some(())
                }
                _ => None,
            },
        )
    }
}

/// Forgets prepared sessions that were never started, every 5 s.
pub(crate) fn start_sweeper(inner: Arc<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            inner.sessions.sweep(Instant::now());
        }
    });
}
