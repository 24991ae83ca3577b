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
    let mut cluster = Cluster::prepare(&dir, n, &args.api, 0, &[])?;
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
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
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
