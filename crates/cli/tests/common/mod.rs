//! Test harness: a real `cohort devnet` (manager + node processes on 127.0.0.1) driven over
//! its HTTP API, with signatures checked by independent code (k256 recovery, Keccak address).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde_json::{Value, json};
use sha3::{Digest, Keccak256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_cohort");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Ethereum address of an uncompressed public key, lower-case 0x-hex.
pub fn eth_address(uncompressed: &[u8]) -> String {
    assert_eq!(uncompressed.len(), 65);
    let h = Keccak256::digest(&uncompressed[1..]);
    format!("0x{}", hex::encode(&h[12..]))
}

/// Recovers the signer's address from a 65-byte r‖s‖v signature as Ethereum's ecrecover does,
/// with k256 (not the engine): v must be 27/28 and s low.
pub fn recover(digest: &[u8; 32], sig_hex: &str) -> String {
    let sig = hex::decode(sig_hex.trim_start_matches("0x")).unwrap();
    assert_eq!(sig.len(), 65, "signature must be 65 bytes");
    let v = sig[64];
    assert!(v == 27 || v == 28, "v must be 27 or 28, got {v}");
    let s = Signature::from_slice(&sig[..64]).unwrap();
    assert!(s.normalize_s().is_none(), "s must be low");
    let rid = RecoveryId::from_byte(v - 27).unwrap();
    let vk = VerifyingKey::recover_from_prehash(digest, &s, rid).unwrap();
    eth_address(vk.to_encoded_point(false).as_bytes())
}

pub fn random_digest() -> [u8; 32] {
    rand::random()
}

pub fn hex32(d: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(d))
}

/// A running devnet.
pub struct Devnet {
    pub dir: tempfile::TempDir,
    pub api: String,
    pub http: reqwest::Client,
    pub members: Vec<String>,
    /// stdout lines of the devnet up to its `api:` line.
    pub output: Vec<String>,
    /// A Mantle JWT secret the manager requires (`--jwt-secret-file`): every call then sends
    /// a fresh HS256 JWT signed with it.
    pub jwt_secret: Option<Vec<u8>>,
    devnet: Child,
    restarted: Vec<Child>,
}

impl Devnet {
    /// Starts `cohort devnet` and waits for its `api:` line.
    pub async fn start(nodes: usize, threshold: u16) -> Devnet {
        Self::start_with(nodes, threshold, &["--presign-pool", "0"]).await
    }

    /// Starts `cohort devnet` with extra arguments and waits for its `api:` line.
    pub async fn start_with(nodes: usize, threshold: u16, extra: &[&str]) -> Devnet {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let api = format!("127.0.0.1:{port}");
        let mut devnet = Command::new(BIN)
            .args([
                "devnet",
                "--nodes",
                &nodes.to_string(),
                "--threshold",
                &threshold.to_string(),
                "--api",
                &api,
                "--data-dir",
                dir.path().to_str().unwrap(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = devnet.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut output = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = tokio::time::timeout(left, lines.next_line())
                .await
                .expect("devnet did not print its api line in time")
                .unwrap();
            let Some(line) = line else {
                panic!(
                    "devnet exited early; output so far: {output:#?}; manager log: {}",
                    std::fs::read_to_string(dir.path().join("manager.log")).unwrap_or_default()
                );
            };
            let done = line.starts_with("api: ");
            output.push(line);
            if done {
                break;
            }
        }
        // Keep draining stdout so the devnet never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        assert_eq!(output.last().unwrap(), &format!("api: http://{api}"));
        let members = output
            .iter()
            .filter_map(|l| l.strip_prefix("devnet:   node-"))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect::<Vec<_>>();
        assert_eq!(members.len(), nodes);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        Devnet {
            dir,
            api: format!("http://{api}"),
            http,
            members,
            output,
            jwt_secret: None,
            devnet,
            restarted: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn node_config(&self, k: usize) -> PathBuf {
        self.path().join(format!("node-{k}")).join("node.toml")
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.api));
        if let Some(secret) = &self.jwt_secret {
            let now = cohort_manager::auth::unix_now();
            req = req.bearer_auth(cohort_manager::auth::mint_jwt(secret, now));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Signs `digest` with `key_id` and checks the signature recovers to the key's address
    /// (from `GET /v1/keys/{key_id}`); returns the answer.
    pub async fn sign_and_verify(&self, key_id: &str, digest: &[u8; 32]) -> Value {
        let (s, key) = self.get(&format!("/v1/keys/{key_id}")).await;
        assert_eq!(s, 200, "{key}");
        let (s, ans) = self
            .post(
                &format!("/v1/keys/{key_id}/sign"),
                json!({ "digest": hex32(digest) }),
            )
            .await;
        assert_eq!(s, 200, "signing {key_id} failed: {ans}");
        let recovered = recover(digest, ans["signature"].as_str().unwrap());
        assert_eq!(recovered, key["address"].as_str().unwrap().to_lowercase());
        let pk = hex::decode(key["public_key"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        assert_eq!(eth_address(&pk), recovered);
        ans
    }

    /// The pid of a process the devnet started.
    pub fn pid(&self, name: &str) -> u32 {
        std::fs::read_to_string(self.path().join(format!("{name}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// SIGKILLs node k (no chance to clean up).
    pub fn kill_node(&self, k: usize) {
        let pid = self.pid(&format!("node-{k}"));
        let st = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Starts node k again from its config and store.
    pub fn restart_node(&mut self, k: usize) {
        self.restart_node_env(k, &[]);
    }

    /// Starts node k again with extra environment (e.g. a failpoint).
    pub fn restart_node_env(&mut self, k: usize, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join(format!("node-{k}.restart.log")))
            .unwrap();
        let child = Command::new(BIN)
            .args(["node", "--config", self.node_config(k).to_str().unwrap()])
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        std::fs::write(
            self.path().join(format!("node-{k}.pid")),
            child.id().unwrap().to_string(),
        )
        .unwrap();
        self.restarted.push(child);
    }

    /// Which members the manager sees connected.
    pub async fn connected(&self) -> Vec<String> {
        let (s, nodes) = self.get("/v1/nodes").await;
        assert_eq!(s, 200);
        nodes
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["connected"] == json!(true))
            .map(|n| n["address"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits until exactly `want` members are connected.
    pub async fn wait_connected(&self, want: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.connected().await.len() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {want} nodes connected"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops everything: SIGINT to the devnet (which stops its children), SIGKILL to the rest.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.devnet.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(20), self.devnet.wait()).await;
        }
        for c in &mut self.restarted {
            let _ = c.kill().await;
        }
        // Everything is stopped: forget the pids so that Drop kills nothing else.
        if let Ok(entries) = std::fs::read_dir(self.path()) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "pid") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    fn kill_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(self.path()) else {
            return;
        };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "pid")
                && let Ok(pid) = std::fs::read_to_string(e.path())
            {
                let _ = std::process::Command::new("kill")
                    .args(["-9", pid.trim()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.kill_leftovers();
    }
}

/// A real Ethereum node (anvil, from the npm package `@foundry-rs/anvil`) on 127.0.0.1.
pub struct Anvil {
    pub url: String,
    child: Child,
}

const ANVIL_VERSION: &str = "1.7.1";

/// Where anvil is: `COHORT_ANVIL`, or the copy `.ci/run` (or this function) installs under
/// `target/anvil` with npm.
pub fn anvil_binary() -> PathBuf {
    if let Ok(p) = std::env::var("COHORT_ANVIL") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/anvil");
    let bin = root.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    if !bin.exists() {
        std::fs::create_dir_all(&root).unwrap();
        let st = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&root)
            .arg(format!("@foundry-rs/anvil@{ANVIL_VERSION}"))
            .status()
            .expect("npm is needed to install anvil (or set COHORT_ANVIL)");
        assert!(st.success(), "npm install of anvil failed");
    }
    assert!(bin.exists(), "anvil not found at {}", bin.display());
    bin
}

impl Anvil {
    pub async fn start() -> Anvil {
        let port = free_port();
        let child = Command::new(anvil_binary())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let a = Anvil { url, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while a.rpc("eth_blockNumber", json!([])).await.is_err() {
            assert!(Instant::now() < deadline, "anvil did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        a
    }

    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let resp = reqwest::Client::new()
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        v.get("result").cloned().ok_or_else(|| v.to_string())
    }

    /// Mines `n` blocks, each with a value transfer (so that state roots change).
    pub async fn mine_with_transfers(&self, n: usize) {
        let accounts = self.rpc("eth_accounts", json!([])).await.unwrap();
        let (from, to) = (accounts[0].clone(), accounts[1].clone());
        for _ in 0..n {
            self.rpc(
                "eth_sendTransaction",
                json!([{ "from": from, "to": to, "value": "0x1" }]),
            )
            .await
            .unwrap();
        }
    }

    /// State root of block `n`, read directly.
    pub async fn state_root(&self, n: u64) -> [u8; 32] {
        let b = self
            .rpc("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))
            .await
            .unwrap();
        hex::decode(b["stateRoot"].as_str().unwrap().trim_start_matches("0x"))
            .unwrap()
            .try_into()
            .unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `keccak256(abi.encode(bytes32[] roots, uint256 offset))`, laid out word by word here,
/// independently of the ABI encoder Cohort uses.
pub fn state_batch_digest(roots: &[[u8; 32]], offset: u64) -> [u8; 32] {
    let word = |v: u64| {
        let mut w = [0u8; 32];
        w[24..].copy_from_slice(&v.to_be_bytes());
        w
    };
    let mut buf = Vec::new();
    buf.extend_from_slice(&word(0x40));
    buf.extend_from_slice(&word(offset));
    buf.extend_from_slice(&word(roots.len() as u64));
    for r in roots {
        buf.extend_from_slice(r);
    }
    Keccak256::digest(&buf).into()
}

/// `keccak256(abi.encode(uint256 start_block))`, by hand.
pub fn rollback_digest(start_block: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&start_block.to_be_bytes());
    Keccak256::digest(w).into()
}
