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

async fn next_json<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
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

/// The test's own nonce in its hellos.
const NODE_NONCE: [u8; 32] = [0x42; 32];

fn unhex(h: &str) -> Vec<u8> {
    hex::decode(h.trim_start_matches("0x")).unwrap()
}

/// The digests of the link authentication, computed independently of the wire crate: `tag`
/// is `node` (what a node signs) or `manager` (what a manager's welcome signs).
fn link_digest(
    tag: &str,
    manager_hex: &str,
    manager_nonce_hex: &str,
    node_nonce: &[u8; 32],
    node: &[u8; 20],
) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(format!("cohort/ws-auth/{tag}/v2").as_bytes());
    h.update(unhex(manager_hex));
    h.update(unhex(manager_nonce_hex));
    h.update(node_nonce);
    h.update(node);
    h.finalize().into()
}

/// What a node signs to answer challenge `ch` (the manager it names, this test's nonce).
fn auth_digest(ch: &Value, address: &[u8; 20]) -> [u8; 32] {
    link_digest(
        "node",
        ch["manager"].as_str().unwrap(),
        ch["nonce"].as_str().unwrap(),
        &NODE_NONCE,
        address,
    )
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
        "nonce": hex32(&NODE_NONCE), "signature": signature, "version": "test"
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
    let d = auth_digest(&ch, &addr);
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
    let d = auth_digest(&ch, &member);
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
    // It left: absent, never a culprit (culprits come only from the nodes' own engine checks).
    let absent: Vec<String> = serde_json::from_value(ans["error"]["absent"].clone()).unwrap();
    assert!(absent.iter().any(|c| c.to_lowercase() == victim), "{ans}");
    assert!(ans["error"].get("culprits").is_none(), "{ans}");
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
        let d = auth_digest(&ch, &addr);
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

    hostile_managers(&mut net).await;
    an_exposed_api_without_a_token_does_not_start(&net).await;
    net.stop().await;
}

type ServerWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Waits for the node's next dial of the hostile manager's listener.
async fn accept_node(l: &tokio::net::TcpListener) -> ServerWs {
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(90), l.accept())
        .await
        .expect("the node dials the second manager")
        .unwrap();
    tokio_tungstenite::accept_async(tcp).await.unwrap()
}

async fn send_json(ws: &mut ServerWs, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// A second, hostile manager M2 (this test, speaking the wire protocol) that node 2 also
/// dials, with M2's address pinned for M2's URL: M2 can neither pass off M1's challenge nor
/// get a signature from the node that M1 accepts, nor hold the node on a link whose welcome
/// it did not sign with the pinned key.
async fn hostile_managers(net: &mut Devnet) {
    let m2 = SigningKey::random(&mut rand::rngs::OsRng);
    let m2_addr = format!("0x{}", hex::encode(address_of(&m2)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/ws", listener.local_addr().unwrap());
    let (s, status) = net.get("/v1/status").await;
    assert_eq!(s, 200, "{status}");
    let m1_addr = status["manager_address"].as_str().unwrap().to_string();
    assert_eq!(unhex(&m1_addr).len(), 20, "{status}");

    net.kill_node(2);
    let path = net.node_config(2);
    let mut cfg: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let managers = cfg.get_mut("managers").unwrap().as_array_mut().unwrap();
    assert_eq!(
        managers[0]["address"].as_str().unwrap().to_lowercase(),
        m1_addr.to_lowercase(),
        "the devnet pins its manager"
    );
    let mut pin = toml::Table::new();
    pin.insert("url".into(), url.clone().into());
    pin.insert("address".into(), m2_addr.clone().into());
    managers.push(pin.into());
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    net.restart_node(2);
    let node: [u8; 20] = unhex(&net.members[2]).try_into().unwrap();
    let members: Vec<Value> = net.members.iter().map(|m| json!(m)).collect();

    // 1. M1's challenge passed through unchanged (M1's identity, not the one pinned for M2's
    //    URL): the node hangs up without signing anything.
    let (_m1, ch) = connect(net).await;
    let mut ws = accept_node(&listener).await;
    send_json(&mut ws, ch.clone()).await;
    assert!(
        next_json(&mut ws).await.is_none(),
        "the node answered a challenge from an identity it did not pin"
    );

    // 2. M1's nonce relayed under M2's own (pinned) identity: the node signs for M2, and M1
    //    refuses that signature.
    let (mut m1, ch) = connect(net).await;
    let mut ws = accept_node(&listener).await;
    send_json(
        &mut ws,
        json!({ "v": 1, "type": "Challenge", "manager": m2_addr, "nonce": ch["nonce"] }),
    )
    .await;
    let hello = next_json(&mut ws)
        .await
        .expect("a hello for the pinned manager");
    assert_eq!(hello["type"], "Hello", "{hello}");
    drop(ws);
    m1.send(Message::text(hello.to_string())).await.unwrap();
    let ans = next_json(&mut m1)
        .await
        .expect("M1 answers the relayed hello");
    assert_eq!(
        ans["type"], "Rejected",
        "M1 accepted a relayed hello: {ans}"
    );
    assert!(
        ans["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{ans}"
    );

    // 3. A welcome not signed by the pinned key (here another key, over the right digest):
    //    the node leaves before obeying anything.
    let mut ws = accept_node(&listener).await;
    let nonce = hex32(&[7; 32]);
    send_json(
        &mut ws,
        json!({ "v": 1, "type": "Challenge", "manager": m2_addr, "nonce": nonce }),
    )
    .await;
    let hello = next_json(&mut ws).await.expect("a hello");
    let node_nonce: [u8; 32] = unhex(hello["nonce"].as_str().unwrap()).try_into().unwrap();
    let d = link_digest("manager", &m2_addr, &nonce, &node_nonce, &node);
    let other = SigningKey::random(&mut rand::rngs::OsRng);
    send_json(
        &mut ws,
        json!({ "v": 1, "type": "Welcome", "members": members, "signature": sign65(&other, &d) }),
    )
    .await;
    assert!(
        next_json(&mut ws).await.is_none(),
        "the node stayed on a link whose welcome the pinned manager did not sign"
    );

    // 4. Control: the same welcome signed by M2's pinned key is accepted (the node reports).
    let mut ws = accept_node(&listener).await;
    let nonce = hex32(&[8; 32]);
    send_json(
        &mut ws,
        json!({ "v": 1, "type": "Challenge", "manager": m2_addr, "nonce": nonce }),
    )
    .await;
    let hello = next_json(&mut ws).await.expect("a hello");
    let node_nonce: [u8; 32] = unhex(hello["nonce"].as_str().unwrap()).try_into().unwrap();
    let d = link_digest("manager", &m2_addr, &nonce, &node_nonce, &node);
    send_json(
        &mut ws,
        json!({ "v": 1, "type": "Welcome", "members": members, "signature": sign65(&m2, &d) }),
    )
    .await;
    let frame = next_json(&mut ws)
        .await
        .expect("a status on an authenticated link");
    assert_eq!(frame["type"], "Status", "{frame}");
    drop(ws);

    let log = std::fs::read_to_string(net.path().join("node-2.restart.log")).unwrap();
    assert!(log.contains("but this node pinned"), "{log}");
    assert!(log.contains("welcome is not signed by"), "{log}");
    net.wait_connected(3).await;
    still_serving(net).await;
}

/// A manager whose API listens beyond loopback without a token refuses to start.
async fn an_exposed_api_without_a_token_does_not_start(net: &Devnet) {
    let dir = net.path().join("exposed");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "listen = \"0.0.0.0:0\"\ndata_dir = \"{}\"\nmembers = [{}]\n",
        dir.display(),
        net.members
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let path = dir.join("manager.toml");
    std::fs::write(&path, &cfg).unwrap();
    let run = |cfg: &std::path::Path, secs: u64| {
        let cfg = cfg.to_path_buf();
        async move {
            let child = tokio::process::Command::new(BIN)
                .args(["manager", "--config", cfg.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            tokio::time::timeout(Duration::from_secs(secs), child.wait_with_output()).await
        }
    };
    let out = run(&path, 30)
        .await
        .expect("a manager with an exposed, open API must exit")
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("beyond loopback"), "{err}");

    // With a token it starts (and is stopped by the timeout).
    std::fs::write(dir.join("token"), "t0ken").unwrap();
    std::fs::write(
        &path,
        format!(
            "{cfg}api_token_file = \"{}\"\n",
            dir.join("token").display()
        ),
    )
    .unwrap();
    assert!(
        run(&path, 5).await.is_err(),
        "a manager with a token on a public address keeps running"
    );
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
