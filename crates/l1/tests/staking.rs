//! CohortStaking on a real anvil: governance setters, operator registration, delegation, the
//! withdrawal queue (queued shares stay slashable), liveness slashing with a real group
//! signature, jail / unjail timing, rewards and quit requests.
//!
//! One anvil for the file; scenarios deploy their own contracts and run in order in one test
//! because some move the chain's clock.

mod common;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolEvent;
use cohort_l1::bindings::{CohortGroupManager as G, CohortStaking as S, TestToken as T};
use cohort_l1::cohort_domain;
use common::*;

#[tokio::test(flavor = "current_thread")]
async fn staking_on_anvil() {
    let chain = Chain::start().await;
    governance_setters(&chain).await;
    operator_registration(&chain).await;
    delegation_and_withdrawal_queue(&chain).await;
    liveness_slash_jail_and_unjail(&chain).await;
    fraud_slash_removes_and_bans(&chain).await;
    mantle_slashing_behind_compat_flag(&chain).await;
}

async fn governance_setters(chain: &Chain) {
    let d = Deployment::new(chain).await;
    let (owner, stranger) = (d.owner, chain.accounts[1]);
    let v = U256::from(5);
    macro_rules! owner_only {
        ($call:expr) => {{
            let e: S::OwnableUnauthorizedAccount = chain.reverts(stranger, d.staking, &$call).await;
            assert_eq!(e.account, stranger);
            let r = chain.exec(owner, d.staking, &$call).await;
            assert!(
                !r["logs"].as_array().unwrap().is_empty(),
                "a setter must emit an event"
            );
        }};
    }
    owner_only!(S::setMinStakeCall {
        value: U256::from(MIN_STAKE)
    });
    owner_only!(S::setSlashingParamsCall {
        _slashAmount: [U256::from(100), U256::from(500)]
    });
    owner_only!(S::setLivenessParamsCall {
        window: 200,
        maxMissed: 50
    });
    owner_only!(S::setQuorumBpsCall {
        value: U256::from(6667)
    });
    owner_only!(S::setRewardBpsCall {
        value: U256::from(10000)
    });
    owner_only!(S::setWithdrawalDelayCall { value: v });
    owner_only!(S::setJailPeriodCall { value: v });
    owner_only!(S::setTreasuryCall { value: d.treasury });
    owner_only!(S::setWhitelistCall {
        operator: stranger,
        allowed: true
    });
    owner_only!(S::setWhitelistEnabledCall { enabled: false });
    owner_only!(S::clearQuitRequestListCall {});
    let _: S::InvalidParameter = chain
        .reverts(
            owner,
            d.staking,
            &S::setLivenessParamsCall {
                window: 10,
                maxMissed: 10,
            },
        )
        .await;
    let _: S::InvalidParameter = chain
        .reverts(
            owner,
            d.staking,
            &S::setLivenessParamsCall {
                window: 0,
                maxMissed: 0,
            },
        )
        .await;
    let _: S::InvalidParameter = chain
        .reverts(owner, d.staking, &S::setQuorumBpsCall { value: U256::ZERO })
        .await;
    let _: S::InvalidParameter = chain
        .reverts(
            owner,
            d.staking,
            &S::setQuorumBpsCall {
                value: U256::from(10001),
            },
        )
        .await;
    let _: S::InvalidParameter = chain
        .reverts(
            owner,
            d.staking,
            &S::setRewardBpsCall {
                value: U256::from(10001),
            },
        )
        .await;
    let _: S::ZeroAddress = chain
        .reverts(
            owner,
            d.staking,
            &S::setTreasuryCall {
                value: Address::ZERO,
            },
        )
        .await;
    let p = chain.view(d.staking, &S::getSlashingParamsCall {}).await;
    assert_eq!(
        (p._0, p._1),
        ([U256::from(100), U256::from(500)], [U256::ZERO; 2])
    );
    let lp = chain.view(d.staking, &S::livenessParamsCall {}).await;
    assert_eq!((lp.window, lp.maxMissed), (200, 50));
    eprintln!("governance_setters: ok");
}

async fn operator_registration(chain: &Chain) {
    let d = Deployment::new(chain).await;
    let k = NodeKey::random();
    chain.impersonate(k.addr).await;
    let reg = |key: Bytes| S::registerAsOperatorCall { pubKey: key };
    // Someone else's key.
    let e: S::NotKeyOwner = chain
        .reverts(chain.accounts[1], d.staking, &reg(k.pub64.clone()))
        .await;
    assert_eq!((e.sender, e.keyAddress), (chain.accounts[1], k.addr));
    let e: S::InvalidPublicKeyLength = chain
        .reverts(
            k.addr,
            d.staking,
            &reg(Bytes::copy_from_slice(&k.pub64[..63])),
        )
        .await;
    assert_eq!(e.length, U256::from(63));
    // Whitelist.
    chain
        .exec(
            d.owner,
            d.staking,
            &S::setWhitelistEnabledCall { enabled: true },
        )
        .await;
    let e: S::NotWhitelisted = chain
        .reverts(k.addr, d.staking, &reg(k.pub64.clone()))
        .await;
    assert_eq!(e.operator, k.addr);
    chain
        .exec(
            d.owner,
            d.staking,
            &S::setWhitelistCall {
                operator: k.addr,
                allowed: true,
            },
        )
        .await;
    let r = chain.exec(k.addr, d.staking, &reg(k.pub64.clone())).await;
    let ev = &events::<S::OperatorRegistered>(&r)[0];
    assert_eq!(
        (ev.operator, ev.publicKey.clone()),
        (k.addr, k.pub64.clone())
    );
    assert_eq!(
        chain
            .view(d.staking, &S::operatorsCall { operator: k.addr })
            .await,
        k.pub64
    );
    assert_eq!(
        chain
            .view(d.staking, &S::delegationCall { staker: k.addr })
            .await,
        k.addr
    );
    let _: S::AlreadyRegistered = chain
        .reverts(k.addr, d.staking, &reg(k.pub64.clone()))
        .await;
    chain
        .exec(
            d.owner,
            d.staking,
            &S::setWhitelistEnabledCall { enabled: false },
        )
        .await;
    // Not yet staked: not an operator the group manager may elect.
    assert!(
        !chain
            .view(d.staking, &S::isCanOperatorCall { operator: k.addr })
            .await
    );
    // Banned by the group manager: cannot register.
    let b = NodeKey::random();
    chain.impersonate(b.addr).await;
    chain
        .exec(d.owner, d.gm, &G::banCall { node: b.addr })
        .await;
    let e: S::OperatorBanned = chain
        .reverts(b.addr, d.staking, &reg(b.pub64.clone()))
        .await;
    assert_eq!(e.operator, b.addr);
    // A staker who delegated elsewhere cannot become an operator with those shares.
    let c = NodeKey::random();
    chain.impersonate(c.addr).await;
    chain
        .exec(c.addr, d.staking, &S::delegateToCall { operator: k.addr })
        .await;
    let e: S::AlreadyDelegated = chain
        .reverts(c.addr, d.staking, &reg(c.pub64.clone()))
        .await;
    assert_eq!((e.staker, e.operator), (c.addr, k.addr));
    eprintln!("operator_registration: ok");
}

async fn delegation_and_withdrawal_queue(chain: &Chain) {
    let d = Deployment::new(chain).await;
    chain
        .exec(
            d.owner,
            d.staking,
            &S::setWithdrawalDelayCall {
                value: U256::from(100),
            },
        )
        .await;
    let op = d.operator(chain).await;
    let staker = chain.accounts[6];
    d.fund(chain, staker, 500).await;
    let _: S::NotDelegated = chain
        .reverts(
            staker,
            d.staking,
            &S::depositCall {
                amount: U256::from(1),
            },
        )
        .await;
    let e: S::NotRegistered = chain
        .reverts(staker, d.staking, &S::delegateToCall { operator: staker })
        .await;
    assert_eq!(e.operator, staker);
    let r = chain
        .exec(staker, d.staking, &S::delegateToCall { operator: op.addr })
        .await;
    let ev = &events::<S::DelegatedTo>(&r)[0];
    assert_eq!((ev.staker, ev.operator), (staker, op.addr));
    let e: S::AlreadyDelegated = chain
        .reverts(staker, d.staking, &S::delegateToCall { operator: op.addr })
        .await;
    assert_eq!(e.operator, op.addr);
    let _: S::ZeroAmount = chain
        .reverts(staker, d.staking, &S::depositCall { amount: U256::ZERO })
        .await;
    let r = chain
        .exec(
            staker,
            d.staking,
            &S::depositCall {
                amount: U256::from(500),
            },
        )
        .await;
    let ev = &events::<S::Deposited>(&r)[0];
    assert_eq!(
        (ev.operator, ev.amount, ev.shares),
        (op.addr, U256::from(500), U256::from(500))
    );
    let pool = chain
        .view(d.staking, &S::poolOfCall { operator: op.addr })
        .await;
    assert_eq!(
        (pool.totalShares, pool.totalAssets),
        (U256::from(1500), U256::from(1500))
    );
    assert_eq!(
        chain
            .view(d.staking, &S::operatorStakeCall { operator: op.addr })
            .await,
        U256::from(1500)
    );

    // Queue 200 of 500 shares.
    let e: S::InsufficientShares = chain
        .reverts(
            staker,
            d.staking,
            &S::queueWithdrawalCall {
                amount: U256::from(501),
            },
        )
        .await;
    assert_eq!(
        (e.available, e.requested),
        (U256::from(500), U256::from(501))
    );
    let r = chain
        .exec(
            staker,
            d.staking,
            &S::queueWithdrawalCall {
                amount: U256::from(200),
            },
        )
        .await;
    assert_eq!(
        topics0(&r),
        vec![
            S::WithdrawQueue::SIGNATURE_HASH,
            S::WithdrawalQueued::SIGNATURE_HASH
        ]
    );
    let q = &events::<S::WithdrawalQueued>(&r)[0];
    let block = chain
        .rpc(
            "eth_getBlockByNumber",
            serde_json::json!([r["blockNumber"], false]),
        )
        .await
        .unwrap();
    let ts = U256::from_str_radix(
        block["timestamp"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert_eq!(
        (q.staker, q.shares, q.unlockAt),
        (staker, U256::from(200), ts + U256::from(100))
    );
    // Queued shares stay in the pool (slashable) but no longer count as the operator's stake.
    let pool = chain
        .view(d.staking, &S::poolOfCall { operator: op.addr })
        .await;
    assert_eq!(pool.totalShares, U256::from(1500));
    assert_eq!(
        chain
            .view(d.staking, &S::operatorStakeCall { operator: op.addr })
            .await,
        U256::from(1300)
    );
    let e: S::InsufficientShares = chain
        .reverts(
            staker,
            d.staking,
            &S::queueWithdrawalCall {
                amount: U256::from(301),
            },
        )
        .await;
    assert_eq!(e.available, U256::from(300));
    let early = chain
        .call_raw(
            staker,
            d.staking,
            alloy_sol_types::SolCall::abi_encode(&S::canCompleteQueuedWithdrawalCall {}),
        )
        .await
        .unwrap();
    assert_eq!(early[31], 0);
    let _: S::NothingToComplete = chain
        .reverts(staker, d.staking, &S::completeWithdrawCall {})
        .await;
    chain
        .exec(staker, d.staking, &S::startWithdrawCall {})
        .await; // Mantle's no-op
    chain.increase_time(101).await;
    let due = chain
        .call_raw(
            staker,
            d.staking,
            alloy_sol_types::SolCall::abi_encode(&S::canCompleteQueuedWithdrawalCall {}),
        )
        .await
        .unwrap();
    assert_eq!(due[31], 1);
    let before = chain
        .view(d.token, &T::balanceOfCall { account: staker })
        .await;
    let r = chain
        .exec(staker, d.staking, &S::completeWithdrawCall {})
        .await;
    assert_eq!(
        events::<S::WithdrawalCompleted>(&r)[0].amount,
        U256::from(200)
    );
    assert_eq!(
        chain
            .view(d.token, &T::balanceOfCall { account: staker })
            .await,
        before + U256::from(200)
    );
    let pool = chain
        .view(d.staking, &S::poolOfCall { operator: op.addr })
        .await;
    assert_eq!(
        (pool.totalShares, pool.totalAssets),
        (U256::from(1300), U256::from(1300))
    );
    let _: S::NothingToComplete = chain
        .reverts(staker, d.staking, &S::completeWithdrawCall {})
        .await;
    // Mantle's withdraw() queues everything left.
    let r = chain.exec(staker, d.staking, &S::withdrawCall {}).await;
    assert_eq!(events::<S::WithdrawQueue>(&r)[0].shares, U256::from(300));

    // A member's operator may not fall below minStake: elect op, then try to withdraw too much.
    let (o2, o3) = (d.operator(chain).await, d.operator(chain).await);
    d.elect(chain, 1, &[&op, &o2, &o3], &NodeKey::random())
        .await;
    // op's stake not queued: 1300 - 300 = 1000; leaving 99 < 100 is refused, 100 is fine.
    let e: S::BelowMinStake = chain
        .reverts(
            op.addr,
            d.staking,
            &S::queueWithdrawalCall {
                amount: U256::from(901),
            },
        )
        .await;
    assert_eq!(
        (e.stakeAfter, e.minStake),
        (U256::from(99), U256::from(MIN_STAKE))
    );
    chain
        .exec(
            op.addr,
            d.staking,
            &S::queueWithdrawalCall {
                amount: U256::from(900),
            },
        )
        .await;
    // A non-member staker has no such floor.
    let free = d.operator(chain).await;
    chain
        .exec(
            free.addr,
            d.staking,
            &S::queueWithdrawalCall {
                amount: U256::from(STAKE),
            },
        )
        .await;
    eprintln!("delegation_and_withdrawal_queue: ok");
}

fn sorted(mut v: Vec<Address>) -> Vec<Address> {
    v.sort();
    v
}

async fn liveness_slash_jail_and_unjail(chain: &Chain) {
    let d = Deployment::new(chain).await;
    let owner = d.owner;
    chain
        .exec(
            owner,
            d.staking,
            &S::setSlashingParamsCall {
                _slashAmount: [U256::from(100), U256::from(500)],
            },
        )
        .await;
    chain
        .exec(
            owner,
            d.staking,
            &S::setJailPeriodCall {
                value: U256::from(1000),
            },
        )
        .await;
    chain
        .exec(
            owner,
            d.staking,
            &S::setWithdrawalDelayCall {
                value: U256::from(10),
            },
        )
        .await;
    let ops = [
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
    ];
    let outsider = d.operator(chain).await;
    let group = NodeKey::random();
    d.elect(chain, 1, &[&ops[0], &ops[1], &ops[2], &ops[3]], &group)
        .await;
    let node = ops[0].addr;
    // A delegator of the node queues all its shares before the slash: they stay slashable.
    let delegator = chain.accounts[7];
    d.fund(chain, delegator, 1000).await;
    chain
        .exec(delegator, d.staking, &S::delegateToCall { operator: node })
        .await;
    chain
        .exec(
            delegator,
            d.staking,
            &S::depositCall {
                amount: U256::from(1000),
            },
        )
        .await;
    chain
        .exec(
            delegator,
            d.staking,
            &S::queueWithdrawalCall {
                amount: U256::from(1000),
            },
        )
        .await;
    // ops[2] sends its rewards to a claimer.
    let claimer = chain.accounts[8];
    let e: S::NotOperator = chain
        .reverts(
            ops[1].addr,
            d.staking,
            &S::setClaimerCall {
                operator: ops[2].addr,
                claimer,
            },
        )
        .await;
    assert_eq!(e.caller, ops[1].addr);
    chain
        .exec(
            ops[2].addr,
            d.staking,
            &S::setClaimerCall {
                operator: ops[2].addr,
                claimer,
            },
        )
        .await;

    let others = sorted(vec![ops[1].addr, ops[2].addr, ops[3].addr]);
    let prop =
        |round: u64, node: Address, from: u64, to: u64, missed: u32, approvers: Vec<Address>| {
            S::LivenessSlash {
                round,
                node,
                fromBatch: from,
                toBatch: to,
                missed,
                approvers,
            }
        };
    let domain = cohort_domain(chain.chain_id().await, d.staking);
    let digest = |p: &S::LivenessSlash| {
        cohort_l1::LivenessSlash {
            round: p.round,
            node: p.node,
            fromBatch: p.fromBatch,
            toBatch: p.toBatch,
            missed: p.missed,
            approvers: p.approvers.clone(),
        }
        .digest(&domain)
    };
    let slash = |p: &S::LivenessSlash, sig: [u8; 65]| S::slashLivenessCall {
        p: p.clone(),
        sig: sig.to_vec().into(),
    };
    let signed = |p: &S::LivenessSlash| slash(p, group.sign(digest(p)));
    let relayer = chain.accounts[5];

    // The contract's EIP-712 digest and domain are the Rust ones.
    let good = prop(1, node, 1, 100, 60, others.clone());
    assert_eq!(
        chain
            .view(d.staking, &S::livenessDigestCall { p: good.clone() })
            .await,
        digest(&good)
    );
    assert_eq!(
        chain.view(d.staking, &S::domainSeparatorCall {}).await,
        domain.separator()
    );

    // Every check of spec 3.3.2, in order, with an otherwise valid signed proposition.
    let e: S::WrongRound = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(2, node, 1, 100, 60, others.clone())),
        )
        .await;
    assert_eq!((e.expected, e.given), (U256::from(1), U256::from(2)));
    let e: S::NodeNotSlashable = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, outsider.addr, 1, 100, 60, others.clone())),
        )
        .await;
    assert_eq!(e.node, outsider.addr);
    let _: S::InvalidWindow = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 101, 100, 60, others.clone())),
        )
        .await;
    let _: S::InvalidWindow = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 1, 201, 60, others.clone())),
        )
        .await;
    let e: S::InvalidMissed = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 1, 100, 50, others.clone())),
        )
        .await;
    assert_eq!(e.missed, 50);
    let _: S::InvalidMissed = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 1, 100, 101, others.clone())),
        )
        .await;
    let e: S::WindowAlreadySlashed = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 0, 99, 60, others.clone())),
        )
        .await;
    assert_eq!((e.fromBatch, e.lastSlashed), (0, 0));
    let e: S::TooFewApprovers = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 1, 100, 60, vec![others[0]])),
        )
        .await;
    assert_eq!((e.given, e.required), (U256::from(1), U256::from(2)));
    let e: S::ApproversNotAscending = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 1, 100, 60, vec![others[1], others[0]])),
        )
        .await;
    assert_eq!(e.index, U256::from(1));
    let _: S::ApproversNotAscending = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 1, 100, 60, vec![others[0], others[0]])),
        )
        .await;
    let e: S::InvalidApprover = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 1, 100, 60, sorted(vec![node, ops[1].addr]))),
        )
        .await;
    assert_eq!(e.approver, node);
    let e: S::InvalidApprover = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(
                1,
                node,
                1,
                100,
                60,
                sorted(vec![outsider.addr, ops[1].addr]),
            )),
        )
        .await;
    assert_eq!(e.approver, outsider.addr);
    // 2 of 3 equal stakes is 66.66 % < 66.67 %.
    let e: S::QuorumNotReached = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 1, 100, 60, others[..2].to_vec())),
        )
        .await;
    assert_eq!(
        (e.approverStake, e.totalStake),
        (U256::from(2 * STAKE), U256::from(3 * STAKE))
    );
    let _: S::InvalidGroupSignature = chain
        .reverts(
            relayer,
            d.staking,
            &slash(&good, NodeKey::random().sign(digest(&good))),
        )
        .await;
    let _: S::InvalidGroupSignature = chain
        .reverts(
            relayer,
            d.staking,
            &slash(&good, high_s_twin(&group.sign(digest(&good)))),
        )
        .await;
    // Signed for another proposition.
    let _: S::InvalidGroupSignature = chain
        .reverts(
            relayer,
            d.staking,
            &slash(
                &good,
                group.sign(digest(&prop(1, node, 1, 100, 61, others.clone()))),
            ),
        )
        .await;

    // Valid: slashed, jailed, rewarded, recorded.
    let r = chain.exec(relayer, d.staking, &signed(&good)).await;
    assert_eq!(
        topics0(&r),
        vec![
            G::MemberJailed::SIGNATURE_HASH,
            S::Slashing::SIGNATURE_HASH,
            S::LivenessSlashed::SIGNATURE_HASH
        ]
    );
    let ev = &events::<S::Slashing>(&r)[0];
    assert_eq!((ev.node, ev.slashType), (node, 0));
    let ev = &events::<S::LivenessSlashed>(&r)[0];
    assert_eq!(
        (ev.round, ev.node, ev.amount, ev.approvers.clone()),
        (U256::from(1), node, U256::from(100), others.clone())
    );
    assert_eq!(events::<G::MemberJailed>(&r)[0].node, node);
    assert!(chain.view(d.staking, &S::isJailedCall { user: node }).await);
    assert!(
        !chain
            .view(d.staking, &S::isJailedCall { user: ops[1].addr })
            .await
    );
    assert!(
        chain
            .view(
                d.staking,
                &S::getSlashRecordCall {
                    batchIndex: U256::from(100),
                    user: node
                }
            )
            .await
    );
    assert!(
        !chain
            .view(
                d.staking,
                &S::getSlashRecordCall {
                    batchIndex: U256::from(99),
                    user: node
                }
            )
            .await
    );
    assert_eq!(
        chain
            .view(d.staking, &S::lastLivenessBatchCall { node })
            .await,
        100
    );
    assert!(
        chain
            .view(
                d.staking,
                &S::usedPropositionCall {
                    digest: digest(&good)
                }
            )
            .await
    );
    assert_eq!(
        chain.view(d.gm, &G::getTssGroupUnJailMembersCall {}).await,
        vec![ops[1].addr, ops[2].addr, ops[3].addr]
    );
    let pool = chain
        .view(d.staking, &S::poolOfCall { operator: node })
        .await;
    assert_eq!(
        (pool.totalShares, pool.totalAssets),
        (U256::from(2000), U256::from(1900))
    );
    // Rewards: 100 split by equal stakes = 33 each, the dust to the treasury.
    assert_eq!(
        chain
            .view(
                d.staking,
                &S::rewardsCall {
                    account: ops[1].addr
                }
            )
            .await,
        U256::from(33)
    );
    assert_eq!(
        chain
            .view(
                d.staking,
                &S::rewardsCall {
                    account: ops[2].addr
                }
            )
            .await,
        U256::ZERO
    );
    assert_eq!(
        chain
            .view(d.staking, &S::rewardsCall { account: claimer })
            .await,
        U256::from(33)
    );
    assert_eq!(
        chain
            .view(
                d.staking,
                &S::rewardsCall {
                    account: d.treasury
                }
            )
            .await,
        U256::from(1)
    );
    let before = chain
        .view(
            d.token,
            &T::balanceOfCall {
                account: ops[1].addr,
            },
        )
        .await;
    chain.exec(ops[1].addr, d.staking, &S::claimCall {}).await;
    assert_eq!(
        chain
            .view(
                d.token,
                &T::balanceOfCall {
                    account: ops[1].addr
                }
            )
            .await,
        before + U256::from(33)
    );
    let _: S::NothingToClaim = chain
        .reverts(ops[1].addr, d.staking, &S::claimCall {})
        .await;
    // A jailed node cannot be slashed again for liveness.
    let _: S::NodeNotSlashable = chain.reverts(relayer, d.staking, &signed(&good)).await;
    // The delegator's queued shares took the loss: 1000 shares at 1900/2000.
    chain.increase_time(11).await;
    let r = chain
        .exec(delegator, d.staking, &S::completeWithdrawCall {})
        .await;
    assert_eq!(
        events::<S::WithdrawalCompleted>(&r)[0].amount,
        U256::from(950)
    );

    // Jail timing.
    let e: S::NotOperator = chain
        .reverts(chain.accounts[3], d.staking, &S::unJailCall {})
        .await;
    assert_eq!(e.caller, chain.accounts[3]);
    let e: S::NotJailed = chain
        .reverts(ops[1].addr, d.staking, &S::unJailCall {})
        .await;
    assert_eq!(e.operator, ops[1].addr);
    let jailed_at = chain
        .view(d.staking, &S::jailedAtCall { operator: node })
        .await;
    let e: S::JailPeriodNotOver = chain.reverts(node, d.staking, &S::unJailCall {}).await;
    assert_eq!(e.until, jailed_at + U256::from(1000));
    chain.increase_time(1000).await;
    chain
        .exec(
            owner,
            d.staking,
            &S::setMinStakeCall {
                value: U256::from(5000),
            },
        )
        .await;
    let e: S::BelowMinStake = chain.reverts(node, d.staking, &S::unJailCall {}).await;
    assert_eq!(
        e.stakeAfter,
        U256::from(950),
        "the node's own 1000 shares at 1900/2000"
    );
    chain
        .exec(
            owner,
            d.staking,
            &S::setMinStakeCall {
                value: U256::from(MIN_STAKE),
            },
        )
        .await;
    let r = chain.exec(node, d.staking, &S::unJailCall {}).await;
    assert_eq!(
        topics0(&r),
        vec![
            G::MemberUnjailed::SIGNATURE_HASH,
            S::Unjailed::SIGNATURE_HASH
        ]
    );
    assert!(!chain.view(d.staking, &S::isJailedCall { user: node }).await);
    // Windows never overlap: an absence already slashed cannot be slashed again.
    let e: S::WindowAlreadySlashed = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(1, node, 50, 149, 60, others.clone())),
        )
        .await;
    assert_eq!((e.fromBatch, e.lastSlashed), (50, 100));
    let r = chain
        .exec(
            relayer,
            d.staking,
            &signed(&prop(1, node, 101, 200, 60, others.clone())),
        )
        .await;
    assert_eq!(events::<S::LivenessSlashed>(&r)[0].amount, U256::from(100));

    // Quit requests (governance input).
    let r = chain
        .exec(ops[1].addr, d.staking, &S::quitRequestCall {})
        .await;
    assert_eq!(events::<S::QuitRequested>(&r)[0].operator, ops[1].addr);
    let e: S::AlreadyQuitRequested = chain
        .reverts(ops[1].addr, d.staking, &S::quitRequestCall {})
        .await;
    assert_eq!(e.operator, ops[1].addr);
    let e: S::NotMember = chain
        .reverts(outsider.addr, d.staking, &S::quitRequestCall {})
        .await;
    assert_eq!(e.operator, outsider.addr);
    assert_eq!(
        chain.view(d.staking, &S::getQuitRequestListCall {}).await,
        vec![ops[1].addr]
    );
    chain
        .exec(owner, d.staking, &S::clearQuitRequestListCall {})
        .await;
    assert!(
        chain
            .view(d.staking, &S::getQuitRequestListCall {})
            .await
            .is_empty()
    );
    eprintln!("liveness_slash_jail_and_unjail: ok");
}

async fn fraud_slash_removes_and_bans(chain: &Chain) {
    let d = Deployment::new(chain).await;
    let owner = d.owner;
    chain
        .exec(
            owner,
            d.staking,
            &S::setSlashingParamsCall {
                _slashAmount: [U256::from(100), U256::from(500)],
            },
        )
        .await;
    let ops = [
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
    ];
    let group = NodeKey::random();
    d.elect(chain, 1, &[&ops[0], &ops[1], &ops[2], &ops[3]], &group)
        .await;
    let domain = cohort_domain(chain.chain_id().await, d.staking);
    let prop = |node: Address, kind: u8, approvers: Vec<Address>| S::FraudSlash {
        round: 1,
        node,
        kind,
        sessionId: [9u8; 32].into(),
        evidenceHash: [8u8; 32].into(),
        approvers,
    };
    let digest = |p: &S::FraudSlash| {
        cohort_l1::FraudSlash {
            round: p.round,
            node: p.node,
            kind: p.kind,
            sessionId: p.sessionId,
            evidenceHash: p.evidenceHash,
            approvers: p.approvers.clone(),
        }
        .digest(&domain)
    };
    let signed = |p: &S::FraudSlash| S::slashFraudCall {
        p: p.clone(),
        sig: group.sign(digest(p)).to_vec().into(),
    };
    let relayer = chain.accounts[5];
    let node = ops[0].addr;
    let approvers = sorted(vec![ops[1].addr, ops[2].addr, ops[3].addr]);
    let good = prop(node, 1, approvers.clone());
    assert_eq!(
        chain
            .view(d.staking, &S::fraudDigestCall { p: good.clone() })
            .await,
        digest(&good)
    );

    for kind in [0u8, 3, 4] {
        let e: S::InvalidFraudKind = chain
            .reverts(
                relayer,
                d.staking,
                &signed(&prop(node, kind, approvers.clone())),
            )
            .await;
        assert_eq!(e.kind, kind);
    }
    let _: S::QuorumNotReached = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(node, 1, approvers[..2].to_vec())),
        )
        .await;
    let _: S::InvalidGroupSignature = chain
        .reverts(
            relayer,
            d.staking,
            &S::slashFraudCall {
                p: good.clone(),
                sig: NodeKey::random().sign(digest(&good)).to_vec().into(),
            },
        )
        .await;
    let r = chain.exec(relayer, d.staking, &signed(&good)).await;
    assert_eq!(
        topics0(&r),
        vec![
            G::MemberJailed::SIGNATURE_HASH,
            G::MemberBanned::SIGNATURE_HASH,
            G::MemberRemoved::SIGNATURE_HASH,
            S::Slashing::SIGNATURE_HASH,
            S::FraudSlashed::SIGNATURE_HASH
        ]
    );
    assert_eq!(events::<S::Slashing>(&r)[0].slashType, 1);
    let ev = &events::<S::FraudSlashed>(&r)[0];
    assert_eq!((ev.node, ev.kind, ev.amount), (node, 1, U256::from(500)));
    assert_eq!(
        events::<G::MemberRemoved>(&r)[0].reason,
        alloy_primitives::B256::right_padding_from(b"fraud")
    );
    assert!(chain.view(d.gm, &G::bannedCall { node }).await);
    assert!(
        chain
            .view(
                d.staking,
                &S::getSlashRecordCall {
                    batchIndex: U256::from(u64::MAX),
                    user: node
                }
            )
            .await
    );
    assert_eq!(
        chain
            .view(d.staking, &S::operatorStakeCall { operator: node })
            .await,
        U256::from(STAKE - 500)
    );
    assert!(
        !chain
            .view(d.staking, &S::isCanOperatorCall { operator: node })
            .await
    );
    // Removed: cannot be slashed again, and the group key is unchanged.
    let _: S::NodeNotSlashable = chain.reverts(relayer, d.staking, &signed(&good)).await;
    assert_eq!(chain.view(d.gm, &G::groupAddressCall {}).await, group.addr);
    // False content is behind a governance flag; with it, ops[1] can be slashed (3 left → 2 = t + 1).
    let rest = sorted(vec![ops[2].addr, ops[3].addr]);
    let fc = prop(ops[1].addr, 3, rest.clone());
    let _: S::InvalidFraudKind = chain.reverts(relayer, d.staking, &signed(&fc)).await;
    chain
        .exec(
            owner,
            d.staking,
            &S::setFalseContentEnabledCall { enabled: true },
        )
        .await;
    chain.exec(relayer, d.staking, &signed(&fc)).await;
    // At the floor (2 members, t = 1) the others are fewer than t + 1 signers, so a fraud
    // slash cannot even gather approvers (and the removal floor is never what blocks it).
    let e: S::TooFewApprovers = chain
        .reverts(
            relayer,
            d.staking,
            &signed(&prop(ops[2].addr, 1, vec![ops[3].addr])),
        )
        .await;
    assert_eq!((e.given, e.required), (U256::from(1), U256::from(2)));
    // The floor itself holds for the owner's removal.
    let e: G::TooFewMembers = chain
        .reverts(
            owner,
            d.gm,
            &G::removeMember_0Call {
                _publicKey: ops[2].pub64.clone(),
            },
        )
        .await;
    assert_eq!((e.remaining, e.required), (U256::from(1), U256::from(2)));
    eprintln!("fraud_slash_removes_and_bans: ok");
}

async fn mantle_slashing_behind_compat_flag(chain: &Chain) {
    use alloy_sol_types::SolValue;
    use cohort_l1::{SlashMsg, mantle_slash_digest};
    let d = Deployment::new(chain).await;
    let owner = d.owner;
    chain
        .exec(
            owner,
            d.staking,
            &S::setSlashingParamsCall {
                _slashAmount: [U256::from(100), U256::from(500)],
            },
        )
        .await;
    let ops = [
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
        d.operator(chain).await,
    ];
    let group = NodeKey::random();
    d.elect(chain, 1, &[&ops[0], &ops[1], &ops[2], &ops[3]], &group)
        .await;
    let msg = |batch: u64, node: Address, ty: u8| SlashMsg {
        batchIndex: U256::from(batch),
        jailNode: node,
        tssNodes: vec![ops[1].addr, ops[2].addr, ops[3].addr],
        slashType: ty,
    };
    let call = |m: &SlashMsg, sig: [u8; 65]| S::slashingCall {
        _messageBytes: m.abi_encode().into(),
        _sig: sig.to_vec().into(),
    };
    let signed = |m: &SlashMsg| call(m, group.sign(mantle_slash_digest(m)));
    let relayer = chain.accounts[5];
    let m = msg(7, ops[0].addr, 0);
    assert_eq!(
        alloy_primitives::hex::encode(&alloy_sol_types::SolCall::abi_encode(&signed(&m))[..4]),
        "5887c33c"
    );
    let _: S::MantleCompatDisabled = chain.reverts(relayer, d.staking, &signed(&m)).await;
    chain
        .exec(owner, d.staking, &S::setMantleCompatCall { enabled: true })
        .await;
    let e: S::InvalidSlashType = chain
        .reverts(relayer, d.staking, &signed(&msg(7, ops[0].addr, 2)))
        .await;
    assert_eq!(e.slashType, 2);
    let _: S::InvalidGroupSignature = chain
        .reverts(
            relayer,
            d.staking,
            &call(&m, group.sign(mantle_slash_digest(&msg(8, ops[0].addr, 0)))),
        )
        .await;
    let r = chain.exec(relayer, d.staking, &signed(&m)).await;
    assert_eq!(
        topics0(&r),
        vec![G::MemberJailed::SIGNATURE_HASH, S::Slashing::SIGNATURE_HASH]
    );
    let ev = &events::<S::Slashing>(&r)[0];
    assert_eq!((ev.node, ev.slashType), (ops[0].addr, 0));
    assert!(
        chain
            .view(d.staking, &S::isJailedCall { user: ops[0].addr })
            .await
    );
    assert!(
        chain
            .view(
                d.staking,
                &S::getSlashRecordCall {
                    batchIndex: U256::from(7),
                    user: ops[0].addr
                }
            )
            .await
    );
    assert_eq!(
        chain
            .view(
                d.staking,
                &S::rewardsCall {
                    account: ops[1].addr
                }
            )
            .await,
        U256::from(33)
    );
    let e: S::AlreadySlashed = chain.reverts(relayer, d.staking, &signed(&m)).await;
    assert_eq!((e.batchIndex, e.node), (U256::from(7), ops[0].addr));
    // Type 1 (animus) removes and bans.
    let r = chain
        .exec(relayer, d.staking, &signed(&msg(u64::MAX, ops[1].addr, 1)))
        .await;
    assert_eq!(events::<S::Slashing>(&r)[0].slashType, 1);
    assert!(chain.view(d.gm, &G::bannedCall { node: ops[1].addr }).await);
    eprintln!("mantle_slashing_behind_compat_flag: ok");
}
