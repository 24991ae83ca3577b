//! In-process simulation: all parties of a run in one process, connected by channels, speaking
//! the very same byte-level delivery the node uses. Used by the engine's tests and benchmarks and
//! exposed for other crates' tests.
//!
//! The channels are unbounded on purpose: a run sends at most a few messages per party per round,
//! so memory is bounded by the protocol itself, and the sim never deadlocks on a full queue.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Sink;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use rand::RngCore;
use round_based::{Incoming, MessageDestination, MessageType};

use crate::error::EngineError;
use crate::eth::EthSignature;
use crate::primes::SafePrimes;
use crate::reshare::ResharePlan;
use crate::session::{Operation, PartyId, SessionBinding};
use crate::share::{AuxInfo, CoreShare, KeyShare};
use crate::sign::Presignature;
use crate::transport::{RawIncoming, RawOutgoing};

/// A hook that sees (and may alter or drop) every message: `(from, to, bytes) -> keep?`.
pub type Tap = Arc<dyn Fn(u16, u16, &mut Vec<u8>) -> bool + Send + Sync>;

/// Bytes and messages each party sent in a run.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    bytes: Arc<Vec<AtomicU64>>,
    messages: Arc<Vec<AtomicU64>>,
}

impl Traffic {
    fn new(n: usize) -> Self {
        Traffic {
            bytes: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
            messages: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
        }
    }

    /// Bytes sent by each party (a broadcast counts once per recipient).
    pub fn bytes_sent(&self) -> Vec<u64> {
        self.bytes
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// Messages sent by each party (a broadcast counts once per recipient).
    pub fn messages_sent(&self) -> Vec<u64> {
        self.messages
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

/// One party's end of the simulated network.
pub struct Endpoint {
    /// What the party receives.
    pub incoming: UnboundedReceiver<Result<RawIncoming, Infallible>>,
    /// Where the party sends.
    pub outgoing: SimSink,
}

/// Sink that routes a party's messages to the others.
pub struct SimSink {
    me: u16,
    peers: Vec<UnboundedSender<Result<RawIncoming, Infallible>>>,
    next_id: Arc<AtomicU64>,
    traffic: Traffic,
    tap: Option<Tap>,
}

/// Error of the simulated sink: a recipient has gone.
#[derive(Debug, thiserror::Error)]
#[error("simulated recipient {0} is gone")]
pub struct SimSendError(u16);

impl Sink<RawOutgoing> for SimSink {
    type Error = SimSendError;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: RawOutgoing) -> Result<(), Self::Error> {
        let this = self.get_mut();
        let (targets, msg_type): (Vec<u16>, _) = match item.recipient {
            MessageDestination::AllParties => (
                (0..this.peers.len() as u16)
                    .filter(|j| *j != this.me)
                    .collect(),
                MessageType::Broadcast,
            ),
            MessageDestination::OneParty(j) => (vec![j], MessageType::P2P),
        };
        for to in targets {
            let mut bytes = item.msg.clone();
            if let Some(tap) = &this.tap
                && !tap(this.me, to, &mut bytes)
            {
                continue;
            }
            let me = usize::from(this.me);
            this.traffic.bytes[me].fetch_add(bytes.len() as u64, Ordering::Relaxed);
            this.traffic.messages[me].fetch_add(1, Ordering::Relaxed);
            let peer = this.peers.get(usize::from(to)).ok_or(SimSendError(to))?;
            // A finished party drops its receiver; later messages to it are simply lost, as on
            // a real network.
            let _ = peer.unbounded_send(Ok(Incoming {
                id: this.next_id.fetch_add(1, Ordering::Relaxed),
                sender: this.me,
                msg_type,
                msg: bytes,
            }));
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// A network of `n` endpoints, with an optional tap, and its traffic counters.
pub fn network(n: u16, tap: Option<Tap>) -> (Vec<Endpoint>, Traffic) {
    let traffic = Traffic::new(usize::from(n));
    let next_id = Arc::new(AtomicU64::new(0));
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| unbounded()).unzip();
    let endpoints = receivers
        .into_iter()
        .enumerate()
        .map(|(me, incoming)| Endpoint {
            incoming,
            outgoing: SimSink {
                me: me as u16,
                peers: senders.clone(),
                next_id: next_id.clone(),
                traffic: traffic.clone(),
                tap: tap.clone(),
            },
        })
        .collect();
    (endpoints, traffic)
}

/// A fresh random session id.
pub fn session_id() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut s);
    s
}

/// `n` distinct made-up party ids (for tests and benchmarks).
pub fn party_ids(n: usize) -> Vec<PartyId> {
    (0..n)
        .map(|i| {
            let mut a = [0u8; 20];
            a[0] = 0xc0;
            a[18..].copy_from_slice(&(i as u16 + 1).to_be_bytes());
            PartyId(a)
        })
        .collect()
}

/// How long a simulated run may take before it is declared stuck.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs every party on the tokio runtime and collects their outputs in order. On the first
/// failure the others are aborted (a party whose peer died would wait for messages that never
/// come), and a run that outlives [`RUN_TIMEOUT`] fails.
pub async fn join<T, F>(parties: Vec<F>) -> Result<Vec<T>, EngineError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, EngineError>> + Send + 'static,
{
    let n = parties.len();
    let mut set = tokio::task::JoinSet::new();
    for (k, f) in parties.into_iter().enumerate() {
        set.spawn(async move { (k, f.await) });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let collect = async {
        while let Some(joined) = set.join_next().await {
            let (k, res) = joined.map_err(|e| EngineError::Internal {
                operation: Operation::Keygen,
                reason: format!("simulated party panicked: {e}"),
            })?;
            out[k] = Some(res?);
        }
        Ok::<_, EngineError>(())
    };
    tokio::time::timeout(RUN_TIMEOUT, collect)
        .await
        .map_err(|_| EngineError::Transport {
            operation: Operation::Keygen,
            reason: "simulated run timed out".into(),
        })??;
    // Dropping the set aborts whatever is still running.
    Ok(out.into_iter().flatten().collect())
}

/// One party's part of a simulated run.
pub type PartyRun<T> = Pin<Box<dyn Future<Output = Result<T, EngineError>> + Send + 'static>>;

/// Every party of one run, ready to be driven — by [`Run::join`] on the tokio runtime, or by a
/// benchmark on threads of its own.
pub struct Run<T> {
    /// Party futures in binding order.
    pub parties: Vec<PartyRun<T>>,
    /// Traffic counters of the run's network.
    pub traffic: Traffic,
}

impl<T: Send + 'static> Run<T> {
    /// Drives every party on the current tokio runtime (see [`join`]).
    pub async fn join(self) -> Result<(Vec<T>, Traffic), EngineError> {
        Ok((join(self.parties).await?, self.traffic))
    }
}

/// Keygen among `parties` with threshold `t`.
pub fn keygen_run(
    key_id: &str,
    parties: &[PartyId],
    t: u16,
) -> Result<Run<CoreShare>, EngineError> {
    let binding = SessionBinding::new(
        session_id(),
        Operation::Keygen,
        key_id,
        parties.to_vec(),
        &crate::keygen::params(t),
    )?;
    let (eps, traffic) = network(binding.n(), None);
    let parties = eps
        .into_iter()
        .zip(parties.iter().copied())
        .map(|(ep, me)| {
            let b = binding.clone();
            Box::pin(
                async move { crate::keygen::keygen(&b, &me, t, ep.incoming, ep.outgoing).await },
            ) as PartyRun<CoreShare>
        })
        .collect();
    Ok(Run { parties, traffic })
}

/// Runs keygen among `parties` with threshold `t`; returns every party's share.
pub async fn keygen(
    key_id: &str,
    parties: &[PartyId],
    t: u16,
) -> Result<Vec<CoreShare>, EngineError> {
    Ok(keygen_run(key_id, parties, t)?.join().await?.0)
}

/// The real aux-info protocol among `members`, party k using `primes[k]`.
pub fn aux_info_run(
    members: &[PartyId],
    primes: Vec<SafePrimes>,
) -> Result<Run<AuxInfo>, EngineError> {
    let binding = SessionBinding::new(session_id(), Operation::AuxInfo, "", members.to_vec(), b"")?;
    let (eps, traffic) = network(binding.n(), None);
    let parties = eps
        .into_iter()
        .zip(members.iter().copied())
        .zip(primes)
        .map(|((ep, me), primes)| {
            let b = binding.clone();
            Box::pin(async move {
                crate::aux::aux_info_gen(&b, &me, primes, ep.incoming, ep.outgoing).await
            }) as PartyRun<AuxInfo>
        })
        .collect();
    Ok(Run { parties, traffic })
}

/// Runs the real aux-info protocol among `members`, party k using `primes[k]`.
pub async fn aux_info(
    members: &[PartyId],
    primes: Vec<SafePrimes>,
) -> Result<(Vec<AuxInfo>, Traffic), EngineError> {
    aux_info_run(members, primes)?.join().await
}

/// Full signing of `digest` by exactly the given holders (their order is the run's order).
pub fn sign_run(
    key_id: &str,
    signers: &[KeyShare],
    digest: [u8; 32],
) -> Result<Run<EthSignature>, EngineError> {
    let parties: Vec<PartyId> = signers.iter().map(KeyShare::holder).collect();
    let binding = SessionBinding::new(
        session_id(),
        Operation::Sign,
        key_id,
        parties,
        &crate::sign::sign_params(&digest),
    )?;
    let (eps, traffic) = network(binding.n(), None);
    let parties = eps
        .into_iter()
        .zip(signers.iter().cloned())
        .map(|(ep, share)| {
            let b = binding.clone();
            Box::pin(async move {
                crate::sign::sign(&b, &share, &digest, ep.incoming, ep.outgoing).await
            }) as PartyRun<EthSignature>
        })
        .collect();
    Ok(Run { parties, traffic })
}

/// Full signing by exactly the given holders; every signer must produce the same signature,
/// which is returned with the traffic.
pub async fn sign(
    key_id: &str,
    signers: &[KeyShare],
    digest: [u8; 32],
) -> Result<(EthSignature, Traffic), EngineError> {
    let (sigs, traffic) = sign_run(key_id, signers, digest)?.join().await?;
    let first = *sigs.first().ok_or(EngineError::InvalidSignature)?;
    if sigs.iter().any(|s| *s != first) {
        return Err(EngineError::InvalidSignature);
    }
    Ok((first, traffic))
}

/// Presignature generation by exactly the given holders.
pub fn presign_run(key_id: &str, signers: &[KeyShare]) -> Result<Run<Presignature>, EngineError> {
    let parties: Vec<PartyId> = signers.iter().map(KeyShare::holder).collect();
    let binding = SessionBinding::new(session_id(), Operation::Presign, key_id, parties, b"")?;
    let (eps, traffic) = network(binding.n(), None);
    let parties = eps
        .into_iter()
        .zip(signers.iter().cloned())
        .map(|(ep, share)| {
            let b = binding.clone();
            Box::pin(
                async move { crate::sign::presign(&b, &share, ep.incoming, ep.outgoing).await },
            ) as PartyRun<Presignature>
        })
        .collect();
    Ok(Run { parties, traffic })
}

/// Presignature generation by exactly the given holders.
pub async fn presign(
    key_id: &str,
    signers: &[KeyShare],
) -> Result<(Vec<Presignature>, Traffic), EngineError> {
    presign_run(key_id, signers)?.join().await
}

/// A resharing plan; `old` holds the dealers' current shares (dealers are picked from it by
/// holder). Each party yields its new share, if it is in the new committee.
pub fn reshare_run(
    key_id: &str,
    plan: &ResharePlan,
    old: &[CoreShare],
) -> Result<Run<Option<CoreShare>>, EngineError> {
    let binding = plan.binding(session_id(), key_id)?;
    let (eps, traffic) = network(binding.n(), None);
    let parties = eps
        .into_iter()
        .zip(binding.parties().to_vec())
        .map(|(ep, me)| {
            let b = binding.clone();
            let plan = plan.clone();
            let share = old.iter().find(|s| s.holder() == me).cloned();
            Box::pin(async move {
                crate::reshare::reshare(&b, &plan, &me, share.as_ref(), ep.incoming, ep.outgoing)
                    .await
            }) as PartyRun<Option<CoreShare>>
        })
        .collect();
    Ok(Run { parties, traffic })
}

/// Runs a resharing plan; returns the new committee's shares in `plan.new_parties` order.
pub async fn reshare(
    key_id: &str,
    plan: &ResharePlan,
    old: &[CoreShare],
) -> Result<(Vec<CoreShare>, Traffic), EngineError> {
    let (outs, traffic) = reshare_run(key_id, plan, old)?.join().await?;
    let outs: Vec<CoreShare> = outs.into_iter().flatten().collect();
    let mut new_shares = Vec::with_capacity(plan.new_parties.len());
    for p in &plan.new_parties {
        let s = outs
            .iter()
            .find(|s| s.holder() == *p)
            .cloned()
            .ok_or_else(|| EngineError::Internal {
                operation: Operation::Reshare,
                reason: format!("{p} produced no share"),
            })?;
        new_shares.push(s);
    }
    Ok((new_shares, traffic))
}
