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

use crate::devnet::Cluster;

/// Arguments of `cohort bench`.
#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Threshold.
    #[arg(long, default_value_t = 3)]
    pub threshold: u16,
    /// Sequential signatures to time.
    #[arg(long, default_value_t = 20)]
    pub signs: usize,
    /// Keys to generate (timed one by one).
    #[arg(long, default_value_t = 3)]
    pub keys: usize,
    /// L2 JSON-RPC URL (e.g. an anvil): adds `POST /api/v1/sign/state` latency for batches of
    /// 1, 100 and 1000 roots, with the nodes' L2 look-up time shown separately. Blocks are
    /// mined with `anvil_mine` if the node has fewer than 1001.
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

/// Runs the benchmark and prints its table.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let t = args.threshold;
    let n = args.nodes;
    let dir = tempdir()?;
    let mut cluster = Cluster::prepare(
        &dir,
        n,
        &args.api,
        0,
        &args.l2_rpc.iter().cloned().collect::<Vec<_>>(),
        0,
    )?;
    cluster.start()?;
    cluster.wait_ready(Duration::from_secs(60)).await?;
    let client = cluster.client()?;
    println!(
        "cohort bench: ({t},{n}) on loopback, {} cores, data in {}",
        cores(),
        dir.display()
    );

    // First keygen also runs aux-info generation for the membership (insecure test primes).
    let mut keygen_ms = Vec::new();
    let mut first_ms = 0.0;
    for k in 0..args.keys.max(1) {
        let t0 = Instant::now();
        let (status, body) = client
            .call(
                Method::POST,
                "/v1/keys",
                Some(json!({ "key_id": format!("bench-{k}"), "threshold": t })),
            )
            .await?;
        if status != 201 {
            bail!("keygen failed (HTTP {status}): {body}");
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if k == 0 {
            first_ms = ms;
        } else {
            keygen_ms.push(ms);
        }
    }

    let mut sign_ms = Vec::new();
    for _ in 0..args.signs.max(1) {
        let t0 = Instant::now();
        let (status, body) = client
            .call(
                Method::POST,
                "/v1/keys/bench-0/sign",
                Some(json!({ "digest": random_digest() })),
            )
            .await?;
        if status != 200 {
            bail!("signing failed (HTTP {status}): {body}");
        }
        sign_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let state_rows = match &args.l2_rpc {
        Some(url) => Some(state_batches(&client, url, args.state_runs.max(1)).await?),
        None => None,
    };
    drop(cluster);

    // The same signing in process: all t signers in one process over channels.
    let parties = sim::party_ids(n);
    let primes = (0..n)
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

    let (kp50, kp99, _) = summary(keygen_ms.clone());
    let (sp50, sp99, smean) = summary(sign_ms.clone());
    let (ep50, ep99, _) = summary(engine_ms.clone());
    println!();
    println!("| ({t},{n}) | runs | p50 | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| first keygen (incl. aux-info generation for the membership) | 1 | {first_ms:.0} ms | — |"
    );
    if !keygen_ms.is_empty() {
        println!(
            "| keygen through the API | {} | {kp50:.0} ms | {kp99:.0} ms |",
            keygen_ms.len()
        );
    }
    println!(
        "| full sign through the API (HTTP → manager → {n} nodes → libp2p) | {} | {sp50:.0} ms | {sp99:.0} ms |",
        sign_ms.len()
    );
    println!(
        "| full sign in process (engine, {t} signers over channels) | {} | {ep50:.0} ms | {ep99:.0} ms |",
        engine_ms.len()
    );
    println!();
    println!(
        "API sign mean {smean:.0} ms; network path overhead at p50: {:.0} ms",
        sp50 - ep50
    );
    if let Some(rows) = state_rows {
        println!();
        println!(
            "| state batch ({t},{n}) | runs | end-to-end p50 | end-to-end p99 | L2 look-up p50 (per node) |"
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

/// `POST /api/v1/sign/state` for batches of 1, 100 and 1000 real roots read from the L2 node.
async fn state_batches(
    client: &crate::client::ApiClient,
    url: &str,
    runs: usize,
) -> anyhow::Result<Vec<StateRow>> {
    let head = rpc(url, "eth_blockNumber", json!([])).await?;
    let head = u64::from_str_radix(head.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)?;
    if head < 1001 {
        rpc(url, "anvil_mine", json!([format!("0x{:x}", 1001 - head)]))
            .await
            .context("the L2 node has fewer than 1001 blocks and refused anvil_mine")?;
    }
    let l2 = cohort_rollup::L2Client::new(url, Default::default())?;
    let all = l2.state_roots(1, 1000).await?;
    let roots: Vec<String> = all
        .iter()
        .map(|r| r.map(|r| format!("0x{}", hex::encode(r))))
        .collect::<Option<_>>()
        .context("the L2 node lacks a block")?;
    let mut rows = Vec::new();
    let mut offset = 1_000_000u64;
    for size in [1usize, 100, 1000] {
        let mut e2e = Vec::new();
        let mut look = Vec::new();
        for _ in 0..runs {
            offset += 1;
            let t0 = Instant::now();
            let (status, body) = client
                .call(
                    Method::POST,
                    "/api/v1/sign/state",
                    Some(json!({
                        "start_block": 1,
                        "offset_starts_at_index": offset,
                        "state_roots": roots[..size],
                        "key_id": "bench-0",
                    })),
                )
                .await?;
            if status != 200 || body["roll_back"] != json!(false) {
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
