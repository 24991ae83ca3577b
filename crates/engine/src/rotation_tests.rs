//! Refresh with fresh aux info rotates every party's Paillier key: a Paillier secret learnt
//! before the refresh (a compromise, a backup) cannot decrypt what a party encrypts under its
//! own key in a signature after it. The oracle: in cggmp21 signing, party i sends G_i =
//! enc_i(γ_i) in round 1 and Γ_i = γ_i·G in round 2, so a secret (p, q) decrypts G_i exactly
//! when the decryption times G is Γ_i.

use std::sync::{Arc, Mutex};

use cggmp21::generic_ec::{Point, Scalar};
use cggmp21::rug::Integer;
use rand_core::OsRng;

use crate::Curve;
use crate::primes::insecure_test_primes;
use crate::reshare::ResharePlan;
use crate::session::{Operation, PartyId, SessionBinding};
use crate::share::{AuxInfo, CoreShare, KeyShare};
use crate::sign::{Msg, sign_params};
use crate::sim;

/// Aux info for `members` dealt from fixture pairs `first..first + n` (a stand-in for fresh
/// primes from the pool: the aux-info protocol itself has its own test).
fn aux_from_pairs(members: &[PartyId], first: usize) -> Vec<AuxInfo> {
    let primes = (0..members.len())
        .map(|k| insecure_test_primes::pair(first + k).map(|p| p.into_inner().split()))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    cggmp21::trusted_dealer::generate_aux_data_with_primes(&mut OsRng, primes, false, false)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(k, aux)| AuxInfo::new(members.to_vec(), k as u16, aux).unwrap())
        .collect()
}

/// Signs `digest` with `shares` on the simulated network and returns what party 0 sent:
/// its round-1 ciphertext G_0 and its round-2 point Γ_0.
async fn party0_g_and_gamma(shares: &[KeyShare]) -> (Integer, Point<Curve>) {
    let parties: Vec<PartyId> = shares.iter().map(KeyShare::holder).collect();
    let digest = [7u8; 32];
    let binding = SessionBinding::new(
        sim::session_id(),
        Operation::Sign,
        "k",
        parties,
        &sign_params(&digest),
    )
    .unwrap();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = seen.clone();
    let tap: sim::Tap = Arc::new(move |from, _to, bytes: &mut Vec<u8>| {
        if from == 0
            && let Ok(msg) = ciborium::from_reader::<Msg, _>(&bytes[33..])
        {
            let mut s = s.lock().unwrap();
            match msg {
                Msg::Round1a(m) => s.0 = Some(m.G),
                Msg::Round2(m) => s.1 = Some(m.Gamma),
                _ => {}
            }
        }
        true
    });
    let (eps, _) = sim::network(binding.n(), Some(tap));
    let runs = eps
        .into_iter()
        .zip(shares.iter().cloned())
        .map(|(ep, share)| {
            let b = binding.clone();
            async move { crate::sign::sign(&b, &share, &digest, ep.incoming, ep.outgoing).await }
        })
        .collect();
    sim::join(runs).await.unwrap();
    let s = seen.lock().unwrap();
    (s.0.clone().unwrap(), s.1.unwrap())
}

/// What the tap saw of party 0: its Paillier ciphertext G and its point Γ.
type Seen = (Option<Integer>, Option<Point<Curve>>);

/// Whether the Paillier secret (p, q) decrypts `c` to the discrete log of `gamma`.
fn decrypts(aux: &AuxInfo, c: &Integer, gamma: &Point<Curve>) -> bool {
    let (p, q) = (&aux.inner.p, &aux.inner.q);
    let n = Integer::from(p * q);
    let nn = Integer::from(&n * &n);
    let phi = Integer::from(p - 1u32) * Integer::from(q - 1u32);
    // With g = N + 1: c^φ = 1 + m·φ·N (mod N²), so m = L(c^φ mod N²) · φ⁻¹ mod N.
    let Ok(u) = c.clone().pow_mod(&phi, &nn) else {
        return false;
    };
    let l = (u - 1u32) / &n;
    let Ok(inv) = phi.invert(&n) else {
        return false;
    };
    let m = (l * inv) % &n;
    // γ is encrypted as a signed integer: take the centred representative.
    let half = Integer::from(&n >> 1);
    let m = if m > half { m - &n } else { m };
    let bytes = m.to_digits::<u8>(cggmp21::rug::integer::Order::MsfBe);
    let mut scalar = Scalar::<Curve>::from_be_bytes_mod_order(&bytes);
    if m < 0 {
        scalar = -scalar;
    }
    Point::generator() * scalar == *gamma
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_refresh_paillier_secret_cannot_decrypt_a_post_refresh_signing_message() {
    let parties = sim::party_ids(3);
    let cores: Vec<CoreShare> = sim::keygen("k", &parties, 2).await.unwrap();
    let old_aux = aux_from_pairs(&parties, 0);
    let old: Vec<KeyShare> = cores
        .iter()
        .zip(&old_aux)
        .map(|(c, a)| KeyShare::new(c.clone(), a).unwrap())
        .collect();
    // The oracle works: before the refresh, party 0's secret decrypts its own G_0, another
    // party's does not.
    let (g, gamma) = party0_g_and_gamma(&old[..2]).await;
    assert!(decrypts(&old_aux[0], &g, &gamma));
    assert!(!decrypts(&old_aux[1], &g, &gamma));

    // Refresh: new shares, and fresh aux info from fresh primes.
    let (fresh, _) = sim::reshare("k", &ResharePlan::refresh(&cores[0]), &cores)
        .await
        .unwrap();
    let new_aux = aux_from_pairs(&parties, parties.len());
    for k in 0..parties.len() {
        assert_ne!(
            old_aux[k].modulus_hash(),
            new_aux[k].modulus_hash(),
            "party {k} kept its Paillier modulus"
        );
    }
    let new: Vec<KeyShare> = fresh
        .iter()
        .zip(&new_aux)
        .map(|(c, a)| KeyShare::new(c.clone(), a).unwrap())
        .collect();
    let (g, gamma) = party0_g_and_gamma(&new[..2]).await;
    assert!(decrypts(&new_aux[0], &g, &gamma), "the new secret decrypts");
    assert!(
        !decrypts(&old_aux[0], &g, &gamma),
        "the pre-refresh secret must not decrypt a post-refresh signing message"
    );
}
