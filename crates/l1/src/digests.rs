//! The digests the cluster signs (spec §3.4), built only through alloy's `SolValue` /
//! `SolStruct` encoders so that no byte layout is written by hand.
//!
//! Mantle-compatible digests ([`state_batch_digest`], [`rollback_digest`],
//! [`mantle_slash_digest`]) must match Mantle's contracts byte for byte; Cohort's propositions
//! ([`LivenessSlash`], [`FraudSlash`]) are EIP-712 under [`cohort_domain`], which binds them to
//! one chain and one staking contract so a signature cannot be replayed elsewhere.

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::{Eip712Domain, SolStruct, SolValue, sol};

sol! {
    /// Mantle's slash message (`TssStakingSlashing.SlashMsg`). `slashType` is Mantle's enum
    /// (0 uptime, 1 animus), one 32-byte word either way.
    #[derive(Debug, PartialEq, Eq)]
    struct SlashMsg {
        uint256 batchIndex;
        address jailNode;
        address[] tssNodes;
        uint8 slashType;
    }

    /// A liveness proposition: `node` missed `missed` of batches `fromBatch..=toBatch` in `round`;
    /// `approvers` (strictly ascending) co-signed it. Executed by `CohortStaking.slashLiveness`.
    #[derive(Debug, PartialEq, Eq)]
    struct LivenessSlash {
        uint64 round;
        address node;
        uint64 fromBatch;
        uint64 toBatch;
        uint32 missed;
        address[] approvers;
    }

    /// A fraud proposition (`kind` 1 equivocation, 2 protocol abort, 3 false content).
    #[derive(Debug, PartialEq, Eq)]
    struct FraudSlash {
        uint64 round;
        address node;
        uint8 kind;
        bytes32 sessionId;
        bytes32 evidenceHash;
        address[] approvers;
    }
}

/// The EIP-712 domain of Cohort's propositions: name `"Cohort"`, version `"1"`, the L1 chain
/// id and the `CohortStaking` address that executes them.
pub fn cohort_domain(chain_id: u64, staking: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some("Cohort".into()),
        Some("1".into()),
        Some(U256::from(chain_id)),
        Some(staking),
        None,
    )
}

/// Mantle's state-batch digest, `keccak256(abi.encode(bytes32[] roots, uint256 offset))`: what
/// `StateCommitmentChain.appendStateBatch` verifies.
pub fn state_batch_digest(roots: &[B256], offset: U256) -> B256 {
    keccak256((roots.to_vec(), offset).abi_encode_params())
}

/// Mantle's rollback digest, `keccak256(abi.encode(uint256 start_block))`.
pub fn rollback_digest(start_block: U256) -> B256 {
    keccak256(start_block.abi_encode())
}

/// Mantle's slash digest, `keccak256(abi.encode(SlashMsg))`. The struct is dynamic, so the
/// encoding starts with the offset word `0x20` (as Go's `abi.Arguments{tuple}.Pack` and
/// Solidity's `abi.decode(b, (SlashMsg))` expect): `abi_encode`, **not** `abi_encode_params`.
pub fn mantle_slash_digest(msg: &SlashMsg) -> B256 {
    keccak256(msg.abi_encode())
}

impl LivenessSlash {
    /// The digest the cluster signs and `CohortStaking.livenessDigest` recomputes.
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }
}

impl FraudSlash {
    /// The digest the cluster signs for a fraud proposition.
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, hex};
    use alloy_sol_types::SolCall;

    fn a(byte: u8) -> Address {
        Address::repeat_byte(byte)
    }

    fn slash_msg(batch_index: U256, slash_type: u8) -> SlashMsg {
        SlashMsg {
            batchIndex: batch_index,
            jailNode: a(0x11),
            tssNodes: vec![a(0x22), a(0x33)],
            slashType: slash_type,
        }
    }

    #[test]
    fn mantle_slash_msg_encoding_and_digest() {
        let m = slash_msg(U256::from(7), 0);
        let enc = m.abi_encode();
        let mut want = Vec::new();
        let word = |v: &[u8]| {
            let mut w = [0u8; 32];
            w[32 - v.len()..].copy_from_slice(v);
            w
        };
        want.extend(word(&[0x20]));
        want.extend(word(&[7]));
        want.extend(word(a(0x11).as_slice()));
        want.extend(word(&[0x80]));
        want.extend(word(&[0]));
        want.extend(word(&[2]));
        want.extend(word(a(0x22).as_slice()));
        want.extend(word(a(0x33).as_slice()));
        assert_eq!(hex::encode(&enc), hex::encode(&want));
        assert_eq!(
            mantle_slash_digest(&m),
            b256!("c73224156b0b70a544b2aaea824f955c18d79990201e38a43c917174adb7aa9c")
        );
        // abi_encode_params drops the leading offset word and so gives another digest.
        assert_ne!(keccak256(m.abi_encode_params()), mantle_slash_digest(&m));
    }

    #[test]
    fn mantle_culprit_slash_msg_digest() {
        let m = slash_msg(U256::from(u64::MAX), 1);
        assert_eq!(
            mantle_slash_digest(&m),
            b256!("4cf4c6ae1d655dcc7500d0fa219899dace01597613c4843f28285655b215945c")
        );
    }

    #[test]
    fn state_batch_and_rollback_digests() {
        let roots = [B256::repeat_byte(1), B256::repeat_byte(2)];
        assert_eq!(
            state_batch_digest(&roots, U256::from(5)),
            b256!("e6ae0129cd572532a0754ea20d03a1481aeb659162114f26e47218c2d71cb27e")
        );
        assert_eq!(
            rollback_digest(U256::from(11)),
            b256!("0175b7a638427703f0dbe7bb9bbf987a2551717b34e79f33b5b1008d1fa01db9")
        );
    }

    #[test]
    fn liveness_slash_eip712_vector() {
        let domain = cohort_domain(31337, address!("5FbDB2315678afecb367f032d93F642f64180aa3"));
        assert_eq!(
            domain.separator(),
            b256!("3533ab450217a6158e43cddefb8cf56cc2cd70cbd3ac10659232e8ca730790ec")
        );
        let p = LivenessSlash {
            round: 1,
            node: a(0x11),
            fromBatch: 10,
            toBatch: 19,
            missed: 7,
            approvers: vec![a(0x22), a(0x33)],
        };
        assert_eq!(
            p.eip712_type_hash(),
            b256!("85148b7deb5de0e9dd6544dac4d427ff4a45d25a873529d5fa369d361b47b71c")
        );
        assert_eq!(
            p.eip712_hash_struct(),
            b256!("78ec68e31809c8c8f8ec0c33670a7e4040632806c8388b3e8428b9f6e526d463")
        );
        assert_eq!(
            p.digest(&domain),
            b256!("49421d5ddd0ef2dcff571e63c003aca55378f3196d5c32a10447855f643fbf69")
        );
        // Another chain id or verifying contract is another digest: no cross-deployment replay.
        assert_ne!(
            p.digest(&cohort_domain(
                1,
                address!("5FbDB2315678afecb367f032d93F642f64180aa3")
            )),
            p.digest(&domain)
        );
    }

    #[test]
    fn fraud_slash_typehash() {
        let p = FraudSlash {
            round: 1,
            node: a(0x11),
            kind: 1,
            sessionId: B256::ZERO,
            evidenceHash: B256::ZERO,
            approvers: vec![],
        };
        assert_eq!(
            p.eip712_type_hash(),
            b256!("36cc0ed39a54e2e4ccad59310d0e9033df9c26e7d4cd70995559059bc5b876bd")
        );
    }

    #[test]
    fn selectors_of_the_spec() {
        use crate::bindings::{
            CohortGroupManager as G, CohortStaking as S, TestChallenge as C, TestRollup as R,
            TestStateCommitmentChain as Scc,
        };
        let cases: [([u8; 4], &str); 16] = [
            (G::setGroupPublicKeyCall::SELECTOR, "4679b366"),
            (G::setTssGroupMemberCall::SELECTOR, "1a47931b"),
            (G::getTssGroupInfoCall::SELECTOR, "fcca5592"),
            (G::getTssInactiveGroupInfoCall::SELECTOR, "404a6986"),
            (G::verifySignCall::SELECTOR, "3231a7f0"),
            (S::getSlashRecordCall::SELECTOR, "829673ef"),
            (G::getTssGroupUnJailMembersCall::SELECTOR, "2cd00d53"),
            (Scc::appendStateBatchCall::SELECTOR, "2169f79f"),
            (Scc::rollBackL2ChainCall::SELECTOR, "0bf3b5f2"),
            (C::winnerCall::SELECTOR, "dfbf53ae"),
            (C::defenderCall::SELECTOR, "7f4c91c5"),
            (C::challengerCall::SELECTOR, "534db0e2"),
            (C::rollbackCall::SELECTOR, "9afd9d78"),
            (C::startInboxSizeCall::SELECTOR, "faeff41b"),
            (R::challengeCtxCall::SELECTOR, "0e456acf"),
            (S::slashLivenessCall::SELECTOR, "e243650f"),
        ];
        for (got, want) in cases {
            assert_eq!(hex::encode(got), want);
        }
        assert_eq!(hex::encode(S::slashingCall::SELECTOR), "5887c33c");
        assert_eq!(hex::encode(S::slashFraudCall::SELECTOR), "01279427");
    }

    #[test]
    fn event_topics_of_the_spec() {
        use crate::bindings::{
            CohortGroupManager as G, CohortStaking as S, TestStateCommitmentChain as Scc,
        };
        use alloy_sol_types::SolEvent;
        let cases: [(B256, &str); 6] = [
            (
                G::tssGroupMemberAppend::SIGNATURE_HASH,
                "fa26843b7ced045dd12994ee0e73c6f0904c3a4608bce58ae304d606035b079e",
            ),
            (
                G::tssActiveMemberAppended::SIGNATURE_HASH,
                "61c7922e50ad7ea3d35879a4a819ae97eb09b665f2113451d7ada7cb2b689b66",
            ),
            (
                S::Slashing::SIGNATURE_HASH,
                "9453459a6e9fa2069f1490c99cec15646afa157300f218a7f7840b23d09dbd3e",
            ),
            (
                Scc::StateBatchAppended::SIGNATURE_HASH,
                "9cf3ad24eae3fd6d461e2f566b35b95b6d671871d9fcb45f8ac8030e4a8d21b3",
            ),
            (
                Scc::RollBackL2Chain::SIGNATURE_HASH,
                "8ef5d07412def056f6bfc680f359c8a0370cfacb2becaf67d01e2e372e08964a",
            ),
            (
                Scc::StateBatchDeleted::SIGNATURE_HASH,
                "8747b69ce8fdb31c3b9b0a67bd8049ad8c1a69ea417b69b12174068abd9cbd64",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(hex::encode(got), want);
        }
        // The spec gives MemberRemoved's topic by prefix and suffix only.
        let t = hex::encode(G::MemberRemoved::SIGNATURE_HASH);
        assert!(t.starts_with("62ec2e1a") && t.ends_with("45b7"), "{t}");
    }

    #[test]
    fn liveness_call_abi_matches_struct() {
        // The artifact's LivenessSlash tuple and the hand-declared EIP-712 struct are one type.
        use crate::bindings::CohortStaking as S;
        assert_eq!(
            S::slashLivenessCall::SIGNATURE,
            "slashLiveness((uint64,address,uint64,uint64,uint32,address[]),bytes)"
        );
    }
}
