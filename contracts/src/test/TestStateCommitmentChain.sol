// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

interface IGroupVerifier {
    function verifySign(bytes32 digest, bytes calldata sig) external view returns (bool);
}

/// @notice Test-only stand-in for Mantle's StateCommitmentChain: accepts a state batch or a
///         rollback only with a group signature over Mantle's exact digest, and emits Mantle's
///         events (same names and parameter types, so the same topics).
contract TestStateCommitmentChain {
    struct Batch {
        bytes32 root;
        uint256 size;
        uint256 prevTotalElements;
    }

    error WrongStartElement(uint256 expected, uint256 given);
    error EmptyBatch();
    error InvalidGroupSignature();
    error NoSuchBatch(uint256 batchIndex);

    event StateBatchAppended(
        uint256 indexed _batchIndex,
        bytes32 _batchRoot,
        uint256 _batchSize,
        uint256 _prevTotalElements,
        bytes _signature,
        bytes _extraData
    );
    event StateBatchDeleted(uint256 indexed _batchIndex, bytes32 _batchRoot);
    event RollBackL2Chain(uint256 indexed _startAtElement);

    IGroupVerifier public immutable group;
    uint256 public totalElements;
    Batch[] internal batches;

    constructor(address _group) {
        group = IGroupVerifier(_group);
    }

    function getTotalBatches() external view returns (uint256) {
        return batches.length;
    }

    function getBatch(uint256 batchIndex) external view returns (Batch memory) {
        return batches[batchIndex];
    }

    /// @notice Digest: keccak256(abi.encode(batch, shouldStartAtElement)) (Mantle).
    function appendStateBatch(bytes32[] calldata batch, uint256 shouldStartAtElement, bytes calldata sig) external {
        if (shouldStartAtElement != totalElements) revert WrongStartElement(totalElements, shouldStartAtElement);
        if (batch.length == 0) revert EmptyBatch();
        if (!group.verifySign(keccak256(abi.encode(batch, shouldStartAtElement)), sig)) {
            revert InvalidGroupSignature();
        }
        bytes32 root = keccak256(abi.encode(batch));
        uint256 index = batches.length;
        batches.push(Batch({root: root, size: batch.length, prevTotalElements: totalElements}));
        totalElements += batch.length;
        emit StateBatchAppended(index, root, batch.length, shouldStartAtElement, sig, "");
    }

    /// @notice Digest: keccak256(abi.encode(shouldRollBack)) (Mantle).
    function rollBackL2Chain(uint256 shouldRollBack, uint256 shouldStartAtElement, bytes calldata sig) external {
        if (shouldStartAtElement != totalElements) revert WrongStartElement(totalElements, shouldStartAtElement);
        if (!group.verifySign(keccak256(abi.encode(shouldRollBack)), sig)) revert InvalidGroupSignature();
        emit RollBackL2Chain(shouldRollBack);
    }

    /// @notice Test helper: deletes batch `batchIndex` and every later one (as a fraud proof would).
    function deleteStateBatch(uint256 batchIndex) external {
        if (batchIndex >= batches.length) revert NoSuchBatch(batchIndex);
        Batch memory b = batches[batchIndex];
        totalElements = b.prevTotalElements;
        while (batches.length > batchIndex) batches.pop();
        emit StateBatchDeleted(batchIndex, b.root);
    }
}
