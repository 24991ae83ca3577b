//! `sol!` bindings generated from the committed artifacts in `contracts/out/`.
//!
//! Each module carries the contract's calls, events, errors and structs, plus `BYTECODE` and
//! `DEPLOYED_BYTECODE` from the artifact, so tests and the devnet deploy exactly what CI checked.
//! Overloaded Solidity functions get numbered Rust names (`removeMember_0Call` is
//! `removeMember(bytes)`, `removeMember_1Call` is `removeMember(bytes,bytes32)`).
#![allow(missing_docs, clippy::too_many_arguments)]

use alloy_sol_types::sol;

sol!(
    #[derive(Debug, PartialEq, Eq)]
    CohortGroupManager,
    "../../contracts/out/CohortGroupManager.json"
);
sol!(
    #[derive(Debug, PartialEq, Eq)]
    CohortStaking,
    "../../contracts/out/CohortStaking.json"
);
sol!(
    #[derive(Debug, PartialEq, Eq)]
    TestToken,
    "../../contracts/out/TestToken.json"
);
sol!(
    #[derive(Debug, PartialEq, Eq)]
    TestStateCommitmentChain,
    "../../contracts/out/TestStateCommitmentChain.json"
);
sol!(
    #[derive(Debug, PartialEq, Eq)]
    TestChallenge,
    "../../contracts/out/TestChallenge.json"
);
sol!(
    #[derive(Debug, PartialEq, Eq)]
    TestRollup,
    "../../contracts/out/TestRollup.json"
);
