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
    /// Per HTTP request timeout, in seconds. Default 10.
    pub timeout_secs: u64,
    /// Attempts per request before the L2 node counts as unreachable. Default 3.
    pub attempts: u32,
    /// Blocks per JSON-RPC batch. Default 250.
    pub batch_size: usize,
}

impl Default for L2Settings {
    fn default() -> Self {
        L2Settings {
            timeout_secs: 10,
            attempts: 3,
            batch_size: 250,
        }
    }
}

/// Why the L2 node could not answer.
#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    /// Not reachable, timed out, or answered garbage after every attempt.
    #[error("L2 node {url} unavailable: {reason}")]
    Unavailable {
        /// The node's URL.
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
    /// The first block whose root differs (or that the L2 node does not have).
    Mismatch {
        /// The block.
        block: u64,
        /// The batch's root for it.
        batch: [u8; 32],
        /// The L2 node's root, or None if it has no such block.
        l2: Option<[u8; 32]>,
    },
}

/// A JSON-RPC client for one L2 node.
#[derive(Clone)]
pub struct L2Client {
    http: reqwest::Client,
    url: String,
    settings: L2Settings,
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

impl L2Client {
    /// A client for `url`.
    pub fn new(url: &str, settings: L2Settings) -> Result<Self, L2Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
            .build()
            .map_err(|e| L2Error::Unavailable {
                url: url.into(),
                reason: e.to_string(),
            })?;
        Ok(L2Client {
            http,
            url: url.into(),
            settings,
        })
    }

    fn unavailable(&self, reason: impl Into<String>) -> L2Error {
        L2Error::Unavailable {
            url: self.url.clone(),
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
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.json::<Value>().await.map_err(|e| e.to_string())
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
                    tracing::debug!(url = %self.url, attempt, error = %e, "L2 request failed");
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
        tracing::debug!(url = %self.url, "L2 node refused a JSON-RPC batch; asking one block at a time");
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
        let l2 = self.state_roots(start_block, roots.len()).await?;
        let took = t0.elapsed();
        for (k, (batch, l2)) in roots.iter().zip(&l2).enumerate() {
            if l2.as_ref() != Some(batch) {
                return Ok((
                    RootCheck::Mismatch {
                        block: start_block + k as u64,
                        batch: *batch,
                        l2: *l2,
                    },
                    took,
                ));
            }
        }
        Ok((RootCheck::Match, took))
    }
}
