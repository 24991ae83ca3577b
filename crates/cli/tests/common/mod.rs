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
    devnet: Child,
    restarted: Vec<Child>,
}

impl Devnet {
    /// Starts `cohort devnet` and waits for its `api:` line.
    pub async fn start(nodes: usize, threshold: u16) -> Devnet {
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
        let log = std::fs::File::create(self.path().join(format!("node-{k}.restart.log"))).unwrap();
        let child = Command::new(BIN)
            .args(["node", "--config", self.node_config(k).to_str().unwrap()])
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
