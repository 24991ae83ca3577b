//! A tiny JSON-RPC harness over a real anvil (from npm, `target/anvil`): deploys the committed
//! artifacts with anvil's unlocked and impersonated accounts and decodes reverts into the
//! contracts' custom errors.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U256, hex, keccak256};
use alloy_sol_types::{SolCall, SolError, SolEvent, SolValue};
use k256::ecdsa::SigningKey;
use serde_json::{Value, json};

/// An anvil process, killed on drop.
pub struct Chain {
    child: Child,
    url: String,
    http: reqwest::Client,
    /// anvil's ten unlocked default accounts; `accounts[0]` deploys and owns.
    pub accounts: Vec<Address>,
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An error answer of the node: for a revert, `data` holds the revert bytes.
#[derive(Debug)]
pub struct RpcError {
    pub message: String,
    pub data: Option<Bytes>,
}

fn anvil_bin() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = root.join("target/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    if !bin.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(root.join("target/anvil"))
            .arg("@foundry-rs/anvil@1.7.1")
            .status()
            .expect("npm");
        assert!(status.success(), "npm install anvil failed");
    }
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Chain {
    /// Starts anvil on a free port and waits until it answers.
    pub async fn start() -> Chain {
        let port = free_port();
        let child = Command::new(anvil_bin())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn anvil");
        let mut chain = Chain {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            accounts: vec![],
        };
        let t0 = Instant::now();
        loop {
            if let Ok(v) = chain.rpc("eth_accounts", json!([])).await {
                chain.accounts = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().parse().unwrap())
                    .collect();
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "anvil did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        chain
    }

    /// The JSON-RPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Mines `n` empty blocks in one call.
    pub async fn mine(&self, n: u64) {
        self.rpc("anvil_mine", json!([format!("{n:#x}")]))
            .await
            .unwrap();
    }

    /// The head block number.
    pub async fn head(&self) -> u64 {
        let v = self.rpc("eth_blockNumber", json!([])).await.unwrap();
        u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp: Value = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| RpcError {
                message: e.to_string(),
                data: None,
            })?
            .json()
            .await
            .map_err(|e| RpcError {
                message: e.to_string(),
                data: None,
            })?;
        if let Some(err) = resp.get("error") {
            let data = err
                .get("data")
                .and_then(|d| d.as_str())
                .and_then(|s| hex::decode(s).ok())
                .map(Bytes::from);
            return Err(RpcError {
                message: err["message"].to_string(),
                data,
            });
        }
        Ok(resp["result"].clone())
    }

    /// Sends a transaction and waits for its receipt; panics unless it succeeded.
    pub async fn send(&self, from: Address, to: Option<Address>, data: Vec<u8>) -> Value {
        let r = self.send_unchecked(from, to, data, None).await;
        assert_eq!(r["status"], "0x1", "transaction failed: {r}");
        r
    }

    /// Sends a transaction (with an explicit `gas`, skipping estimation, so a reverting
    /// transaction is mined) and returns its receipt whatever its status.
    pub async fn send_unchecked(
        &self,
        from: Address,
        to: Option<Address>,
        data: Vec<u8>,
        gas: Option<u64>,
    ) -> Value {
        let mut tx = json!({"from": from, "data": Bytes::from(data)});
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        if let Some(g) = gas {
            tx["gas"] = json!(format!("{g:#x}"));
        }
        let hash = match self.rpc("eth_sendTransaction", json!([tx])).await {
            Ok(h) => h,
            Err(e) => panic!("eth_sendTransaction: {e:?}"),
        };
        let t0 = Instant::now();
        loop {
            let r = self
                .rpc("eth_getTransactionReceipt", json!([hash]))
                .await
                .unwrap();
            if !r.is_null() {
                return r;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no receipt");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn deploy(&self, bytecode: &[u8], args: Vec<u8>) -> Address {
        let mut data = bytecode.to_vec();
        data.extend(args);
        let r = self.send(self.accounts[0], None, data).await;
        r["contractAddress"].as_str().unwrap().parse().unwrap()
    }

    /// `eth_call`: the return bytes, or the revert bytes.
    pub async fn call_raw(
        &self,
        from: Address,
        to: Address,
        data: Vec<u8>,
    ) -> Result<Bytes, Bytes> {
        let tx = json!({"from": from, "to": to, "data": Bytes::from(data)});
        match self.rpc("eth_call", json!([tx, "latest"])).await {
            Ok(v) => Ok(v.as_str().unwrap().parse().unwrap()),
            Err(e) => Err(e
                .data
                .unwrap_or_else(|| panic!("eth_call failed without revert data: {}", e.message))),
        }
    }

    pub async fn view<C: SolCall>(&self, to: Address, call: &C) -> C::Return {
        let out = self
            .call_raw(self.accounts[0], to, call.abi_encode())
            .await
            .unwrap_or_else(|e| panic!("{} reverted: {e}", C::SIGNATURE));
        C::abi_decode_returns(&out).unwrap()
    }

    pub async fn exec<C: SolCall>(&self, from: Address, to: Address, call: &C) -> Value {
        self.send(from, Some(to), call.abi_encode()).await
    }

    /// Asserts that `call` from `from` reverts with custom error `E` and returns it decoded.
    pub async fn reverts<E: SolError, C: SolCall>(
        &self,
        from: Address,
        to: Address,
        call: &C,
    ) -> E {
        match self.call_raw(from, to, call.abi_encode()).await {
            Ok(_) => panic!(
                "{} from {from} did not revert (want {})",
                C::SIGNATURE,
                E::SIGNATURE
            ),
            Err(data) => E::abi_decode(&data).unwrap_or_else(|_| {
                panic!(
                    "{} reverted with {data}, want {}",
                    C::SIGNATURE,
                    E::SIGNATURE
                )
            }),
        }
    }

    /// Lets the test send from `addr` (a node key made in the test) and funds it with ETH.
    pub async fn impersonate(&self, addr: Address) {
        self.rpc("anvil_impersonateAccount", json!([addr]))
            .await
            .unwrap();
        self.rpc("anvil_setBalance", json!([addr, "0x56BC75E2D63100000"]))
            .await
            .unwrap();
    }

    pub async fn increase_time(&self, secs: u64) {
        self.rpc("evm_increaseTime", json!([secs])).await.unwrap();
        self.rpc("evm_mine", json!([])).await.unwrap();
    }

    pub async fn chain_id(&self) -> u64 {
        let v = self.rpc("eth_chainId", json!([])).await.unwrap();
        u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }
}

/// The logs of `receipt` decoded as event `E` (others skipped).
pub fn events<E: SolEvent>(receipt: &Value) -> Vec<E> {
    receipt["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| {
            let topics: Vec<B256> = l["topics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().parse().unwrap())
                .collect();
            if topics.first() != Some(&E::SIGNATURE_HASH) {
                return None;
            }
            let data: Bytes = l["data"].as_str().unwrap().parse().unwrap();
            Some(E::decode_raw_log(topics, &data).unwrap())
        })
        .collect()
}

/// The topic-0 values of `receipt`'s logs, in order.
pub fn topics0(receipt: &Value) -> Vec<B256> {
    receipt["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["topics"][0].as_str().unwrap().parse().unwrap())
        .collect()
}

/// A secp256k1 key with its 64-byte `X‖Y` public key and L1 address.
pub struct NodeKey {
    pub sk: SigningKey,
    pub pub64: Bytes,
    pub addr: Address,
}

impl NodeKey {
    pub fn random() -> NodeKey {
        let sk = SigningKey::random(&mut rand::thread_rng());
        let point = sk.verifying_key().to_encoded_point(false);
        let pub64 = Bytes::copy_from_slice(&point.as_bytes()[1..]);
        let addr = Address::from_raw_public_key(&pub64);
        NodeKey { sk, pub64, addr }
    }

    /// r‖s‖v over `digest`, low s, with `v = 27 + recovery id` (Cohort's API form).
    pub fn sign(&self, digest: B256) -> [u8; 65] {
        let (sig, recid) = self.sk.sign_prehash_recoverable(digest.as_slice()).unwrap();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recid.to_byte();
        out
    }
}

/// The secp256k1 group order.
pub fn curve_n() -> U256 {
    "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"
        .parse()
        .unwrap()
}

/// The malleable twin of a low-s signature: `s' = n − s`, v flipped. ecrecover accepts it; a
/// strict verifier must not.
pub fn high_s_twin(sig: &[u8; 65]) -> [u8; 65] {
    let s = U256::from_be_slice(&sig[32..64]);
    let twin = curve_n() - s;
    let mut out = *sig;
    out[32..64].copy_from_slice(&twin.to_be_bytes::<32>());
    out[64] = if sig[64] == 27 { 28 } else { 27 };
    out
}

pub fn key_hash(b: &[u8]) -> B256 {
    keccak256(b)
}

use cohort_l1::bindings::{CohortGroupManager as G, CohortStaking as S, TestToken as T};

/// Stake every test operator deposits; `MIN_STAKE` is the contracts' minimum.
pub const STAKE: u64 = 1_000;
pub const MIN_STAKE: u64 = 100;
pub const ELECTION_TIMEOUT: u64 = 3_600;

/// One fresh deployment: token, group manager and staking, wired together.
pub struct Deployment {
    pub token: Address,
    pub gm: Address,
    pub staking: Address,
    pub owner: Address,
    pub treasury: Address,
}

impl Deployment {
    pub async fn new(chain: &Chain) -> Deployment {
        let owner = chain.accounts[0];
        let treasury = chain.accounts[9];
        let token = chain.deploy(&T::BYTECODE, vec![]).await;
        let gm = chain
            .deploy(
                &G::BYTECODE,
                (owner, U256::from(ELECTION_TIMEOUT)).abi_encode_params(),
            )
            .await;
        let staking = chain
            .deploy(
                &S::BYTECODE,
                (owner, token, gm, treasury).abi_encode_params(),
            )
            .await;
        chain
            .exec(owner, gm, &G::setStakingCall { _staking: staking })
            .await;
        chain
            .exec(
                owner,
                staking,
                &S::setMinStakeCall {
                    value: U256::from(MIN_STAKE),
                },
            )
            .await;
        Deployment {
            token,
            gm,
            staking,
            owner,
            treasury,
        }
    }

    /// Gives `who` tokens and approves staking for them.
    pub async fn fund(&self, chain: &Chain, who: Address, amount: u64) {
        chain
            .exec(
                who,
                self.token,
                &T::mintCall {
                    to: who,
                    amount: U256::from(amount),
                },
            )
            .await;
        chain
            .exec(
                who,
                self.token,
                &T::approveCall {
                    spender: self.staking,
                    amount: U256::MAX,
                },
            )
            .await;
    }

    /// A new node key, impersonated, registered as an operator and staked with `STAKE`.
    pub async fn operator(&self, chain: &Chain) -> NodeKey {
        let k = NodeKey::random();
        chain.impersonate(k.addr).await;
        self.fund(chain, k.addr, STAKE).await;
        chain
            .exec(
                k.addr,
                self.staking,
                &S::registerAsOperatorCall {
                    pubKey: k.pub64.clone(),
                },
            )
            .await;
        chain
            .exec(
                k.addr,
                self.staking,
                &S::depositCall {
                    amount: U256::from(STAKE),
                },
            )
            .await;
        k
    }

    /// Elects `members` at tss-lib threshold `t` and has each submit `group`'s key: round active.
    pub async fn elect(
        &self,
        chain: &Chain,
        t: u64,
        members: &[&NodeKey],
        group: &NodeKey,
    ) -> Value {
        let keys: Vec<Bytes> = members.iter().map(|m| m.pub64.clone()).collect();
        chain
            .exec(
                self.owner,
                self.gm,
                &G::setTssGroupMemberCall {
                    _threshold: U256::from(t),
                    _pubkeys: keys,
                },
            )
            .await;
        let mut last = Value::Null;
        for m in members {
            last = chain
                .exec(
                    m.addr,
                    self.gm,
                    &G::setGroupPublicKeyCall {
                        _publicKey: m.pub64.clone(),
                        _groupPublicKey: group.pub64.clone(),
                    },
                )
                .await;
        }
        last
    }
}
