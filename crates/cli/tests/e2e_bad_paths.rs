//! Bad paths against a real devnet (manager + 3 node processes): strangers and forgers on the
//! node WebSocket, malformed and oversized frames, a node outside the membership, a wrong store
//! passphrase, and bad API requests — each answered clearly, none stopping the cohort.

mod common;

use std::time::Duration;

use common::{BIN, Devnet, hex32, random_digest};
use futures::{SinkExt, StreamExt};
use k256::ecdsa::SigningKey;
use serde_json::{Value, json};
use sha3::{Digest, Keccak256};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(net: &Devnet) -> (Ws, Value) {
    let url = format!("{}/v1/ws", net.api.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let challenge = next_json(&mut ws).await.expect("a challenge");
    assert_eq!(challenge["type"], "Challenge");
    (ws, challenge)
}

async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => return None,
            Ok(Some(Ok(other))) => panic!("unexpected frame {other:?}"),
            Err(_) => panic!("no answer in time"),
        }
    }
}

/// The digest a node signs to authenticate, computed independently of the wire crate.
fn auth_digest(manager_id: &str, nonce_hex: &str, address: &[u8; 20]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"cohort/ws-auth/v1");
    h.update((manager_id.len() as u64).to_be_bytes());
    h.update(manager_id.as_bytes());
    h.update(hex::decode(nonce_hex.trim_start_matches("0x")).unwrap());
    h.update(address);
    h.finalize().into()
}

fn address_of(sk: &SigningKey) -> [u8; 20] {
    let pk = sk.verifying_key().to_encoded_point(false);
    let h = Keccak256::digest(&pk.as_bytes()[1..]);
    h[12..].try_into().unwrap()
}

fn sign65(sk: &SigningKey, digest: &[u8; 32]) -> String {
    let (sig, rid) = sk.sign_prehash_recoverable(digest).unwrap();
    let mut out = sig.to_bytes().to_vec();
    out.push(27 + rid.to_byte());
    format!("0x{}", hex::encode(out))
}

async fn hello(ws: &mut Ws, address: &str, signature: &str) -> Option<Value> {
    let frame = json!({
        "v": 1, "type": "Hello", "address": address, "peer_id": "x",
        "signature": signature, "version": "test"
    });
    ws.send(Message::text(frame.to_string())).await.unwrap();
    next_json(ws).await
}

async fn still_serving(net: &Devnet) {
    assert_eq!(net.connected().await.len(), 3);
    net.sign_and_verify("devnet", &random_digest()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_garbage_and_wrong_passphrases_are_refused() {
    let mut net = Devnet::start(3, 2).await;

    // A stranger with a valid signature over its own address: not a member.
    let stranger = SigningKey::random(&mut rand::rngs::OsRng);
    let (mut ws, ch) = connect(&net).await;
    let addr = address_of(&stranger);
    let d = auth_digest(
        ch["manager_id"].as_str().unwrap(),
        ch["nonce"].as_str().unwrap(),
        &addr,
    );
    let ans = hello(
        &mut ws,
        &format!("0x{}", hex::encode(addr)),
        &sign65(&stranger, &d),
    )
    .await;
    let ans = ans.expect("a rejection frame");
    assert_eq!(ans["type"], "Rejected", "{ans}");
    assert_eq!(ans["error"]["code"], "unauthorized");
    assert!(
        ans["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a member")
    );

    // A forger claiming a member's address, signing with another key.
    let (mut ws, ch) = connect(&net).await;
    let member: [u8; 20] = hex::decode(net.members[0].trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap();
    let d = auth_digest(
        ch["manager_id"].as_str().unwrap(),
        ch["nonce"].as_str().unwrap(),
        &member,
    );
    let ans = hello(&mut ws, &net.members[0], &sign65(&stranger, &d))
        .await
        .unwrap();
    assert_eq!(ans["type"], "Rejected", "{ans}");
    assert!(
        ans["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );

    // A replayed signature (made for another connection's nonce) is refused too.
    let (mut ws, _) = connect(&net).await;
    let ans = hello(&mut ws, &net.members[0], &sign65(&stranger, &d))
        .await
        .unwrap();
    assert_eq!(ans["type"], "Rejected");

    // Malformed, binary and oversized frames: an error answer or a dropped connection.
    let (mut ws, _) = connect(&net).await;
    ws.send(Message::text("{not json")).await.unwrap();
    let ans = next_json(&mut ws).await.expect("a rejection frame");
    assert_eq!(ans["type"], "Rejected");
    assert!(
        ans["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed"),
        "{ans}"
    );

    let (mut ws, _) = connect(&net).await;
    ws.send(Message::binary(vec![0u8; 64])).await.unwrap();
    let ans = next_json(&mut ws).await.expect("a rejection frame");
    assert_eq!(ans["type"], "Rejected");

    let (mut ws, _) = connect(&net).await;
    let huge = format!(
        "{{\"v\":1,\"type\":\"Hello\",\"pad\":\"{}\"}}",
        "x".repeat(cohort_wire::MAX_FRAME_BYTES + 64 * 1024)
    );
    let _ = ws.send(Message::text(huge)).await;
    let ans = next_json(&mut ws).await;
    assert!(
        ans.as_ref().is_none_or(|a| a["type"] == "Rejected"),
        "an oversized frame must be refused: {ans:?}"
    );

    // Silence: the handshake times out and the connection is closed (by the manager).
    let (mut ws, _) = connect(&net).await;
    let ans = tokio::time::timeout(Duration::from_secs(30), next_json(&mut ws))
        .await
        .expect("the manager must close a silent connection");
    assert!(ans.is_none_or(|a| a["type"] == "Rejected"));

    let (s, metrics) = {
        let r = net
            .http
            .get(format!("{}/metrics", net.api))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(s, 200);
    let refused: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cohort_manager_ws_refused_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused >= 6.0, "{metrics}");
    still_serving(&net).await;

    // A node outside the membership (its own key, the cohort's p2p addresses and manager):
    // the manager never lists it and the cohort keeps signing.
    let rogue_dir = net.path().join("rogue");
    std::fs::create_dir_all(&rogue_dir).unwrap();
    std::fs::write(rogue_dir.join("passphrase"), "rogue-pass").unwrap();
    let member_cfg = std::fs::read_to_string(net.node_config(0)).unwrap();
    let mut cfg: toml::Table = toml::from_str(&member_cfg).unwrap();
    cfg.insert("data_dir".into(), rogue_dir.to_str().unwrap().into());
    cfg.insert(
        "passphrase_file".into(),
        rogue_dir.join("passphrase").to_str().unwrap().into(),
    );
    cfg.insert(
        "p2p_listen".into(),
        format!("/ip4/127.0.0.1/tcp/{}", common::free_port()).into(),
    );
    std::fs::write(rogue_dir.join("node.toml"), toml::to_string(&cfg).unwrap()).unwrap();
    let mut rogue = tokio::process::Command::new(BIN)
        .args([
            "node",
            "--config",
            rogue_dir.join("node.toml").to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(rogue_dir.join("log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = std::fs::read_to_string(rogue_dir.join("log")).unwrap();
    assert!(log.contains("not a member"), "{log}");
    let (_, nodes) = net.get("/v1/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 3);
    still_serving(&net).await;
    let _ = rogue.kill().await;

    // Bad API requests get typed JSON errors.
    let cases = [
        (
            "/v1/keys",
            json!({ "key_id": "x", "threshold": 1 }),
            400,
            "bad_request",
        ),
        (
            "/v1/keys",
            json!({ "key_id": "", "threshold": 2 }),
            400,
            "bad_request",
        ),
        ("/v1/keys", json!({ "threshold": 2 }), 400, "bad_request"),
        (
            "/v1/keys",
            json!({ "key_id": "y", "threshold": 2, "parties": ["0x0000000000000000000000000000000000000001", net.members[0]] }),
            400,
            "bad_request",
        ),
        (
            "/v1/keys/devnet/sign",
            json!({ "digest": "0x1234" }),
            400,
            "bad_request",
        ),
        (
            "/v1/keys/nope/sign",
            json!({ "digest": hex32(&random_digest()) }),
            404,
            "key_not_found",
        ),
    ];
    for (path, body, status, code) in cases {
        let (s, ans) = net.post(path, body.clone()).await;
        assert_eq!(s, status, "{path} {body} -> {ans}");
        assert_eq!(ans["error"]["code"], code, "{ans}");
        assert!(
            ans["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (s, ans) = net.get("/v1/operations/0x1234").await;
    assert_eq!(s, 400, "{ans}");

    // A wrong store passphrase: the node refuses to start, says why, and writes nothing.
    net.kill_node(2);
    net.wait_connected(2).await;
    let dir = net.path().join("node-2");
    let before = std::fs::read(dir.join("node.redb")).unwrap();
    std::fs::write(dir.join("wrong-passphrase"), "not-the-passphrase").unwrap();
    let cfg_text = std::fs::read_to_string(net.node_config(2)).unwrap();
    let mut cfg: toml::Table = toml::from_str(&cfg_text).unwrap();
    cfg.insert(
        "passphrase_file".into(),
        dir.join("wrong-passphrase").to_str().unwrap().into(),
    );
    std::fs::write(dir.join("wrong.toml"), toml::to_string(&cfg).unwrap()).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(BIN)
            .args(["node", "--config", dir.join("wrong.toml").to_str().unwrap()])
            .output(),
    )
    .await
    .expect("a node with a wrong passphrase must exit, not hang")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    assert_eq!(
        std::fs::read(dir.join("node.redb")).unwrap(),
        before,
        "store was modified"
    );
    // No passphrase at all: a clear message too.
    let mut cfg2 = cfg.clone();
    cfg2.remove("passphrase_file");
    std::fs::write(dir.join("nopass.toml"), toml::to_string(&cfg2).unwrap()).unwrap();
    let out = tokio::process::Command::new(BIN)
        .args([
            "node",
            "--config",
            dir.join("nopass.toml").to_str().unwrap(),
        ])
        .env_remove("COHORT_PASSPHRASE")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no passphrase"));

    // With the right passphrase it comes back and signs.
    net.restart_node(2);
    net.wait_connected(3).await;
    still_serving(&net).await;

    // A node killed in the middle of a keygen: the keygen fails at once and names it, the
    // parties that started discard their part, the victim's PENDING record becomes ERROR
    // (with a reason) when its store is next opened, and the same key id is then generated.
    net.kill_node(2);
    net.wait_connected(2).await;
    net.restart_node_env(2, &[("COHORT_FAILPOINT", "keygen_running")]);
    net.wait_connected(3).await;
    let victim = net.members[2].to_lowercase();
    let (s, ans) = net
        .post("/v1/keys", json!({ "key_id": "crash", "threshold": 2 }))
        .await;
    assert!(s >= 400, "{ans}");
    let culprits: Vec<String> = serde_json::from_value(ans["error"]["culprits"].clone()).unwrap();
    assert!(culprits.iter().any(|c| c.to_lowercase() == victim), "{ans}");
    net.wait_connected(2).await;
    let (s, _) = net.get("/v1/keys/crash").await;
    assert_eq!(s, 404, "a failed keygen leaves no key behind");
    {
        let dir = net.path().join("node-2");
        let pass = std::fs::read(dir.join("passphrase")).unwrap();
        let store = open_killed_store(&dir, &pass).await;
        assert_eq!(store.recovered_pending(), ["crash".to_string()]);
        let rec = store.get_key("crash").unwrap().unwrap();
        assert_eq!(rec.status, cohort_store::KeyStatus::Error);
        assert!(rec.error.is_some_and(|e| !e.is_empty()));
    }
    net.restart_node(2);
    net.wait_connected(3).await;
    let (s, key) = net
        .post("/v1/keys", json!({ "key_id": "crash", "threshold": 2 }))
        .await;
    assert_eq!(s, 201, "{key}");
    net.sign_and_verify("crash", &random_digest()).await;

    // A member's own key, past the handshake: a malformed, a binary and an oversized frame
    // each close that connection (never taken as a message, never a panic); the real node
    // comes back and the cohort signs.
    net.kill_node(1);
    net.wait_connected(2).await;
    let member_key = {
        let dir = net.path().join("node-1");
        let pass = std::fs::read(dir.join("passphrase")).unwrap();
        let store = open_killed_store(&dir, &pass).await;
        let secret = store.get_identity().unwrap().unwrap();
        SigningKey::from_slice(&secret[..]).unwrap()
    };
    let addr = address_of(&member_key);
    assert_eq!(
        format!("0x{}", hex::encode(addr)),
        net.members[1].to_lowercase()
    );
    let oversized = format!(
        "{{\"v\":1,\"type\":\"Status\",\"pad\":\"{}\"}}",
        "x".repeat(4 * 1024 * 1024)
    );
    for garbage in [
        Message::text("{not json"),
        Message::binary(vec![1u8; 64]),
        Message::text(oversized),
    ] {
        let (mut ws, ch) = connect(&net).await;
        let d = auth_digest(
            ch["manager_id"].as_str().unwrap(),
            ch["nonce"].as_str().unwrap(),
            &addr,
        );
        let welcome = hello(&mut ws, &net.members[1], &sign65(&member_key, &d))
            .await
            .expect("a welcome");
        assert_eq!(welcome["type"], "Welcome", "{welcome}");
        let _ = ws.send(garbage).await;
        while let Some(frame) = next_json(&mut ws).await {
            assert_ne!(frame["type"], "Welcome", "{frame}");
        }
    }
    net.restart_node(1);
    net.wait_connected(3).await;
    still_serving(&net).await;
    net.stop().await;
}

/// Opens a just-killed node's store: the process may still be exiting, and its store opens
/// once the file lock is released (within 10 s).
async fn open_killed_store(dir: &std::path::Path, pass: &[u8]) -> cohort_store::Store {
    let mut last = None;
    for _ in 0..100 {
        match cohort_store::Store::open(dir.join("node.redb"), pass, Default::default()) {
            Ok(s) => return s,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the killed node's store does not open: {last:?}");
}
