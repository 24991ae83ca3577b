//! Mantle's batch submitter, for real: a Go program of ours (`tests/go/mantle-client`) that
//! calls `POST /api/v1/sign/state` the way Mantle's `batch-submitter/tss-client/client.go`
//! does — resty v2, a fresh HS256 JWT per request, `*big.Int` numbers and `[][32]byte` roots,
//! `SetResult` on a nil `[]byte` and the body decoded by hand — built offline from Debian's Go
//! sources, against a devnet whose nodes check every root on anvil.
//!
//! One cohort (3 nodes, threshold 3, so every node signs and journals every batch) serves
//! every assertion: Mantle-sized batches (3001 roots of anvil blocks), the limit (9000 →
//! 400), a batch re-sent with more roots after a lost transaction, a changed root refused by
//! every node from its journal (also after restarts), the identical request answered from the
//! signature cache, and JWT failures answered 401 and counted.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{Anvil, Devnet, recover, state_batch_digest};
use serde_json::{Value, json};

/// Debian packages the Go client needs.
const GO_PACKAGES: &str =
    "golang-go golang-github-go-resty-resty-dev golang-github-golang-jwt-jwt-dev";

/// Builds the Go client offline (module mode, no proxy, `replace` to /usr/share/gocode).
fn build_go_client(out: &Path) -> PathBuf {
    let go = std::process::Command::new("go").arg("version").output();
    assert!(
        go.as_ref().is_ok_and(|o| o.status.success()),
        "`go` is missing: this test builds a real Go client of Mantle's shape; \
         install the Debian packages: apt-get install -y {GO_PACKAGES}"
    );
    for dir in [
        "/usr/share/gocode/src/github.com/go-resty/resty",
        "/usr/share/gocode/src/github.com/golang-jwt/jwt",
        "/usr/share/gocode/src/golang.org/x/net",
    ] {
        assert!(
            Path::new(dir).is_dir(),
            "{dir} is missing: install the Debian packages: apt-get install -y {GO_PACKAGES}"
        );
    }
    // Built from a copy, so that the Go tool never touches the repository's files.
    let src = out.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/mantle-client");
    for f in ["go.mod", "main.go"] {
        std::fs::copy(here.join(f), src.join(f)).unwrap();
    }
    let bin = out.join("mantle-client");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let o = std::process::Command::new("go")
        .args(["build", "-o", bin.to_str().unwrap(), "."])
        .current_dir(&src)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", target.join("go-cache"))
        .env("GOPATH", target.join("go-path"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "go build of the Mantle client failed (packages: {GO_PACKAGES}): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    bin
}

/// State roots of blocks `from..from+n`, read from anvil in JSON-RPC batches.
async fn anvil_roots(anvil: &Anvil, from: u64, n: u64) -> Vec<[u8; 32]> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    let mut next = from;
    while next < from + n {
        let k = (from + n - next).min(500);
        let calls: Vec<Value> = (0..k)
            .map(|i| {
                json!({"jsonrpc": "2.0", "id": i, "method": "eth_getBlockByNumber",
                       "params": [format!("0x{:x}", next + i), false]})
            })
            .collect();
        let mut answers: Vec<Value> = http
            .post(&anvil.url)
            .json(&calls)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answers.sort_by_key(|a| a["id"].as_u64().unwrap());
        for a in answers {
            let r = a["result"]["stateRoot"].as_str().unwrap();
            out.push(
                hex::decode(r.trim_start_matches("0x"))
                    .unwrap()
                    .try_into()
                    .unwrap(),
            );
        }
        next += k;
    }
    out
}

struct GoClient {
    bin: PathBuf,
    dir: PathBuf,
    url: String,
    secret_file: PathBuf,
}

impl GoClient {
    /// Runs one Mantle-style request; returns the client's JSON line.
    async fn sign(&self, start: u64, offset: u64, roots: &[[u8; 32]], jwt: &str) -> Value {
        let file = self.dir.join(format!("roots-{offset}-{}.txt", roots.len()));
        let text: Vec<String> = roots
            .iter()
            .map(|r| format!("0x{}", hex::encode(r)))
            .collect();
        std::fs::write(&file, text.join("\n")).unwrap();
        let run = tokio::process::Command::new(&self.bin)
            .args([
                "-url",
                &self.url,
                "-roots",
                file.to_str().unwrap(),
                "-start",
                &start.to_string(),
                "-offset",
                &offset.to_string(),
                "-jwt-secret-file",
                self.secret_file.to_str().unwrap(),
                "-jwt",
                jwt,
            ])
            .output();
        let o = tokio::time::timeout(std::time::Duration::from_secs(600), run)
            .await
            .expect("the Go client did not finish in time")
            .unwrap();
        let line = String::from_utf8_lossy(&o.stdout);
        serde_json::from_str(line.trim()).unwrap_or_else(|e| {
            panic!(
                "Go client printed no JSON ({e}): {line} / {}",
                String::from_utf8_lossy(&o.stderr)
            )
        })
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn refused_codes(err: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = err["error"]["refused"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["address"].as_str().unwrap().to_string(),
                        r["error"]["code"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mantle_go_batch_submitter_against_a_devnet() {
    let t0 = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let bin = build_go_client(work.path());
    println!("go client built in {:.1} s", t0.elapsed().as_secs_f64());

    // L2: a few blocks with transfers (distinct roots), 3100 empty blocks in one call, more
    // transfers, then empty blocks up to 8200.
    let anvil = Anvil::start().await;
    anvil.mine_with_transfers(5).await;
    anvil
        .rpc("anvil_mine", json!(["0xc1c"])) // 3100
        .await
        .unwrap();
    anvil.mine_with_transfers(5).await;
    anvil
        .rpc("anvil_mine", json!(["0x13ec"])) // 5100: blocks up to 8210
        .await
        .unwrap();
    let all = anvil_roots(&anvil, 1, 8200).await;
    assert_eq!(all.len(), 8200);

    let secret = [0x5au8; 32];
    let secret_file = work.path().join("jwt-secret");
    std::fs::write(&secret_file, hex::encode(secret)).unwrap();
    let mut net = Devnet::start_with(
        3,
        3,
        &[
            "--l2-rpc",
            &anvil.url,
            "--jwt-secret-file",
            secret_file.to_str().unwrap(),
        ],
    )
    .await;
    net.jwt_secret = Some(secret.to_vec());
    println!("devnet up at {:.1} s", t0.elapsed().as_secs_f64());
    let (s, key) = net.get("/v1/keys/state").await;
    assert_eq!(s, 200, "{key}");
    let address = key["address"].as_str().unwrap().to_lowercase();
    let go = GoClient {
        bin,
        dir: work.path().to_path_buf(),
        url: net.api.clone(),
        secret_file: secret_file.clone(),
    };

    // A Mantle-sized batch (3001 roots, elements 0..=3000, blocks 1..=3001) from the Go
    // client: it decodes its signature, and the signature recovers to the state key over
    // Mantle's digest.
    let batch = &all[..3001];
    let t = Instant::now();
    let ans = go.sign(1, 0, batch, "fresh").await;
    println!("3001 roots signed in {:.2} s", t.elapsed().as_secs_f64());
    assert_eq!(ans["ok"], true, "{ans}");
    assert_eq!(ans["roll_back"], false);
    let sig = ans["signature"].as_str().unwrap().to_string();
    assert_eq!(sig.len(), 2 + 130, "65 bytes: {sig}");
    let digest = state_batch_digest(batch, 0);
    assert_eq!(recover(&digest, &sig), address);

    // The identical request again: the identical signature, from the cache.
    let again = go.sign(1, 0, batch, "fresh").await;
    assert_eq!(again["signature"], sig.as_str(), "{again}");
    let go_roots: Vec<Vec<u8>> = batch.iter().map(|r| r.to_vec()).collect();
    let (s, cached) = net
        .post(
            "/api/v1/sign/state",
            json!({"type": 0, "start_block": 1, "offset_starts_at_index": 0,
                   "challenge": "", "state_roots": go_roots, "election_id": 0}),
        )
        .await;
    assert_eq!(s, 200, "{cached}");
    assert_eq!(cached["cached"], true);
    let raw = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(cached["signature"].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(format!("0x{}", hex::encode(raw)), sig);
    let (_, rec) = net
        .get(&format!(
            "/v1/operations/{}",
            cached["session_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rec["operation"], "sign_state", "{rec}");
    assert_eq!(rec["outcome"], "ok", "{rec}");
    assert!(rec["from_cache"].is_string(), "{rec}");
    assert_eq!(rec["signers"], json!([]), "no protocol ran: {rec}");
    assert_eq!(rec["ready"], json!([]), "no node was asked: {rec}");
    let (_, first) = net
        .get(&format!(
            "/v1/operations/{}",
            rec["from_cache"].as_str().unwrap()
        ))
        .await;
    assert_eq!(first["digest"], format!("0x{}", hex::encode(digest)));
    assert_eq!(first["signers"].as_array().unwrap().len(), 3, "{first}");
    assert_eq!(first["l2_checks"].as_array().unwrap().len(), 3, "{first}");

    // The transaction was lost: the submitter rebuilds the batch from the L1 total, same
    // offset, more roots (elements 0..=3049). Every node signs it.
    let grown = &all[..3050];
    let ans = go.sign(1, 0, grown, "fresh").await;
    assert_eq!(ans["ok"], true, "{ans}");
    assert_eq!(
        recover(
            &state_batch_digest(grown, 0),
            ans["signature"].as_str().unwrap()
        ),
        address
    );

    // Over the limit: 9000 roots get a 400 that names it (Go-encoded 0xff bytes: a body of
    // 1.2 MB, above the other routes' 1 MiB limit).
    let huge: Vec<[u8; 32]> = vec![[0xffu8; 32]; 9000];
    let ans = go.sign(1, 0, &huge, "fresh").await;
    assert_eq!(ans["ok"], false, "{ans}");
    assert_eq!(ans["status"], 400, "{ans}");
    let msg = ans["error"].as_str().unwrap();
    assert!(
        msg.contains("9000") && msg.contains("8192") && msg.contains("max_state_roots"),
        "{msg}"
    );

    // A different root at a signed element (element 3 of blocks 1..=10): every node refuses
    // from its journal, before its L2 look-up.
    let mut changed = all[..10].to_vec();
    changed[3] = all[3005];
    assert_ne!(changed[3], all[3]);
    let hex_roots: Vec<String> = changed
        .iter()
        .map(|r| format!("0x{}", hex::encode(r)))
        .collect();
    let conflicting =
        json!({"start_block": "1", "offset_starts_at_index": "0", "state_roots": hex_roots});
    let mut everyone_lower: Vec<(String, String)> = net
        .members
        .iter()
        .map(|m| (m.to_lowercase(), "journal_conflict".to_string()))
        .collect();
    everyone_lower.sort();
    let lower = |v: Vec<(String, String)>| -> Vec<(String, String)> {
        let mut v: Vec<_> = v.into_iter().map(|(a, c)| (a.to_lowercase(), c)).collect();
        v.sort();
        v
    };
    let (s, err) = net.post("/api/v1/sign/state", conflicting.clone()).await;
    assert_eq!(s, 409, "{err}");
    assert_eq!(err["error"]["code"], "journal_conflict", "{err}");
    assert_eq!(lower(refused_codes(&err)), everyone_lower, "{err}");
    assert!(
        err["error"]["refused"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("element 3"),
        "{err}"
    );

    // The journal survives restarts of every node.
    for k in 0..3 {
        net.kill_node(k);
    }
    net.wait_connected(0).await;
    for k in 0..3 {
        net.restart_node(k);
    }
    net.wait_connected(3).await;
    let (s, err) = net.post("/api/v1/sign/state", conflicting).await;
    assert_eq!(s, 409, "{err}");
    assert_eq!(lower(refused_codes(&err)), everyone_lower, "{err}");
    // ... and they still sign what extends the signed elements unchanged.
    let ans = go.sign(1, 0, &all[..3060], "fresh").await;
    assert_eq!(ans["ok"], true, "{ans}");
    // The default limit itself: 8192 roots, checked by every node on anvil and signed.
    let t = Instant::now();
    let ans = go.sign(1, 0, &all[..8192], "fresh").await;
    println!("8192 roots signed in {:.2} s", t.elapsed().as_secs_f64());
    assert_eq!(ans["ok"], true, "{ans}");
    assert_eq!(
        recover(
            &state_batch_digest(&all[..8192], 0),
            ans["signature"].as_str().unwrap()
        ),
        address
    );

    // JWT: a stale iat, a wrong secret, no token: 401, counted by reason.
    for (mode, reason) in [
        ("stale", "expired"),
        ("bad", "invalid"),
        ("none", "missing"),
    ] {
        let ans = go.sign(1, 0, &all[..2], mode).await;
        assert_eq!(ans["status"], 401, "{mode}: {ans}");
        let body: Value = serde_json::from_str(ans["error"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{mode}: {body}");
        let (_, text) = net.get("/metrics").await;
        let text = text.as_str().unwrap().to_string();
        let name = format!("cohort_manager_auth_failures_total{{reason=\"{reason}\"}}");
        assert!(metric(&text, &name) >= 1.0, "{name} not counted:\n{text}");
    }
    let open = reqwest::Client::new();
    let r = open
        .get(format!("{}/v1/keys", net.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Mantle's other routes and request types.
    let r = open.get(format!("{}/ping", net.api)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, m) = net.get("/api/v1/metrics").await;
    assert_eq!(s, 200);
    let m = m.as_str().unwrap();
    assert!(
        metric(m, "cohort_manager_signature_cache_hits_total") >= 2.0,
        "{m}"
    );
    for (t, want) in [(2, "invalid type"), (1, "needs L1 mode")] {
        let (s, err) = net
            .post(
                "/api/v1/sign/state",
                json!({"type": t, "start_block": 1, "offset_starts_at_index": 0,
                       "state_roots": [format!("0x{}", hex::encode(all[0]))]}),
            )
            .await;
        assert_eq!(s, 400, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(want),
            "{err}"
        );
    }
    println!("done in {:.1} s", t0.elapsed().as_secs_f64());
    net.stop().await;
    anvil.stop().await;
}
