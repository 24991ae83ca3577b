//! CohortGroupManager and TestStateCommitmentChain on a real anvil: every access rule and revert
//! of the election, activation, verifySign, removal and the state-batch path.
//!
//! One anvil for the file; each scenario deploys its own contracts, and they run in order in one
//! test because some move the chain's clock.

mod common;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolCall, SolEvent, SolValue};
use cohort_l1::bindings::{
    CohortGroupManager as G, CohortStaking as S, TestChallenge as C, TestRollup as R,
    TestStateCommitmentChain as Scc,
};
use cohort_l1::{rollback_digest, state_batch_digest};
use common::*;

#[tokio::test(flavor = "current_thread")]
async fn group_manager_on_anvil() {
    let chain = Chain::start().await;
    owner_only_functions_reject_others(&chain).await;
    election_member_rules(&chain).await;
    election_activation_and_verify_sign(&chain).await;
    election_deadline_and_cancel(&chain).await;
    removal_rules_and_bans(&chain).await;
    challenge_and_rollup_views(&chain).await;
}

async fn owner_only_functions_reject_others(chain: &Chain) {
    let d = Deployment::new(chain).await;
    let stranger = chain.accounts[1];
    let k = NodeKey::random();
    let who = |e: G::OwnableUnauthorizedAccount| e.account;
    let set = G::setTssGroupMemberCall {
        _threshold: U256::from(1),
        _pubkeys: vec![k.pub64.clone(), k.pub64.clone()],
    };
    assert_eq!(who(chain.reverts(stranger, d.gm, &set).await), stranger);
    assert_eq!(
        who(chain
            .reverts(
                stranger,
                d.gm,
                &G::setElectionTimeoutCall {
                    _timeout: U256::from(5)
                }
            )
            .await),
        stranger
    );
    assert_eq!(
        who(chain
            .reverts(stranger, d.gm, &G::banCall { node: k.addr })
            .await),
        stranger
    );
    assert_eq!(
        who(chain
            .reverts(stranger, d.gm, &G::setStakingCall { _staking: stranger })
            .await),
        stranger
    );
    assert_eq!(
        who(chain
            .reverts(
                stranger,
                d.gm,
                &G::removeMember_0Call {
                    _publicKey: k.pub64.clone()
                }
            )
            .await),
        stranger
    );
    assert_eq!(
        who(chain
            .reverts(
                stranger,
                d.gm,
                &G::transferOwnershipCall { newOwner: stranger }
            )
            .await),
        stranger
    );
    // Staking-only entry points.
    let e: G::NotStaking = chain
        .reverts(
            d.owner,
            d.gm,
            &G::memberJailCall {
                _publicKey: k.pub64.clone(),
            },
        )
        .await;
    assert_eq!(e.caller, d.owner);
    let e: G::NotStaking = chain
        .reverts(
            stranger,
            d.gm,
            &G::memberUnJailCall {
                _publicKey: k.pub64.clone(),
            },
        )
        .await;
    assert_eq!(e.caller, stranger);
    let e: G::NotStakingOrOwner = chain
        .reverts(
            stranger,
            d.gm,
            &G::removeMember_1Call {
                _publicKey: k.pub64.clone(),
                reason: B256::ZERO,
            },
        )
        .await;
    assert_eq!(e.caller, stranger);
    // The staking address is wired once.
    let _: G::StakingAlreadySet = chain
        .reverts(d.owner, d.gm, &G::setStakingCall { _staking: stranger })
        .await;
    // Two-step ownership: nothing changes until the new owner accepts.
    chain
        .exec(
            d.owner,
            d.gm,
            &G::transferOwnershipCall { newOwner: stranger },
        )
        .await;
    assert_eq!(chain.view(d.gm, &G::ownerCall {}).await, d.owner);
    let _: G::OwnableUnauthorizedAccount = chain
        .reverts(chain.accounts[2], d.gm, &G::acceptOwnershipCall {})
        .await;
    chain.exec(stranger, d.gm, &G::acceptOwnershipCall {}).await;
    assert_eq!(chain.view(d.gm, &G::ownerCall {}).await, stranger);
    eprintln!("owner_only_functions_reject_others: ok");
}

async fn election_member_rules(chain: &Chain) {
    let owner = chain.accounts[0];
    // No staking wired yet.
    let bare = chain
        .deploy(
            &G::BYTECODE,
            (owner, U256::from(ELECTION_TIMEOUT)).abi_encode_params(),
        )
        .await;
    let (a, b) = (NodeKey::random(), NodeKey::random());
    let two = vec![a.pub64.clone(), b.pub64.clone()];
    let _: G::StakingNotSet = chain
        .reverts(
            owner,
            bare,
            &G::setTssGroupMemberCall {
                _threshold: U256::from(1),
                _pubkeys: two,
            },
        )
        .await;

    let d = Deployment::new(chain).await;
    let ops = [
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
    ];
    let keys: Vec<Bytes> = ops.iter().map(|k| k.pub64.clone()).collect();
    let set = |t: u64, k: Vec<Bytes>| G::setTssGroupMemberCall {
        _threshold: U256::from(t),
        _pubkeys: k,
    };

    let e: G::InvalidGroupSize = chain
        .reverts(owner, d.gm, &set(1, keys[..1].to_vec()))
        .await;
    assert_eq!(e.members, U256::from(1));
    let e: G::InvalidThreshold = chain.reverts(owner, d.gm, &set(0, keys.clone())).await;
    assert_eq!((e.threshold, e.members), (U256::ZERO, U256::from(3)));
    let e: G::InvalidThreshold = chain.reverts(owner, d.gm, &set(3, keys.clone())).await;
    assert_eq!(e.threshold, U256::from(3));
    let short = Bytes::copy_from_slice(&keys[1][..63]);
    let e: G::InvalidPublicKeyLength = chain
        .reverts(owner, d.gm, &set(1, vec![keys[0].clone(), short]))
        .await;
    assert_eq!((e.index, e.length), (U256::from(1), U256::from(63)));
    let e: G::DuplicateMember = chain
        .reverts(
            owner,
            d.gm,
            &set(1, vec![keys[0].clone(), keys[1].clone(), keys[0].clone()]),
        )
        .await;
    assert_eq!(e.node, ops[0].addr);
    // Not registered at all.
    let stranger = NodeKey::random();
    let e: G::NotOperator = chain
        .reverts(
            owner,
            d.gm,
            &set(1, vec![keys[0].clone(), stranger.pub64.clone()]),
        )
        .await;
    assert_eq!(e.node, stranger.addr);
    // Registered but staked below minStake.
    let poor = NodeKey::random();
    chain.impersonate(poor.addr).await;
    d.fund(chain, poor.addr, MIN_STAKE - 1).await;
    chain
        .exec(
            poor.addr,
            d.staking,
            &S::registerAsOperatorCall {
                pubKey: poor.pub64.clone(),
            },
        )
        .await;
    chain
        .exec(
            poor.addr,
            d.staking,
            &S::depositCall {
                amount: U256::from(MIN_STAKE - 1),
            },
        )
        .await;
    let e: G::NotOperator = chain
        .reverts(
            owner,
            d.gm,
            &set(1, vec![keys[0].clone(), poor.pub64.clone()]),
        )
        .await;
    assert_eq!(e.node, poor.addr);
    // Banned.
    let r = chain
        .exec(owner, d.gm, &G::banCall { node: ops[2].addr })
        .await;
    assert_eq!(events::<G::MemberBanned>(&r)[0].node, ops[2].addr);
    assert!(chain.view(d.gm, &G::bannedCall { node: ops[2].addr }).await);
    let e: G::MemberIsBanned = chain.reverts(owner, d.gm, &set(1, keys.clone())).await;
    assert_eq!(e.node, ops[2].addr);
    let _: G::AlreadyBanned = chain
        .reverts(owner, d.gm, &G::banCall { node: ops[2].addr })
        .await;
    // A valid election of the two unbanned operators is accepted.
    let r = chain.exec(owner, d.gm, &set(1, keys[..2].to_vec())).await;
    let ev = &events::<G::tssGroupMemberAppend>(&r)[0];
    assert_eq!((ev._roundId, ev._threshold), (U256::from(1), U256::from(1)));
    assert_eq!(ev._inActiveTssMembers, keys[..2].to_vec());
    eprintln!("election_member_rules: ok");
}

async fn election_activation_and_verify_sign(chain: &Chain) {
    let d = Deployment::new(chain).await;
    let owner = d.owner;
    let ops = [
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
    ];
    let keys: Vec<Bytes> = ops.iter().map(|k| k.pub64.clone()).collect();
    let group = NodeKey::random();
    let other = NodeKey::random();

    let r = chain
        .exec(
            owner,
            d.gm,
            &G::setTssGroupMemberCall {
                _threshold: U256::from(1),
                _pubkeys: keys.clone(),
            },
        )
        .await;
    assert_eq!(topics0(&r), vec![G::tssGroupMemberAppend::SIGNATURE_HASH]);
    let info = chain.view(d.gm, &G::getTssInactiveGroupInfoCall {}).await;
    assert_eq!(
        (info._0, info._1, info._2.clone()),
        (U256::from(1), U256::from(1), keys.clone())
    );
    assert!(
        chain
            .view(
                d.gm,
                &G::memberExistInActiveCall {
                    _publicKey: keys[0].clone()
                }
            )
            .await
    );
    assert!(!chain.view(d.gm, &G::inActiveIsEmptyCall {}).await);
    let deadline = chain.view(d.gm, &G::electionDeadlineCall {}).await;
    assert!(deadline > U256::ZERO);

    let submit = |m: &NodeKey, g: Bytes| G::setGroupPublicKeyCall {
        _publicKey: m.pub64.clone(),
        _groupPublicKey: g,
    };
    // A key that is not pending.
    let outsider = NodeKey::random();
    chain.impersonate(outsider.addr).await;
    let _: G::NotPendingMember = chain
        .reverts(outsider.addr, d.gm, &submit(&outsider, group.pub64.clone()))
        .await;
    // A pending key sent from another account.
    let e: G::SenderNotMember = chain
        .reverts(ops[1].addr, d.gm, &submit(&ops[0], group.pub64.clone()))
        .await;
    assert_eq!((e.sender, e.member), (ops[1].addr, ops[0].addr));
    // A group key of the wrong length, and one off the curve.
    let e: G::InvalidGroupKeyLength = chain
        .reverts(
            ops[0].addr,
            d.gm,
            &submit(&ops[0], Bytes::copy_from_slice(&group.pub64[..63])),
        )
        .await;
    assert_eq!(e.length, U256::from(63));
    let mut off = group.pub64.to_vec();
    off[63] ^= 1;
    let _: G::GroupKeyNotOnCurve = chain
        .reverts(ops[0].addr, d.gm, &submit(&ops[0], off.into()))
        .await;
    let _: G::GroupKeyNotOnCurve = chain
        .reverts(
            ops[0].addr,
            d.gm,
            &submit(&ops[0], Bytes::from(vec![0u8; 64])),
        )
        .await;

    // Member 0 first submits another key, then re-submits: its count moves.
    let r = chain
        .exec(ops[0].addr, d.gm, &submit(&ops[0], other.pub64.clone()))
        .await;
    let ev = &events::<G::GroupKeySubmitted>(&r)[0];
    assert_eq!(
        (ev.round, ev.member, ev.groupKeyHash),
        (U256::from(1), ops[0].addr, keccak256(&other.pub64))
    );
    assert_eq!((ev.count, ev.members), (U256::from(1), U256::from(3)));
    assert_eq!(
        chain
            .view(
                d.gm,
                &G::submittedGroupKeyCall {
                    _publicKey: keys[0].clone()
                }
            )
            .await,
        keccak256(&other.pub64)
    );
    let r = chain
        .exec(ops[0].addr, d.gm, &submit(&ops[0], group.pub64.clone()))
        .await;
    assert_eq!(events::<G::GroupKeySubmitted>(&r)[0].count, U256::from(1));
    let r = chain
        .exec(ops[1].addr, d.gm, &submit(&ops[1], other.pub64.clone()))
        .await;
    assert_eq!(
        events::<G::GroupKeySubmitted>(&r)[0].count,
        U256::from(1),
        "the moved vote no longer counts for `other`"
    );
    let r = chain
        .exec(ops[1].addr, d.gm, &submit(&ops[1], group.pub64.clone()))
        .await;
    assert_eq!(events::<G::GroupKeySubmitted>(&r)[0].count, U256::from(2));
    // Nothing active yet: no group address, so no signature verifies.
    assert_eq!(
        chain.view(d.gm, &G::groupAddressCall {}).await,
        Address::ZERO
    );
    let digest = B256::repeat_byte(0x42);
    let sig = group.sign(digest);
    assert!(
        !chain
            .view(
                d.gm,
                &G::verifySignCall {
                    digest,
                    sig: sig.to_vec().into()
                }
            )
            .await
    );

    // The last member activates round 1.
    let r = chain
        .exec(ops[2].addr, d.gm, &submit(&ops[2], group.pub64.clone()))
        .await;
    assert_eq!(
        topics0(&r),
        vec![
            G::GroupKeySubmitted::SIGNATURE_HASH,
            G::tssActiveMemberAppended::SIGNATURE_HASH
        ]
    );
    let ev = &events::<G::tssActiveMemberAppended>(&r)[0];
    assert_eq!(
        (
            ev._roundId,
            ev._groupKey.clone(),
            ev.activeTssMembers.clone()
        ),
        (U256::from(1), group.pub64.clone(), keys.clone())
    );
    let info = chain.view(d.gm, &G::getTssGroupInfoCall {}).await;
    assert_eq!(
        (info._0, info._1, info._2, info._3),
        (
            U256::from(1),
            U256::from(1),
            group.pub64.clone(),
            keys.clone()
        )
    );
    assert_eq!(chain.view(d.gm, &G::roundCall {}).await, U256::from(1));
    assert_eq!(chain.view(d.gm, &G::groupAddressCall {}).await, group.addr);
    assert_eq!(
        chain.view(d.gm, &G::signersRequiredCall {}).await,
        U256::from(2)
    );
    assert!(chain.view(d.gm, &G::inActiveIsEmptyCall {}).await);
    assert_eq!(
        chain.view(d.gm, &G::getTssGroupUnJailMembersCall {}).await,
        ops.iter().map(|k| k.addr).collect::<Vec<_>>()
    );
    assert!(
        chain
            .view(d.gm, &G::isTssGroupUnJailMembersCall { _addr: ops[1].addr })
            .await
    );
    assert!(
        !chain
            .view(
                d.gm,
                &G::isTssGroupUnJailMembersCall {
                    _addr: outsider.addr
                }
            )
            .await
    );
    assert!(
        chain
            .view(
                d.gm,
                &G::memberExistActive_1Call {
                    _publicKey: keys[2].clone()
                }
            )
            .await
    );
    assert!(
        chain
            .view(d.gm, &G::memberExistActive_0Call { _addr: ops[2].addr })
            .await
    );
    assert!(
        !chain
            .view(
                d.gm,
                &G::memberExistActive_1Call {
                    _publicKey: outsider.pub64.clone()
                }
            )
            .await
    );
    assert!(
        !chain
            .view(
                d.gm,
                &G::memberExistInActiveCall {
                    _publicKey: keys[0].clone()
                }
            )
            .await
    );
    let m = chain
        .view(
            d.gm,
            &G::getTssMemberCall {
                _publicKey: keys[1].clone(),
            },
        )
        .await;
    assert_eq!(
        (m.publicKey, m.nodeAddress, m.status),
        (keys[1].clone(), ops[1].addr, 0)
    );
    assert_eq!(
        chain.view(d.gm, &G::getTssGroupMembersCall {}).await,
        keys.clone()
    );
    // The election is over: a late submission is refused.
    let _: G::NotPendingMember = chain
        .reverts(ops[0].addr, d.gm, &submit(&ops[0], group.pub64.clone()))
        .await;

    // verifySign: v in {27, 28} and {0, 1}; not 29, not high s, not 64 bytes, not another key.
    let verify = |s: Vec<u8>, dg: B256| G::verifySignCall {
        digest: dg,
        sig: s.into(),
    };
    for i in 0..8u8 {
        let dg = keccak256([i]);
        let sig = group.sign(dg);
        assert!(
            chain.view(d.gm, &verify(sig.to_vec(), dg)).await,
            "v = {}",
            sig[64]
        );
        let mut v01 = sig;
        v01[64] -= 27;
        assert!(
            chain.view(d.gm, &verify(v01.to_vec(), dg)).await,
            "v = {}",
            v01[64]
        );
        let mut wrong_v = sig;
        wrong_v[64] = 55 - sig[64]; // the other parity
        assert!(!chain.view(d.gm, &verify(wrong_v.to_vec(), dg)).await);
        let mut v29 = sig;
        v29[64] = 29;
        assert!(!chain.view(d.gm, &verify(v29.to_vec(), dg)).await);
        assert!(
            !chain
                .view(d.gm, &verify(high_s_twin(&sig).to_vec(), dg))
                .await,
            "high s must be refused"
        );
        assert!(!chain.view(d.gm, &verify(sig[..64].to_vec(), dg)).await);
        let mut long = sig.to_vec();
        long.push(0);
        assert!(!chain.view(d.gm, &verify(long, dg)).await);
        assert!(
            !chain
                .view(d.gm, &verify(sig.to_vec(), keccak256([i, 1])))
                .await
        );
        assert!(!chain.view(d.gm, &verify(other.sign(dg).to_vec(), dg)).await);
    }
    // The high-s twin really is a valid secp256k1 signature (ecrecover gives the group address),
    // so the refusal above is the low-s rule and not a broken twin.
    let dg = B256::repeat_byte(7);
    let twin = high_s_twin(&group.sign(dg));
    let mut pre = vec![0u8; 0];
    pre.extend_from_slice(dg.as_slice());
    pre.extend_from_slice(&[0u8; 31]);
    pre.push(twin[64]);
    pre.extend_from_slice(&twin[..64]);
    let rec = chain
        .call_raw(owner, Address::with_last_byte(1), pre)
        .await
        .unwrap();
    assert_eq!(Address::from_slice(&rec[12..]), group.addr);

    state_commitment_chain(chain, &d, &group, &other).await;
    eprintln!("election_activation_and_verify_sign: ok");
}

async fn state_commitment_chain(chain: &Chain, d: &Deployment, group: &NodeKey, other: &NodeKey) {
    let scc = chain.deploy(&Scc::BYTECODE, d.gm.abi_encode()).await;
    let relayer = chain.accounts[3];
    let roots = vec![
        B256::repeat_byte(1),
        B256::repeat_byte(2),
        B256::repeat_byte(3),
    ];
    let digest = state_batch_digest(&roots, U256::ZERO);
    // The contract's digest is the Rust one: Mantle's keccak256(abi.encode(batch, start)).
    assert_eq!(
        digest,
        keccak256((roots.clone(), U256::ZERO).abi_encode_params())
    );
    let append = |sig: Vec<u8>, start: u64, r: Vec<B256>| Scc::appendStateBatchCall {
        batch: r,
        shouldStartAtElement: U256::from(start),
        sig: sig.into(),
    };
    let _: Scc::InvalidGroupSignature = chain
        .reverts(
            relayer,
            scc,
            &append(other.sign(digest).to_vec(), 0, roots.clone()),
        )
        .await;
    let _: Scc::InvalidGroupSignature = chain
        .reverts(
            relayer,
            scc,
            &append(high_s_twin(&group.sign(digest)).to_vec(), 0, roots.clone()),
        )
        .await;
    // A real transaction with a bad signature is mined and reverts.
    let bad = chain
        .send_unchecked(
            relayer,
            Some(scc),
            append(other.sign(digest).to_vec(), 0, roots.clone()).abi_encode(),
            Some(300_000),
        )
        .await;
    assert_eq!(bad["status"], "0x0");
    let e: Scc::WrongStartElement = chain
        .reverts(
            relayer,
            scc,
            &append(group.sign(digest).to_vec(), 1, roots.clone()),
        )
        .await;
    assert_eq!((e.expected, e.given), (U256::ZERO, U256::from(1)));

    let sig = group.sign(digest);
    let r = chain
        .exec(relayer, scc, &append(sig.to_vec(), 0, roots.clone()))
        .await;
    assert_eq!(topics0(&r), vec![Scc::StateBatchAppended::SIGNATURE_HASH]);
    let ev = &events::<Scc::StateBatchAppended>(&r)[0];
    assert_eq!(
        (ev._batchIndex, ev._batchSize, ev._prevTotalElements),
        (U256::ZERO, U256::from(3), U256::ZERO)
    );
    assert_eq!(ev._batchRoot, keccak256(roots.abi_encode()));
    assert_eq!(ev._signature.as_ref(), &sig[..]);
    assert_eq!(
        chain.view(scc, &Scc::totalElementsCall {}).await,
        U256::from(3)
    );
    // The second batch starts at 3; v as a recovery id (0/1) works too.
    let roots2 = vec![B256::repeat_byte(4)];
    let d2 = state_batch_digest(&roots2, U256::from(3));
    let mut sig2 = group.sign(d2);
    sig2[64] -= 27;
    let r = chain
        .exec(relayer, scc, &append(sig2.to_vec(), 3, roots2))
        .await;
    assert_eq!(
        events::<Scc::StateBatchAppended>(&r)[0]._batchIndex,
        U256::from(1)
    );

    // Rollback: signed keccak256(abi.encode(start_block)).
    let rb = |s: Vec<u8>, block: u64| Scc::rollBackL2ChainCall {
        shouldRollBack: U256::from(block),
        shouldStartAtElement: U256::from(4),
        sig: s.into(),
    };
    let _: Scc::InvalidGroupSignature = chain
        .reverts(
            relayer,
            scc,
            &rb(group.sign(rollback_digest(U256::from(12))).to_vec(), 11),
        )
        .await;
    let r = chain
        .exec(
            relayer,
            scc,
            &rb(group.sign(rollback_digest(U256::from(11))).to_vec(), 11),
        )
        .await;
    assert_eq!(topics0(&r), vec![Scc::RollBackL2Chain::SIGNATURE_HASH]);
    assert_eq!(
        events::<Scc::RollBackL2Chain>(&r)[0]._startAtElement,
        U256::from(11)
    );

    // deleteStateBatch drops batch 1 and resets totalElements.
    let _: Scc::NoSuchBatch = chain
        .reverts(
            relayer,
            scc,
            &Scc::deleteStateBatchCall {
                batchIndex: U256::from(2),
            },
        )
        .await;
    let r = chain
        .exec(
            relayer,
            scc,
            &Scc::deleteStateBatchCall {
                batchIndex: U256::from(1),
            },
        )
        .await;
    assert_eq!(topics0(&r), vec![Scc::StateBatchDeleted::SIGNATURE_HASH]);
    assert_eq!(
        events::<Scc::StateBatchDeleted>(&r)[0]._batchIndex,
        U256::from(1)
    );
    assert_eq!(
        chain.view(scc, &Scc::totalElementsCall {}).await,
        U256::from(3)
    );
    eprintln!("state_commitment_chain: ok");
}

async fn election_deadline_and_cancel(chain: &Chain) {
    let d = Deployment::new(chain).await;
    let owner = d.owner;
    let ops = [
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
    ];
    let group = NodeKey::random();
    let stranger = chain.accounts[4];
    let set = |t: u64, k: &[&NodeKey]| G::setTssGroupMemberCall {
        _threshold: U256::from(t),
        _pubkeys: k.iter().map(|m| m.pub64.clone()).collect(),
    };
    let submit = |m: &NodeKey| G::setGroupPublicKeyCall {
        _publicKey: m.pub64.clone(),
        _groupPublicKey: group.pub64.clone(),
    };

    let _: G::NoPendingElection = chain.reverts(owner, d.gm, &G::cancelElectionCall {}).await;
    chain.exec(owner, d.gm, &set(1, &[&ops[0], &ops[1]])).await;
    chain.exec(ops[0].addr, d.gm, &submit(&ops[0])).await;
    // A member banned while the election runs cannot submit (so the election cannot activate).
    let doomed = d.operator(chain).await;
    chain.exec(owner, d.gm, &set(1, &[&ops[0], &doomed])).await;
    chain
        .exec(owner, d.gm, &G::banCall { node: doomed.addr })
        .await;
    let e: G::MemberIsBanned = chain.reverts(doomed.addr, d.gm, &submit(&doomed)).await;
    assert_eq!(e.node, doomed.addr);
    chain.exec(owner, d.gm, &set(1, &[&ops[0], &ops[1]])).await;
    chain.exec(ops[0].addr, d.gm, &submit(&ops[0])).await;
    // A new setTssGroupMember replaces the pending election and forgets its submissions.
    chain.exec(owner, d.gm, &set(1, &[&ops[0], &ops[2]])).await;
    assert_eq!(
        chain
            .view(
                d.gm,
                &G::submittedGroupKeyCall {
                    _publicKey: ops[0].pub64.clone()
                }
            )
            .await,
        B256::ZERO
    );
    assert!(
        !chain
            .view(
                d.gm,
                &G::memberExistInActiveCall {
                    _publicKey: ops[1].pub64.clone()
                }
            )
            .await
    );
    let _: G::NotPendingMember = chain.reverts(ops[1].addr, d.gm, &submit(&ops[1])).await;
    let r = chain.exec(ops[2].addr, d.gm, &submit(&ops[2])).await;
    assert_eq!(
        events::<G::GroupKeySubmitted>(&r)[0].count,
        U256::from(1),
        "ops[0]'s old vote was dropped"
    );

    // Before the deadline only the owner may cancel.
    let e: G::ElectionNotExpired = chain
        .reverts(stranger, d.gm, &G::cancelElectionCall {})
        .await;
    assert_eq!(
        e.deadline,
        chain.view(d.gm, &G::electionDeadlineCall {}).await
    );
    chain.increase_time(ELECTION_TIMEOUT + 1).await;
    let e: G::ElectionDeadlinePassed = chain.reverts(ops[0].addr, d.gm, &submit(&ops[0])).await;
    assert!(e.deadline > U256::ZERO);
    let r = chain.exec(stranger, d.gm, &G::cancelElectionCall {}).await;
    assert_eq!(events::<G::ElectionExpired>(&r)[0].round, U256::from(1));
    assert!(chain.view(d.gm, &G::inActiveIsEmptyCall {}).await);
    assert_eq!(
        chain.view(d.gm, &G::roundCall {}).await,
        U256::ZERO,
        "nothing activated"
    );
    let _: G::NoPendingElection = chain
        .reverts(stranger, d.gm, &G::cancelElectionCall {})
        .await;

    // Run again: the owner can cancel before the deadline, then a full election activates.
    chain.exec(owner, d.gm, &set(1, &[&ops[0], &ops[1]])).await;
    let r = chain.exec(owner, d.gm, &G::cancelElectionCall {}).await;
    assert_eq!(events::<G::ElectionExpired>(&r)[0].round, U256::from(1));
    let r = d
        .elect(chain, 1, &[&ops[0], &ops[1], &ops[2]], &group)
        .await;
    assert_eq!(
        events::<G::tssActiveMemberAppended>(&r)[0]._roundId,
        U256::from(1)
    );
    // Round 2 with the same key (a resharing keeps the address).
    let r = d.elect(chain, 1, &[&ops[1], &ops[2]], &group).await;
    assert_eq!(
        events::<G::tssActiveMemberAppended>(&r)[0]._roundId,
        U256::from(2)
    );
    let info = chain.view(d.gm, &G::getTssGroupInfoCall {}).await;
    assert_eq!(info._3, vec![ops[1].pub64.clone(), ops[2].pub64.clone()]);
    assert!(
        !chain
            .view(
                d.gm,
                &G::memberExistActive_1Call {
                    _publicKey: ops[0].pub64.clone()
                }
            )
            .await
    );
    eprintln!("election_deadline_and_cancel: ok");
}

async fn removal_rules_and_bans(chain: &Chain) {
    let d = Deployment::new(chain).await;
    let owner = d.owner;
    let ops = [
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
    ];
    let group = NodeKey::random();
    d.elect(chain, 1, &[&ops[0], &ops[1], &ops[2]], &group)
        .await;
    let fraud = B256::right_padding_from(b"fraud");
    assert_eq!(chain.view(d.gm, &G::REASON_FRAUDCall {}).await, fraud);

    let _: G::NotActiveMember = chain
        .reverts(
            owner,
            d.gm,
            &G::removeMember_1Call {
                _publicKey: NodeKey::random().pub64,
                reason: fraud,
            },
        )
        .await;
    let r = chain
        .exec(
            owner,
            d.gm,
            &G::removeMember_1Call {
                _publicKey: ops[0].pub64.clone(),
                reason: fraud,
            },
        )
        .await;
    assert_eq!(
        topics0(&r),
        vec![
            G::MemberBanned::SIGNATURE_HASH,
            G::MemberRemoved::SIGNATURE_HASH
        ]
    );
    let ev = &events::<G::MemberRemoved>(&r)[0];
    assert_eq!(
        (ev.round, ev.node, ev.reason),
        (U256::from(1), ops[0].addr, fraud)
    );
    assert!(chain.view(d.gm, &G::bannedCall { node: ops[0].addr }).await);
    // The group key is unchanged by a removal.
    assert_eq!(chain.view(d.gm, &G::groupAddressCall {}).await, group.addr);
    assert_eq!(
        chain.view(d.gm, &G::getTssGroupMembersCall {}).await,
        vec![ops[1].pub64.clone(), ops[2].pub64.clone()]
    );
    // Two left = threshold + 1: a further removal would leave too few signers.
    let e: G::TooFewMembers = chain
        .reverts(
            owner,
            d.gm,
            &G::removeMember_0Call {
                _publicKey: ops[1].pub64.clone(),
            },
        )
        .await;
    assert_eq!((e.remaining, e.required), (U256::from(1), U256::from(2)));
    // The banned node can neither be elected nor register again, nor take delegations.
    let e: G::MemberIsBanned = chain
        .reverts(
            owner,
            d.gm,
            &G::setTssGroupMemberCall {
                _threshold: U256::from(1),
                _pubkeys: vec![ops[0].pub64.clone(), ops[1].pub64.clone()],
            },
        )
        .await;
    assert_eq!(e.node, ops[0].addr);
    assert!(
        !chain
            .view(
                d.staking,
                &S::isCanOperatorCall {
                    operator: ops[0].addr
                }
            )
            .await
    );
    let e: S::OperatorBanned = chain
        .reverts(
            chain.accounts[5],
            d.staking,
            &S::delegateToCall {
                operator: ops[0].addr,
            },
        )
        .await;
    assert_eq!(e.operator, ops[0].addr);
    // A removal without the fraud reason does not ban.
    let d2 = Deployment::new(chain).await;
    let more = [
        d2.operator(chain).await,
        d2.operator(chain).await,
        d2.operator(chain).await,
    ];
    d2.elect(chain, 1, &[&more[0], &more[1], &more[2]], &group)
        .await;
    let r = chain
        .exec(
            owner,
            d2.gm,
            &G::removeMember_0Call {
                _publicKey: more[2].pub64.clone(),
            },
        )
        .await;
    assert_eq!(topics0(&r), vec![G::MemberRemoved::SIGNATURE_HASH]);
    assert!(
        !chain
            .view(d2.gm, &G::bannedCall { node: more[2].addr })
            .await
    );
    eprintln!("removal_rules_and_bans: ok");
}

async fn challenge_and_rollup_views(chain: &Chain) {
    let challenge = chain.deploy(&C::BYTECODE, vec![]).await;
    let rollup = chain.deploy(&R::BYTECODE, vec![]).await;
    let (defender, challenger) = (chain.accounts[1], chain.accounts[2]);
    assert_eq!(
        chain.view(challenge, &C::winnerCall {}).await,
        Address::ZERO
    );
    let r = chain
        .exec(
            chain.accounts[3],
            challenge,
            &C::setCall {
                _defender: defender,
                _challenger: challenger,
                _winner: challenger,
                _rollback: true,
                _startInboxSize: U256::from(42),
            },
        )
        .await;
    assert_eq!(topics0(&r), vec![C::ChallengeSet::SIGNATURE_HASH]);
    assert_eq!(chain.view(challenge, &C::defenderCall {}).await, defender);
    assert_eq!(
        chain.view(challenge, &C::challengerCall {}).await,
        challenger
    );
    assert_eq!(chain.view(challenge, &C::winnerCall {}).await, challenger);
    assert!(chain.view(challenge, &C::rollbackCall {}).await);
    assert_eq!(
        chain.view(challenge, &C::startInboxSizeCall {}).await,
        U256::from(42)
    );
    let ctx = R::ChallengeCtx {
        completed: true,
        challengeAddress: challenge,
        defenderAddress: defender,
        challengerAddress: challenger,
        defenderAssertionID: U256::from(7),
        challengerAssertionID: U256::from(8),
    };
    chain
        .exec(chain.accounts[3], rollup, &R::setChallengeCtxCall { ctx })
        .await;
    let got = chain.view(rollup, &R::challengeCtxCall {}).await;
    assert_eq!(
        (
            got.completed,
            got.challengeAddress,
            got.defenderAddress,
            got.challengerAddress
        ),
        (true, challenge, defender, challenger)
    );
    assert_eq!(
        (got.defenderAssertionID, got.challengerAssertionID),
        (U256::from(7), U256::from(8))
    );
    eprintln!("challenge_and_rollup_views: ok");
}
