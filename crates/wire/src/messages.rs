//! Manager ↔ node messages: authentication, then the prepare → ready → start → finish handshake
//! of every operation (Metis's flow), driven by the manager.

use serde::{Deserialize, Serialize};

use crate::ack::ReshareAck;
use crate::election::{ElectionRef, NodeL1Status, PeerInfo};
use crate::hex_types::{Address, Bytes32, HexBytes};
use crate::key_id::KeyId;

/// Machine-readable error codes, shared by nodes, the manager and its HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or impossible.
    BadRequest,
    /// Authentication failed or the node is not a member.
    Unauthorized,
    /// No such key (or it was deleted).
    KeyNotFound,
    /// A keygen for this key id is already running.
    KeyPending,
    /// A key with this id already exists with another committee or threshold.
    KeyExists,
    /// The key exists but cannot be used (ERROR status).
    KeyNotReady,
    /// The node is not a party of this key or operation.
    NotAParty,
    /// The node lacks Paillier aux info for this membership.
    AuxMissing,
    /// The protocol failed; culprits name who is to blame where known.
    ProtocolFailed,
    /// Not enough parties answered in time.
    Timeout,
    /// Too few willing parties.
    NotEnoughParties,
    /// The node's signing journal holds a different digest for this slot.
    JournalConflict,
    /// The node's own view of the data disagrees.
    ContentRejected,
    /// The node could not reach its L2 full node to check the data.
    L2Unavailable,
    /// The session id was already used.
    Replayed,
    /// A presignature was asked for a digest this node did not compute itself (cggmp21
    /// advisory RUSTSEC-2025-0127): it signs such a digest only with the full protocol.
    PresignatureRefused,
    /// The key was deleted on this node (its share is tombstoned until erased).
    KeyDeleted,
    /// The node's own view of L1 does not allow this (not elected, another committee or
    /// threshold, a banned party, a key L1 has not retired, a rollback without L1 evidence); the
    /// message says what L1 says.
    L1Refused,
    /// The node cannot read L1 (or has not scanned far enough) to check this.
    L1Unavailable,
    /// Anything else (a bug or a local failure).
    Internal,
}

/// An error with its code and, where the protocol can tell, who is to blame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What kind of failure.
    pub code: ErrorCode,
    /// Human-readable detail (never a secret).
    pub message: String,
    /// Parties to blame, if known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub culprits: Vec<Address>,
}

impl ErrorBody {
    /// An error without culprits.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            culprits: Vec::new(),
        }
    }
}

/// Public facts about a key, as a node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Caller-chosen key id.
    pub key_id: KeyId,
    /// Session that created the current sharing.
    pub key_session_id: Bytes32,
    /// Signers needed.
    pub threshold: u16,
    /// Holders in share order.
    pub parties: Vec<Address>,
    /// Uncompressed SEC1 public key (65 bytes).
    pub public_key: HexBytes,
}

/// What a signature is for, so that every node checks it against its own view and its
/// signing journal before it agrees.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignContext {
    /// A bare digest from an operator (no content check, no journal slot).
    #[default]
    Digest,
    /// A batch of L2 state roots (Mantle): the digest is
    /// `keccak256(abi.encode(bytes32[] state_roots, uint256 offset_starts_at_index))` and the
    /// journal slot is `offset_starts_at_index`.
    StateBatch {
        /// L2 block of the first root.
        start_block: u64,
        /// Index of the first root in the state-commitment chain.
        offset_starts_at_index: u64,
        /// One root per block.
        state_roots: Vec<Bytes32>,
    },
    /// The rollback of L2 from `start_block`: the digest is `keccak256(abi.encode(uint256
    /// start_block))`, signed only by nodes that disagreed with the batch in this session.
    Rollback {
        /// First block to roll back.
        start_block: u64,
    },
    /// Mantle's `type: 1` rollback after a won challenge (l1-spec §3.5.7): the digest is
    /// `keccak256(abi.encode(uint256 start_block))`; nodes approve only when the Challenge
    /// contract says the challenger won, the rollback is not done and `start_block` matches.
    ChallengeRollback {
        /// First block to roll back.
        start_block: u64,
        /// Index of the first state-chain element of the challenged batch.
        offset_starts_at_index: u64,
        /// The Challenge contract.
        challenge: Address,
    },
}

/// A resharing (or refresh) of one key, as every participant must see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReshareSpec {
    /// Key id.
    pub key_id: KeyId,
    /// Session of the current sharing (old holders check theirs matches).
    pub key_session_id: Bytes32,
    /// Current holders, in share order.
    pub old_parties: Vec<Address>,
    /// Current threshold.
    pub old_threshold: u16,
    /// New committee, in new share order.
    pub new_parties: Vec<Address>,
    /// New threshold.
    pub new_threshold: u16,
    /// The key's public key (65-byte uncompressed), which must not change.
    pub public_key: HexBytes,
    /// Old holders that deal; empty in prepare, exactly chosen in start.
    #[serde(default)]
    pub dealers: Vec<Address>,
    /// The L1 election this resharing carries out (a re-election that keeps the group key);
    /// `None` for keys that are not L1-bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election: Option<ElectionRef>,
}

/// Messages from the manager to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ManagerMsg {
    /// First frame: the manager's claimed identity and a fresh nonce. The node compares the
    /// identity with the address it pinned for this URL before it signs anything.
    Challenge {
        /// The manager's address (of its identity key); the node refuses one it did not pin.
        manager: Address,
        /// Fresh random nonce for this connection.
        nonce: Bytes32,
    },
    /// Authentication succeeded; the manager proves its identity in turn.
    Welcome {
        /// Current cohort membership.
        members: Vec<Address>,
        /// How to reach the members over libp2p (from their `Hello`); not covered by the
        /// signature — the peer ids are self-certifying and nodes check them against L1.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        peers: Vec<PeerInfo>,
        /// 65-byte r‖s‖v signature by the manager's key over
        /// [`manager_auth_digest`](crate::manager_auth_digest): the node obeys no frame of a
        /// link whose welcome does not verify against its pin.
        signature: HexBytes,
    },
    /// Authentication failed; the connection closes.
    Rejected {
        /// Why.
        error: ErrorBody,
    },
    /// Phase 1 of aux-info generation for the whole membership.
    AuxInfoPrepare {
        /// Operation session.
        session_id: Bytes32,
        /// Members, in the order the aux info is generated for.
        members: Vec<Address>,
    },
    /// Phase 2 of aux-info generation.
    AuxInfoStart {
        /// Operation session.
        session_id: Bytes32,
        /// Members, in order.
        members: Vec<Address>,
    },
    /// Phase 1 of keygen: check the store and rules, answer ready or refuse.
    KeyGenPrepare {
        /// Operation session.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// Threshold t.
        threshold: u16,
        /// All n parties, in share order.
        parties: Vec<Address>,
        /// The L1 election this keygen carries out; `None` for keys that are not L1-bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        election: Option<ElectionRef>,
    },
    /// Phase 2 of keygen: run the protocol with exactly these parties.
    KeyGenStart {
        /// Operation session.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// Threshold t.
        threshold: u16,
        /// All n parties, in share order.
        parties: Vec<Address>,
    },
    /// Phase 1 of signing: is the node willing to sign this digest with this key?
    KeySignPrepare {
        /// Operation session.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// The 32-byte digest to sign.
        digest: Bytes32,
        /// What the digest is of; nodes check it.
        #[serde(default)]
        context: SignContext,
        /// The sharing the manager expects; a node holding another (stale) one refuses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_session_id: Option<Bytes32>,
    },
    /// Phase 2 of signing: run the protocol with exactly these t signers.
    KeySignStart {
        /// Operation session.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// The digest (must equal the prepared one, or be the rollback of the prepared batch).
        digest: Bytes32,
        /// What the digest is of (`Rollback` only for nodes that disagreed with the batch).
        #[serde(default)]
        context: SignContext,
        /// Exactly t signers, in protocol order.
        signers: Vec<Address>,
        /// Sign in one round with this stored presignature (its id) instead of running the
        /// full protocol; the node consumes it before its partial signature leaves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        presignature: Option<Bytes32>,
    },
    /// Phase 1 of presignature generation (background, for the key's preferred signer set).
    PresignPrepare {
        /// Operation session; also the presignature's id in the pool.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// The sharing the presignature is for.
        key_session_id: Bytes32,
        /// Exactly t signers, in protocol order.
        signers: Vec<Address>,
    },
    /// Phase 2 of presignature generation: run it and store the piece, encrypted.
    PresignStart {
        /// Operation session (the presignature id).
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// The sharing the presignature is for.
        key_session_id: Bytes32,
        /// Exactly t signers, in protocol order.
        signers: Vec<Address>,
    },
    /// A prepared session will not start for this node (extra ready party, or abandoned).
    KeySignCancel {
        /// Operation session.
        session_id: Bytes32,
    },
    /// Phase 1 of resharing/refresh: old holders check they hold this sharing; new parties
    /// check they can receive.
    KeyResharePrepare {
        /// Operation session (becomes the new `key_session_id`).
        session_id: Bytes32,
        /// What is reshared.
        spec: ReshareSpec,
    },
    /// Phase 2: run the resharing with exactly `spec.dealers` dealing. New shares are staged,
    /// not used, until [`ManagerMsg::KeyReshareCommit`].
    KeyReshareStart {
        /// Operation session.
        session_id: Bytes32,
        /// What is reshared, with the dealers.
        spec: ReshareSpec,
    },
    /// Every new party succeeded: new parties switch to their staged share, old holders that
    /// are not in the new committee delete theirs. Idempotent; resent to nodes that missed it.
    KeyReshareCommit {
        /// Session of the resharing that is committed.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// The new committee.
        new_parties: Vec<Address>,
        /// Every new party's signed acknowledgement of the new sharing; an old holder that
        /// leaves deletes only once all of them verify.
        #[serde(default)]
        acks: Vec<ReshareAck>,
    },
    /// The resharing failed: staged shares are discarded, the old sharing stays.
    KeyReshareAbort {
        /// Session of the failed resharing.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
    },
    /// Delete a key: the node tombstones its share (kept sealed for its retention period,
    /// refused for every use, then erased). Bound to one sharing: a node whose current share
    /// belongs to another sharing refuses.
    KeyDelete {
        /// Operation session.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// The sharing (key session id) the delete targets, from the manager's registry.
        key_session_id: Bytes32,
    },
    /// Liveness probe.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
}

/// Messages from a node to the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum NodeMsg {
    /// Answer to the challenge.
    Hello {
        /// The node's address (must match the signature).
        address: Address,
        /// The node's libp2p peer id.
        peer_id: String,
        /// The node's fresh nonce, which the manager's welcome signature must cover.
        nonce: Bytes32,
        /// 65-byte r‖s‖v signature over [`node_auth_digest`](crate::node_auth_digest).
        signature: HexBytes,
        /// Node software version.
        version: String,
        /// libp2p multiaddrs the node listens on, handed to the other members in `Welcome`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listen_addrs: Vec<String>,
    },
    /// The node's state, sent after welcome and whenever it changes.
    Status {
        /// Members for which the node holds aux info.
        aux_members: Vec<Address>,
        /// Number of READY keys.
        keys: u64,
        /// Safe-prime pairs the node has ready for its next aux-info generation (its background
        /// search's progress).
        #[serde(default)]
        primes_ready: u64,
        /// Keys deleted on this node whose shares are tombstoned (kept sealed, refused for
        /// every use) until their retention ends and they are erased.
        #[serde(default)]
        tombstoned: Vec<KeyId>,
        /// The node's L1 view, in L1 mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        l1: Option<NodeL1Status>,
    },
    /// Ready for aux-info generation.
    AuxInfoReady {
        /// Operation session.
        session_id: Bytes32,
        /// Whether this node takes its primes from the public INSECURE test fixture (devnet
        /// and tests). Nodes without it refuse aux info that has a member's modulus made of
        /// them; the manager runs no generation that mixes the two. Absent means false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        test_primes: bool,
    },
    /// Ready for keygen; `existing` is set when the key is already READY (no new keygen).
    KeyGenReady {
        /// Operation session.
        session_id: Bytes32,
        /// The stored key, if it already exists.
        existing: Option<KeyInfo>,
    },
    /// Willing to sign.
    KeySignReady {
        /// Operation session.
        session_id: Bytes32,
        /// How long the node's L2 look-up of a state batch took, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        l2_ms: Option<u64>,
    },
    /// Refuses to take part (phase 1) — with a reason.
    Refused {
        /// Operation session.
        session_id: Bytes32,
        /// Why.
        error: ErrorBody,
    },
    /// Aux-info generation ended.
    AuxInfoFinish {
        /// Operation session.
        session_id: Bytes32,
        /// Outcome.
        result: Result<(), ErrorBody>,
    },
    /// Keygen ended.
    KeyGenFinish {
        /// Operation session.
        session_id: Bytes32,
        /// The key, or why it failed.
        result: Result<KeyInfo, ErrorBody>,
    },
    /// Signing ended.
    KeySignFinish {
        /// Operation session.
        session_id: Bytes32,
        /// 65-byte r‖s‖v signature, or why it failed.
        result: Result<HexBytes, ErrorBody>,
    },
    /// Ready to generate a presignature.
    PresignReady {
        /// Operation session.
        session_id: Bytes32,
    },
    /// Presignature generation ended (the piece is stored on success).
    PresignFinish {
        /// Operation session.
        session_id: Bytes32,
        /// Outcome.
        result: Result<(), ErrorBody>,
    },
    /// One signer's partial signature from a presignature (JSON of the engine's
    /// `PartialSignature`); the manager combines t of them.
    KeySignPartial {
        /// Operation session.
        session_id: Bytes32,
        /// The partial signature.
        partial: HexBytes,
    },
    /// Ready to reshare.
    KeyReshareReady {
        /// Operation session.
        session_id: Bytes32,
    },
    /// The resharing protocol ended: `Some(key)` for a new party (share staged), `None` for a
    /// dealer that leaves.
    KeyReshareFinish {
        /// Operation session.
        session_id: Bytes32,
        /// Outcome.
        result: Result<Option<KeyInfo>, ErrorBody>,
        /// A new party's signed acknowledgement of its staged share (for the leavers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<ReshareAck>,
    },
    /// A commit or abort was applied.
    KeyReshareDone {
        /// Operation session.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// Outcome.
        result: Result<(), ErrorBody>,
    },
    /// Deletion done.
    KeyDeleted {
        /// Operation session.
        session_id: Bytes32,
        /// Key id.
        key_id: KeyId,
        /// Whether the node held the key.
        existed: bool,
    },
    /// Answer to a frame the node could not use (malformed, unknown session…).
    Error {
        /// Why.
        error: ErrorBody,
    },
    /// Liveness answer.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
}

/// How a node's answer stands in the handshake, so that the manager collects answers of every
/// operation with one loop instead of matching each operation's message names again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// Phase 1: willing to take part (`*Ready`).
    Ready,
    /// Phase 1: refuses, with a reason ([`NodeMsg::Refused`]).
    Refused,
    /// Phase 2 or later: the node's result for its part (`*Finish`, `KeySignPartial`,
    /// `KeyReshareDone`, `KeyDeleted`).
    Finished,
    /// Not an answer to an operation (hello, status, error, pong).
    Other,
}

impl NodeMsg {
    /// The operation session this frame answers, if any: what the manager routes by.
    pub fn session_id(&self) -> Option<Bytes32> {
        match self {
            NodeMsg::AuxInfoReady { session_id, .. }
            | NodeMsg::KeyGenReady { session_id, .. }
            | NodeMsg::KeySignReady { session_id, .. }
            | NodeMsg::Refused { session_id, .. }
            | NodeMsg::AuxInfoFinish { session_id, .. }
            | NodeMsg::KeyGenFinish { session_id, .. }
            | NodeMsg::KeySignFinish { session_id, .. }
            | NodeMsg::KeyDeleted { session_id, .. }
            | NodeMsg::KeyReshareReady { session_id }
            | NodeMsg::PresignReady { session_id }
            | NodeMsg::PresignFinish { session_id, .. }
            | NodeMsg::KeySignPartial { session_id, .. }
            | NodeMsg::KeyReshareFinish { session_id, .. }
            | NodeMsg::KeyReshareDone { session_id, .. } => Some(*session_id),
            NodeMsg::Hello { .. }
            | NodeMsg::Status { .. }
            | NodeMsg::Error { .. }
            | NodeMsg::Pong { .. } => None,
        }
    }

    /// Where this frame stands in the handshake (exhaustive on purpose: a new message must be
    /// placed here explicitly).
    pub fn answer_kind(&self) -> AnswerKind {
        match self {
            NodeMsg::AuxInfoReady { .. }
            | NodeMsg::KeyGenReady { .. }
            | NodeMsg::KeySignReady { .. }
            | NodeMsg::KeyReshareReady { .. }
            | NodeMsg::PresignReady { .. } => AnswerKind::Ready,
            NodeMsg::Refused { .. } => AnswerKind::Refused,
            NodeMsg::AuxInfoFinish { .. }
            | NodeMsg::KeyGenFinish { .. }
            | NodeMsg::KeySignFinish { .. }
            | NodeMsg::PresignFinish { .. }
            | NodeMsg::KeySignPartial { .. }
            | NodeMsg::KeyReshareFinish { .. }
            | NodeMsg::KeyReshareDone { .. }
            | NodeMsg::KeyDeleted { .. } => AnswerKind::Finished,
            NodeMsg::Hello { .. }
            | NodeMsg::Status { .. }
            | NodeMsg::Error { .. }
            | NodeMsg::Pong { .. } => AnswerKind::Other,
        }
    }
}
