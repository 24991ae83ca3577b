//! Client subcommands: one per HTTP API call, printing the manager's JSON answer.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Where the manager is and how to authenticate.
#[derive(Args, Clone)]
pub struct Api {
    /// Manager API base URL.
    #[arg(
        long,
        env = "COHORT_API",
        default_value = "http://127.0.0.1:7100",
        global = true
    )]
    pub api: String,
    /// File holding the API bearer token, if the manager requires one.
    #[arg(long, env = "COHORT_API_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// File holding a Mantle-style JWT secret (32 bytes hex): a fresh HS256 JWT is sent
    /// with every request, for a manager with `jwt_secret_file`.
    #[arg(long, env = "COHORT_JWT_SECRET_FILE", global = true)]
    pub jwt_secret_file: Option<PathBuf>,
    /// Request timeout in seconds.
    #[arg(long, default_value_t = 300, global = true)]
    pub timeout_secs: u64,
}

/// Client commands.
#[derive(Subcommand)]
pub enum ClientCommand {
    /// Keys: create (keygen), list, get, delete.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        api: Api,
    },
    /// Sign a 32-byte digest with a key.
    Sign {
        /// Key id.
        key_id: String,
        /// 0x-hex 32-byte digest.
        #[arg(long)]
        digest: String,
        #[command(flatten)]
        api: Api,
    },
    /// Every member: connected or not, peer id, aux-info state.
    Nodes {
        #[command(flatten)]
        api: Api,
    },
    /// The record of one operation (who was ready, who signed, who was absent, the outcome).
    Operation {
        /// 0x-hex session id.
        session_id: String,
        #[command(flatten)]
        api: Api,
    },
}

/// Key subcommands.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a key (returns the existing one if the id is already READY).
    Create {
        /// Key id.
        key_id: String,
        /// Signers needed (t).
        #[arg(long)]
        threshold: u16,
        /// Holders (0x addresses, comma-separated); default every connected member.
        #[arg(long, value_delimiter = ',')]
        parties: Vec<String>,
    },
    /// List keys.
    List,
    /// Show one key.
    Get {
        /// Key id.
        key_id: String,
    },
    /// Delete a key on every holder.
    Delete {
        /// Key id.
        key_id: String,
    },
}

/// A small HTTP client for the manager's API.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<zeroize::Zeroizing<String>>,
    jwt_secret: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl ApiClient {
    /// Builds a client; reads the token file if given.
    pub fn new(api: &Api) -> anyhow::Result<Self> {
        let token = match &api.token_file {
            Some(p) => {
                let text = zeroize::Zeroizing::new(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read {}", p.display()))?,
                );
                Some(zeroize::Zeroizing::new(text.trim().to_string()))
            }
            None => None,
        };
        let jwt_secret = match &api.jwt_secret_file {
            Some(p) => Some(cohort_manager::auth::read_jwt_secret(p)?),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(api.timeout_secs.max(1)))
            .build()?;
        Ok(ApiClient {
            http,
            base: api.api.trim_end_matches('/').to_string(),
            token,
            jwt_secret,
        })
    }

    /// Sends one request; returns (status, JSON body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.as_str());
        } else if let Some(secret) = &self.jwt_secret {
            let now = cohort_manager::auth::unix_now();
            req = req.bearer_auth(cohort_manager::auth::mint_jwt(secret, now));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }
}

/// Runs one client command and prints the answer; a non-2xx answer is an error exit.
pub async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    let (api, method, path, body) = match cmd {
        ClientCommand::Keys { command, api } => match command {
            KeysCommand::Create {
                key_id,
                threshold,
                parties,
            } => {
                let mut b = json!({ "key_id": key_id, "threshold": threshold });
                if !parties.is_empty() {
                    b["parties"] = json!(parties);
                }
                (api, Method::POST, "/v1/keys".to_string(), Some(b))
            }
            KeysCommand::List => (api, Method::GET, "/v1/keys".to_string(), None),
            KeysCommand::Get { key_id } => (api, Method::GET, format!("/v1/keys/{key_id}"), None),
            KeysCommand::Delete { key_id } => {
                (api, Method::DELETE, format!("/v1/keys/{key_id}"), None)
            }
        },
        ClientCommand::Sign {
            key_id,
            digest,
            api,
        } => (
            api,
            Method::POST,
            format!("/v1/keys/{key_id}/sign"),
            Some(json!({ "digest": digest })),
        ),
        ClientCommand::Nodes { api } => (api, Method::GET, "/v1/nodes".to_string(), None),
        ClientCommand::Operation { session_id, api } => (
            api,
            Method::GET,
            format!("/v1/operations/{session_id}"),
            None,
        ),
    };
    let client = ApiClient::new(&api)?;
    let (status, value) = client.call(method, &path, body).await?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    if !(200..300).contains(&status) {
        bail!("manager answered HTTP {status}");
    }
    Ok(())
}
