//! State batches against a real Ethereum node: anvil on 127.0.0.1 stands in for every node's
//! L2 full node (one node points at a dead URL). Mantle's `POST /api/v1/sign/state`, the
//! rollback path, the signing journal across restarts, and the refusal that names everyone.
//! Slots follow Mantle's numbering: a batch's `start_block` is `offset_starts_at_index + 1`.

mod common;

use common::{Anvil, Devnet, free_port, hex32, recover, rollback_digest, state_batch_digest};
use serde_json::{Value, json};

fn roots_json(roots: &[[u8; 32]]) -> Vec<String> {
    roots.iter().map(hex32).collect()
}

fn refusals<'a>(v: &'a Value, code: &str) -> Vec<&'a Value> {
    v["refused"]
        .as_array()
        .map(|a| a.iter().filter(|r| r["error"]["code"] == code).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_batches_checked_against_l2_rollback_and_journal() {
    let anvil = Anvil::start().await;
    anvil.mine_with_transfers(22).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let urls = [
        anvil.url.as_str(),
        anvil.url.as_str(),
        anvil.url.as_str(),
        anvil.url.as_str(),
        dead.as_str(),
    ]
    .join(",");
    let mut net = Devnet::start_with(5, 3, &["--l2-rpc", &urls, "--presign-pool", "0"]).await;
    let (_, key) = net.get("/v1/keys/state").await;
    let address = key["address"].as_str().unwrap().to_lowercase();
    let dead_node = net.members[4].clone();

    // A batch of 10 real roots (blocks 1..=10), numbers as strings, as Mantle sends them.
    let mut roots = Vec::new();
    for b in 1..=10 {
        roots.push(anvil.state_root(b).await);
    }
    assert!(
        roots.windows(2).all(|w| w[0] != w[1]),
        "transfers change the state root"
    );
    let body = json!({
        "start_block": "1",
        "offset_starts_at_index": "0",
        "state_roots": roots_json(&roots),
        "type": 0,
    });
    let (s, ans) = net.post("/api/v1/sign/state", body.clone()).await;
    assert_eq!(s, 200, "{ans}");
    assert_eq!(ans["roll_back"], false);
    let digest = state_batch_digest(&roots, 0);
    assert_eq!(
        recover(&digest, ans["signature"].as_str().unwrap()),
        address
    );
    let signers: Vec<String> = serde_json::from_value(ans["signers"].clone()).unwrap();
    assert!(!signers.contains(&dead_node));
    // The node with a dead L2 counts as refusing with l2_unavailable, recorded per node.
    let (_, rec) = net
        .get(&format!(
            "/v1/operations/{}",
            ans["session_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rec["operation"], "sign_state");
    assert_eq!(rec["context"]["offset_starts_at_index"], 0);
    assert_eq!(rec["digest"], hex32(&digest));
    // Its refusal may come after the signature: the record gains it once it arrives.
    let session = ans["session_id"].as_str().unwrap().to_string();
    let mut named = false;
    for _ in 0..60 {
        let (_, rec) = net.get(&format!("/v1/operations/{session}")).await;
        if let Some(r) = refusals(&rec, "l2_unavailable").first() {
            assert_eq!(r["address"], dead_node.as_str());
            named = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        named,
        "the dead-L2 node is never recorded as l2_unavailable"
    );

    // The state key signs no plain digest: the manager sends the caller to the state endpoint.
    let (s, plain) = net
        .post("/v1/keys/state/sign", json!({ "digest": hex32(&digest) }))
        .await;
    assert_eq!(s, 400, "{plain}");
    assert!(
        plain["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/sign/state")
    );

    // The same batch again (a retry): the identical signature, from the manager's cache.
    let (s, again) = net.post("/api/v1/sign/state", body.clone()).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["signature"], ans["signature"], "{again}");
    assert_eq!(again["cached"], true, "{again}");
    // The same batch exactly as Mantle's Go batch submitter encodes it (`[][32]byte` roots as
    // byte arrays, numbers as strings, its extra fields): the signature comes back as Go
    // `[]byte`, base64, and is the same kind of signature.
    let go_roots: Vec<Vec<u8>> = roots.iter().map(|r| r.to_vec()).collect();
    let (s, go) = net
        .post(
            "/api/v1/sign/state",
            json!({
                "type": 0,
                "start_block": "1",
                "offset_starts_at_index": "0",
                "challenge": "",
                "state_roots": go_roots,
                "election_id": 1,
            }),
        )
        .await;
    assert_eq!(s, 200, "{go}");
    assert_eq!(go["roll_back"], false);
    let raw = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(go["signature"].as_str().unwrap())
            .expect("signature is base64 for a Go client")
    };
    assert_eq!(recover(&digest, &hex::encode(raw)), address);
    let mut journaled: Vec<String> = signers.clone();
    for s in serde_json::from_value::<Vec<String>>(go["signers"].clone()).unwrap() {
        if !journaled.contains(&s) {
            journaled.push(s);
        }
    }
    for s in serde_json::from_value::<Vec<String>>(again["signers"].clone()).unwrap() {
        if !journaled.contains(&s) {
            journaled.push(s);
        }
    }
    journaled.sort();

    // One altered root (block 15 of blocks 11..=20, slot 10): the four nodes with an L2
    // disagree, naming block 15, and sign the rollback of start_block 11 instead.
    let mut good = Vec::new();
    for b in 11..=20 {
        good.push(anvil.state_root(b).await);
    }
    let mut altered = good.clone();
    altered[4][0] ^= 0xff;
    let (s, rb) = net
        .post(
            "/api/v1/sign/state",
            json!({
                "start_block": 11,
                "offset_starts_at_index": 10,
                "state_roots": roots_json(&altered),
            }),
        )
        .await;
    assert_eq!(s, 200, "{rb}");
    assert_eq!(rb["roll_back"], true);
    assert_eq!(
        recover(&rollback_digest(11), rb["signature"].as_str().unwrap()),
        address
    );
    let (_, rec) = net
        .get(&format!(
            "/v1/operations/{}",
            rb["session_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rec["roll_back"], true);
    let disagree = refusals(&rec, "content_rejected");
    assert_eq!(disagree.len(), 4, "{rec}");
    for r in &disagree {
        let m = r["error"]["message"].as_str().unwrap();
        assert!(m.contains("block 15"), "{m}");
        assert!(
            m.contains(&hex32(&altered[4])) && m.contains(&hex32(&good[4])),
            "{m}"
        );
    }
    let unavailable = refusals(&rec, "l2_unavailable");
    assert_eq!(unavailable.len(), 1, "{rec}");
    assert_eq!(unavailable[0]["address"], dead_node.as_str());

    // A batch whose start_block is not its slot's (blocks 12..=21 claiming slot 10) is
    // refused by every node before any look-up: it could otherwise poison the journal's slot.
    let mut shifted = Vec::new();
    for b in 12..=21 {
        shifted.push(anvil.state_root(b).await);
    }
    let (s, err) = net
        .post(
            "/api/v1/sign/state",
            json!({
                "start_block": 12,
                "offset_starts_at_index": 10,
                "state_roots": roots_json(&shifted),
            }),
        )
        .await;
    assert_ne!(s, 200, "{err}");
    let bad = refusals(&err["error"], "bad_request");
    assert_eq!(bad.len(), 5, "{err}");
    assert!(
        bad[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not belong to offset_starts_at_index 10"),
        "{err}"
    );

    // Blocks the L2 node does not have yet (21..=30 with 22 mined): nobody can check them,
    // so nobody disagrees and no rollback is signed; the nodes say they are not synced.
    let mut ahead = vec![anvil.state_root(21).await, anvil.state_root(22).await];
    ahead.extend(std::iter::repeat_n([7u8; 32], 8));
    let (s, err) = net
        .post(
            "/api/v1/sign/state",
            json!({
                "start_block": 21,
                "offset_starts_at_index": 20,
                "state_roots": roots_json(&ahead),
            }),
        )
        .await;
    assert_ne!(s, 200, "{err}");
    assert_eq!(
        refusals(&err["error"], "content_rejected").len(),
        0,
        "{err}"
    );
    let unsynced = refusals(&err["error"], "l2_unavailable");
    assert_eq!(unsynced.len(), 5, "{err}");
    assert!(
        unsynced
            .iter()
            .filter(|r| r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no block 23 yet"))
            .count()
            == 4,
        "{err}"
    );

    // A batch that changes a signed element (blocks 1..=9 with block 5's root replaced):
    // every node that signed element 4 refuses it from its journal, before any L2 look-up.
    let mut changed = roots[..9].to_vec();
    changed[4] = roots[5];
    let conflicting = json!({
        "start_block": 1,
        "offset_starts_at_index": 0,
        "state_roots": roots_json(&changed),
    });
    let (s, err) = net.post("/api/v1/sign/state", conflicting.clone()).await;
    assert_eq!(s, 409, "{err}");
    assert_eq!(err["error"]["code"], "journal_conflict");
    let journal = refusals(&err["error"], "journal_conflict");
    let mut refusing: Vec<String> = journal
        .iter()
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect();
    refusing.sort();
    assert_eq!(refusing, journaled, "{err}");
    assert!(
        journal
            .iter()
            .all(|r| r["error"]["message"].as_str().unwrap().contains("journal"))
    );

    // The journal survives a restart: the signers are SIGKILLed and started again.
    for s in &signers {
        let k = net.members.iter().position(|m| m == s).unwrap();
        net.kill_node(k);
    }
    net.wait_connected(2).await;
    for s in &signers {
        let k = net.members.iter().position(|m| m == s).unwrap();
        net.restart_node(k);
    }
    net.wait_connected(5).await;
    let (s, err) = net.post("/api/v1/sign/state", conflicting).await;
    assert_eq!(s, 409, "{err}");
    assert_eq!(
        refusals(&err["error"], "journal_conflict").len(),
        journaled.len(),
        "{err}"
    );

    // Two nodes down, one L2 dead: two disagree, nobody agrees, nothing reaches t. The error
    // lists who disagreed (and why), whose L2 failed, and who was absent.
    net.kill_node(0);
    net.kill_node(1);
    net.wait_connected(3).await;
    let (s, err) = net
        .post(
            "/api/v1/sign/state",
            json!({
                "start_block": 11,
                "offset_starts_at_index": 10,
                "state_roots": roots_json(&altered),
            }),
        )
        .await;
    assert_eq!(s, 422, "{err}");
    assert_eq!(err["error"]["code"], "content_rejected");
    assert_eq!(
        refusals(&err["error"], "content_rejected").len(),
        2,
        "{err}"
    );
    assert_eq!(refusals(&err["error"], "l2_unavailable").len(), 1, "{err}");
    let absent: Vec<String> = serde_json::from_value(err["error"]["absent"].clone()).unwrap();
    assert!(absent.contains(&net.members[0]) && absent.contains(&net.members[1]));
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("block 15") && msg.contains(&net.members[0]),
        "{msg}"
    );

    // A malformed batch is refused before any node is asked.
    let (s, bad) = net
        .post(
            "/api/v1/sign/state",
            json!({ "start_block": "x", "offset_starts_at_index": 1, "state_roots": [] }),
        )
        .await;
    assert_eq!(s, 400, "{bad}");

    net.stop().await;
    anvil.stop().await;
}
