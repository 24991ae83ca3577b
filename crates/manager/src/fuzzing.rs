//! Decode entry points for the cargo-fuzz targets (`fuzz/`): every HTTP route's body parsed
//! exactly as its handler parses it, before any operation starts.

use serde_json::Value;

use crate::api::{CreateKey, ReshareReq, SignReq, json_body, parse_key_id};

/// Parses `body` as each route's request; returns how many routes accepted it.
pub fn http_bodies(body: &[u8]) -> usize {
    let mut ok = 0;
    if let Ok(r) = json_body::<CreateKey>(body) {
        let _ = (r.key_id, r.threshold, r.parties.map(|p| p.len()));
        ok += 1;
    }
    if let Ok(r) = json_body::<ReshareReq>(body) {
        let _ = (r.parties.len(), r.threshold);
        ok += 1;
    }
    if let Ok(r) = json_body::<SignReq>(body) {
        let _ = r.digest;
        ok += 1;
    }
    if state_batch(body).is_some() {
        ok += 1;
    }
    ok
}

/// `POST /api/v1/sign/state`'s parse: the type, Go or hex encoding, the batch and its range.
fn state_batch(body: &[u8]) -> Option<()> {
    let raw: Value = json_body(body).ok()?;
    crate::mantle::request_type(&raw).ok()?;
    let _go = cohort_rollup::is_go_encoded(&raw);
    let req: cohort_rollup::StateBatchRequest = serde_json::from_value(raw).ok()?;
    req.end_block()?;
    if let Some(k) = req.key_id.clone() {
        let _ = parse_key_id(k);
    }
    let _ = cohort_rollup::state_batch_digest(&req.state_roots, req.offset_starts_at_index);
    Some(())
}

/// A path's key id, parsed as every `/v1/keys/{key_id}` route parses it.
pub fn key_id(s: &str) -> bool {
    parse_key_id(s.to_string()).is_ok()
}
