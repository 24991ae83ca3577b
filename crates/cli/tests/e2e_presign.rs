//! Presignature pools with real processes, anvil standing in for every node's L2 node:
//! presignatures serve only state batches of the state key (RUSTSEC-2025-0127: never a
//! caller-chosen digest), one round each; and a node killed between consuming its presignature
//! and sending its partial signature — the batch is still signed (in full), the node is
//! recorded absent (not a culprit), and that presignature is never used again.
//!
//! This cohort's node link runs over `wss://` (a TLS listener of its own, the certificate
//! pinned by every node): keygen and every verified signature below cross it, and a node whose
//! pin does not match the certificate is refused.

mod common;

use std::time::{Duration, Instant};

use common::{Anvil, Devnet, hex32, random_digest, recover, state_batch_digest};
use serde_json::{Value, json};

const KEY: &str = "state";

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

/// State batches of one real root each, at the next free slot: slot `o` is block `o + 1`.
struct Batches<'a> {
    anvil: &'a Anvil,
    next: u64,
}

impl Batches<'_> {
    /// Signs the next batch through Mantle's endpoint, checks the signature against the state
    /// key, and returns the answer and the operation record.
    async fn sign(&mut self, net: &Devnet, address: &str) -> (Value, Value) {
        let offset = self.next;
        self.next += 1;
        let root = self.anvil.state_root(offset + 1).await;
        let body = json!({
            "start_block": (offset + 1).to_string(),
            "offset_starts_at_index": offset.to_string(),
            "state_roots": [hex32(&root)],
        });
        let (s, ans) = net.post("/api/v1/sign/state", body).await;
        assert_eq!(s, 200, "{ans}");
        assert_eq!(ans["roll_back"], false);
        let digest = state_batch_digest(&[root], offset);
        assert_eq!(
            recover(&digest, ans["signature"].as_str().unwrap()),
            address
        );
        let (_, rec) = net
            .get(&format!(
                "/v1/operations/{}",
                ans["session_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(rec["operation"], "sign_state", "{rec}");
        (ans, rec)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presignatures_for_state_batches_only_and_a_crash_after_consumption() {
    let anvil = Anvil::start().await;
    anvil.mine_with_transfers(20).await;
    let urls = [anvil.url.as_str(); 5].join(",");
    let mut net =
        Devnet::start_with(5, 3, &["--l2-rpc", &urls, "--presign-pool", "1", "--wss"]).await;
    let (s, status) = net.get("/v1/status").await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(status["ws_tls"], true, "{status}");
    let node_cfg = std::fs::read_to_string(net.node_config(0)).unwrap();
    assert!(node_cfg.contains("wss://127.0.0.1:"), "{node_cfg}");
    assert!(node_cfg.contains("tls_cert_sha256"), "{node_cfg}");
    let (_, key) = net.get(&format!("/v1/keys/{KEY}")).await;
    let address = key["address"].as_str().unwrap().to_lowercase();
    let mut batches = Batches {
        anvil: &anvil,
        next: 0,
    };

    // A pooled presignature of the state key gives a one-round signature of a state batch.
    let entry = wait_pool(&net, KEY).await;
    let (ans, rec) = batches.sign(&net, &address).await;
    assert_eq!(rec["presignature"], entry["id"], "{rec}");
    assert_eq!(rec["signers"], entry["signers"]);
    assert_eq!(ans["signers"], entry["signers"]);
    assert!(
        pool_of(&net, KEY)
            .await
            .iter()
            .all(|e| e["id"] != entry["id"])
    );

    // A caller-chosen digest (another key) is signed in full, and no pool is kept for it.
    let (s, k) = net
        .post("/v1/keys", json!({ "key_id": "raw", "threshold": 3 }))
        .await;
    assert_eq!(s, 201, "{k}");
    let ans = net.sign_and_verify("raw", &random_digest()).await;
    let (_, rec) = net
        .get(&format!(
            "/v1/operations/{}",
            ans["session_id"].as_str().unwrap()
        ))
        .await;
    assert!(rec.get("presignature").is_none(), "{rec}");
    assert!(rec.get("retry_of").is_none(), "{rec}");
    assert!(pool_of(&net, "raw").await.is_empty());

    // The next pooled presignature with the victim in its set: the victim is restarted with a
    // failpoint that kills it right after it consumed its piece. (A restart discards a node's
    // unused pieces and the manager forgets them, so the entry is one made after the restart.)
    let victim = wait_pool(&net, KEY).await["signers"][0]
        .as_str()
        .unwrap()
        .to_string();
    let k = net.members.iter().position(|m| *m == victim).unwrap();
    net.kill_node(k);
    net.wait_connected(4).await;
    net.restart_node_env(k, &[("COHORT_FAILPOINT", "presignature_consumed")]);
    net.wait_connected(5).await;
    // The manager forgets the victim's pieces when it reconnects; let that land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut entry = wait_pool(&net, KEY).await;
    for _ in 0..6 {
        if entry["signers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == victim.as_str())
        {
            break;
        }
        // A set without the victim: use it up, and wait for the next.
        let (_, rec) = batches.sign(&net, &address).await;
        assert_eq!(rec["presignature"], entry["id"], "{rec}");
        entry = wait_pool(&net, KEY).await;
    }
    assert!(
        entry["signers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == victim.as_str()),
        "no pooled set with {victim}: {entry}"
    );

    let (ans, rec) = batches.sign(&net, &address).await;
    assert!(
        !serde_json::from_value::<Vec<String>>(ans["signers"].clone())
            .unwrap()
            .contains(&victim)
    );
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
    // The victim went away: absent, never a culprit.
    assert!(
        first["absent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == victim.as_str()),
        "{first}"
    );
    assert!(
        first["culprits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c != victim.as_str()),
        "{first}"
    );

    // Back without the failpoint: later signatures never use that presignature again.
    net.wait_connected(4).await;
    net.restart_node(k);
    net.wait_connected(5).await;
    for _ in 0..3 {
        let (_, rec) = batches.sign(&net, &address).await;
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
        text.contains("cohort_manager_presignatures_ready{key_id=\"state\"}"),
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
    net.sign_and_verify("raw", &random_digest()).await;

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
    assert!(store.take_presignature(KEY, id).unwrap().is_none());
    let victim_addr: [u8; 20] = hex::decode(victim.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap();
    assert!(
        store
            .put_presignature(KEY, id, vec![victim_addr], b"x")
            .is_err()
    );
    anvil.stop().await;
}
