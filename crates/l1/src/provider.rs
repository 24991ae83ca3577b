//! The L1 provider: an alloy HTTP client (reqwest, plain http) with a per-request timeout,
//! checked at start to serve the configured chain.
//!
//! The chain-id check is the first thing done with a new connection: a node pointed at the wrong
//! chain would read another chain's elections and sign for another chain's contracts.

use std::time::Duration;

use alloy::providers::{Provider, RootProvider};
use alloy::rpc::client::RpcClient;
use alloy::transports::http::{Http, reqwest};

use crate::error::L1Error;
use crate::retry::{RetryPolicy, retry};

/// What is needed to reach the L1 node.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The node's HTTP(S) JSON-RPC URL.
    pub rpc_url: String,
    /// The chain id the configuration expects (`[l1] chain_id`).
    pub chain_id: u64,
    /// Retry and timeout policy of every call.
    pub retry: RetryPolicy,
}

impl ProviderConfig {
    /// A configuration with the default retry policy.
    pub fn new(rpc_url: impl Into<String>, chain_id: u64) -> Self {
        ProviderConfig {
            rpc_url: rpc_url.into(),
            chain_id,
            retry: RetryPolicy::default(),
        }
    }
}

/// A connected L1 provider whose chain id has been checked.
#[derive(Debug, Clone)]
pub struct L1Provider {
    inner: RootProvider,
    chain_id: u64,
    url: String,
    retry: RetryPolicy,
}

impl L1Provider {
    /// Connects to `cfg.rpc_url` and checks `eth_chainId == cfg.chain_id`; a mismatch is
    /// [`L1Error::ChainIdMismatch`].
    pub async fn connect(cfg: &ProviderConfig) -> Result<L1Provider, L1Error> {
        let url = cfg
            .rpc_url
            .parse::<reqwest::Url>()
            .map_err(|e| L1Error::BadUrl {
                url: cfg.rpc_url.clone(),
                reason: e.to_string(),
            })?;
        // No TLS in this build: reqwest's rustls without a built-in provider makes every
        // `reqwest::Client::new()` in the workspace panic (features unify), and its aws-lc-rs
        // provider is a large C build. Refuse https:// clearly instead of failing per request.
        if url.scheme() != "http" {
            return Err(L1Error::BadUrl {
                url: cfg.rpc_url.clone(),
                reason: "only http:// is supported by this build (no TLS); reach a remote \
                         https:// node through a local node or a TLS-terminating proxy"
                    .into(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.retry.call_timeout)
            .connect_timeout(cfg.retry.call_timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| L1Error::BadUrl {
                url: cfg.rpc_url.clone(),
                reason: e.to_string(),
            })?;
        let is_local = url
            .host_str()
            .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "::1");
        let rpc = RpcClient::new(Http::with_client(client, url), is_local);
        let inner = RootProvider::new(rpc);
        let actual = retry(&cfg.retry, "eth_chainId", || inner.get_chain_id()).await?;
        if actual != cfg.chain_id {
            return Err(L1Error::ChainIdMismatch {
                expected: cfg.chain_id,
                actual,
                url: cfg.rpc_url.clone(),
            });
        }
        tracing::info!(chain_id = actual, url = %cfg.rpc_url, "connected to L1");
        Ok(L1Provider {
            inner,
            chain_id: actual,
            url: cfg.rpc_url.clone(),
            retry: cfg.retry.clone(),
        })
    }

    /// The alloy provider, for calls this crate does not wrap.
    pub fn inner(&self) -> &RootProvider {
        &self.inner
    }

    /// The checked chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The URL connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The retry policy every wrapped call uses.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The latest block number (with retries).
    pub async fn head(&self) -> Result<u64, L1Error> {
        retry(&self.retry, "eth_blockNumber", || {
            self.inner.get_block_number()
        })
        .await
    }
}
