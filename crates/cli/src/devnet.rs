//! `cohort devnet`: a whole cohort on loopback — one manager and n node processes — from
//! embedded defaults, for trying Cohort out and for the end-to-end tests and benchmarks.
//!
//! The nodes use the repository's public test primes for their Paillier aux info (insecure,
//! and said so loudly): a real node searches its own safe primes in the background, which takes
//! minutes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use cohort_manager::ManagerConfig;
use cohort_node::NodeConfig;
use cohort_node::config::{ManagerEndpoint, ManagerPin, MemberConfig};
use cohort_wire::Address;
use rand::RngCore;

/// The devnet's state key: it signs only checked state batches, never a plain digest.
pub const STATE_KEY: &str = "state";
use reqwest::Method;
use serde_json::{Value, json};
use sha3::{Digest, Keccak256};
use tokio::process::{Child, Command};

use crate::client::{Api, ApiClient};

/// Arguments of `cohort devnet`.
#[derive(Args, Clone)]
pub struct DevnetArgs {
    /// Number of node processes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Threshold t of the `devnet` key.
    #[arg(long, default_value_t = 3)]
    pub threshold: u16,
    /// Address of the manager's HTTP API (and of the nodes' WebSocket endpoint).
    #[arg(long, default_value = "127.0.0.1:7100")]
    pub api: String,
    /// Directory for every store, config and log; default a fresh temporary folder. Reusing a
    /// directory restarts the same cohort with its keys.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// First p2p port (node k listens on base + k); 0 picks free ports.
    #[arg(long, default_value_t = 0)]
    pub p2p_base_port: u16,
    /// JSON-RPC URL of the L2 node the nodes check state batches against: one URL for every
    /// node, or n comma-separated URLs, one per node. Default none: the devnet's nodes sign
    /// state batches without checking them (and it says so).
    #[arg(long, value_delimiter = ',')]
    pub l2_rpc: Vec<String>,
    /// Presignatures the manager keeps ready per key (0: always sign in full).
    #[arg(long, default_value_t = 2)]
    pub presign_pool: usize,
    /// Run the manager with Mantle JWT auth: this file holds the batch submitter's
    /// `jwt_secret` (32 bytes hex); the devnet's own calls send fresh JWTs signed with it.
    #[arg(long)]
    pub jwt_secret_file: Option<PathBuf>,
    /// Serve the nodes' WebSocket over TLS (`wss://`) on a listener of its own, with a fresh
    /// self-signed certificate (rcgen) that every node pins by its SHA-256.
    #[arg(long)]
    pub wss: bool,
    /// Skip the sample keygen and signature.
    #[arg(long)]
    pub no_sample: bool,
}

/// A cohort laid out on disk: configs, stores and logs under one directory.
pub struct Cluster {
    /// Root directory.
    pub dir: PathBuf,
    /// Node addresses, in membership order.
    pub members: Vec<Address>,
    /// Node config paths, in membership order.
    pub node_configs: Vec<PathBuf>,
    /// Manager config path.
    pub manager_config: PathBuf,
    /// API base URL.
    pub api_url: String,
    /// The manager's address (its identity key, created here), which every node pins.
    pub manager_address: Address,
    /// The URL the nodes dial the manager at.
    pub ws_url: String,
    /// The manager's `jwt_secret_file`, if set; the cluster's client signs JWTs with it.
    pub jwt_secret_file: Option<PathBuf>,
    children: Vec<(String, Child)>,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn write_secret_file(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    std::fs::write(path, hex::encode(b))
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

impl Cluster {
    /// Writes the configs of an n-node cohort under `dir` (creating node keys on first use).
    pub fn prepare(
        dir: &Path,
        n: usize,
        api: &str,
        p2p_base: u16,
        l2_rpc: &[String],
        presign_pool: usize,
    ) -> anyhow::Result<Cluster> {
        if n < 2 {
            bail!("a cohort needs at least 2 nodes");
        }
        if l2_rpc.len() > 1 && l2_rpc.len() != n {
            bail!(
                "--l2-rpc takes one URL or one per node ({n}), not {}",
                l2_rpc.len()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        let ws = format!("ws://{api}/v1/ws");
        let manager_dir = dir.join("manager");
        let manager_address =
            cohort_manager::identity::ManagerIdentity::load_or_create(&manager_dir)?.address();
        let endpoint = ManagerEndpoint::Pinned(ManagerPin {
            url: ws.clone(),
            address: Some(manager_address),
            tls_cert_sha256: None,
        });
        let mut configs = Vec::new();
        for k in 0..n {
            let node_dir = dir.join(format!("node-{k}"));
            std::fs::create_dir_all(&node_dir)?;
            let pass = node_dir.join("passphrase");
            write_secret_file(&pass)?;
            let port = if p2p_base == 0 {
                free_port()?
            } else {
                p2p_base
                    .checked_add(k as u16)
                    .context("p2p port out of range")?
            };
            configs.push(NodeConfig {
                data_dir: node_dir.clone(),
                passphrase_file: Some(pass),
                p2p_listen: format!("/ip4/127.0.0.1/tcp/{port}"),
                managers: vec![endpoint.clone()],
                insecure_accept_any_manager: false,
                members: Vec::new(),
                insecure_test_primes: true,
                prime_threads: 1,
                l2_rpc_url: l2_rpc.get(k).or(l2_rpc.first()).cloned(),
                insecure_skip_state_check: l2_rpc.is_empty(),
                state_key_ids: vec![STATE_KEY.into()],
                l2_block_offset: 1,
                l2: Default::default(),
                timeouts: Default::default(),
                deletes: Default::default(),
                l1: None,
            });
        }
        let mut members = Vec::new();
        for c in &configs {
            let (address, _) = cohort_node::init(c)
                .with_context(|| format!("cannot initialise node in {}", c.data_dir.display()))?;
            members.push(address);
        }
        let member_cfg: Vec<MemberConfig> = members
            .iter()
            .zip(&configs)
            .map(|(a, c)| MemberConfig {
                address: *a,
                p2p: Some(c.p2p_listen.clone()),
            })
            .collect();
        let mut node_configs = Vec::new();
        for mut c in configs {
            c.members = member_cfg.clone();
            let path = c.data_dir.join("node.toml");
            std::fs::write(&path, toml::to_string_pretty(&c)?)?;
            node_configs.push(path);
        }
        let manager = ManagerConfig {
            listen: api.to_string(),
            ws_listen: None,
            tls: None,
            data_dir: manager_dir,
            members: members.clone(),
            state_key_id: STATE_KEY.into(),
            presign_pool_depth: presign_pool,
            api_token_file: None,
            jwt_secret_file: None,
            max_state_roots: cohort_rollup::DEFAULT_MAX_STATE_ROOTS,
            signature_cache_entries: 100_000,
            oplog_retention: 1_000_000,
            timeouts: Default::default(),
            http: Default::default(),
            l1: None,
        };
        std::fs::create_dir_all(&manager.data_dir)?;
        let manager_config = manager.data_dir.join("manager.toml");
        std::fs::write(&manager_config, toml::to_string_pretty(&manager)?)?;
        Ok(Cluster {
            dir,
            members,
            node_configs,
            manager_config,
            api_url: format!("http://{api}"),
            manager_address,
            ws_url: ws,
            jwt_secret_file: None,
            children: Vec::new(),
        })
    }

    /// Moves the node WebSocket to a TLS listener of its own (`wss://127.0.0.1:<port>`) with a
    /// self-signed certificate (made once, kept in the manager's directory) that every node
    /// pins by its SHA-256.
    pub fn use_wss(&mut self) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.manager_config)?;
        let mut config = ManagerConfig::from_toml(&text)?;
        let cert_file = config.data_dir.join("tls-cert.pem");
        let key_file = config.data_dir.join("tls-key.pem");
        if !cert_file.exists() || !key_file.exists() {
            let cert = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
            ])
            .context("cannot generate the devnet's TLS certificate")?;
            std::fs::write(&cert_file, cert.cert.pem())?;
            std::fs::write(&key_file, cert.key_pair.serialize_pem())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
        let pem = std::fs::read_to_string(&cert_file)?;
        let der = pem_to_der(&pem).context("the devnet's TLS certificate is not PEM")?;
        let pin = cohort_wire::Bytes32(cohort_node::tls::cert_sha256(&der));
        let port = match config
            .ws_listen
            .as_deref()
            .and_then(|a| a.rsplit(':').next())
        {
            Some(p) => p.parse::<u16>().context("bad ws_listen port")?,
            None => free_port()?,
        };
        config.ws_listen = Some(format!("127.0.0.1:{port}"));
        config.tls = Some(cohort_manager::config::TlsConfig {
            cert_file,
            key_file,
        });
        std::fs::write(&self.manager_config, toml::to_string_pretty(&config)?)?;
        self.ws_url = format!("wss://127.0.0.1:{port}/v1/ws");
        for path in &self.node_configs {
            let mut c = NodeConfig::from_toml(&std::fs::read_to_string(path)?)?;
            c.managers = vec![ManagerEndpoint::Pinned(ManagerPin {
                url: self.ws_url.clone(),
                address: Some(self.manager_address),
                tls_cert_sha256: Some(pin),
            })];
            std::fs::write(path, toml::to_string_pretty(&c)?)?;
        }
        Ok(())
    }

    fn spawn(&mut self, name: String, args: &[&str], log: PathBuf) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find the cohort binary")?;
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        if let Some(pid) = child.id() {
            std::fs::write(self.dir.join(format!("{name}.pid")), pid.to_string())?;
        }
        self.children.push((name, child));
        Ok(())
    }

    /// Makes the manager require Mantle JWTs signed with the secret in `path` (checked now).
    pub fn use_jwt_secret_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let path = path
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", path.display()))?;
        cohort_manager::auth::read_jwt_secret(&path)?;
        let text = std::fs::read_to_string(&self.manager_config)?;
        let mut config = ManagerConfig::from_toml(&text)?;
        config.jwt_secret_file = Some(path.clone());
        std::fs::write(&self.manager_config, toml::to_string_pretty(&config)?)?;
        self.jwt_secret_file = Some(path);
        Ok(())
    }

    /// Starts the manager and every node as child processes (killed when the cluster drops).
    pub fn start(&mut self) -> anyhow::Result<()> {
        let mc = self.manager_config.display().to_string();
        self.spawn(
            "manager".into(),
            &["manager", "--config", &mc],
            self.dir.join("manager.log"),
        )?;
        for k in 0..self.node_configs.len() {
            let c = self.node_configs[k].display().to_string();
            self.spawn(
                format!("node-{k}"),
                &["node", "--config", &c],
                self.dir.join(format!("node-{k}.log")),
            )?;
        }
        Ok(())
    }

    /// Kills every child process and waits until each has exited (so stores are unlocked).
    pub async fn stop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill().await;
        }
        self.children.clear();
    }

    /// An API client for this cluster.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        ApiClient::new(&Api {
            api: self.api_url.clone(),
            token_file: None,
            jwt_secret_file: self.jwt_secret_file.clone(),
            timeout_secs: 900,
        })
    }

    /// Waits until the API answers and every node is connected.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let client = self.client()?;
        let deadline = Instant::now() + timeout;
        loop {
            for (name, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!(
                        "{name} exited with {status}; see {}",
                        self.dir.join(format!("{name}.log")).display()
                    );
                }
            }
            if let Ok((200, Value::Array(nodes))) =
                client.call(Method::GET, "/v1/nodes", None).await
                && nodes
                    .iter()
                    .all(|n| n["connected"] == json!(true) && n["aux_ready"].is_boolean())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the cohort was not up within {timeout:?}; logs in {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for Ctrl-C, reporting children that exit meanwhile; the manager exiting ends it.
    pub async fn supervise(&mut self) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut reported = std::collections::HashSet::new();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tick.tick() => {}
            }
            for (name, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait()
                    && reported.insert(name.clone())
                {
                    eprintln!("devnet: {name} exited with {status}");
                    if name == "manager" {
                        bail!(
                            "the manager exited; see {}",
                            self.dir.join("manager.log").display()
                        );
                    }
                }
            }
        }
    }
}

/// The DER bytes of the first certificate in a PEM text.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The sample digest the devnet signs: keccak256 of a fixed phrase.
pub fn sample_digest() -> [u8; 32] {
    Keccak256::digest(b"cohort devnet sample digest").into()
}

/// Runs `cohort devnet`.
pub async fn run(args: DevnetArgs) -> anyhow::Result<()> {
    if !cohort_engine::primes::TEST_PRIMES_COMPILED {
        bail!(
            "this binary has no test primes (a release build); the devnet needs them: \
             run ./scripts/devnet.sh, or build with `--features insecure-test-primes`"
        );
    }
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            let mut b = [0u8; 6];
            rand::thread_rng().fill_bytes(&mut b);
            std::env::temp_dir().join(format!("cohort-devnet-{}", hex::encode(b)))
        }
    };
    if usize::from(args.threshold) > args.nodes || args.threshold < 2 {
        bail!("--threshold must be in 2..=--nodes");
    }
    let mut cluster = Cluster::prepare(
        &dir,
        args.nodes,
        &args.api,
        args.p2p_base_port,
        &args.l2_rpc,
        args.presign_pool,
    )?;
    if let Some(f) = &args.jwt_secret_file {
        cluster.use_jwt_secret_file(f)?;
    }
    if args.wss {
        cluster.use_wss()?;
    }
    println!(
        "devnet: {} nodes, threshold {}, data and logs in {}",
        args.nodes,
        args.threshold,
        cluster.dir.display()
    );
    println!(
        "devnet: WARNING: the nodes use the repository's PUBLIC test primes for their Paillier \
         aux info — INSECURE, for this devnet only; real nodes search their own primes"
    );
    if args.l2_rpc.is_empty() {
        println!(
            "devnet: no --l2-rpc: the nodes sign state batches WITHOUT checking their roots \
             (insecure_skip_state_check)"
        );
    } else {
        println!(
            "devnet: the nodes check state batches against {}",
            args.l2_rpc.join(", ")
        );
    }
    if let Some(f) = &cluster.jwt_secret_file {
        println!(
            "devnet: the API needs Mantle JWTs (HS256, iat within 60 s) signed with the secret in {}",
            f.display()
        );
    }
    println!(
        "devnet: POST /api/v1/sign/state signs with the key `{STATE_KEY}` (start_block = offset_starts_at_index + 1)"
    );
    cluster.start()?;
    cluster.wait_ready(Duration::from_secs(60)).await?;
    println!("devnet: manager and {} nodes up", args.nodes);
    println!(
        "devnet:   manager {} at {} (pinned by every node)",
        cluster.manager_address, cluster.ws_url
    );
    for (k, a) in cluster.members.iter().enumerate() {
        println!("devnet:   node-{k} {a}");
    }
    if !args.no_sample {
        let client = cluster.client()?;
        let t0 = Instant::now();
        let (status, key) = client
            .call(
                Method::POST,
                "/v1/keys",
                Some(json!({ "key_id": "devnet", "threshold": args.threshold })),
            )
            .await?;
        if !(200..300).contains(&status) {
            bail!("keygen failed (HTTP {status}): {key}");
        }
        println!(
            "devnet: key devnet ({}-of-{}) address {} ({:.1} s, first use includes aux-info generation)",
            args.threshold,
            args.nodes,
            key["address"].as_str().unwrap_or("?"),
            t0.elapsed().as_secs_f64()
        );
        let digest = sample_digest();
        let t0 = Instant::now();
        let (status, sig) = client
            .call(
                Method::POST,
                "/v1/keys/devnet/sign",
                Some(json!({ "digest": format!("0x{}", hex::encode(digest)) })),
            )
            .await?;
        if status != 200 {
            bail!("signing failed (HTTP {status}): {sig}");
        }
        let signature = sig["signature"].as_str().unwrap_or_default();
        println!(
            "devnet: signed digest 0x{} in {:.2} s",
            hex::encode(digest),
            t0.elapsed().as_secs_f64()
        );
        println!("devnet: signature {signature}");
        println!("devnet: signers {}", sig["signers"]);
        let (status, key) = client
            .call(
                Method::POST,
                "/v1/keys",
                Some(json!({ "key_id": STATE_KEY, "threshold": args.threshold })),
            )
            .await?;
        if !(200..300).contains(&status) {
            bail!("state keygen failed (HTTP {status}): {key}");
        }
        println!(
            "devnet: key {STATE_KEY} ({}-of-{}) address {} signs state batches",
            args.threshold,
            args.nodes,
            key["address"].as_str().unwrap_or("?"),
        );
    }
    println!("api: {}", cluster.api_url);
    cluster.supervise().await
}
