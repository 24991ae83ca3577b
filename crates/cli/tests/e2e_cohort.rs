//! End to end: a real manager and 5 real node processes on 127.0.0.1 (the devnet), a 3-of-5 key
//! through the HTTP API, signatures checked with k256 recovery; idempotent and concurrent
//! keygen; 20 keys signed concurrently; deletion everywhere; nodes SIGKILLed and restarted
//! from their stores; too few nodes named as absent.

mod common;

use std::time::Duration;

use common::{Devnet, hex32, random_digest, recover};
use serde_json::json;
use sha3::Digest;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cohort_keygen_sign_delete_kill_restart() {
    let mut net = Devnet::start(5, 3).await;

    // The devnet's own sample: its printed signature recovers to its printed key address.
    let line = |p: &str| {
        net.output
            .iter()
            .find_map(|l| l.strip_prefix(p).map(str::to_string))
            .unwrap_or_else(|| panic!("no {p:?} line in {:#?}", net.output))
    };
    let sig_line = line("devnet: signature ");
    let (s, key) = net.get("/v1/keys/devnet").await;
    assert_eq!(s, 200, "{key}");
    assert_eq!(key["status"], "ready");
    assert_eq!(key["threshold"], 3);
    assert_eq!(key["parties"].as_array().unwrap().len(), 5);
    let address = key["address"].as_str().unwrap().to_string();
    assert!(line("devnet: key devnet (3-of-5) address ").starts_with(&address));
    let sample: [u8; 32] = sha3::Keccak256::digest(b"cohort devnet sample digest").into();
    assert_eq!(recover(&sample, &sig_line), address.to_lowercase());

    // A signature through the API, with its operation record.
    let d = random_digest();
    let ans = net.sign_and_verify("devnet", &d).await;
    assert_eq!(ans["signers"].as_array().unwrap().len(), 3);
    let session = ans["session_id"].as_str().unwrap();
    let (s, rec) = net.get(&format!("/v1/operations/{session}")).await;
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["operation"], "sign");
    assert_eq!(rec["outcome"], "ok");
    assert_eq!(rec["digest"], hex32(&d));
    assert_eq!(rec["signers"], ans["signers"]);

    // Keygen for a READY key id returns the same key.
    let (s, again) = net
        .post("/v1/keys", json!({ "key_id": "devnet", "threshold": 3 }))
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["public_key"], key["public_key"]);

    // Two keygens for the same new id at once: one runs, the other is refused as pending.
    let body = json!({ "key_id": "race", "threshold": 2 });
    let (a, b) = tokio::join!(
        net.post("/v1/keys", body.clone()),
        net.post("/v1/keys", body)
    );
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [201, 409], "{a:?} {b:?}");
    let refused = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(refused["error"]["code"], "key_pending");

    // 20 keys generated concurrently, then signed concurrently.
    let gens = (0..20).map(|k| {
        net.post(
            "/v1/keys",
            json!({ "key_id": format!("k-{k}"), "threshold": 3 }),
        )
    });
    let gens = futures::future::join_all(gens).await;
    let mut addresses = std::collections::HashSet::new();
    for (s, k) in &gens {
        assert_eq!(*s, 201, "{k}");
        addresses.insert(k["address"].as_str().unwrap().to_string());
    }
    assert_eq!(addresses.len(), 20, "every key is distinct");
    let digests: Vec<[u8; 32]> = (0..20).map(|_| random_digest()).collect();
    let ids: Vec<String> = (0..20).map(|k| format!("k-{k}")).collect();
    let signs = ids
        .iter()
        .zip(&digests)
        .map(|(id, d)| net.sign_and_verify(id, d));
    futures::future::join_all(signs).await;
    let (s, list) = net.get("/v1/keys").await;
    assert_eq!(s, 200);
    assert_eq!(
        list.as_array().unwrap().len(),
        23,
        "devnet, state and 21 more"
    );

    // A deleted key is gone from every node; signing it fails clearly.
    let (s, del) = net
        .call(reqwest::Method::DELETE, "/v1/keys/k-0", None)
        .await;
    assert_eq!(s, 200, "{del}");
    assert_eq!(del["confirmed_by"].as_array().unwrap().len(), 5, "{del}");
    let (s, gone) = net.get("/v1/keys/k-0").await;
    assert_eq!(s, 404, "{gone}");
    let (s, err) = net
        .post(
            "/v1/keys/k-0/sign",
            json!({ "digest": hex32(&random_digest()) }),
        )
        .await;
    assert_eq!(s, 404, "{err}");
    assert_eq!(err["error"]["code"], "key_not_found");

    // Two nodes SIGKILLed: 3 of 5 still sign.
    net.kill_node(3);
    net.kill_node(4);
    net.wait_connected(3).await;
    let ans = net.sign_and_verify("devnet", &random_digest()).await;
    let signers: Vec<String> = serde_json::from_value(ans["signers"].clone()).unwrap();
    assert!(!signers.contains(&net.members[3]) && !signers.contains(&net.members[4]));

    // A third one down: fewer than t; the request fails in time and names the absent nodes.
    net.kill_node(2);
    net.wait_connected(2).await;
    let t0 = std::time::Instant::now();
    let (s, err) = net
        .post(
            "/v1/keys/devnet/sign",
            json!({ "digest": hex32(&random_digest()) }),
        )
        .await;
    assert_eq!(s, 503, "{err}");
    assert_eq!(err["error"]["code"], "not_enough_parties");
    let absent: Vec<String> = serde_json::from_value(err["error"]["absent"].clone()).unwrap();
    for k in [2, 3, 4] {
        assert!(absent.contains(&net.members[k]), "{err}");
    }
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&net.members[2])
    );
    eprintln!("fewer-than-t refusal after {:?}", t0.elapsed());

    // The three come back from their stores; with nodes 0 and 1 killed, only they can sign.
    for k in [2, 3, 4] {
        net.restart_node(k);
    }
    net.wait_connected(5).await;
    net.kill_node(0);
    net.kill_node(1);
    net.wait_connected(3).await;
    let ans = net.sign_and_verify("devnet", &random_digest()).await;
    let mut signers: Vec<String> = serde_json::from_value(ans["signers"].clone()).unwrap();
    signers.sort();
    let mut want = vec![
        net.members[2].clone(),
        net.members[3].clone(),
        net.members[4].clone(),
    ];
    want.sort();
    assert_eq!(signers, want);
    net.sign_and_verify("k-7", &random_digest()).await;

    // Metrics saw it all.
    let resp = net
        .http
        .get(format!("{}/metrics", net.api))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains("cohort_manager_operations_total"), "{text}");
    assert!(text.contains("outcome=\"not_enough_parties\""), "{text}");

    // Stopped, every node's store is checked directly: k-0 is gone everywhere, devnet is READY.
    net.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for k in 0..5 {
        let dir = net.path().join(format!("node-{k}"));
        let pass = std::fs::read(dir.join("passphrase")).unwrap();
        let store = cohort_store::Store::open(
            dir.join("node.redb"),
            &pass,
            cohort_store::StoreOptions::default(),
        )
        .unwrap();
        assert!(
            store.get_key("k-0").unwrap().is_none(),
            "node {k} still holds k-0"
        );
        let rec = store.get_key("devnet").unwrap().unwrap();
        assert_eq!(rec.status, cohort_store::KeyStatus::Ready);
    }
}
