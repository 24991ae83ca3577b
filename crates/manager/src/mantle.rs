//! Mantle's batch-submitter endpoint, `POST /api/v1/sign/state`, answered the way Mantle's own
//! manager answers it, and the batch limits that go with it.
//!
//! Mantle's Go client (`batch-submitter/tss-client/client.go`) posts with resty v2,
//! `SetResult` on a nil `[]byte`, then decodes the raw body itself into
//! `{Signature []byte "signature"; RollBack bool "roll_back"}`. resty v2 unmarshals every 2xx
//! body whose Content-Type matches `(application|text)/(json|*+json)` into the result and fails
//! on an object; Mantle's manager writes its JSON bytes raw, which Go serves as
//! `text/plain; charset=utf-8`. Successful answers here are therefore JSON bodies typed
//! `text/plain; charset=utf-8` (errors stay `application/json`: resty only unmarshals those
//! into an error type the client registered, and Mantle's registers none).
//!
//! The signature is base64 (Go's `[]byte`) for requests shaped as Go's `encoding/json` makes
//! them (roots as arrays of 32 numbers), `0x`-hex otherwise.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cohort_engine::{EthSignature, PublicKey};
use cohort_rollup::StateBatchRequest;
use cohort_wire::{Bytes32, ErrorCode, OpKind, SignContext};
use serde_json::{Value, json};

use crate::State;
use crate::api::{ApiError, detached, json_body, parse_key_id};
use crate::handshake::Op;
use crate::ops;

/// Bytes one root may take in a request body: Go's `[32]byte` as a JSON array of numbers is
/// at most `[` + 32 × `255,` + `],` (130 bytes); the rest is room for whitespace.
const BODY_BYTES_PER_ROOT: usize = 160;

/// The body limit of `POST /api/v1/sign/state`: big enough for the largest batch the parser
/// counts ([`cohort_rollup::MAX_STATE_ROOTS`]), so that any batch over `max_state_roots` is
/// answered with a 400 naming the limit rather than a bare 413.
pub(crate) fn body_limit() -> usize {
    cohort_rollup::MAX_STATE_ROOTS * BODY_BYTES_PER_ROOT + 64 * 1024
}

/// Phase-1 deadline of a signing, in seconds: `prepare_secs`, plus
/// `prepare_per_1000_roots_secs` per 1000 roots of a state batch (the nodes' L2 look-ups).
pub(crate) fn prepare_secs(config: &crate::ManagerConfig, context: &SignContext) -> u64 {
    let roots = match context {
        SignContext::StateBatch { state_roots, .. } => state_roots.len() as u64,
        _ => 0,
    };
    let t = &config.timeouts;
    t.prepare_secs.max(1).saturating_add(
        roots
            .saturating_mul(t.prepare_per_1000_roots_secs)
            .div_ceil(1000),
    )
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

/// Mantle's request `type`: 0 (state batch, the default) or 1 (rollback after a challenge).
pub(crate) fn request_type(raw: &Value) -> Result<u64, ApiError> {
    let t = match raw.get("type") {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    match t {
        Some(0) => Ok(0),
        Some(1) => Err(bad(
            "type 1 (a rollback after a won challenge) needs L1 mode: the challenge must be \
             checked on L1, and this manager runs without L1; only type 0 (state batch) is served",
        )),
        _ => Err(bad(format!(
            "invalid type {}: Mantle's request type is 0 (state batch) or 1 (rollback after a challenge)",
            raw.get("type").map(Value::to_string).unwrap_or_default()
        ))),
    }
}

/// A 2xx answer as Mantle's manager sends it: JSON bytes typed `text/plain; charset=utf-8`.
fn plain_json(v: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        v.to_string(),
    )
        .into_response()
}

fn encode_signature(sig: &EthSignature, go_client: bool) -> Value {
    if go_client {
        use base64::Engine as _;
        json!(base64::engine::general_purpose::STANDARD.encode(sig.0))
    } else {
        json!(sig.to_hex())
    }
}

/// A cached signature of `digest` by the key as it is now, re-verified; `None` if there is
/// none or it no longer verifies (a key deleted and created again under the same id).
fn cached(
    state: &State,
    key_id: &str,
    digest: &Bytes32,
) -> Option<(EthSignature, Bytes32, cohort_wire::HexBytes)> {
    let cache = state.sigcache.as_ref()?;
    let hit = match cache.get(key_id, &digest.0) {
        Ok(hit) => hit?,
        Err(e) => {
            tracing::warn!(error = %e, "signature cache not read; signing afresh");
            return None;
        }
    };
    let key = ops::live_key(state, key_id).ok()?;
    if hit.public_key != key.public_key.to_string() {
        return None;
    }
    let bytes = hex::decode(hit.signature.trim_start_matches("0x")).ok()?;
    let sig = EthSignature(<[u8; 65]>::try_from(bytes.as_slice()).ok()?);
    let address = PublicKey::from_sec1(&key.public_key.0).ok()?.address();
    if sig.recover_address(&digest.0).ok()? != address {
        tracing::warn!(%key_id, %digest, "cached signature does not verify; signing afresh");
        return None;
    }
    let session: Bytes32 = hit.session_id.parse().ok()?;
    Some((sig, session, key.public_key))
}

/// `POST /api/v1/sign/state`: sign a batch of L2 state roots once enough nodes have checked
/// every root against their own L2 node, or sign the rollback when enough disagree.
pub(crate) async fn sign_state(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let raw: Value = json_body(&body)?;
    request_type(&raw)?;
    let max = state.config.max_state_roots;
    if let Some(n) = raw
        .get("state_roots")
        .and_then(Value::as_array)
        .map(Vec::len)
        && n > max
    {
        return Err(bad(format!(
            "{n} state roots: at most {max} per batch (the manager's max_state_roots); \
             lower the batch submitter's MAX_STATE_ROOT_ELEMENTS below {max}"
        )));
    }
    let go_client = cohort_rollup::is_go_encoded(&raw);
    let req: StateBatchRequest =
        serde_json::from_value(raw).map_err(|e| bad(format!("bad state batch: {e}")))?;
    if req.end_block().is_none() {
        return Err(bad("block range overflows"));
    }
    let key_id = parse_key_id(
        req.key_id
            .clone()
            .unwrap_or_else(|| state.config.state_key_id.clone()),
    )?;
    let digest = Bytes32(cohort_rollup::state_batch_digest(
        &req.state_roots,
        req.offset_starts_at_index,
    ));
    let context_json = json!({
        "start_block": req.start_block,
        "offset_starts_at_index": req.offset_starts_at_index,
        "roots": req.state_roots.len(),
    });
    if let Some((sig, signed_in, _)) = cached(&state, &key_id, &digest) {
        // The identical request again: the identical signature, no protocol run; the record
        // says where it came from.
        let key = ops::live_key(&state, &key_id)?;
        let mut op = Op::new(&state, OpKind::SignState, &key_id, key.parties.clone());
        op.record.digest = Some(digest);
        op.record.context = Some(context_json);
        op.record.from_cache = Some(signed_in);
        let (_, record) = op.finish(Ok(()))?;
        state.metrics.signature_cache_hits.inc();
        return Ok(plain_json(&json!({
            "signature": encode_signature(&sig, go_client),
            "roll_back": false,
            "signers": [],
            "session_id": record.session_id,
            "cached": true,
            "signed_in": signed_in,
        })));
    }
    let context = SignContext::StateBatch {
        start_block: req.start_block,
        offset_starts_at_index: req.offset_starts_at_index,
        state_roots: req.state_roots.iter().map(|r| Bytes32(*r)).collect(),
    };
    let signed = {
        let state = state.clone();
        let key_id = key_id.clone();
        detached(async move { ops::sign::sign(&state, &key_id, digest, context).await }).await?
    };
    // A batch's signature is kept (the manager verified it in `ops::sign`); a rollback is not:
    // the same batch may be signed once the nodes' L2 nodes agree.
    if !signed.roll_back
        && let Some(cache) = &state.sigcache
        && let Ok(key) = ops::live_key(&state, &key_id)
        && let Err(e) = cache.put(
            &key_id,
            &digest.0,
            signed.signature.to_hex(),
            key.public_key.to_string(),
            signed.record.session_id.to_string(),
        )
    {
        tracing::warn!(error = %e, "signature not cached");
    }
    Ok(plain_json(&json!({
        "signature": encode_signature(&signed.signature, go_client),
        "roll_back": signed.roll_back,
        "signers": signed.record.signers,
        "session_id": signed.record.session_id,
        "cached": false,
    })))
}

/// `GET /ping`, as Mantle's manager serves it.
pub(crate) async fn ping() -> &'static str {
    "pong"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_other_than_0_and_1_are_refused_and_1_needs_l1() {
        assert_eq!(request_type(&json!({})).ok(), Some(0));
        assert_eq!(request_type(&json!({"type": 0})).ok(), Some(0));
        assert_eq!(request_type(&json!({"type": "0"})).ok(), Some(0));
        for t in [json!(2), json!("7"), json!(-1), json!("x"), json!([0])] {
            let e = request_type(&json!({ "type": t })).err().unwrap();
            assert!(e.message().contains("invalid type"), "{t}: {}", e.message());
        }
        let e = request_type(&json!({"type": 1})).err().unwrap();
        assert!(e.message().contains("needs L1 mode"), "{}", e.message());
    }

    #[test]
    fn deadlines_and_body_limit_scale_with_the_batch() {
        let c = crate::ManagerConfig::from_toml("data_dir = \"/tmp/x\"\nmembers = []").unwrap();
        let batch = |n: usize| SignContext::StateBatch {
            start_block: 1,
            offset_starts_at_index: 0,
            state_roots: vec![Bytes32([0; 32]); n],
        };
        assert_eq!(prepare_secs(&c, &SignContext::Digest), 10);
        assert_eq!(prepare_secs(&c, &batch(3001)), 10 + 10);
        assert_eq!(prepare_secs(&c, &batch(8192)), 10 + 25);
        // The manager waits longer than a node's default L2 look-up of the same batch.
        let l2 = cohort_rollup::L2Settings::default();
        for n in [1, 1000, 3001, 8192, cohort_wire::MAX_FRAME_STATE_ROOTS] {
            assert!(
                prepare_secs(&c, &batch(n)) > l2.deadline_for(n).as_secs(),
                "{n}"
            );
        }
        // 9000 Go-encoded roots (the largest form) fit the body limit.
        let roots = vec![vec![255u8; 32]; 9000];
        let body = json!({"start_block": "1", "offset_starts_at_index": "0", "state_roots": roots});
        assert!(body.to_string().len() < body_limit());
    }
}
