//! Presignature pools with real processes: one-round signing from a pooled presignature, and a
//! node killed between consuming its presignature and sending its partial signature — the
//! signature is still produced (in full), and that presignature is never used again.
//!
//! This cohort's node link runs over `wss://` (a TLS listener of its own, the certificate
//! pinned by every node): keygen and every verified signature below cross it, and a node whose
//! pin does not match the certificate is refused.

mod common;

use std::time::{Duration, Instant};

use common::{Devnet, random_digest};
use serde_json::Value;

async fn pool_of(net: &Devnet, key: &str) -> Vec<Value> {
    let (s, k) = net.get(&format!("/v1/keys/{key}")).await;
    assert_eq!(s, 200, "{k}");
    k["presignatures"].as_array().cloned().unwrap_or_default()
}

async fn wait_pool(net: &Devnet, key: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(e) = pool_of(net, key).await.first() {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no presignature was generated for {key}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presignature_signing_and_a_crash_after_consumption() {
    let mut net = Devnet::start_with(5, 3, &["--presign-pool", "1", "--wss"]).await;
    let (s, status) = net.get("/v1/status").await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(status["ws_tls"], true, "{status}");
    let node_cfg = std::fs::read_to_string(net.node_config(0)).unwrap();
    assert!(node_cfg.contains("wss://127.0.0.1:"), "{node_cfg}");
    assert!(node_cfg.contains("tls_cert_sha256"), "{node_cfg}");
    let (s, key) = net
        .post(
            "/v1/keys",
            serde_json::json!({ "key_id": "p", "threshold": 3 }),
        )
        .await;
    assert_eq!(s, 201, "{key}");

    // A pooled presignature gives a one-round signature.
    let entry = wait_pool(&net, "p").await;
    let ans = net.sign_and_verify("p", &random_digest()).await;
    let (_, rec) = net
        .get(&format!(
            "/v1/operations/{}",
            ans["session_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rec["presignature"], entry["id"], "{rec}");
    assert_eq!(rec["signers"], entry["signers"]);
    assert!(
        pool_of(&net, "p")
            .await
            .iter()
            .all(|e| e["id"] != entry["id"])
    );

    // The next pooled presignature: one of its signers is restarted with a failpoint that
    // kills it right after it consumed its piece.
    let entry = wait_pool(&net, "p").await;
    let victim = entry["signers"][0].as_str().unwrap().to_string();
    let k = net.members.iter().position(|m| *m == victim).unwrap();
    net.kill_node(k);
    net.wait_connected(4).await;
    net.restart_node_env(k, &[("COHORT_FAILPOINT", "presignature_consumed")]);
    net.wait_connected(5).await;
    assert_eq!(
        pool_of(&net, "p").await.first().map(|e| e["id"].clone()),
        Some(entry["id"].clone())
    );

    let ans = net.sign_and_verify("p", &random_digest()).await;
    assert!(
        !serde_json::from_value::<Vec<String>>(ans["signers"].clone())
            .unwrap()
            .contains(&victim)
    );
    let (_, rec) = net
        .get(&format!(
            "/v1/operations/{}",
            ans["session_id"].as_str().unwrap()
        ))
        .await;
    assert!(
        rec.get("presignature").is_none(),
        "the retry signs in full: {rec}"
    );
    let failed = rec["retry_of"]
        .as_str()
        .expect("a retry of the presignature attempt");
    let (_, first) = net.get(&format!("/v1/operations/{failed}")).await;
    assert_eq!(first["presignature"], entry["id"], "{first}");
    assert_eq!(first["outcome"], "failed");
    assert!(
        first["culprits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == victim.as_str()),
        "{first}"
    );

    // Back without the failpoint: later signatures never use that presignature again.
    net.wait_connected(4).await;
    net.restart_node(k);
    net.wait_connected(5).await;
    for _ in 0..3 {
        let ans = net.sign_and_verify("p", &random_digest()).await;
        let (_, rec) = net
            .get(&format!(
                "/v1/operations/{}",
                ans["session_id"].as_str().unwrap()
            ))
            .await;
        assert_ne!(rec.get("presignature"), Some(&entry["id"]));
    }
    let resp = net
        .http
        .get(format!("{}/metrics", net.api))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let fallbacks: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cohort_manager_presignature_fallbacks_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(fallbacks >= 1.0, "{text}");
    assert!(
        text.contains("cohort_manager_presignatures_ready{key_id=\"p\"}"),
        "{text}"
    );

    // A node pinning another certificate refuses the manager's TLS handshake; with the right
    // pin back it connects again.
    let w = (k + 1) % 5;
    net.kill_node(w);
    net.wait_connected(4).await;
    let path = net.node_config(w);
    let good = std::fs::read_to_string(&path).unwrap();
    let mut cfg: toml::Table = toml::from_str(&good).unwrap();
    let m = cfg["managers"].as_array_mut().unwrap()[0]
        .as_table_mut()
        .unwrap();
    m.insert(
        "tls_cert_sha256".into(),
        format!("0x{}", "ab".repeat(32)).into(),
    );
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    net.restart_node(w);
    let log = net.path().join(format!("node-{w}.restart.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("not the pinned 0xabab")
    {
        assert!(
            Instant::now() < deadline,
            "the node never refused the certificate"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(net.connected().await.len(), 4);
    net.kill_node(w);
    std::fs::write(&path, good).unwrap();
    net.restart_node(w);
    net.wait_connected(5).await;
    net.sign_and_verify("p", &random_digest()).await;

    // Stopped: in the victim's store the piece is gone and its id can never be stored again.
    net.stop().await;
    let id: [u8; 32] = hex::decode(entry["id"].as_str().unwrap().trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap();
    let dir = net.path().join(format!("node-{k}"));
    let pass = std::fs::read(dir.join("passphrase")).unwrap();
    let store =
        cohort_store::Store::open(dir.join("node.redb"), &pass, Default::default()).unwrap();
    assert!(store.take_presignature("p", id).unwrap().is_none());
    let victim_addr: [u8; 20] = hex::decode(victim.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap();
    assert!(
        store
            .put_presignature("p", id, vec![victim_addr], b"x")
            .is_err()
    );
}
