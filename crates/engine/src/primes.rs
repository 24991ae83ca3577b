//! Safe primes for Paillier aux info, searched in the background so that no protocol run ever
//! waits on a prime search (one 1536-bit pair takes 30–140 s on a 2-core machine).
//!
//! [`PrimePool`] runs a bounded number of worker threads that fill a bounded queue; the caller
//! takes [`SafePrimes`] out, persists them (they serialize) and hands them to
//! [`aux_info_gen`](crate::aux::aux_info_gen) when needed.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cggmp21::PregeneratedPrimes;
use cggmp21::security_level::SecurityLevel128;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::EngineError;

/// One pair of safe primes (p, q) for a party's Paillier key. Secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct SafePrimes(PregeneratedPrimes<SecurityLevel128>);

impl SafePrimes {
    /// Searches a fresh pair on the calling thread. Slow: call from a worker, not an async task.
    pub fn generate() -> Self {
        SafePrimes(PregeneratedPrimes::generate(&mut OsRng))
    }

    /// Builds a pair from decimal strings; refuses numbers too small for the security level.
    /// Primality is not checked here: non-primes make aux-info generation fail its ZK proofs.
    pub fn from_decimal(p: &str, q: &str) -> Result<Self, EngineError> {
        let parse = |s: &str| {
            cggmp21::rug::Integer::from_str_radix(s.trim(), 10)
                .map_err(|_| EngineError::InvalidInput("prime is not a decimal number".into()))
        };
        PregeneratedPrimes::new(parse(p)?, parse(q)?)
            .map(SafePrimes)
            .ok_or_else(|| {
                EngineError::InvalidInput("primes too small for 128-bit security".into())
            })
    }

    /// Serialized (secret!) form to persist.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let mut out = Zeroizing::new(Vec::new());
        ciborium::into_writer(self, &mut *out)
            .map_err(|e| EngineError::InvalidShare(e.to_string()))?;
        Ok(out)
    }

    /// Decodes persisted primes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let s: Self = ciborium::from_reader(bytes)
            .map_err(|e| EngineError::InvalidShare(format!("primes do not decode: {e}")))?;
        let (p, q) = s.0.split();
        PregeneratedPrimes::new(p, q)
            .map(SafePrimes)
            .ok_or_else(|| EngineError::InvalidShare("stored primes too small".into()))
    }

    /// The public fingerprint of the Paillier modulus these primes make (see
    /// [`AuxInfo::modulus_hash`](crate::AuxInfo::modulus_hash)): lets a node avoid reusing a
    /// modulus it already has.
    pub fn modulus_hash(&self) -> [u8; 32] {
        let (p, q) = self.0.clone().split();
        crate::share::modulus_hash(&p, &q)
    }

    pub(crate) fn into_inner(self) -> PregeneratedPrimes<SecurityLevel128> {
        self.0
    }
}

impl fmt::Debug for SafePrimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SafePrimes(<secret>)")
    }
}

/// Progress of the pool, for logs and metrics.
#[derive(Debug, Clone, Copy)]
pub enum PrimeEvent {
    /// A worker began searching a pair.
    Searching {
        /// Worker number.
        worker: usize,
    },
    /// A worker found a pair.
    Found {
        /// Worker number.
        worker: usize,
        /// How long the search took.
        took: Duration,
        /// Pairs waiting in the queue after this one was added.
        ready: usize,
    },
}

/// Background safe-prime search with a bounded queue.
pub struct PrimePool {
    rx: Mutex<Receiver<SafePrimes>>,
    ready: Arc<Ready>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

/// The number of pairs in the queue. A worker holds the lock across its send and its increment,
/// and a consumer takes the lock before its decrement, so a pair taken the instant it arrives
/// is never subtracted before it was added (an atomic counter underflowed there).
#[derive(Default)]
struct Ready(Mutex<usize>);

impl Ready {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        // A panic while holding this lock cannot leave the count torn: it is one integer.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn taken(&self) {
        let mut n = self.lock();
        *n = n.saturating_sub(1);
    }
}

impl PrimePool {
    /// Starts `threads` workers (at least 1) that keep up to `capacity` pairs ready.
    pub fn start(
        threads: usize,
        capacity: usize,
        progress: impl Fn(PrimeEvent) + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(threads, capacity, SafePrimes::generate, progress)
    }

    /// As [`PrimePool::start`] with another search function (tests use fixture primes).
    pub fn start_with(
        threads: usize,
        capacity: usize,
        search: fn() -> SafePrimes,
        progress: impl Fn(PrimeEvent) + Send + Sync + 'static,
    ) -> Self {
        let (tx, rx) = sync_channel::<SafePrimes>(capacity.max(1));
        let ready = Arc::new(Ready::default());
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(progress);
        let workers = (0..threads.max(1))
            .map(|worker| {
                let tx: SyncSender<SafePrimes> = tx.clone();
                let ready = ready.clone();
                let stop = stop.clone();
                let progress = progress.clone();
                std::thread::Builder::new()
                    .name(format!("prime-search-{worker}"))
                    .spawn(move || worker_loop(worker, search, tx, ready, stop, &*progress))
            })
            .filter_map(Result::ok)
            .collect();
        PrimePool {
            rx: Mutex::new(rx),
            ready,
            stop,
            workers,
        }
    }

    /// A pair if one is ready, without waiting.
    pub fn take(&self) -> Option<SafePrimes> {
        let rx = self.rx.lock().ok()?;
        let p = rx.try_recv().ok()?;
        self.ready.taken();
        Some(p)
    }

    /// A pair, waiting at most `timeout` for one (blocking: call from a blocking context).
    pub fn take_timeout(&self, timeout: Duration) -> Option<SafePrimes> {
        let rx = self.rx.lock().ok()?;
        match rx.recv_timeout(timeout) {
            Ok(p) => {
                self.ready.taken();
                Some(p)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Pairs waiting in the queue.
    pub fn ready(&self) -> usize {
        *self.ready.lock()
    }

    /// Number of running workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }
}

impl Drop for PrimePool {
    fn drop(&mut self) {
        // Workers notice between searches (a search itself cannot be interrupted) or when their
        // next send finds the queue gone; they are not joined so drop never blocks.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn worker_loop(
    worker: usize,
    search: fn() -> SafePrimes,
    tx: SyncSender<SafePrimes>,
    ready: Arc<Ready>,
    stop: Arc<AtomicBool>,
    progress: &(dyn Fn(PrimeEvent) + Send + Sync),
) {
    while !stop.load(Ordering::SeqCst) {
        progress(PrimeEvent::Searching { worker });
        tracing::debug!(worker, "searching a safe-prime pair");
        let started = Instant::now();
        let mut primes = search();
        let took = started.elapsed();
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let mut count = ready.lock();
            match tx.try_send(primes) {
                Ok(()) => {
                    *count += 1;
                    let now = *count;
                    drop(count);
                    tracing::info!(
                        worker,
                        took_ms = took.as_millis() as u64,
                        ready = now,
                        "safe-prime pair ready"
                    );
                    progress(PrimeEvent::Found {
                        worker,
                        took,
                        ready: now,
                    });
                    break;
                }
                Err(TrySendError::Full(back)) => {
                    drop(count);
                    // Queue full: wait for the consumer without spinning.
                    primes = back;
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

/// Whether this build carries the insecure test primes (cargo feature `insecure-test-primes`).
/// A node refuses its `insecure_test_primes` setting in a build without them.
pub const TEST_PRIMES_COMPILED: bool = cfg!(feature = "insecure-test-primes");

/// SHA-256 of the hex Paillier modulus of every fixture pair: public values, no prime, in
/// every build, so that a node without the test primes still recognises aux info made of them.
const TEST_MODULI_SHA256: &str = include_str!("../fixtures/INSECURE_TEST_MODULI.sha256");

/// Whether a Paillier modulus (lowercase hex, as [`crate::AuxInfo::members_with_test_primes`]
/// renders it) is the product of a pair of the public test primes.
pub fn is_test_modulus(n_hex: &str) -> bool {
    use sha2::Digest as _;
    let h = hex::encode(sha2::Sha256::digest(n_hex.as_bytes()));
    TEST_MODULI_SHA256
        .lines()
        .map(str::trim)
        .any(|l| !l.starts_with('#') && l == h)
}

/// A build without the `insecure-test-primes` feature: no fixture is compiled in, every call
/// says so.
#[cfg(not(feature = "insecure-test-primes"))]
pub mod insecure_test_primes {
    use super::SafePrimes;
    use crate::error::EngineError;

    /// Always 0: this build has no fixture.
    pub fn pairs() -> usize {
        0
    }

    /// Always an error: this build has no fixture.
    pub fn pair(_k: usize) -> Result<SafePrimes, EngineError> {
        Err(EngineError::InvalidInput(
            "this build has no insecure test primes (build with the cargo feature insecure-test-primes)"
                .into(),
        ))
    }
}

/// Pre-generated safe primes for tests, benchmarks and the devnet. **Insecure**: these primes are
/// public (they are in this repository), so any Paillier key built from them is known to everyone.
/// They exist only so that tests need not spend minutes searching primes. Never use in production.
/// Compiled in only with the cargo feature `insecure-test-primes`.
#[cfg(feature = "insecure-test-primes")]
pub mod insecure_test_primes {
    use super::SafePrimes;
    use crate::error::EngineError;

    /// 1536-bit safe primes, one per line, made with `openssl prime -generate -safe -bits 1536`
    /// (see `scripts/gen-insecure-primes.sh`).
    const PRIMES: &str = include_str!("../fixtures/INSECURE_TEST_PRIMES.txt");

    fn data_lines() -> Vec<&'static str> {
        PRIMES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    /// Number of distinct pairs in the fixture.
    pub fn pairs() -> usize {
        data_lines().len() / 2
    }

    /// The `k`-th pair (wrapping around when there are more parties than pairs).
    pub fn pair(k: usize) -> Result<SafePrimes, EngineError> {
        let lines = data_lines();
        let n = lines.len() / 2;
        if n == 0 {
            return Err(EngineError::InvalidInput(
                "insecure prime fixture is empty".into(),
            ));
        }
        let k = k % n;
        tracing::warn!(
            pair = k,
            "using INSECURE public test primes: tests and devnet only"
        );
        SafePrimes::from_decimal(lines[2 * k], lines[2 * k + 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_fixture_modulus_is_recognised_and_others_are_not() {
        let members: Vec<crate::PartyId> = (0..20u8).map(|i| crate::PartyId([i + 1; 20])).collect();
        let auxes = crate::insecure_fixture::trusted_aux(&members).unwrap();
        assert_eq!(auxes[0].members_with_test_primes(), members);
        assert!(!is_test_modulus("abcdef"));
        assert!(!is_test_modulus(""));
    }

    #[test]
    fn fixture_has_enough_pairs_and_they_round_trip() {
        assert!(insecure_test_primes::pairs() >= 16);
        let p = insecure_test_primes::pair(3).unwrap();
        let bytes = p.to_bytes().unwrap();
        let back = SafePrimes::from_bytes(&bytes).unwrap();
        let (a, b) = back.into_inner().split();
        let (c, d) = p.into_inner().split();
        assert_eq!((a, b), (c, d));
        assert_eq!(
            format!("{:?}", insecure_test_primes::pair(0).unwrap()),
            "SafePrimes(<secret>)"
        );
    }

    #[test]
    fn pool_fills_to_capacity_reports_progress_and_hands_out() {
        let found = Arc::new(AtomicUsize::new(0));
        let f = found.clone();
        let pool = PrimePool::start_with(
            2,
            3,
            || insecure_test_primes::pair(0).unwrap(),
            move |e| {
                if let PrimeEvent::Found { .. } = e {
                    f.fetch_add(1, Ordering::SeqCst);
                }
            },
        );
        assert_eq!(pool.workers(), 2);
        let first = pool.take_timeout(Duration::from_secs(10));
        assert!(first.is_some());
        // The queue refills up to its bound and no further.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.ready() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(pool.ready(), 3);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(pool.ready(), 3, "a bounded pool must not overfill");
        assert!(found.load(Ordering::SeqCst) >= 4);
        assert!(pool.take().is_some());
        assert_eq!(pool.ready(), 2);
    }

    #[test]
    fn small_numbers_are_refused() {
        assert!(SafePrimes::from_decimal("23", "47").is_err());
        assert!(SafePrimes::from_decimal("xyz", "47").is_err());
        assert!(SafePrimes::from_bytes(b"\x00garbage").is_err());
    }
}
