//! `cohort`: one binary for every Cohort process and for talking to a manager.

// One audited exception: removing the passphrase variable from the environment
// (`take_passphrase_env`), which edition 2024 marks unsafe.
#![deny(unsafe_code)]

mod bench;
mod client;
mod devnet;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Cohort: a threshold-signature (MPC) network for rollups.
#[derive(Parser)]
#[command(name = "cohort", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an MPC node (its store passphrase comes from `passphrase_file` or COHORT_PASSPHRASE).
    Node {
        /// Node configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Create the store and node key if needed, print the node's address and peer id as
        /// JSON, and exit.
        #[arg(long)]
        init: bool,
    },
    /// Run a manager: the HTTP API and the nodes' WebSocket endpoint.
    Manager {
        /// Manager configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Create the manager's identity key if needed, print its address (the manager id
        /// nodes pin) as JSON, and exit.
        #[arg(long)]
        init: bool,
    },
    /// Run a whole cohort on loopback (one manager, n node processes) with embedded defaults.
    Devnet(devnet::DevnetArgs),
    /// Measure keygen and signing through the HTTP API of a fresh devnet, beside the engine's
    /// in-process time for the same signing.
    Bench(bench::BenchArgs),
    /// Client commands against a manager's HTTP API.
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn read_config(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Takes the store passphrase out of the environment before anything else runs, then starts
/// the runtime: the variable must not outlive its one read (children, dumps, `/proc` readers
/// of a later `environ`).
fn main() -> anyhow::Result<()> {
    take_passphrase_env();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run())
}

/// Reads `COHORT_PASSPHRASE` into zeroized memory, hands it to the node, and removes it from
/// the process environment.
#[allow(unsafe_code)]
fn take_passphrase_env() {
    let name = cohort_node::config::PASSPHRASE_ENV;
    if let Some(value) = std::env::var_os(name) {
        // SAFETY: called first thing in `main`, before the tokio runtime or any other thread
        // exists, so no other thread can read or write the environment concurrently (the
        // precondition of `remove_var` in edition 2024).
        unsafe { std::env::remove_var(name) };
        cohort_node::config::set_env_passphrase(zeroize::Zeroizing::new(
            value.into_encoded_bytes(),
        ));
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Node { config, init } => {
            init_tracing();
            let cfg = cohort_node::NodeConfig::from_toml(&read_config(&config)?)
                .with_context(|| format!("in {}", config.display()))?;
            if init {
                let (address, peer_id) = cohort_node::init(&cfg)?;
                println!(
                    "{}",
                    serde_json::json!({ "address": address, "peer_id": peer_id })
                );
                return Ok(());
            }
            let node = cohort_node::Node::start(cfg).await?;
            node.serve().await;
            Ok(())
        }
        Command::Manager { config, init } => {
            init_tracing();
            let cfg = cohort_manager::ManagerConfig::from_toml(&read_config(&config)?)
                .with_context(|| format!("in {}", config.display()))?;
            if init {
                let id = cohort_manager::identity::ManagerIdentity::load_or_create(&cfg.data_dir)?;
                println!("{}", serde_json::json!({ "manager_address": id.address() }));
                return Ok(());
            }
            let manager = cohort_manager::Manager::bind(cfg).await?;
            tracing::info!(
                listen = %manager.local_addr()?,
                ws_listen = ?manager.ws_local_addr(),
                manager_address = %manager.manager_address(),
                "manager listening (nodes pin manager_address)"
            );
            manager
                .serve(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(())
        }
        Command::Devnet(args) => {
            init_tracing();
            devnet::run(args).await
        }
        Command::Bench(args) => {
            init_tracing();
            bench::run(args).await
        }
        Command::Client(c) => client::run(c).await,
    }
}
