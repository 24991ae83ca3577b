//! The state-batch request of Mantle's batch submitter (`POST /api/v1/sign/state`).

use serde::{Deserialize, Deserializer, de::Error};

use crate::MAX_STATE_ROOTS;

/// Accepts an unsigned integer as a JSON number or a decimal string (Mantle sends strings).
pub fn flexible_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Str(String),
    }
    match N::deserialize(d)? {
        N::Num(n) => Ok(n),
        N::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| D::Error::custom(format!("{s:?} is not an unsigned decimal integer"))),
    }
}

fn flexible_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    flexible_u64(d).map(Some)
}

/// One root as `"0x…"` hex, or as the array of 32 byte values that Go's `encoding/json`
/// makes of Mantle's `[][32]byte`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Root {
    Hex(String),
    Bytes([u8; 32]),
}

/// Whether a request body is shaped as Mantle's Go batch submitter sends it (state roots as
/// byte arrays): such a client decodes the answer's `signature` as Go `[]byte`, i.e. base64.
pub fn is_go_encoded(body: &serde_json::Value) -> bool {
    body.get("state_roots")
        .and_then(|r| r.get(0))
        .is_some_and(serde_json::Value::is_array)
}

fn roots<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
    let v: Vec<Root> = Vec::deserialize(d)?;
    if v.is_empty() {
        return Err(D::Error::custom("state_roots is empty"));
    }
    if v.len() > MAX_STATE_ROOTS {
        return Err(D::Error::custom(format!(
            "{} state roots; at most {MAX_STATE_ROOTS} per request",
            v.len()
        )));
    }
    v.iter()
        .enumerate()
        .map(|(i, r)| {
            let s = match r {
                Root::Bytes(b) => return Ok(*b),
                Root::Hex(s) => s,
            };
            let h = s.strip_prefix("0x").unwrap_or(s);
            let mut out = [0u8; 32];
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(D::Error::custom(format!(
                    "state_roots[{i}] is not 0x + 64 hex digits"
                )));
            }
            for (k, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&h[2 * k..2 * k + 2], 16)
                    .map_err(|_| D::Error::custom(format!("state_roots[{i}] is not hex")))?;
            }
            Ok(out)
        })
        .collect()
}

/// A batch of L2 state roots to sign, as Mantle's batch submitter sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StateBatchRequest {
    /// L2 block of the first root.
    #[serde(deserialize_with = "flexible_u64")]
    pub start_block: u64,
    /// Index of the first root in the state-commitment chain: the journal's slot.
    #[serde(deserialize_with = "flexible_u64")]
    pub offset_starts_at_index: u64,
    /// One root per block, from `start_block` on.
    #[serde(deserialize_with = "roots")]
    pub state_roots: Vec<[u8; 32]>,
    /// Mantle's request type (0: state batch, 1: rollback request); recorded.
    #[serde(default, rename = "type", deserialize_with = "flexible_opt_u64")]
    pub kind: Option<u64>,
    /// Mantle's optional challenge field; recorded, not interpreted.
    #[serde(default)]
    pub challenge: Option<String>,
    /// Key to sign with; default the manager's state key.
    #[serde(default)]
    pub key_id: Option<String>,
}

impl StateBatchRequest {
    /// The L2 block of the last root (checked for overflow).
    pub fn end_block(&self) -> Option<u64> {
        self.start_block
            .checked_add(self.state_roots.len() as u64)?
            .checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_or_strings_and_bounds() {
        let r: StateBatchRequest = serde_json::from_str(&format!(
            r#"{{"start_block":"12","offset_starts_at_index":3,"state_roots":["0x{}"],"type":0}}"#,
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!((r.start_block, r.offset_starts_at_index), (12, 3));
        assert_eq!(r.state_roots, vec![[0xab; 32]]);
        assert_eq!(r.end_block(), Some(12));
        for bad in [
            r#"{"start_block":"-1","offset_starts_at_index":0,"state_roots":["0x00"]}"#,
            r#"{"start_block":1,"offset_starts_at_index":0,"state_roots":[]}"#,
            r#"{"start_block":1,"offset_starts_at_index":0,"state_roots":["0x1234"]}"#,
            r#"{"start_block":1,"state_roots":["0x1234"]}"#,
        ] {
            assert!(
                serde_json::from_str::<StateBatchRequest>(bad).is_err(),
                "{bad}"
            );
        }
        // Go's encoding of [][32]byte: arrays of 32 byte values.
        let go = serde_json::json!({
            "start_block": "12", "offset_starts_at_index": "11",
            "state_roots": [vec![0xabu8; 32], vec![1u8; 32]], "type": 0, "challenge": "", "election_id": 3
        });
        assert!(is_go_encoded(&go));
        let r: StateBatchRequest = serde_json::from_value(go).unwrap();
        assert_eq!(r.state_roots, vec![[0xab; 32], [1; 32]]);
        for bad in [
            serde_json::json!({"start_block": 1, "offset_starts_at_index": 0, "state_roots": [[1, 2, 3]]}),
            serde_json::json!({"start_block": 1, "offset_starts_at_index": 0, "state_roots": [vec![256u32; 32]]}),
        ] {
            assert!(
                serde_json::from_value::<StateBatchRequest>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(!is_go_encoded(
            &serde_json::json!({"state_roots": ["0x00"]})
        ));
        let many = vec![format!("0x{}", "00".repeat(32)); MAX_STATE_ROOTS + 1];
        let body =
            serde_json::json!({"start_block": 1, "offset_starts_at_index": 0, "state_roots": many});
        assert!(serde_json::from_value::<StateBatchRequest>(body).is_err());
    }
}
