// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

/// @notice What `CohortStaking` calls on the group manager. Names and shapes are Mantle's
///         `ITssGroupManager` where Mantle has the function.
interface ICohortGroupManager {
    enum MemberStatus {
        unJail,
        jail
    }

    struct TssMember {
        bytes publicKey;
        address nodeAddress;
        MemberStatus status;
    }

    function round() external view returns (uint256);
    function signersRequired() external view returns (uint256);
    function banned(address node) external view returns (bool);
    function verifySign(bytes32 digest, bytes calldata sig) external view returns (bool);
    function getTssMember(bytes calldata publicKey) external view returns (TssMember memory);
    function getTssGroupUnJailMembers() external view returns (address[] memory);
    function isTssGroupUnJailMembers(address node) external view returns (bool);
    function memberExistActive(bytes calldata publicKey) external view returns (bool);
    function memberExistInActive(bytes calldata publicKey) external view returns (bool);
    function memberJail(bytes calldata publicKey) external;
    function memberUnJail(bytes calldata publicKey) external;
    function removeMember(bytes calldata publicKey, bytes32 reason) external;
}
