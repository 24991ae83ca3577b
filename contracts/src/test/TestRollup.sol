// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

/// @notice Test-only Rollup exposing Mantle's `challengeCtx()` with a settable value.
contract TestRollup {
    struct ChallengeCtx {
        bool completed;
        address challengeAddress;
        address defenderAddress;
        address challengerAddress;
        uint256 defenderAssertionID;
        uint256 challengerAssertionID;
    }

    event ChallengeCtxSet(bool completed, address challengeAddress);

    ChallengeCtx public challengeCtx;

    function setChallengeCtx(ChallengeCtx calldata ctx) external {
        challengeCtx = ctx;
        emit ChallengeCtxSet(ctx.completed, ctx.challengeAddress);
    }
}
