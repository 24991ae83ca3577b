//! Resharing and refresh through the API with real processes (9-node devnet): 2-of-5 → {A,B,F}
//! where every leaver (dealer or not) deletes, 3-of-5 → 4-of-7 where 2 holders leave and 4
//! join, an interrupted resharing that changes nothing, a refresh that rotates every party's
//! Paillier key, and a pre-refresh share (restored from a backup) that can no longer take part.

mod common;

use common::{Devnet, hex32, random_digest};
use serde_json::json;

fn addrs(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

fn store_of(net: &Devnet, k: usize) -> cohort_store::Store {
    let dir = net.path().join(format!("node-{k}"));
    let pass = std::fs::read(dir.join("passphrase")).unwrap();
    cohort_store::Store::open(dir.join("node.redb"), &pass, Default::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reshare_3_of_5_to_4_of_7_interrupted_reshare_and_refresh() {
    let mut net = Devnet::start(9, 3).await;
    let m = net.members.clone();

    // A 3-of-5 key on the first five nodes.
    let (s, key) = net
        .post(
            "/v1/keys",
            json!({ "key_id": "r", "threshold": 3, "parties": m[..5] }),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let address = key["address"].as_str().unwrap().to_string();
    net.sign_and_verify("r", &random_digest()).await;

    // A 2-of-5 key on A..E (nodes 0..4) reshared to {A, B, F}: two of the old holders deal,
    // C, D and E leave — dealers or not, each deletes on the commit once the new parties'
    // signed acknowledgements verify (checked in the stores at the end).
    let (s, q) = net
        .post(
            "/v1/keys",
            json!({ "key_id": "q", "threshold": 2, "parties": m[..5] }),
        )
        .await;
    assert_eq!(s, 201, "{q}");
    let abf = vec![m[0].clone(), m[1].clone(), m[5].clone()];
    let (s, qre) = net
        .post(
            "/v1/keys/q/reshare",
            json!({ "parties": abf, "threshold": 2 }),
        )
        .await;
    assert_eq!(s, 200, "{qre}");
    assert_eq!(qre["address"], q["address"]);
    assert_eq!(addrs(&qre["parties"]), abf);
    net.sign_and_verify("q", &random_digest()).await;

    // A resharing interrupted by a new party dying as the protocol starts: it fails, names
    // the dead party, and the old committee still signs.
    net.kill_node(8);
    net.wait_connected(8).await;
    net.restart_node_env(8, &[("COHORT_FAILPOINT", "reshare_start")]);
    net.wait_connected(9).await;
    let new_committee: Vec<String> = m[2..9].to_vec();
    let (s, err) = net
        .post(
            "/v1/keys/r/reshare",
            json!({ "parties": new_committee, "threshold": 4 }),
        )
        .await;
    assert!(s >= 500, "{s} {err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains(&m[8]),
        "{err}"
    );
    let (_, after) = net.get("/v1/keys/r").await;
    assert_eq!(after["parties"], key["parties"]);
    assert_eq!(after["threshold"], 3);
    assert_eq!(after["key_session_id"], key["key_session_id"]);
    net.sign_and_verify("r", &random_digest()).await;
    net.wait_connected(8).await;
    net.restart_node(8);
    net.wait_connected(9).await;

    // The resharing: nodes 0 and 1 leave, 5..8 join, threshold 4.
    let (s, re) = net
        .post(
            "/v1/keys/r/reshare",
            json!({ "parties": new_committee, "threshold": 4 }),
        )
        .await;
    assert_eq!(s, 200, "{re}");
    assert_eq!(re["address"], address.as_str());
    assert_eq!(re["threshold"], 4);
    assert_eq!(addrs(&re["parties"]), new_committee);
    assert_ne!(re["key_session_id"], key["key_session_id"]);
    let ans = net.sign_and_verify("r", &random_digest()).await;
    assert_eq!(ans["signers"].as_array().unwrap().len(), 4);
    for s in addrs(&ans["signers"]) {
        assert!(new_committee.contains(&s));
    }

    // Any 4 of the new committee sign: with 2, 3 and 4 down only 5..8 are left.
    for k in [2, 3, 4] {
        net.kill_node(k);
    }
    net.wait_connected(6).await;
    let ans = net.sign_and_verify("r", &random_digest()).await;
    let mut signers = addrs(&ans["signers"]);
    signers.sort();
    let mut want = m[5..9].to_vec();
    want.sort();
    assert_eq!(signers, want);
    for k in [2, 3, 4] {
        net.restart_node(k);
    }
    net.wait_connected(9).await;

    // Back up node 5's store (its current share), then refresh.
    net.kill_node(5);
    net.wait_connected(8).await;
    let db = net.path().join("node-5").join("node.redb");
    let backup = std::fs::read(&db).unwrap();
    net.restart_node(5);
    net.wait_connected(9).await;
    let (s, fr) = net.post("/v1/keys/r/refresh", json!({})).await;
    assert_eq!(s, 200, "{fr}");
    assert_eq!(fr["address"], address.as_str());
    assert_eq!(fr["parties"], re["parties"]);
    assert_ne!(fr["key_session_id"], re["key_session_id"]);
    // Every party's Paillier modulus is fresh: the refresh's differs from the resharing's.
    let moduli = |v: &serde_json::Value| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = v["aux_moduli"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["party"].as_str().unwrap().to_lowercase(),
                    a["aux_modulus"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let (before, after) = (moduli(&re), moduli(&fr));
    assert_eq!(before.len(), 7, "{re}");
    assert_eq!(after.len(), 7, "{fr}");
    for ((p, b), (p2, a)) in before.iter().zip(&after) {
        assert_eq!(p, p2);
        assert_ne!(a, b, "{p} kept its Paillier modulus through the refresh");
    }
    net.sign_and_verify("r", &random_digest()).await;

    // Node 5 restored to its pre-refresh store: it refuses (stale sharing) and cannot help.
    net.kill_node(5);
    net.wait_connected(8).await;
    std::fs::write(&db, &backup).unwrap();
    net.restart_node(5);
    net.wait_connected(9).await;
    net.kill_node(6);
    net.kill_node(7);
    net.wait_connected(7).await;
    let ans = net.sign_and_verify("r", &random_digest()).await;
    assert!(!addrs(&ans["signers"]).contains(&m[5]));
    net.kill_node(8);
    net.wait_connected(6).await;
    let (s, err) = net
        .post(
            "/v1/keys/r/sign",
            json!({ "digest": hex32(&random_digest()) }),
        )
        .await;
    assert_eq!(s, 503, "{err}");
    let stale = err["error"]["refused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == m[5].as_str())
        .unwrap_or_else(|| panic!("node 5 must refuse: {err}"));
    assert!(
        stale["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stale"),
        "{stale}"
    );

    // Stopped: the leavers hold no share; every other holder has the refreshed sharing.
    net.stop().await;
    let session: String = fr["key_session_id"].as_str().unwrap().to_string();
    for k in 0..9 {
        let store = store_of(&net, k);
        let rec = store.get_key("r").unwrap();
        match k {
            0 | 1 => assert!(rec.is_none(), "leaver {k} still holds the key"),
            5 => assert_ne!(hex32(&rec.unwrap().key_session_id), session),
            _ => {
                let rec = rec.unwrap();
                assert_eq!(hex32(&rec.key_session_id), session, "node {k}");
                assert_eq!(rec.threshold, 4);
            }
        }
        // Key "q" (2-of-5 on 0..4 reshared to {0, 1, 5}): C, D and E hold no share.
        let q_rec = store.get_key("q").unwrap();
        match k {
            0 | 1 | 5 => assert_eq!(
                hex32(&q_rec.unwrap().key_session_id),
                qre["key_session_id"].as_str().unwrap(),
                "node {k}"
            ),
            _ => assert!(q_rec.is_none(), "node {k} kept a share of q"),
        }
        let staged = store
            .list_keys()
            .unwrap()
            .into_iter()
            .filter(|r| r.key_id.starts_with('~'))
            .count();
        assert_eq!(staged, 0, "node {k} kept a staged share");
    }
}
