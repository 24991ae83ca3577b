//! The node's look-up of state roots on its own L2 full node: `eth_getBlockByNumber(n, false)
//! .stateRoot` for every block of a batch, in JSON-RPC batches (one HTTP request per chunk of
//! blocks), with retries and a timeout; nodes that refuse batches are asked one block at a time.
//!
//! Written on reqwest rather than an alloy provider: it is one JSON-RPC method with a batch
//! fallback, and keeping it this small keeps the node's dependency tree (and CI build) small.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How a node talks to its L2 full node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct L2Settings {
    /// Per HTTP request timeout, in seconds (at most `deadline_secs`), so that a hung request
    /// leaves time for another attempt. Default 3.
    pub timeout_secs: u64,
    /// Attempts per request before the L2 node counts as unreachable. Default 3.
    pub attempts: u32,
    /// Blocks per JSON-RPC batch. Default 250.
    pub batch_size: usize,
    /// Deadline for the whole look-up of one batch, retries included. Keep it below the
    /// manager's `prepare_secs`, so that a slow L2 node is reported as such, not as absent.
    /// Default 8.
    pub deadline_secs: u64,
    /// Extra deadline per 1000 roots of a batch, in seconds, so that a big batch (Mantle's
    /// 3001, up to the manager's `max_state_roots`) is looked up in full: the deadline of a
    /// batch of n roots is `deadline_secs + ceil(n * deadline_per_1000_roots_secs / 1000)`.
    /// Keep it below the manager's `prepare_per_1000_roots_secs`. Default 2.
    pub deadline_per_1000_roots_secs: u64,
}

impl Default for L2Settings {
    fn default() -> Self {
        L2Settings {
            timeout_secs: 3,
            attempts: 3,
            batch_size: 250,
            deadline_secs: 8,
            deadline_per_1000_roots_secs: 2,
        }
    }
}

/// Why the L2 node could not answer.
#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    /// Not reachable, timed out, or answered garbage after every attempt.
    #[error("L2 node {url} unavailable: {reason}")]
    Unavailable {
        /// The node's URL, reduced to scheme, host and port: operators put API keys in paths
        /// and query strings, and this text travels to the manager and into logs.
        url: String,
        /// The last failure.
        reason: String,
    },
}

/// The outcome of checking a batch against the L2 node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCheck {
    /// Every root matches.
    Match,
    /// The first block whose root differs from the L2 node's.
    Mismatch {
        /// The block.
        block: u64,
        /// The batch's root for it.
        batch: [u8; 32],
        /// The L2 node's root.
        l2: [u8; 32],
    },
    /// The L2 node does not have this block (yet): it is behind, so it can neither agree nor
    /// disagree, and a rollback must not be signed on its word.
    NotSynced {
        /// The first block the L2 node lacks.
        block: u64,
    },
}

/// A JSON-RPC client for one L2 node.
#[derive(Clone)]
pub struct L2Client {
    http: reqwest::Client,
    url: String,
    shown: String,
    settings: L2Settings,
}

/// `scheme://host[:port]` of `url`, without user info, path or query (where API keys live).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => format!("{}://?", u.scheme()),
        },
        Err(_) => "<invalid url>".into(),
    }
}

fn parse_root(block: &Value) -> Option<[u8; 32]> {
    let s = block.get("stateRoot")?.as_str()?;
    let h = s.strip_prefix("0x")?;
    if h.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (k, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(h.get(2 * k..2 * k + 2)?, 16).ok()?;
    }
    Some(out)
}

impl L2Settings {
    /// The deadline of the look-up of a batch of `roots` roots.
    pub fn deadline_for(&self, roots: usize) -> Duration {
        let extra = (roots as u64)
            .saturating_mul(self.deadline_per_1000_roots_secs)
            .div_ceil(1000);
        Duration::from_secs(self.deadline_secs.max(1).saturating_add(extra))
    }
}

impl L2Client {
    /// A client for `url`.
    pub fn new(url: &str, settings: L2Settings) -> Result<Self, L2Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(
                settings
                    .timeout_secs
                    .clamp(1, settings.deadline_secs.max(1)),
            ))
            .build()
            .map_err(|e| L2Error::Unavailable {
                url: redact_url(url),
                reason: e.without_url().to_string(),
            })?;
        if reqwest::Url::parse(url).is_err() {
            return Err(L2Error::Unavailable {
                url: redact_url(url),
                reason: "not a valid URL".into(),
            });
        }
        Ok(L2Client {
            http,
            url: url.into(),
            shown: redact_url(url),
            settings,
        })
    }

    fn unavailable(&self, reason: impl Into<String>) -> L2Error {
        L2Error::Unavailable {
            url: self.shown.clone(),
            reason: reason.into(),
        }
    }

    async fn post(&self, body: &Value) -> Result<Value, String> {
        let resp = self
            .http
            .post(&self.url)
            .json(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.json::<Value>()
            .await
            .map_err(|e| e.without_url().to_string())
    }

    async fn post_retrying(&self, body: &Value) -> Result<Value, L2Error> {
        let mut last = String::new();
        for attempt in 0..self.settings.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
            }
            match self.post(body).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::debug!(url = %self.shown, attempt, error = %e, "L2 request failed");
                    last = e;
                }
            }
        }
        Err(self.unavailable(last))
    }

    /// State roots of blocks `from..from+count` (None for a block the node does not have).
    pub async fn state_roots(
        &self,
        from: u64,
        count: usize,
    ) -> Result<Vec<Option<[u8; 32]>>, L2Error> {
        let mut out = Vec::with_capacity(count);
        let chunk = self.settings.batch_size.max(1);
        let mut next = from;
        let end = from
            .checked_add(count as u64)
            .ok_or_else(|| self.unavailable("block range overflows"))?;
        while next < end {
            let n = ((end - next) as usize).min(chunk);
            out.extend(self.chunk(next, n).await?);
            next += n as u64;
        }
        Ok(out)
    }

    async fn chunk(&self, from: u64, n: usize) -> Result<Vec<Option<[u8; 32]>>, L2Error> {
        let calls: Vec<Value> = (0..n)
            .map(|k| {
                json!({
                    "jsonrpc": "2.0",
                    "id": k,
                    "method": "eth_getBlockByNumber",
                    "params": [format!("0x{:x}", from + k as u64), false],
                })
            })
            .collect();
        let answer = self.post_retrying(&Value::Array(calls.clone())).await?;
        if let Value::Array(items) = answer {
            let mut by_id: HashMap<u64, &Value> = HashMap::new();
            for item in &items {
                if let Some(id) = item.get("id").and_then(Value::as_u64) {
                    by_id.insert(id, item);
                }
            }
            return (0..n as u64)
                .map(|k| match by_id.get(&k) {
                    Some(item) => self.result_root(item, from + k),
                    None => Err(self.unavailable(format!("no answer for block {}", from + k))),
                })
                .collect();
        }
        // The node refused the batch: ask block by block.
        tracing::debug!(url = %self.shown, "L2 node refused a JSON-RPC batch; asking one block at a time");
        let mut out = Vec::with_capacity(n);
        for (k, call) in calls.iter().enumerate() {
            let item = self.post_retrying(call).await?;
            out.push(self.result_root(&item, from + k as u64)?);
        }
        Ok(out)
    }

    fn result_root(&self, item: &Value, block: u64) -> Result<Option<[u8; 32]>, L2Error> {
        if let Some(err) = item.get("error") {
            return Err(self.unavailable(format!("block {block}: {err}")));
        }
        match item.get("result") {
            Some(Value::Null) => Ok(None),
            Some(b) => parse_root(b)
                .map(Some)
                .ok_or_else(|| self.unavailable(format!("block {block}: no valid stateRoot"))),
            None => Err(self.unavailable(format!("block {block}: malformed answer"))),
        }
    }

    /// Checks `roots` (blocks from `start_block` on) against the L2 node; returns the outcome
    /// and how long the look-up took.
    pub async fn check(
        &self,
        start_block: u64,
        roots: &[[u8; 32]],
    ) -> Result<(RootCheck, Duration), L2Error> {
        let t0 = Instant::now();
        let deadline = self.settings.deadline_for(roots.len());
        let l2 = tokio::time::timeout(deadline, self.state_roots(start_block, roots.len()))
            .await
            .map_err(|_| {
                self.unavailable(format!("no complete answer within {}s", deadline.as_secs()))
            })??;
        let took = t0.elapsed();
        for (k, (batch, l2)) in roots.iter().zip(&l2).enumerate() {
            let block = start_block + k as u64;
            match l2 {
                None => return Ok((RootCheck::NotSynced { block }, took)),
                Some(l2) if l2 != batch => {
                    return Ok((
                        RootCheck::Mismatch {
                            block,
                            batch: *batch,
                            l2: *l2,
                        },
                        took,
                    ));
                }
                Some(_) => {}
            }
        }
        Ok((RootCheck::Match, took))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_up_deadline_grows_with_the_batch() {
        let s = L2Settings::default();
        assert_eq!(s.deadline_for(1), Duration::from_secs(9));
        assert_eq!(s.deadline_for(3001), Duration::from_secs(8 + 7));
        assert_eq!(s.deadline_for(8192), Duration::from_secs(8 + 17));
    }

    #[test]
    fn urls_lose_credentials_paths_and_queries_before_they_are_shown() {
        assert_eq!(
            redact_url("https://user:pw@rpc.example.org/v2/SECRETKEY?apikey=SECRET"),
            "https://rpc.example.org"
        );
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(redact_url("not a url SECRET"), "<invalid url>");
        let e = L2Client::new("nope SECRET", L2Settings::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("not a valid URL") && !e.contains("SECRET"),
            "{e}"
        );
    }
}
