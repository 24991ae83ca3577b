// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

/// @notice The part of ERC-20 the staking contract uses.
interface IERC20Minimal {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function balanceOf(address account) external view returns (uint256);
}
