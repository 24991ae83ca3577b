//! One manager message in, the answers out: each message goes to its operation's module
//! (`ops::*`), inside the session's tracing span, and nothing else happens here.
//!
//! The span is `session` with fields `session`, `op` and `key_id` — the same names the
//! manager's operation span carries — so grepping one session id follows an operation through
//! the manager and every node: prepare, start and the protocol run on the compute runtime.

use std::sync::Arc;

use cohort_wire::{Bytes32, ErrorCode, ManagerMsg, NodeMsg, OpKind, ReshareSpec, SignContext};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::errors::err;
use crate::ops::{aux, delete, keygen, presign, reshare, sign};
use crate::{Inner, status};

/// The kind a resharing spec describes: a refresh keeps committee and threshold.
fn reshare_kind(spec: &ReshareSpec) -> OpKind {
    if spec.new_parties == spec.old_parties && spec.new_threshold == spec.old_threshold {
        OpKind::Refresh
    } else {
        OpKind::Reshare
    }
}

fn sign_kind(context: &SignContext) -> OpKind {
    match context {
        SignContext::Digest => OpKind::Sign,
        SignContext::StateBatch { .. }
        | SignContext::Rollback { .. }
        | SignContext::ChallengeRollback { .. } => OpKind::SignState,
    }
}

/// The span of the session `msg` belongs to (none for link-level messages).
fn span_of(msg: &ManagerMsg) -> tracing::Span {
    let (session, op, key_id): (&Bytes32, &str, &str) = match msg {
        ManagerMsg::AuxInfoPrepare { session_id, .. }
        | ManagerMsg::AuxInfoStart { session_id, .. } => (session_id, OpKind::Aux.as_str(), ""),
        ManagerMsg::KeyGenPrepare {
            session_id, key_id, ..
        }
        | ManagerMsg::KeyGenStart {
            session_id, key_id, ..
        } => (session_id, OpKind::Keygen.as_str(), key_id.as_str()),
        ManagerMsg::KeySignPrepare {
            session_id,
            key_id,
            context,
            ..
        }
        | ManagerMsg::KeySignStart {
            session_id,
            key_id,
            context,
            ..
        } => (session_id, sign_kind(context).as_str(), key_id.as_str()),
        ManagerMsg::PresignPrepare {
            session_id, key_id, ..
        }
        | ManagerMsg::PresignStart {
            session_id, key_id, ..
        } => (session_id, OpKind::Presign.as_str(), key_id.as_str()),
        ManagerMsg::KeyResharePrepare { session_id, spec }
        | ManagerMsg::KeyReshareStart { session_id, spec } => (
            session_id,
            reshare_kind(spec).as_str(),
            spec.key_id.as_str(),
        ),
        ManagerMsg::KeyReshareCommit {
            session_id, key_id, ..
        }
        | ManagerMsg::KeyReshareAbort { session_id, key_id } => {
            (session_id, OpKind::Reshare.as_str(), key_id.as_str())
        }
        ManagerMsg::KeyDelete {
            session_id, key_id, ..
        } => (session_id, OpKind::Delete.as_str(), key_id.as_str()),
        ManagerMsg::KeySignCancel { session_id } => (session_id, "cancel", ""),
        ManagerMsg::Ping { .. }
        | ManagerMsg::Challenge { .. }
        | ManagerMsg::Welcome { .. }
        | ManagerMsg::Rejected { .. } => return tracing::Span::none(),
    };
    tracing::info_span!("session", session = %session, op = %op, key_id = %key_id)
}

/// Handles one manager message; replies go to `tx`.
pub(crate) async fn handle(inner: Arc<Inner>, msg: ManagerMsg, tx: mpsc::Sender<NodeMsg>) {
    let span = span_of(&msg);
    async move {
        for reply in answers(&inner, msg).await {
            let _ = tx.send(reply).await;
        }
    }
    .instrument(span)
    .await
}

/// `done`, then the node's status: an operation that changed the store tells the manager.
fn with_status(inner: &Inner, done: NodeMsg) -> Vec<NodeMsg> {
    vec![done, status::status(inner)]
}

/// The answers to one manager message, in the order they are sent.
pub(crate) async fn answers(inner: &Arc<Inner>, msg: ManagerMsg) -> Vec<NodeMsg> {
    match msg {
        ManagerMsg::Ping { nonce } => vec![NodeMsg::Pong { nonce }],
        ManagerMsg::AuxInfoPrepare {
            session_id,
            members,
        } => vec![aux::prepare(inner, session_id, members)],
        ManagerMsg::AuxInfoStart {
            session_id,
            members,
        } => {
            let result = aux::start(inner, session_id, members).await;
            with_status(inner, NodeMsg::AuxInfoFinish { session_id, result })
        }
        ManagerMsg::KeyGenPrepare {
            session_id,
            key_id,
            threshold,
            parties,
            // Checked against the node's own L1 view in L1 mode (l1-spec §3.5.2).
            election: _,
        } => vec![keygen::prepare(
            inner, session_id, key_id, threshold, parties,
        )],
        ManagerMsg::KeyGenStart {
            session_id,
            key_id,
            threshold,
            parties,
        } => {
            let result = keygen::start(inner, session_id, key_id, threshold, parties).await;
            with_status(inner, NodeMsg::KeyGenFinish { session_id, result })
        }
        ManagerMsg::KeySignPrepare {
            session_id,
            key_id,
            digest,
            context,
            key_session_id,
        } => vec![sign::prepare(inner, session_id, key_id, digest, context, key_session_id).await],
        ManagerMsg::KeySignStart {
            session_id,
            key_id,
            digest,
            context,
            signers,
            presignature,
        } => {
            let with_presig = presignature.is_some();
            let result = sign::start(
                inner,
                session_id,
                key_id,
                digest,
                context,
                signers,
                presignature,
            )
            .await;
            vec![match (with_presig, result) {
                (true, Ok(partial)) => NodeMsg::KeySignPartial {
                    session_id,
                    partial,
                },
                (_, result) => NodeMsg::KeySignFinish { session_id, result },
            }]
        }
        ManagerMsg::PresignPrepare {
            session_id,
            key_id,
            key_session_id,
            signers,
        } => vec![presign::prepare(
            inner,
            session_id,
            key_id,
            key_session_id,
            signers,
        )],
        ManagerMsg::PresignStart {
            session_id,
            key_id,
            key_session_id,
            signers,
        } => vec![NodeMsg::PresignFinish {
            session_id,
            result: presign::start(inner, session_id, key_id, key_session_id, signers).await,
        }],
        ManagerMsg::KeyResharePrepare { session_id, spec } => {
            vec![reshare::prepare(inner, session_id, spec)]
        }
        ManagerMsg::KeyReshareStart { session_id, spec } => {
            let (result, ack) = match reshare::start(inner, session_id, spec).await {
                Ok((info, ack)) => (Ok(info), ack),
                Err(e) => (Err(e), None),
            };
            vec![NodeMsg::KeyReshareFinish {
                session_id,
                result,
                ack,
            }]
        }
        ManagerMsg::KeyReshareCommit {
            session_id,
            key_id,
            new_parties,
            acks,
        } => {
            let result = reshare::commit(inner, session_id, &key_id, &new_parties, &acks);
            if let Err(e) = &result {
                tracing::error!(error = %e.message, "reshare commit failed");
            }
            let done = NodeMsg::KeyReshareDone {
                session_id,
                key_id,
                result,
            };
            with_status(inner, done)
        }
        ManagerMsg::KeyReshareAbort { session_id, key_id } => vec![NodeMsg::KeyReshareDone {
            session_id,
            result: reshare::abort(inner, session_id, &key_id),
            key_id,
        }],
        ManagerMsg::KeySignCancel { session_id } => {
            inner.sessions.cancel(&session_id);
            Vec::new()
        }
        ManagerMsg::KeyDelete {
            session_id,
            key_id,
            key_session_id,
        } => match delete::delete(inner, &key_id, &key_session_id) {
            Ok(existed) => {
                let done = NodeMsg::KeyDeleted {
                    session_id,
                    key_id,
                    existed,
                };
                with_status(inner, done)
            }
            Err(error) => vec![NodeMsg::Refused { session_id, error }],
        },
        ManagerMsg::Challenge { .. } | ManagerMsg::Welcome { .. } | ManagerMsg::Rejected { .. } => {
            vec![NodeMsg::Error {
                error: err(
                    ErrorCode::BadRequest,
                    "handshake message after the handshake",
                ),
            }]
        }
    }
}
