//! `cohort bench`: end-to-end figures through the HTTP API of a fresh loopback cohort (real
//! processes, real libp2p, real stores), next to the engine's in-process time for the same
//! signing, so that the cost of the network path is visible.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use cohort_engine::primes::insecure_test_primes;
use cohort_engine::{KeyShare, sim};
use rand::RngCore;
use reqwest::Method;
use serde_json::json;

use crate::client::ApiClient;
use crate::devnet::Cluster;

/// Arguments of `cohort bench`.
#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Nodes in the membership (the key lives on the first `--holders`; resharing goes to all).
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// Holders of the signing key.
    #[arg(long, default_value_t = 5)]
    pub holders: usize,
    /// Threshold of the signing key.
    #[arg(long, default_value_t = 3)]
    pub threshold: u16,
    /// Threshold after resharing to every node.
    #[arg(long, default_value_t = 4)]
    pub reshare_threshold: u16,
    /// Signatures to time, with and without a presignature each.
    #[arg(long, default_value_t = 20)]
    pub signs: usize,
    /// Keys to generate (timed one by one).
    #[arg(long, default_value_t = 3)]
    pub keys: usize,
    /// Presignatures to generate when measuring the pool's rate.
    #[arg(long, default_value_t = 5)]
    pub pool: usize,
    /// L2 JSON-RPC URL (e.g. an anvil): adds `POST /api/v1/sign/state` latency for batches of
    /// 1, 100, 1000 and 3000 roots (Mantle's default batch size), with the nodes' L2 look-up
    /// time shown separately. Every run signs a new batch (the next slots: a repeated batch
    /// would be answered from the signature cache); blocks are mined with `anvil_mine` if the
    /// node has too few.
    #[arg(long)]
    pub l2_rpc: Option<String>,
    /// Runs per state-batch size.
    #[arg(long, default_value_t = 5)]
    pub state_runs: usize,
    /// Manager API address for the bench cohort.
    #[arg(long, default_value = "127.0.0.1:7190")]
    pub api: String,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (
        pct(&v, 0.5),
        pct(&v, 0.99),
        v.iter().sum::<f64>() / v.len().max(1) as f64,
    )
}

fn random_digest() -> String {
    let mut d = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut d);
    format!("0x{}", hex::encode(d))
}

async fn post(
    client: &ApiClient,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let (status, v) = client.call(Method::POST, path, Some(body)).await?;
    if !(200..300).contains(&status) {
        bail!("POST {path} failed (HTTP {status}): {v}");
    }
    Ok(v)
}

async fn timed_sign(client: &ApiClient, key: &str) -> anyhow::Result<(f64, bool)> {
    let t0 = Instant::now();
    let v = post(
        client,
        &format!("/v1/keys/{key}/sign"),
        json!({ "digest": random_digest() }),
    )
    .await?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let session = v["session_id"].as_str().unwrap_or_default();
    let (_, rec) = client
        .call(Method::GET, &format!("/v1/operations/{session}"), None)
        .await?;
    Ok((ms, rec.get("presignature").is_some()))
}

async fn pool_depth(client: &ApiClient, key: &str) -> anyhow::Result<usize> {
    let (_, k) = client
        .call(Method::GET, &format!("/v1/keys/{key}"), None)
        .await?;
    Ok(k["presignatures"].as_array().map_or(0, Vec::len))
}

/// Runs the benchmark and prints its tables.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let t = args.threshold;
    let (n, h) = (args.nodes, args.holders.min(args.nodes));
    let dir = tempdir()?;
    let l2: Vec<String> = args.l2_rpc.iter().cloned().collect();
    let mut cluster = Cluster::prepare(&dir, n, &args.api, 0, &l2, 0)?;
    cluster.start()?;
    cluster.wait_ready(Duration::from_secs(60)).await?;
    let client = cluster.client()?;
    let holders: Vec<String> = cluster.members[..h].iter().map(|a| a.to_string()).collect();
    let everyone: Vec<String> = cluster.members.iter().map(|a| a.to_string()).collect();
    println!(
        "cohort bench: {n} nodes on loopback, key ({t},{h}), {} cores, data in {}",
        cores(),
        dir.display()
    );

    // Keygen; the first also runs aux-info generation for the membership (test primes).
    let mut keygen_ms = Vec::new();
    let mut first_ms = 0.0;
    for k in 0..args.keys.max(2) {
        let t0 = Instant::now();
        post(
            &client,
            "/v1/keys",
            json!({ "key_id": format!("bench-{k}"), "threshold": t, "parties": holders }),
        )
        .await?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if k == 0 {
            first_ms = ms;
        } else {
            keygen_ms.push(ms);
        }
    }

    // Loopback round trip through the manager's HTTP stack.
    let mut rtt = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        client.call(Method::GET, "/healthz", None).await?;
        rtt.push(t0.elapsed().as_secs_f64() * 1e3);
    }

    // Full signing (no pool in this cluster).
    let mut full_ms = Vec::new();
    for _ in 0..args.signs.max(1) {
        full_ms.push(timed_sign(&client, "bench-0").await?.0);
    }

    // Resharing (t,h) -> (t', n), on the other keys.
    let mut reshare_ms = Vec::new();
    for k in 1..args.keys.max(2) {
        let t0 = Instant::now();
        post(
            &client,
            &format!("/v1/keys/bench-{k}/reshare"),
            json!({ "parties": everyone, "threshold": args.reshare_threshold }),
        )
        .await?;
        reshare_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        client
            .call(Method::DELETE, &format!("/v1/keys/bench-{k}"), None)
            .await?;
    }

    let state_rows = match &args.l2_rpc {
        Some(url) => Some(state_batches(&client, url, args.state_runs.max(1)).await?),
        None => None,
    };
    cluster.stop().await;

    // The same cohort again (stores and aux info kept) with a presignature pool. Pools serve
    // only state batches of the state key (RUSTSEC-2025-0127: never a caller-chosen digest),
    // so this part needs an L2 node for the batches' roots.
    let mut presig_ms = Vec::new();
    let mut per_sec = 0.0;
    if let Some(url) = &args.l2_rpc {
        let mut cluster = Cluster::prepare(&dir, n, &args.api, 0, &l2, args.pool.max(1))?;
        cluster.start()?;
        cluster.wait_ready(Duration::from_secs(60)).await?;
        let client = cluster.client()?;
        let state_key = crate::devnet::STATE_KEY;
        post(
            &client,
            "/v1/keys",
            json!({ "key_id": state_key, "threshold": t, "parties": holders }),
        )
        .await?;
        let signs = args.signs.max(1);
        let l2c = cohort_rollup::L2Client::new(url, Default::default())?;
        let roots: Vec<String> = l2c
            .state_roots(1, signs)
            .await?
            .iter()
            .map(|r| r.map(|r| format!("0x{}", hex::encode(r))))
            .collect::<Option<_>>()
            .context("the L2 node lacks a block")?;
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(900);
        while pool_depth(&client, state_key).await? < args.pool.max(1) {
            if Instant::now() > deadline {
                bail!("the presignature pool did not fill");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        per_sec = args.pool.max(1) as f64 / t0.elapsed().as_secs_f64();
        for (offset, root) in roots.iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(120);
            while pool_depth(&client, state_key).await? == 0 {
                if Instant::now() > deadline {
                    bail!("the presignature pool did not refill");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let t0 = Instant::now();
            let v = post(
                &client,
                "/api/v1/sign/state",
                json!({
                    "start_block": offset + 1,
                    "offset_starts_at_index": offset,
                    "state_roots": [root],
                    "key_id": state_key,
                }),
            )
            .await?;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            let session = v["session_id"].as_str().unwrap_or_default();
            let (_, rec) = client
                .call(Method::GET, &format!("/v1/operations/{session}"), None)
                .await?;
            if rec.get("presignature").is_some() {
                presig_ms.push(ms);
            }
        }
        cluster.stop().await;
    }

    // The same signing in process: all t signers in one process over channels.
    let parties = sim::party_ids(h);
    let primes = (0..h)
        .map(insecure_test_primes::pair)
        .collect::<Result<Vec<_>, _>>()
        .context("test primes")?;
    let (aux, _) = sim::aux_info(&parties, primes).await?;
    let cores_ = sim::keygen("bench", &parties, t).await?;
    let shares: Vec<KeyShare> = cores_
        .into_iter()
        .zip(&aux)
        .map(|(c, a)| KeyShare::new(c, a))
        .collect::<Result<_, _>>()?;
    let mut engine_ms = Vec::new();
    for _ in 0..args.signs.clamp(1, 10) {
        let mut d = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut d);
        let t0 = Instant::now();
        sim::sign("bench", &shares[..usize::from(t)], d).await?;
        engine_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }

    let row = |name: &str, v: &[f64]| {
        let (p50, p99, _) = summary(v.to_vec());
        println!("| {name} | {} | {p50:.1} ms | {p99:.1} ms |", v.len());
    };
    println!();
    println!("| ({t},{h}), {n}-node membership | runs | p50 | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| first keygen (incl. aux-info generation for {n} members) | 1 | {first_ms:.0} ms | — |"
    );
    row("keygen through the API", &keygen_ms);
    row("loopback HTTP round trip (GET /healthz)", &rtt);
    row(
        "sign a state batch through the API, presignature ready (one round)",
        &presig_ms,
    );
    row("sign through the API, full protocol", &full_ms);
    row(
        &format!("full sign in process (engine, {t} signers over channels)"),
        &engine_ms,
    );
    row(
        &format!(
            "reshare ({t},{h}) → ({},{n}) through the API",
            args.reshare_threshold
        ),
        &reshare_ms,
    );
    println!(
        "| presignatures generated by the pool | {} | {per_sec:.2} per second | — |",
        args.pool.max(1)
    );
    if let Some(rows) = state_rows {
        println!();
        println!(
            "| state batch ({t},{h}) | runs | end-to-end p50 | end-to-end p99 | L2 look-up p50 (per node) |"
        );
        println!("|---|---|---|---|---|");
        for r in rows {
            println!(
                "| {} roots | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
                r.roots, r.runs, r.p50, r.p99, r.l2_p50
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

struct StateRow {
    roots: usize,
    runs: usize,
    p50: f64,
    p99: f64,
    l2_p50: f64,
}

async fn rpc(
    url: &str,
    method: &str,
    params: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let v: serde_json::Value = reqwest::Client::new()
        .post(url)
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }))
        .send()
        .await?
        .json()
        .await?;
    v.get("result")
        .cloned()
        .with_context(|| format!("{method}: {v}"))
}

/// Batch sizes of the state-batch rows.
const STATE_SIZES: [usize; 4] = [1, 100, 1000, 3000];

/// `POST /api/v1/sign/state` for batches of [`STATE_SIZES`] real roots read from the L2 node.
async fn state_batches(
    client: &crate::client::ApiClient,
    url: &str,
    runs: usize,
) -> anyhow::Result<Vec<StateRow>> {
    let head = rpc(url, "eth_blockNumber", json!([])).await?;
    let head = u64::from_str_radix(head.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)?;
    // Every run goes to the next slots (start_block = offset + 1, as the nodes require): a
    // repeated batch would come from the manager's signature cache, not from a signing.
    let total: usize = STATE_SIZES.iter().map(|s| s * runs).sum();
    let need = 1 + total as u64;
    if head < need {
        rpc(url, "anvil_mine", json!([format!("0x{:x}", need - head)]))
            .await
            .with_context(|| {
                format!("the L2 node has fewer than {need} blocks and refused anvil_mine")
            })?;
    }
    let l2 = cohort_rollup::L2Client::new(url, Default::default())?;
    let all = l2.state_roots(1, total).await?;
    let roots: Vec<String> = all
        .iter()
        .map(|r| r.map(|r| format!("0x{}", hex::encode(r))))
        .collect::<Option<_>>()
        .context("the L2 node lacks a block")?;
    let mut rows = Vec::new();
    let mut offset = 0usize;
    for size in STATE_SIZES {
        let mut e2e = Vec::new();
        let mut look = Vec::new();
        for _ in 0..runs {
            let batch = &roots[offset..offset + size];
            let t0 = Instant::now();
            let (status, body) = client
                .call(
                    Method::POST,
                    "/api/v1/sign/state",
                    Some(json!({
                        "start_block": offset + 1,
                        "offset_starts_at_index": offset,
                        "state_roots": batch,
                        "key_id": "bench-0",
                    })),
                )
                .await?;
            if status != 200 || body["roll_back"] != json!(false) || body["cached"] == json!(true) {
                bail!("state batch of {size} failed (HTTP {status}): {body}");
            }
            e2e.push(t0.elapsed().as_secs_f64() * 1e3);
            let session = body["session_id"].as_str().unwrap_or_default();
            let (_, rec) = client
                .call(Method::GET, &format!("/v1/operations/{session}"), None)
                .await?;
            if let Some(checks) = rec["l2_checks"].as_array() {
                look.extend(checks.iter().filter_map(|c| c[1].as_f64()));
            }
            offset += size;
        }
        let (p50, p99, _) = summary(e2e);
        let (l2_p50, _, _) = summary(look);
        rows.push(StateRow {
            roots: size,
            runs,
            p50,
            p99,
            l2_p50,
        });
    }
    Ok(rows)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let mut b = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut b);
    let d = std::env::temp_dir().join(format!("cohort-bench-{}", hex::encode(b)));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
