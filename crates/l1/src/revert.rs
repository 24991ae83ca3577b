//! Revert data decoded against the contracts' custom errors, so a refused transaction names
//! its reason (`InvalidGroupSignature()`, `NotMember(..)`) instead of a hex blob.

use alloy_sol_types::SolInterface;

use crate::bindings::{
    CohortGroupManager::CohortGroupManagerErrors, CohortStaking::CohortStakingErrors,
    TestStateCommitmentChain::TestStateCommitmentChainErrors, TestToken::TestTokenErrors,
};

/// The revert reason in `data`: a custom error of Cohort's contracts (`Name(fields)`), a
/// Solidity `Error(string)` / `Panic(uint256)`, or None if nothing matches.
pub fn decode_revert(data: &[u8]) -> Option<String> {
    fn custom<E: SolInterface + std::fmt::Debug>(data: &[u8]) -> Option<String> {
        let sel: [u8; 4] = data.get(..4)?.try_into().ok()?;
        if !E::valid_selector(sel) {
            return None;
        }
        E::abi_decode(data).ok().map(|e| {
            // `Variant(Variant { .. })` → `Variant { .. }`: the inner struct says it all.
            let s = format!("{e:?}");
            match (s.find('('), s.ends_with(')')) {
                (Some(i), true) => s[i + 1..s.len() - 1].to_string(),
                _ => s,
            }
        })
    }
    custom::<TestStateCommitmentChainErrors>(data)
        .or_else(|| custom::<CohortGroupManagerErrors>(data))
        .or_else(|| custom::<CohortStakingErrors>(data))
        .or_else(|| custom::<TestTokenErrors>(data))
        .or_else(|| {
            alloy_sol_types::GenericContractError::abi_decode(data)
                .ok()
                .map(|e| e.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::TestStateCommitmentChain::{InvalidGroupSignature, WrongStartElement};
    use alloy_primitives::U256;
    use alloy_sol_types::{Revert, SolError};

    #[test]
    fn names_custom_errors_and_strings() {
        let d = InvalidGroupSignature {}.abi_encode();
        assert_eq!(decode_revert(&d).as_deref(), Some("InvalidGroupSignature"));
        let d = WrongStartElement {
            expected: U256::from(3),
            given: U256::from(4),
        }
        .abi_encode();
        let s = decode_revert(&d).unwrap();
        assert!(
            s.starts_with("WrongStartElement") && s.contains('3') && s.contains('4'),
            "{s}"
        );
        let d = Revert::from("boom").abi_encode();
        assert!(decode_revert(&d).unwrap().contains("boom"));
        assert_eq!(decode_revert(&[1, 2, 3, 4, 5]), None);
    }
}
