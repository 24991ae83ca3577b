//! End-to-end tests of the engine over the in-process simulated network. Every signature is
//! checked by code independent of the engine: `k256` public-key recovery and an address computed
//! here with keccak256, as Ethereum's `ecrecover` does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cohort_engine::reshare::ResharePlan;
use cohort_engine::session::{Operation, SessionBinding};
use cohort_engine::sim::{self, party_ids};
use cohort_engine::{CoreShare, EngineError, KeyShare, PartyId, insecure_fixture, sign};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

/// Address recovered from a 65-byte r‖s‖v signature, without the engine's help.
fn ecrecover(digest: &[u8; 32], sig: &[u8; 65]) -> [u8; 20] {
    let v = sig[64];
    assert!(v == 27 || v == 28, "v must be 27 or 28, got {v}");
    let s = Signature::from_slice(&sig[..64]).expect("r, s in range");
    assert!(s.normalize_s().is_none(), "signature must be low-s");
    let vk = VerifyingKey::recover_from_prehash(digest, &s, RecoveryId::from_byte(v - 27).unwrap())
        .expect("recoverable");
    let pk = vk.to_encoded_point(false);
    let h = Keccak256::digest(&pk.as_bytes()[1..]);
    h[12..].try_into().unwrap()
}

/// The key's address computed here from the uncompressed public key.
fn address_of(share: &CoreShare) -> [u8; 20] {
    let pk = share.public_key().uncompressed();
    assert_eq!(pk[0], 4);
    Keccak256::digest(&pk[1..])[12..].try_into().unwrap()
}

fn digest(tag: &str) -> [u8; 32] {
    Keccak256::digest(tag.as_bytes()).into()
}

/// Completes core shares with trusted-dealer aux info over `members`.
fn complete(cores: &[CoreShare], members: &[PartyId]) -> Vec<KeyShare> {
    let auxes = insecure_fixture::trusted_aux(members).unwrap();
    cores
        .iter()
        .map(|c| {
            let aux = auxes.iter().find(|a| a.holder() == c.holder()).unwrap();
            KeyShare::new(c.clone(), aux).unwrap()
        })
        .collect()
}

fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize == k {
            out.push((0..n).filter(|i| mask & (1 << i) != 0).collect());
        }
    }
    out
}

fn pick(shares: &[KeyShare], idx: &[usize]) -> Vec<KeyShare> {
    idx.iter().map(|&i| shares[i].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_2_of_3_and_3_of_5_agree_on_the_key() {
    for (t, n) in [(2u16, 3usize), (3, 5)] {
        let parties = party_ids(n);
        let cores = sim::keygen("k", &parties, t).await.unwrap();
        assert_eq!(cores.len(), n);
        let pk = cores[0].public_key();
        for (k, c) in cores.iter().enumerate() {
            assert_eq!(c.public_key(), pk);
            assert_eq!(c.threshold(), t);
            assert_eq!(c.holder(), parties[k]);
            assert_eq!(c.parties(), parties.as_slice());
        }
        // Shares are distinct.
        let shares = cores[0].public_shares();
        for a in 0..n {
            for b in a + 1..n {
                assert_ne!(shares[a], shares[b]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_scales_to_32_parties() {
    let parties = party_ids(32);
    let cores = sim::keygen("big", &parties, 17).await.unwrap();
    assert_eq!(cores.len(), 32);
    assert!(
        cores
            .iter()
            .all(|c| c.public_key() == cores[0].public_key())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_3_subset_of_a_3_of_5_key_signs() {
    let parties = party_ids(5);
    let cores = sim::keygen("k", &parties, 3).await.unwrap();
    let shares = complete(&cores, &parties);
    let address = address_of(&cores[0]);
    assert_eq!(cores[0].public_key().address(), address);
    for (k, set) in subsets(5, 3).into_iter().enumerate() {
        let d = digest(&format!("message {k}"));
        let (sig, _) = sim::sign("k", &pick(&shares, &set), d).await.unwrap();
        assert_eq!(ecrecover(&d, &sig.0), address, "subset {set:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_refuses_wrong_signer_count() {
    let parties = party_ids(3);
    let cores = sim::keygen("k", &parties, 2).await.unwrap();
    let shares = complete(&cores, &parties);
    let err = sim::sign("k", &shares, digest("x")).await.unwrap_err();
    assert!(matches!(err, EngineError::InvalidInput(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presign_partial_combine() {
    let parties = party_ids(5);
    let cores = sim::keygen("k", &parties, 3).await.unwrap();
    let shares = complete(&cores, &parties);
    let signers = pick(&shares, &[4, 0, 2]);
    let key = cores[0].public_key();
    let (presigs, _) = sim::presign("k", &signers).await.unwrap();
    assert_eq!(presigs.len(), 3);
    let id = presigs[0].id();
    assert!(presigs.iter().all(|p| p.id() == id));

    // Presignatures survive storage.
    let stored: Vec<_> = presigs.iter().map(|p| p.to_bytes().unwrap()).collect();
    let d = digest("batch 7");
    let partials: Vec<_> = stored
        .iter()
        .map(|b| {
            cohort_engine::Presignature::from_bytes(b)
                .unwrap()
                .issue_partial(&d)
        })
        .collect();
    let sig = sign::combine(&key, &d, &partials).unwrap();
    assert_eq!(ecrecover(&d, &sig.0), address_of(&cores[0]));

    // Missing, duplicated or foreign partials are refused.
    assert!(sign::combine(&key, &d, &partials[..2]).is_err());
    let dup = vec![
        partials[0].clone(),
        partials[0].clone(),
        partials[1].clone(),
    ];
    assert!(sign::combine(&key, &d, &dup).is_err());
    // Partials over another digest do not combine into a signature of this one.
    let (presigs2, _) = sim::presign("k", &signers).await.unwrap();
    let other: Vec<_> = presigs2
        .into_iter()
        .enumerate()
        .map(|(k, p)| p.issue_partial(&if k == 0 { digest("other") } else { d }))
        .collect();
    assert!(matches!(
        sign::combine(&key, &d, &other),
        Err(EngineError::InvalidSignature)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshare_3_of_5_to_4_of_7_with_two_leaving() {
    let old = party_ids(5);
    let cores = sim::keygen("k", &old, 3).await.unwrap();
    let address = address_of(&cores[0]);
    let joining: Vec<PartyId> = party_ids(9)[5..].to_vec();
    // Holders 0 and 1 leave; 2, 3, 4 stay; four join.
    let mut new_parties = vec![old[2], old[3], old[4]];
    new_parties.extend(&joining);
    let plan = ResharePlan {
        old_parties: old.clone(),
        old_threshold: 3,
        dealers: vec![old[4], old[0], old[2]],
        new_parties: new_parties.clone(),
        new_threshold: 4,
        public_key: cores[0].public_key(),
    };
    let (new_cores, _) = sim::reshare("k", &plan, &cores).await.unwrap();
    assert_eq!(new_cores.len(), 7);
    for (k, c) in new_cores.iter().enumerate() {
        assert_eq!(address_of(c), address);
        assert_eq!(c.threshold(), 4);
        assert_eq!(c.holder(), new_parties[k]);
    }
    // Stayers got new shares.
    assert_ne!(new_cores[0].public_shares(), cores[2].public_shares());

    let members = party_ids(9);
    let shares = complete(&new_cores, &members);
    for set in [vec![0, 1, 2, 3], vec![3, 4, 5, 6], vec![6, 0, 4, 2]] {
        let d = digest(&format!("{set:?}"));
        let (sig, _) = sim::sign("k", &pick(&shares, &set), d).await.unwrap();
        assert_eq!(ecrecover(&d, &sig.0), address);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshare_3_of_5_to_3_of_4_disjoint_committee() {
    let all = party_ids(9);
    let old = all[..5].to_vec();
    let new_parties = all[5..].to_vec();
    let cores = sim::keygen("k", &old, 3).await.unwrap();
    let address = address_of(&cores[0]);
    let plan = ResharePlan {
        old_parties: old.clone(),
        old_threshold: 3,
        dealers: old[1..4].to_vec(),
        new_parties: new_parties.clone(),
        new_threshold: 3,
        public_key: cores[0].public_key(),
    };
    let (new_cores, _) = sim::reshare("k", &plan, &cores).await.unwrap();
    assert!(new_cores.iter().all(|c| address_of(c) == address));
    let shares = complete(&new_cores, &all);
    for set in subsets(4, 3) {
        let d = digest(&format!("disjoint {set:?}"));
        let (sig, _) = sim::sign("k", &pick(&shares, &set), d).await.unwrap();
        assert_eq!(ecrecover(&d, &sig.0), address);
    }
    // An old share cannot join the new committee's signing: it does not hold the new key.
    let old_shares = complete(&cores, &all);
    let mixed = vec![old_shares[0].clone(), shares[0].clone(), shares[1].clone()];
    assert!(sim::sign("k", &mixed, digest("mixed")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_changes_every_share_keeps_the_address_and_old_shares_cannot_mix() {
    let parties = party_ids(5);
    let cores = sim::keygen("k", &parties, 3).await.unwrap();
    let address = address_of(&cores[0]);
    let plan = ResharePlan::refresh(&cores[0]);
    assert!(plan.is_refresh());
    assert_eq!(
        plan.binding([1; 32], "k").unwrap().operation(),
        Operation::Refresh
    );
    let (fresh, _) = sim::reshare("k", &plan, &cores).await.unwrap();
    let before = cores[0].public_shares();
    let after = fresh[0].public_shares();
    for k in 0..5 {
        assert_ne!(before[k], after[k], "share {k} did not change");
        assert_eq!(address_of(&fresh[k]), address);
        assert_eq!(fresh[k].parties(), cores[k].parties());
    }
    let old_shares = complete(&cores, &parties);
    let new_shares = complete(&fresh, &parties);
    let d = digest("after refresh");
    let (sig, _) = sim::sign("k", &pick(&new_shares, &[0, 1, 2]), d)
        .await
        .unwrap();
    assert_eq!(ecrecover(&d, &sig.0), address);

    // Two pre-refresh shares with one post-refresh share: no valid signature comes out.
    let mixed = vec![
        old_shares[0].clone(),
        old_shares[1].clone(),
        new_shares[2].clone(),
    ];
    let res = sim::sign("k", &mixed, d).await;
    match res {
        Err(_) => {}
        Ok((sig, _)) => assert_ne!(ecrecover(&d, &sig.0), address),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_from_another_session_is_rejected_and_sender_named() {
    let parties = party_ids(3);
    let good = SessionBinding::new(
        [1; 32],
        Operation::Keygen,
        "k",
        parties.clone(),
        &cohort_engine::keygen::params(2),
    )
    .unwrap();
    // Party 2 was told another session id (a replay of an old run, or a misrouted one).
    let stale = SessionBinding::new(
        [2; 32],
        Operation::Keygen,
        "k",
        parties.clone(),
        &cohort_engine::keygen::params(2),
    )
    .unwrap();
    let (eps, _) = sim::network(3, None);
    let mut runs = Vec::new();
    for (k, ep) in eps.into_iter().enumerate() {
        let b = if k == 2 { stale.clone() } else { good.clone() };
        let me = parties[k];
        runs.push(tokio::spawn(async move {
            cohort_engine::keygen::keygen(&b, &me, 2, ep.incoming, ep.outgoing).await
        }));
    }
    let mut results = Vec::new();
    for r in runs {
        results.push(
            tokio::time::timeout(std::time::Duration::from_secs(60), r)
                .await
                .expect("a refused message must end the run, not hang it")
                .unwrap(),
        );
    }
    for (k, result) in results.iter().enumerate().take(2) {
        match result {
            Err(EngineError::WrongSession { culprit, .. }) => assert_eq!(*culprit, parties[2]),
            other => panic!("party {k}: expected WrongSession, got {other:?}"),
        }
    }
    assert!(matches!(results[2], Err(EngineError::WrongSession { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_names_its_sender() {
    let parties = party_ids(3);
    let corrupted = Arc::new(AtomicBool::new(false));
    let c = corrupted.clone();
    let tap: sim::Tap = Arc::new(move |from, _to, bytes: &mut Vec<u8>| {
        if from == 1 && bytes.len() > 40 {
            // Keep the header (so it is "for" this session) but break the body.
            for b in bytes[33..].iter_mut() {
                *b = 0xff;
            }
            c.store(true, Ordering::SeqCst);
        }
        true
    });
    let binding = SessionBinding::new(
        [9; 32],
        Operation::Keygen,
        "k",
        parties.clone(),
        &cohort_engine::keygen::params(2),
    )
    .unwrap();
    let (eps, _) = sim::network(3, Some(tap));
    let futs: Vec<_> = eps
        .into_iter()
        .zip(parties.clone())
        .map(|(ep, me)| {
            let b = binding.clone();
            async move { cohort_engine::keygen::keygen(&b, &me, 2, ep.incoming, ep.outgoing).await }
        })
        .collect();
    let err = sim::join(futs).await.unwrap_err();
    assert!(corrupted.load(Ordering::SeqCst));
    match err {
        EngineError::Malformed { culprit, .. } => assert_eq!(culprit, parties[1]),
        other => panic!("expected Malformed naming party 1, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_aux_info_protocol_completes_shares_that_sign() {
    let parties = party_ids(3);
    let primes = (0..3)
        .map(|k| cohort_engine::primes::insecure_test_primes::pair(k).unwrap())
        .collect();
    let (auxes, traffic) = sim::aux_info(&parties, primes).await.unwrap();
    assert!(traffic.bytes_sent().iter().all(|b| *b > 0));
    // Aux info survives storage.
    let auxes: Vec<_> = auxes
        .iter()
        .map(|a| cohort_engine::AuxInfo::from_bytes(&a.to_bytes().unwrap()).unwrap())
        .collect();
    let cores = sim::keygen("k", &parties, 2).await.unwrap();
    let shares: Vec<_> = cores
        .iter()
        .zip(&auxes)
        .map(|(c, a)| KeyShare::new(c.clone(), a).unwrap())
        .collect();
    // Someone else's aux info cannot complete my share.
    assert!(KeyShare::new(cores[0].clone(), &auxes[1]).is_err());
    let d = digest("aux");
    let (sig, _) = sim::sign("k", &shares[1..], d).await.unwrap();
    assert_eq!(ecrecover(&d, &sig.0), address_of(&cores[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_serialize_validate_and_print_no_secret() {
    let parties = party_ids(3);
    let cores = sim::keygen("k", &parties, 2).await.unwrap();
    let shares = complete(&cores, &parties);
    let bytes = shares[0].to_bytes().unwrap();
    let back = KeyShare::from_bytes(&bytes).unwrap();
    assert_eq!(back.public_key(), shares[0].public_key());
    assert_eq!(back.holder(), parties[0]);
    let core_back = CoreShare::from_bytes(&cores[1].to_bytes().unwrap()).unwrap();
    assert_eq!(core_back.public_shares(), cores[1].public_shares());

    // A flipped byte is refused, never accepted as a different share.
    let mut bad = bytes.to_vec();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    if let Ok(s) = KeyShare::from_bytes(&bad) {
        // Decoding may still succeed if the byte was in a field validation cannot check,
        // but the key must then be unchanged.
        assert_eq!(s.public_key(), shares[0].public_key());
    }
    assert!(KeyShare::from_bytes(b"garbage").is_err());

    // Debug never prints the secret scalar.
    let secret = cohort_engine_secret_hex(&cores[0]);
    for dbg in [format!("{:?}", shares[0]), format!("{:?}", cores[0])] {
        assert!(!dbg.contains(&secret), "Debug leaks the secret share");
        assert!(dbg.contains("holder"));
    }
}

/// The secret share's hex, dug out of the serialized form (tests only).
fn cohort_engine_secret_hex(core: &CoreShare) -> String {
    fn find_x(v: &ciborium::Value) -> Option<Vec<u8>> {
        match v {
            ciborium::Value::Map(entries) => entries.iter().find_map(|(k, val)| {
                if k.as_text() == Some("x") {
                    match val {
                        ciborium::Value::Bytes(b) => Some(b.clone()),
                        ciborium::Value::Text(t) => hex::decode(t).ok(),
                        _ => None,
                    }
                } else {
                    find_x(val)
                }
            }),
            ciborium::Value::Array(items) => items.iter().find_map(find_x),
            _ => None,
        }
    }
    let v: ciborium::Value = ciborium::from_reader(&core.to_bytes().unwrap()[..]).unwrap();
    let x = find_x(&v).expect("serialized share has its secret x");
    assert_eq!(x.len(), 32);
    hex::encode(x)
}
