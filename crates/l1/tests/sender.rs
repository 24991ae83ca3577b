//! The transaction sender and the provider's chain-id check on a real anvil: a real transaction
//! to a deployed contract with confirmations, a stuck transaction replaced at higher fees
//! (mining disabled, then enabled), reverts reported with the contract's custom error (at
//! estimation and mined), and a wrong chain id refused. One anvil for the file.

mod common;

use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use cohort_l1::bindings::{TestChallenge as C, TestStateCommitmentChain as Scc};
use cohort_l1::{L1Error, L1Provider, ProviderConfig, SendError, Sender, SenderConfig, TxRequest};
use common::{Chain, Deployment, NodeKey};
use serde_json::json;

fn cfg() -> SenderConfig {
    SenderConfig {
        confirmations: 1,
        bump_after: Duration::from_secs(1),
        bump_percent: 25,
        max_bumps: 5,
        timeout: Duration::from_secs(60),
        poll: Duration::from_millis(100),
        gas_margin_percent: 120,
    }
}

fn set_call(marker: u64) -> Vec<u8> {
    let a = Address::repeat_byte(0x22);
    C::setCall {
        _defender: a,
        _challenger: a,
        _winner: a,
        _rollback: true,
        _startInboxSize: U256::from(marker),
    }
    .abi_encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_sends_bumps_reports_reverts_and_chain_id_is_checked() {
    let chain = Chain::start().await;

    // --- Chain id: a wrong one is refused with a typed error naming both ids.
    let err = L1Provider::connect(&ProviderConfig::new(chain.url(), 1))
        .await
        .unwrap_err();
    match &err {
        L1Error::ChainIdMismatch {
            expected, actual, ..
        } => assert_eq!((*expected, *actual), (1, 31337)),
        other => panic!("want ChainIdMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("configured 1") && err.to_string().contains("31337"));
    let provider = L1Provider::connect(&ProviderConfig::new(chain.url(), 31337))
        .await
        .unwrap();
    assert_eq!(provider.chain_id(), 31337);

    // A node key (not one of anvil's unlocked accounts), funded.
    let key = NodeKey::random();
    chain
        .rpc("anvil_setBalance", json!([key.addr, "0x56BC75E2D63100000"]))
        .await
        .unwrap();
    let signer = PrivateKeySigner::from_slice(&key.sk.to_bytes()).unwrap();
    let challenge = chain.deploy(&C::BYTECODE, vec![]).await;

    // --- A real transaction, with 3 confirmations (blocks mined beside it).
    let sender = Sender::new(
        provider.clone(),
        signer.clone(),
        SenderConfig {
            confirmations: 3,
            ..cfg()
        },
    );
    assert_eq!(sender.address(), key.addr);
    let send = sender.send(TxRequest {
        to: challenge,
        data: set_call(7).into(),
        gas: None,
    });
    let mine = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            chain.mine(1).await;
        }
    };
    let (sent, ()) = tokio::join!(send, mine);
    let sent = sent.unwrap();
    assert_eq!(sent.bumps, 0);
    assert_eq!(sent.nonce, 0);
    assert!(
        chain.head().await >= sent.block + 2,
        "returned before 3 confirmations"
    );
    let r = chain
        .rpc("eth_getTransactionReceipt", json!([sent.hash]))
        .await
        .unwrap();
    assert_eq!(r["status"], "0x1");
    assert_eq!(
        r["from"].as_str().unwrap().parse::<Address>().unwrap(),
        key.addr
    );
    assert_eq!(
        chain.view(challenge, &C::startInboxSizeCall {}).await,
        U256::from(7)
    );

    // --- A stuck transaction: mining off, the sender replaces it at higher fees.
    let sender = Sender::new(provider.clone(), signer.clone(), cfg());
    let est = {
        use alloy::providers::Provider;
        provider.inner().estimate_eip1559_fees().await.unwrap()
    };
    chain.rpc("evm_setAutomine", json!([false])).await.unwrap();
    let send = sender.send(TxRequest {
        to: challenge,
        data: set_call(8).into(),
        gas: None,
    });
    let unstick = async {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        chain.rpc("evm_setAutomine", json!([true])).await.unwrap();
        chain.mine(1).await;
    };
    let (sent, ()) = tokio::join!(send, unstick);
    let sent = sent.unwrap();
    assert!(sent.bumps >= 2, "no fee bump while stuck: {sent:?}");
    assert_eq!(sent.nonce, 1);
    assert_eq!(sent.sent.len() as u32, sent.bumps + 1);
    assert_eq!(
        sent.hash,
        *sent.sent.last().unwrap(),
        "the mined version is the last, highest-fee one"
    );
    let first = chain
        .rpc("eth_getTransactionReceipt", json!([sent.sent[0]]))
        .await
        .unwrap();
    assert!(first.is_null(), "the replaced version must not be mined");
    let mined = chain
        .rpc("eth_getTransactionByHash", json!([sent.hash]))
        .await
        .unwrap();
    let hex_u128 = |v: &serde_json::Value| {
        u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    let tip = hex_u128(&mined["maxPriorityFeePerGas"]);
    let max_fee = hex_u128(&mined["maxFeePerGas"]);
    // Two bumps of 25 % at least: the mined version pays more than the node's estimate.
    assert!(
        tip * 100 >= est.max_priority_fee_per_gas * 156,
        "tip {tip} vs estimate {est:?}"
    );
    assert!(
        max_fee > est.max_fee_per_gas,
        "max fee {max_fee} vs estimate {est:?}"
    );
    assert_eq!(
        chain.view(challenge, &C::startInboxSizeCall {}).await,
        U256::from(8)
    );

    // --- Reverts, with the custom error decoded. The SCC refuses a wrong start element.
    let d = Deployment::new(&chain).await;
    let scc = chain
        .deploy(&Scc::BYTECODE, alloy_sol_types::SolValue::abi_encode(&d.gm))
        .await;
    let bad = Scc::appendStateBatchCall {
        batch: vec![B256::repeat_byte(1)],
        shouldStartAtElement: U256::from(5),
        sig: vec![0u8; 65].into(),
    }
    .abi_encode();
    // At estimation: never sent, nonce not consumed.
    let err = sender
        .send(TxRequest {
            to: scc,
            data: bad.clone().into(),
            gas: None,
        })
        .await
        .unwrap_err();
    match &err {
        SendError::Reverted { tx, reason, data } => {
            assert!(tx.is_none());
            assert!(data.is_some());
            let reason = reason.as_deref().unwrap();
            assert!(reason.starts_with("WrongStartElement"), "{reason}");
        }
        other => panic!("want Reverted, got {other:?}"),
    }
    // Mined with a fixed gas limit: status 0, reported with the tx hash and the decoded error.
    let err = sender
        .send(TxRequest {
            to: scc,
            data: bad.into(),
            gas: Some(300_000),
        })
        .await
        .unwrap_err();
    match &err {
        SendError::Reverted { tx, reason, .. } => {
            let h = tx.expect("mined revert names its transaction");
            let r = chain
                .rpc("eth_getTransactionReceipt", json!([h]))
                .await
                .unwrap();
            assert_eq!(r["status"], "0x0");
            let reason = reason.as_deref().unwrap();
            assert!(reason.starts_with("WrongStartElement"), "{reason}");
        }
        other => panic!("want Reverted, got {other:?}"),
    }
    assert!(err.to_string().contains("WrongStartElement"));
    // The nonce advanced past the mined revert: the next send goes through at nonce 3.
    let sent = sender
        .send(TxRequest {
            to: challenge,
            data: set_call(9).into(),
            gas: None,
        })
        .await
        .unwrap();
    assert_eq!(sent.nonce, 3);
}
