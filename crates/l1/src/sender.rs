//! The transaction sender of a node key: nonce management, EIP-1559 fees from the node with
//! replacement of a stuck transaction at higher fees, a receipt with N confirmations, retries on
//! transient RPC errors, and reverts surfaced with the contracts' custom error decoded.
//!
//! Sends from one key are serialised (one transaction in flight per key), which keeps nonce
//! tracking simple and exact: the nonce is the larger of the node's pending nonce and the local
//! next nonce.

use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportError};
use alloy_primitives::{Address, B256, Bytes};
use tokio::sync::Mutex;

use crate::error::{L1Error, SendError};
use crate::provider::L1Provider;
use crate::retry::{is_transient, retry};
use crate::revert::decode_revert;

/// The sender's settings.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Blocks a receipt needs (1 = mined).
    pub confirmations: u64,
    /// How long a sent version may stay unmined before it is replaced at higher fees.
    pub bump_after: Duration,
    /// Fee increase per bump in percent (at least 10, what nodes require of a replacement).
    pub bump_percent: u64,
    /// Replacements at most.
    pub max_bumps: u32,
    /// Overall deadline of one send, replacements and confirmations included.
    pub timeout: Duration,
    /// Pause between receipt polls.
    pub poll: Duration,
    /// Gas limit multiplier over the estimate, in percent (e.g. 120).
    pub gas_margin_percent: u64,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            confirmations: 2,
            bump_after: Duration::from_secs(60),
            bump_percent: 25,
            max_bumps: 5,
            timeout: Duration::from_secs(600),
            poll: Duration::from_secs(2),
            gas_margin_percent: 120,
        }
    }
}

/// What one call asks for.
#[derive(Debug, Clone)]
pub struct TxRequest {
    /// The contract.
    pub to: Address,
    /// The calldata.
    pub data: Bytes,
    /// A fixed gas limit (skips estimation, so a reverting call is mined and reported);
    /// None estimates and refuses a call that reverts before sending it.
    pub gas: Option<u64>,
}

/// A confirmed, successful transaction.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The hash of the version that was mined.
    pub hash: B256,
    /// Its block.
    pub block: u64,
    /// Its nonce.
    pub nonce: u64,
    /// How many times it was replaced at higher fees before one version was mined.
    pub bumps: u32,
    /// Every hash sent for this nonce, in order.
    pub sent: Vec<B256>,
    /// The receipt.
    pub receipt: TransactionReceipt,
}

/// Sends transactions from one node key.
#[derive(Debug)]
pub struct Sender {
    provider: L1Provider,
    wallet: EthereumWallet,
    from: Address,
    cfg: SenderConfig,
    next_nonce: Mutex<Option<u64>>,
}

fn is_message(e: &TransportError, needles: &[&str]) -> bool {
    let m = e.to_string().to_lowercase();
    needles.iter().any(|n| m.contains(n))
}

impl Sender {
    /// A sender for `key` on `provider`'s (checked) chain.
    pub fn new(provider: L1Provider, key: PrivateKeySigner, cfg: SenderConfig) -> Sender {
        let from = key.address();
        Sender {
            provider,
            wallet: EthereumWallet::from(key),
            from,
            cfg,
            next_nonce: Mutex::new(None),
        }
    }

    /// The sending address.
    pub fn address(&self) -> Address {
        self.from
    }

    /// Sends `req`, replacing it at higher fees while it is stuck, and returns once it has the
    /// configured confirmations. A revert (at estimation or mined) is [`SendError::Reverted`].
    pub async fn send(&self, req: TxRequest) -> Result<Sent, SendError> {
        let mut next = self.next_nonce.lock().await;
        let p = self.provider.inner();
        let policy = self.provider.retry_policy();
        let pending = retry(policy, "eth_getTransactionCount", || {
            p.get_transaction_count(self.from).pending()
        })
        .await?;
        let nonce = next.map_or(pending, |n| n.max(pending));
        let base = TransactionRequest::default()
            .with_from(self.from)
            .with_to(req.to)
            .with_input(req.data.clone())
            .with_chain_id(self.provider.chain_id())
            .with_nonce(nonce);
        let gas = match req.gas {
            Some(g) => g,
            None => {
                let est = self.estimate(&base).await?;
                est.saturating_mul(self.cfg.gas_margin_percent.max(100)) / 100
            }
        };
        let fees = retry(policy, "eth_feeHistory", || p.estimate_eip1559_fees()).await?;
        let mut max_fee = fees.max_fee_per_gas;
        let mut tip = fees.max_priority_fee_per_gas.max(1);
        let mut sent: Vec<B256> = Vec::new();
        let mut bumps = 0u32;
        let deadline = Instant::now() + self.cfg.timeout;
        let tx = base.with_gas_limit(gas);
        let mut last_sent = Instant::now();
        self.sign_and_send(&tx, max_fee, tip, &mut sent).await?;
        let result = loop {
            if Instant::now() >= deadline {
                break Err(SendError::NotConfirmed {
                    last: sent.last().copied().unwrap_or_default(),
                    bumps,
                    secs: self.cfg.timeout.as_secs(),
                });
            }
            if let Some(r) = self.mined(&sent).await? {
                break self.confirm(r, &tx, deadline).await;
            }
            if last_sent.elapsed() >= self.cfg.bump_after && bumps < self.cfg.max_bumps {
                let pct = u128::from(self.cfg.bump_percent.max(10));
                tip = (tip * (100 + pct)).div_ceil(100).max(tip + 1);
                max_fee = (max_fee * (100 + pct))
                    .div_ceil(100)
                    .max(max_fee + 1)
                    .max(tip);
                bumps += 1;
                tracing::warn!(
                    nonce,
                    bumps,
                    max_fee,
                    tip,
                    "L1 transaction stuck; replacing at higher fees"
                );
                self.sign_and_send(&tx, max_fee, tip, &mut sent).await?;
                last_sent = Instant::now();
            }
            tokio::time::sleep(self.cfg.poll).await;
        };
        match &result {
            Ok(_) | Err(SendError::Reverted { tx: Some(_), .. }) => *next = Some(nonce + 1),
            // Unknown outcome: forget the local nonce and trust the node's pending count next time.
            Err(_) => *next = None,
        }
        result.map(|(hash, block, receipt)| Sent {
            hash,
            block,
            nonce,
            bumps,
            sent,
            receipt,
        })
    }

    async fn estimate(&self, tx: &TransactionRequest) -> Result<u64, SendError> {
        let p = self.provider.inner();
        let policy = self.provider.retry_policy();
        let mut backoff = policy.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match tokio::time::timeout(
                policy.call_timeout,
                p.estimate_gas(tx.clone()).into_future(),
            )
            .await
            {
                Ok(Ok(g)) => return Ok(g),
                Ok(Err(e)) if !is_transient(&e) => {
                    return Err(Self::revert_or_rpc(e, None, "eth_estimateGas"));
                }
                Ok(Err(e)) if attempt >= policy.attempts => {
                    return Err(L1Error::Rpc {
                        method: "eth_estimateGas",
                        message: e.to_string(),
                    }
                    .into());
                }
                Err(_) if attempt >= policy.attempts => {
                    return Err(L1Error::Timeout {
                        method: "eth_estimateGas",
                    }
                    .into());
                }
                _ => {}
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    }

    fn revert_or_rpc(e: TransportError, tx: Option<B256>, method: &'static str) -> SendError {
        if let RpcError::ErrorResp(p) = &e {
            if let Some(data) = p.as_revert_data() {
                let reason = decode_revert(&data);
                return SendError::Reverted {
                    tx,
                    data: Some(data),
                    reason,
                };
            }
            if p.message.to_lowercase().contains("revert") {
                return SendError::Reverted {
                    tx,
                    data: None,
                    reason: Some(p.message.to_string()),
                };
            }
        }
        L1Error::Rpc {
            method,
            message: e.to_string(),
        }
        .into()
    }

    async fn sign_and_send(
        &self,
        tx: &TransactionRequest,
        max_fee: u128,
        tip: u128,
        sent: &mut Vec<B256>,
    ) -> Result<(), SendError> {
        let tx = tx
            .clone()
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(tip);
        let env = tx
            .build(&self.wallet)
            .await
            .map_err(|e| SendError::Sign(e.to_string()))?;
        let hash = *env.tx_hash();
        let raw = env.encoded_2718();
        let p = self.provider.inner();
        let policy = self.provider.retry_policy();
        let mut backoff = policy.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match tokio::time::timeout(policy.call_timeout, p.send_raw_transaction(&raw)).await {
                Ok(Ok(_)) => break,
                // An earlier version is mined or this one is already in the pool: keep waiting.
                Ok(Err(e))
                    if is_message(&e, &["nonce too low", "already known", "known transaction"]) =>
                {
                    tracing::debug!(error = %e, "raw transaction not taken; an earlier version stands");
                    if sent.is_empty() {
                        return Err(SendError::Refused(e.to_string()));
                    }
                    return Ok(());
                }
                Ok(Err(e)) if is_message(&e, &["underpriced"]) && !sent.is_empty() => {
                    tracing::warn!(error = %e, "replacement refused as underpriced; the next bump is higher");
                    return Ok(());
                }
                Ok(Err(e)) if !is_transient(&e) => return Err(SendError::Refused(e.to_string())),
                Ok(Err(e)) if attempt >= policy.attempts => {
                    return Err(L1Error::Rpc {
                        method: "eth_sendRawTransaction",
                        message: e.to_string(),
                    }
                    .into());
                }
                Err(_) if attempt >= policy.attempts => {
                    return Err(L1Error::Timeout {
                        method: "eth_sendRawTransaction",
                    }
                    .into());
                }
                _ => {}
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
        tracing::info!(tx = %hash, max_fee, tip, "L1 transaction sent");
        sent.push(hash);
        Ok(())
    }

    async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>, L1Error> {
        let p = self.provider.inner();
        retry(
            self.provider.retry_policy(),
            "eth_getTransactionReceipt",
            || p.get_transaction_receipt(hash),
        )
        .await
    }

    async fn mined(&self, sent: &[B256]) -> Result<Option<TransactionReceipt>, L1Error> {
        for h in sent.iter().rev() {
            if let Some(r) = self.receipt(*h).await? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Waits for `confirmations` on a mined receipt, re-reading it (a reorg may drop it, then
    /// the caller's loop sees it unmined again via the deadline), and reports a revert.
    async fn confirm(
        &self,
        mut r: TransactionReceipt,
        tx: &TransactionRequest,
        deadline: Instant,
    ) -> Result<(B256, u64, TransactionReceipt), SendError> {
        let hash = r.transaction_hash;
        loop {
            let block = r.block_number.ok_or_else(|| L1Error::Missing {
                what: format!("block number of receipt {hash}"),
            })?;
            let head = self.provider.head().await?;
            if head + 1 >= block + self.cfg.confirmations.max(1) {
                if !r.status() {
                    // Replay at the parent block's state for the revert data.
                    let p = self.provider.inner();
                    let call = tokio::time::timeout(
                        self.provider.retry_policy().call_timeout,
                        p.call(tx.clone())
                            .block(BlockId::number(block.saturating_sub(1)))
                            .into_future(),
                    )
                    .await;
                    return Err(match call {
                        Ok(Err(e)) => match Self::revert_or_rpc(e, Some(hash), "eth_call") {
                            SendError::L1(_) => SendError::Reverted {
                                tx: Some(hash),
                                data: None,
                                reason: None,
                            },
                            other => other,
                        },
                        _ => SendError::Reverted {
                            tx: Some(hash),
                            data: None,
                            reason: None,
                        },
                    });
                }
                return Ok((hash, block, r));
            }
            if Instant::now() >= deadline {
                return Err(SendError::NotConfirmed {
                    last: hash,
                    bumps: 0,
                    secs: self.cfg.timeout.as_secs(),
                });
            }
            tokio::time::sleep(self.cfg.poll).await;
            r = match self.receipt(hash).await? {
                Some(r) => r,
                None => {
                    return Err(L1Error::Missing {
                        what: format!("receipt of {hash} (dropped by a reorg)"),
                    }
                    .into());
                }
            };
        }
    }
}
