//! Engine benchmark: every protocol at several (t, n), all parties in one process over the
//! simulated network, each party on a thread of its own so that its CPU time is measured alone.
//!
//! ```text
//! cargo bench -p cohort-engine --bench engine
//! COHORT_BENCH_SIZES=2/3,3/5 COHORT_BENCH_ITERS=5 COHORT_BENCH_AUX=0 cargo bench -p cohort-engine --bench engine
//! ```
//! For each operation it prints the median wall time of the whole run (all parties sharing the
//! machine's cores), the median CPU time of the busiest party (what one node on its own machine
//! spends), and the most bytes any one party sent.

use std::time::{Duration, Instant};

use cohort_engine::primes::insecure_test_primes;
use cohort_engine::reshare::ResharePlan;
use cohort_engine::sim::{self, PartyRun, Run, party_ids};
use cohort_engine::{KeyShare, insecure_fixture, sign};
use cpu_time::ThreadTime;

struct Sample {
    wall: Duration,
    busiest_cpu: Duration,
    max_bytes: u64,
}

/// Drives each party on its own OS thread (current-thread runtime) and measures it.
fn drive<T: Send + 'static>(run: Run<T>) -> (Vec<T>, Sample) {
    let started = Instant::now();
    let handles: Vec<_> = run
        .parties
        .into_iter()
        .map(|party: PartyRun<T>| {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("runtime");
                let cpu = ThreadTime::now();
                let out = rt.block_on(party);
                (out, cpu.elapsed())
            })
        })
        .collect();
    let mut outs = Vec::new();
    let mut busiest = Duration::ZERO;
    for h in handles {
        let (out, cpu) = h.join().expect("party thread");
        outs.push(out.expect("party failed"));
        busiest = busiest.max(cpu);
    }
    let wall = started.elapsed();
    let max_bytes = run.traffic.bytes_sent().into_iter().max().unwrap_or(0);
    (
        outs,
        Sample {
            wall,
            busiest_cpu: busiest,
            max_bytes,
        },
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{:.3} ms", ms)
    } else if ms < 1000.0 {
        format!("{:.1} ms", ms)
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

fn fmt_bytes(b: u64) -> String {
    if b == 0 {
        "–".into()
    } else if b < 10_000 {
        format!("{b} B")
    } else if b < 10_000_000 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    }
}

fn row(t: u16, n: usize, op: &str, samples: Vec<Sample>) {
    let bytes = samples.iter().map(|s| s.max_bytes).max().unwrap_or(0);
    let wall = median(samples.iter().map(|s| s.wall).collect());
    let cpu = median(samples.iter().map(|s| s.busiest_cpu).collect());
    println!(
        "| ({t},{n}) | {op} | {} | {} | {} |",
        fmt(wall),
        fmt(cpu),
        fmt_bytes(bytes)
    );
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let sizes: Vec<(u16, usize)> = env_or("COHORT_BENCH_SIZES", "2/3,3/5,5/7,11/16")
        .split(',')
        .filter_map(|s| {
            let (t, n) = s.split_once('/')?;
            Some((t.trim().parse().ok()?, n.trim().parse().ok()?))
        })
        .collect();
    let iters: usize = env_or("COHORT_BENCH_ITERS", "3")
        .parse()
        .unwrap_or(3)
        .max(1);
    let with_aux = env_or("COHORT_BENCH_AUX", "1") != "0";

    println!(
        "engine benchmark: {iters} iterations (aux info: 1), medians; cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| (t,n) | operation | wall, all parties | CPU, busiest party | max bytes sent by a party |"
    );
    println!("|---|---|---|---|---|");
    for (t, n) in sizes {
        let parties = party_ids(n);

        // Keygen.
        let mut samples = Vec::new();
        let mut cores = Vec::new();
        for _ in 0..iters {
            let (out, s) = drive(sim::keygen_run("bench", &parties, t).expect("keygen"));
            samples.push(s);
            cores = out;
        }
        row(t, n, "keygen", samples);

        // Aux info with pool primes (fixture primes stand in for the pool).
        if with_aux {
            let primes = (0..n)
                .map(|k| insecure_test_primes::pair(k).expect("fixture"))
                .collect();
            let (_, s) = drive(sim::aux_info_run(&parties, primes).expect("aux"));
            row(t, n, "aux info (primes given)", vec![s]);
        }

        // Signing material: trusted-dealer aux info (insecure fixture; cost is the same).
        let auxes = insecure_fixture::trusted_aux(&parties).expect("aux");
        let shares: Vec<KeyShare> = cores
            .iter()
            .zip(&auxes)
            .map(|(c, a)| KeyShare::new(c.clone(), a).expect("share"))
            .collect();
        let signers: Vec<KeyShare> = shares[..usize::from(t)].to_vec();
        let key = cores[0].public_key();

        // Presign.
        let mut samples = Vec::new();
        let mut presigs = Vec::new();
        for _ in 0..iters {
            let (out, s) = drive(sim::presign_run("bench", &signers).expect("presign"));
            samples.push(s);
            presigs.push(out);
        }
        row(t, n, "presign", samples);

        // Online signing from a presignature: every signer's partial, then combine + verify.
        let digest = [0x5a; 32];
        let mut partial_bytes = 0u64;
        let mut partial_times = Vec::new();
        let mut combine_times = Vec::new();
        for set in presigs {
            let mut partials = Vec::new();
            for p in set {
                let start = Instant::now();
                partials.push(p.issue_partial(&digest));
                partial_times.push(start.elapsed());
            }
            let mut buf = Vec::new();
            ciborium::into_writer(&partials[0], &mut buf).expect("encode");
            partial_bytes = buf.len() as u64;
            let start = Instant::now();
            sign::combine(&key, &digest, &partials).expect("combine");
            combine_times.push(start.elapsed());
        }
        println!(
            "| ({t},{n}) | online sign: partial per signer / combine+verify | {} / {} | – | {} |",
            fmt(median(partial_times)),
            fmt(median(combine_times)),
            fmt_bytes(partial_bytes)
        );

        // Full interactive signing.
        let mut samples = Vec::new();
        for _ in 0..iters {
            let (_, s) = drive(sim::sign_run("bench", &signers, digest).expect("sign"));
            samples.push(s);
        }
        row(t, n, "full sign", samples);

        // Reshare: t dealers to the same n parties (EC part only; aux info is per membership).
        let plan = ResharePlan {
            old_parties: parties.clone(),
            old_threshold: t,
            dealers: parties[..usize::from(t)].to_vec(),
            new_parties: parties.clone(),
            new_threshold: t,
            public_key: key,
        };
        let mut samples = Vec::new();
        for _ in 0..iters {
            let (_, s) = drive(sim::reshare_run("bench", &plan, &cores).expect("reshare"));
            samples.push(s);
        }
        row(t, n, "reshare (t dealers → n)", samples);
    }
}
