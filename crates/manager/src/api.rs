//! The HTTP JSON API (axum) and the node WebSocket endpoint.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cohort_engine::PublicKey;
use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode, KeyId, SignContext};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::State;
use crate::ops;
use crate::persist::registry::KeyEntry;
use crate::record::{OpError, Refusal};

/// Largest request body the API reads.
const MAX_BODY: usize = 1024 * 1024;
/// Longest request target (path and query) the API reads; longer is 414. Below hyper's own
/// limit, so that the answer is the API's JSON and not hyper's empty one.
const MAX_URI: usize = 8 * 1024;
/// Most header fields, and most header bytes, the API reads; more is 431 (hyper's own limits,
/// 100 fields and a 400 KiB buffer, stay behind these).
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The API router; with `serve_ws` it also serves the node WebSocket `/v1/ws` (when the
/// manager has no separate `ws_listen`).
pub(crate) fn router(state: Arc<State>, serve_ws: bool) -> Router {
    let api = Router::new()
        .route("/v1/keys", post(create_key).get(list_keys))
        .route("/v1/keys/{key_id}", get(get_key).delete(delete_key))
        .route("/v1/keys/{key_id}/sign", post(sign))
        .route("/v1/keys/{key_id}/reshare", post(reshare))
        .route("/v1/keys/{key_id}/refresh", post(refresh))
        .route(
            "/api/v1/sign/state",
            post(crate::mantle::sign_state).layer(axum::extract::DefaultBodyLimit::max(
                crate::mantle::body_limit(),
            )),
        )
        .route("/v1/nodes", get(nodes))
        .route("/v1/operations/{session_id}", get(operation))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    let mut open = Router::new()
        .merge(api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/status", get(status));
    if serve_ws {
        open = open.route("/v1/ws", get(ws));
    }
    open.route("/metrics", get(metrics))
        // Mantle's manager's routes, for tooling pointed at it.
        .route("/ping", get(crate::mantle::ping))
        .route("/api/v1/metrics", get(metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), request_body))
        .layer(middleware::from_fn(limits))
        .layer(middleware::from_fn(json_errors))
        .with_state(state)
}

/// The router of the separate node WebSocket listener: `/v1/ws` and nothing else.
pub(crate) fn ws_router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/ws", get(ws))
        .fallback(no_route)
        .with_state(state)
}

/// Who this manager is: the address nodes pin for it, and its version.
async fn status(AxState(state): AxState<Arc<State>>) -> Json<serde_json::Value> {
    Json(json!({
        "manager_address": state.identity.address(),
        "version": env!("CARGO_PKG_VERSION"),
        "members": state.config.members.len(),
        "ws_tls": state.config.tls.is_some(),
    }))
}

async fn no_route(req: Request) -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        ErrorCode::BadRequest,
        format!("no route {} {}", req.method(), req.uri().path()),
    )
}

async fn no_method(req: Request) -> ApiError {
    ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// Refuses oversized request targets (414) and header sections (431) before routing.
async fn limits(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI {
        return ApiError::with_status(
            StatusCode::URI_TOO_LONG,
            ErrorCode::BadRequest,
            format!("request target is {target} bytes, the limit is {MAX_URI}"),
        )
        .into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return ApiError::with_status(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::BadRequest,
            format!(
                "{} header fields, {bytes} bytes; the limits are {MAX_HEADERS} and {MAX_HEADER_BYTES}",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether a `Content-Type` value is JSON: `application/json`, parameters allowed.
fn is_json_type(v: &header::HeaderValue) -> bool {
    v.to_str().ok().is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Whether the request announces a body (a non-zero length, or chunks).
fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    match headers.get(header::CONTENT_LENGTH) {
        None => false,
        Some(v) => v.to_str().map_or(true, |v| v.trim() != "0"),
    }
}

/// The request body, before routing: every body (and every `Content-Type` a request states on
/// a method that changes something) must be `application/json` — 415 otherwise, so that no
/// browser "simple request" (`text/plain`, a form) from another origin is ever acted on — and
/// the whole body must arrive within `body_read_timeout_secs` (408 otherwise) so that a
/// trickled body cannot hold a connection.
async fn request_body(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let body = has_body(headers);
    let safe = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let typed = headers.get(header::CONTENT_TYPE);
    let refuse = match typed {
        Some(t) => (body || !safe) && !is_json_type(t),
        None => body,
    };
    if refuse {
        let what = typed
            .and_then(|t| t.to_str().ok())
            .map_or("no Content-Type".to_string(), |t| {
                format!("Content-Type {t:?}")
            });
        return ApiError::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadRequest,
            format!("request bodies must be application/json; this one has {what}"),
        )
        .into_response();
    }
    if !body {
        return next.run(req).await;
    }
    let (parts, raw) = req.into_parts();
    // The largest body any route takes; each route's own limit applies after (413).
    let cap = MAX_BODY.max(crate::mantle::body_limit()) + 1;
    let deadline = state.config.http.body_read_timeout();
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(raw, cap)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return ApiError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadRequest,
                format!("request body not read: {e}"),
            )
            .into_response();
        }
        Err(_) => {
            tracing::warn!(
                secs = deadline.as_secs(),
                "request body not received in time"
            );
            let mut res = ApiError::with_status(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::BadRequest,
                format!("request body not received within {} s", deadline.as_secs()),
            )
            .into_response();
            res.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return res;
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Gives every error answer the documented shape: axum's and tower's own rejections (bad
/// JSON, bad path, body too large…) come as plain text and are rewritten here.
async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let text = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let code = match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    ApiError::with_status(status, code, text).into_response()
}

/// An API error: `{"error": {"code", "message", ...}}` with a fitting status.
pub(crate) struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::from_body(
            ErrorBody::new(code, message),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            None,
        )
    }

    /// An error whose status is the HTTP layer's own (404, 405, 413…), not its code's.
    fn with_status(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            ..Self::new(code, message)
        }
    }

    /// The error's message, for tests.
    #[cfg(test)]
    pub(crate) fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn from_body(
        e: ErrorBody,
        absent: Vec<Address>,
        refused: Vec<Refusal>,
        ready: Vec<Address>,
        session: Option<Bytes32>,
    ) -> Self {
        let status = match e.code {
            ErrorCode::BadRequest | ErrorCode::NotAParty => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::KeyNotFound | ErrorCode::KeyDeleted => StatusCode::NOT_FOUND,
            ErrorCode::KeyPending
            | ErrorCode::KeyExists
            | ErrorCode::JournalConflict
            | ErrorCode::Replayed => StatusCode::CONFLICT,
            ErrorCode::KeyNotReady | ErrorCode::ContentRejected | ErrorCode::L1Refused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::L2Unavailable | ErrorCode::L1Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotEnoughParties | ErrorCode::AuxMissing => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::ProtocolFailed | ErrorCode::PresignatureRefused => StatusCode::BAD_GATEWAY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut err = json!({ "code": e.code, "message": e.message });
        if !e.culprits.is_empty() {
            err["culprits"] = json!(e.culprits);
        }
        if !absent.is_empty() {
            err["absent"] = json!(absent);
        }
        if !refused.is_empty() {
            err["refused"] = json!(refused);
        }
        if !ready.is_empty() {
            err["ready"] = json!(ready);
        }
        if let Some(s) = session {
            err["session_id"] = json!(s);
        }
        ApiError {
            status,
            body: json!({ "error": err }),
        }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        ApiError::from_body(e.error, e.absent, e.refused, e.ready, e.session_id)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

async fn auth(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(why) = state.auth.check(given, crate::auth::unix_now()) {
        state.metrics.auth_failure(why.label());
        return ApiError::new(ErrorCode::Unauthorized, why.message()).into_response();
    }
    next.run(req).await
}

/// A key as the API shows it.
#[derive(Serialize)]
struct KeyView {
    key_id: String,
    status: &'static str,
    threshold: u16,
    parties: Vec<Address>,
    public_key: String,
    address: String,
    key_session_id: Bytes32,
}

fn view(k: &KeyEntry) -> KeyView {
    let address = PublicKey::from_sec1(&k.public_key.0)
        .map(|p| p.address_checksummed())
        .unwrap_or_default();
    KeyView {
        key_id: k.key_id.to_string(),
        status: if k.deleted { "deleted" } else { "ready" },
        threshold: k.threshold,
        parties: k.parties.clone(),
        public_key: k.public_key.to_string(),
        address,
        key_session_id: k.key_session_id,
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateKey {
    pub(crate) key_id: KeyId,
    pub(crate) threshold: u16,
    #[serde(default)]
    pub(crate) parties: Option<Vec<Address>>,
}

/// The one key-id rule at the API's edge: a bad id is a 400 naming the rule, before any
/// operation starts.
pub(crate) fn parse_key_id(s: String) -> Result<KeyId, ApiError> {
    KeyId::new(s).map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("bad JSON body: {e}")))
}

/// Runs an operation on a task of its own: a client that hangs up cancels its HTTP handler,
/// and that must not stop a protocol half-way (a keygen in flight, a reshare between its
/// commit messages, a delete sent to half the nodes). The operation finishes and is recorded.
pub(crate) async fn detached<T: Send + 'static>(
    op: impl std::future::Future<Output = Result<T, OpError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(op).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            ErrorCode::Internal,
            format!("operation task failed: {e}"),
        )),
    }
}

async fn create_key(
    AxState(state): AxState<Arc<State>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: CreateKey = json_body(&body)?;
    let (entry, record) = detached(async move {
        ops::keygen::keygen(&state, req.key_id, req.threshold, req.parties).await
    })
    .await?;
    let status = if record.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&entry))).into_response())
}

async fn list_keys(AxState(state): AxState<Arc<State>>) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = state
        .registry
        .list()
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(Json(keys.iter().filter(|k| !k.deleted).map(view).collect()))
}

async fn get_key(
    AxState(state): AxState<Arc<State>>,
    Path(key_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key_id = parse_key_id(key_id)?;
    let key = ops::live_key(&state, &key_id)?;
    let mut v = serde_json::to_value(view(&key))
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let pool: Vec<serde_json::Value> = state
        .pool
        .entries(&key)
        .iter()
        .map(|e| json!({ "id": e.id, "signers": e.signers }))
        .collect();
    v["presignatures"] = json!(pool);
    Ok(Json(v))
}

async fn delete_key(
    AxState(state): AxState<Arc<State>>,
    Path(key_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key_id = parse_key_id(key_id)?;
    let rec = {
        let key_id = key_id.clone();
        detached(async move { ops::delete::delete(&state, &key_id).await }).await?
    };
    Ok(Json(json!({
        "key_id": key_id,
        "deleted": true,
        "confirmed_by": rec.ready,
        "pending": rec.absent,
        "session_id": rec.session_id,
    })))
}

#[derive(Deserialize)]
pub(crate) struct ReshareReq {
    pub(crate) parties: Vec<Address>,
    pub(crate) threshold: u16,
}

async fn reshare(
    AxState(state): AxState<Arc<State>>,
    Path(key_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key_id = parse_key_id(key_id)?;
    let req: ReshareReq = json_body(&body)?;
    let (entry, rec) = detached(async move {
        ops::reshare::reshare(&state, &key_id, Some(req.parties), Some(req.threshold)).await
    })
    .await?;
    let mut v = serde_json::to_value(view(&entry))
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    v["session_id"] = json!(rec.session_id);
    v["aux_moduli"] = aux_moduli(&entry);
    Ok(Json(v))
}

async fn refresh(
    AxState(state): AxState<Arc<State>>,
    Path(key_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key_id = parse_key_id(key_id)?;
    let (entry, rec) =
        detached(async move { ops::reshare::reshare(&state, &key_id, None, None).await }).await?;
    let mut v = serde_json::to_value(view(&entry))
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    v["session_id"] = json!(rec.session_id);
    v["aux_moduli"] = aux_moduli(&entry);
    Ok(Json(v))
}

/// Each new party's fresh Paillier modulus hash, from its signed acknowledgement: shows that a
/// resharing or refresh rotated every party's Paillier key.
fn aux_moduli(entry: &KeyEntry) -> serde_json::Value {
    json!(
        entry
            .acks
            .iter()
            .map(|a| json!({ "party": a.party, "aux_modulus": a.aux_modulus }))
            .collect::<Vec<_>>()
    )
}

#[derive(Deserialize)]
pub(crate) struct SignReq {
    pub(crate) digest: Bytes32,
}

async fn sign(
    AxState(state): AxState<Arc<State>>,
    Path(key_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key_id = parse_key_id(key_id)?;
    let req: SignReq = json_body(&body)?;
    // The nodes refuse this too (their `state_key_ids`); saying it here names the right door.
    if key_id == state.config.state_key_id {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "{key_id} is the state key: it signs only checked state batches, through POST /api/v1/sign/state"
            ),
        ));
    }
    let signed =
        detached(
            async move { ops::sign::sign(&state, &key_id, req.digest, SignContext::Digest).await },
        )
        .await?;
    Ok(Json(json!({
        "signature": signed.signature.to_hex(),
        "signers": signed.record.signers,
        "session_id": signed.record.session_id,
    })))
}

async fn nodes(AxState(state): AxState<Arc<State>>) -> Json<Vec<serde_json::Value>> {
    let members = &state.config.members;
    let out = members
        .iter()
        .map(|m| {
            let link = state.links.view(m);
            let conn = link.conn.as_ref();
            json!({
                "address": m,
                "peer_id": link.peer_id,
                "connected": conn.is_some(),
                "connected_since_ms": conn.map(|c| c.0),
                "aux_ready": conn.and_then(|c| c.1.as_ref().map(|a| a == members)),
                "keys": conn.map(|c| c.2),
                "primes_ready": conn.map(|c| c.3),
            })
        })
        .collect();
    Json(out)
}

async fn operation(
    AxState(state): AxState<Arc<State>>,
    Path(session_id): Path<String>,
) -> Result<Response, ApiError> {
    let id: Bytes32 = session_id
        .parse()
        .map_err(|e: String| ApiError::new(ErrorCode::BadRequest, e))?;
    match state.oplog.get(id.0) {
        Ok(Some(entry)) => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            entry.record_json,
        )
            .into_response()),
        Ok(None) => Err(ApiError::new(ErrorCode::KeyNotFound, "no such operation")),
        Err(e) => Err(ApiError::new(ErrorCode::Internal, e.to_string())),
    }
}

async fn metrics(AxState(state): AxState<Arc<State>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn ws(AxState(state): AxState<Arc<State>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(cohort_wire::MAX_FRAME_BYTES)
        .max_frame_size(cohort_wire::MAX_FRAME_BYTES)
        .on_upgrade(move |socket| crate::ws::serve(state, socket))
}
