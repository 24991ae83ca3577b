// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

/// @notice Test-only Challenge with settable outcome, read by nodes before a `type: 1` rollback.
contract TestChallenge {
    event ChallengeSet(
        address defender, address challenger, address winner, bool rollback, uint256 startInboxSize
    );

    address public defender;
    address public challenger;
    address public winner;
    bool public rollback;
    uint256 public startInboxSize;

    function set(address _defender, address _challenger, address _winner, bool _rollback, uint256 _startInboxSize)
        external
    {
        defender = _defender;
        challenger = _challenger;
        winner = _winner;
        rollback = _rollback;
        startInboxSize = _startInboxSize;
        emit ChallengeSet(_defender, _challenger, _winner, _rollback, _startInboxSize);
    }
}
