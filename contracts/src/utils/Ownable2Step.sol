// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

/// @title Ownable2Step
/// @notice Minimal two-step ownership (same error and event names as OpenZeppelin 5), written
///         here so the build needs no second npm package. The owner is meant to be a timelock or
///         governor; a transfer only takes effect when the new owner accepts it, so a typo in
///         the address cannot lock governance out.
abstract contract Ownable2Step {
    /// @notice `account` is not allowed to call an owner-only function.
    error OwnableUnauthorizedAccount(address account);
    /// @notice The zero address cannot own the contract.
    error OwnableInvalidOwner(address owner);

    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    address private _owner;
    address private _pendingOwner;

    constructor(address initialOwner) {
        if (initialOwner == address(0)) revert OwnableInvalidOwner(address(0));
        _owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    modifier onlyOwner() {
        if (msg.sender != _owner) revert OwnableUnauthorizedAccount(msg.sender);
        _;
    }

    function owner() public view returns (address) {
        return _owner;
    }

    function pendingOwner() public view returns (address) {
        return _pendingOwner;
    }

    /// @notice Starts a transfer; `newOwner` must call `acceptOwnership`.
    function transferOwnership(address newOwner) external onlyOwner {
        _pendingOwner = newOwner;
        emit OwnershipTransferStarted(_owner, newOwner);
    }

    function acceptOwnership() external {
        if (msg.sender != _pendingOwner) revert OwnableUnauthorizedAccount(msg.sender);
        address previous = _owner;
        _owner = msg.sender;
        delete _pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }
}
