// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

/// @notice What the group manager calls on `CohortStaking` (Mantle's `IStakingSlashing`).
interface ICohortStaking {
    /// @notice Registered, not banned, and staked at least `minStake`.
    function isCanOperator(address operator) external view returns (bool);
}
