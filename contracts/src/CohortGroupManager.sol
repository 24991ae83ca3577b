// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

import {Ownable2Step} from "./utils/Ownable2Step.sol";
import {ICohortStaking} from "./interfaces/ICohortStaking.sol";

/// @title CohortGroupManager
/// @notice The L1 root of trust for a Cohort cluster: governance elects a committee
///         (`setTssGroupMember`), every elected member submits the group key the committee
///         generated (`setGroupPublicKey`), and the key counts once all of them submitted the
///         same one. Rollup contracts then accept a state batch only with a signature of that key
///         (`verifySign`).
/// @dev    Keeps Mantle's `TssGroupManager` ABI (function names, parameter types and the
///         `tssGroupMemberAppend` / `tssActiveMemberAppended` events), so Mantle's bindings and
///         indexers keep working. Deviations, each for a named Mantle weakness:
///         - an election deadline (`electionTimeout`, `cancelElection`, `ElectionExpired`): in
///           Mantle one silent member blocks activation until governance re-elects;
///         - `GroupKeySubmitted`, so the manager can name who has not submitted;
///         - strict `verifySign` (65 bytes, v in {27,28} after +27, low s, a key present);
///         - the group key must be a point on secp256k1;
///         - bans: a member removed for fraud can never be elected or register again.
///         Rounds: `round` is the active round; a pending election is round `round + 1` (Mantle's
///         `gRoundId` as its getters report it). `threshold` is tss-lib's t: `t + 1` signers.
///         Not upgradeable; the owner is meant to be a timelock or governor.
contract CohortGroupManager is Ownable2Step {
    enum MemberStatus {
        unJail,
        jail
    }

    struct TssMember {
        bytes publicKey;
        address nodeAddress;
        MemberStatus status;
    }

    /// @notice The field prime of secp256k1.
    uint256 internal constant P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;
    /// @notice Half the group order of secp256k1: signatures with a larger `s` are malleable twins.
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    /// @notice The removal reason that bans the member forever.
    bytes32 public constant REASON_FRAUD = bytes32("fraud");

    // ---- errors -------------------------------------------------------------------------------
    error StakingNotSet();
    error StakingAlreadySet();
    error ZeroAddress();
    error NotStaking(address caller);
    error NotStakingOrOwner(address caller);
    error InvalidGroupSize(uint256 members);
    error InvalidThreshold(uint256 threshold, uint256 members);
    error InvalidPublicKeyLength(uint256 index, uint256 length);
    error DuplicateMember(address node);
    error MemberIsBanned(address node);
    error NotOperator(address node);
    error NotPendingMember();
    error SenderNotMember(address sender, address member);
    error ElectionDeadlinePassed(uint256 deadline);
    error InvalidGroupKeyLength(uint256 length);
    error GroupKeyNotOnCurve();
    error NoPendingElection();
    error ElectionNotExpired(uint256 deadline);
    error NotActiveMember();
    error TooFewMembers(uint256 remaining, uint256 required);
    error InvalidTimeout();
    error AlreadyBanned(address node);

    // ---- events (Mantle's first: names and parameter types byte-exact) -------------------------
    event tssGroupMemberAppend(uint256 _roundId, uint256 _threshold, bytes[] _inActiveTssMembers);
    event tssActiveMemberAppended(uint256 _roundId, bytes _groupKey, bytes[] activeTssMembers);
    /// @notice One member submitted (or re-submitted) a group key for the pending round.
    event GroupKeySubmitted(
        uint256 indexed round, address indexed member, bytes32 indexed groupKeyHash, uint256 count, uint256 members
    );
    event ElectionExpired(uint256 indexed round);
    event MemberJailed(uint256 indexed round, address indexed node);
    event MemberUnjailed(uint256 indexed round, address indexed node);
    event MemberRemoved(uint256 indexed round, address indexed node, bytes32 reason);
    event MemberBanned(address indexed node);
    event StakingSet(address indexed staking);
    event ElectionTimeoutSet(uint256 timeout);

    // ---- storage -------------------------------------------------------------------------------
    /// @notice The active round (0 before the first activation).
    uint256 public round;
    /// @notice tss-lib's t of the active round: signing needs `threshold + 1` parties.
    uint256 public threshold;
    /// @notice The active group key, 64 bytes X||Y.
    bytes public groupKey;
    /// @notice keccak256(groupKey)[12..]; zero until the first activation.
    address public groupAddress;
    bytes[] internal active;
    bytes[] internal pending;
    /// @notice tss-lib's t of the pending election.
    uint256 public pendingThreshold;
    /// @notice The last second at which a pending member may submit its group key.
    uint256 public electionDeadline;
    /// @notice Seconds a new election stays open.
    uint256 public electionTimeout;
    /// @notice Bumped whenever the pending set is replaced, so per-election maps need no clearing.
    uint256 internal electionId;
    mapping(bytes32 => TssMember) internal memberInfo; // keccak(pubkey) => active member
    mapping(uint256 => mapping(bytes32 => bool)) internal isPending; // electionId => keccak(pubkey)
    mapping(uint256 => mapping(bytes32 => bytes32)) internal submitted; // => keccak(cpk)
    mapping(uint256 => mapping(bytes32 => uint256)) internal count; // electionId => keccak(cpk)
    /// @notice Members removed for fraud: never elected, never registered again.
    mapping(address node => bool) public banned;
    /// @notice The staking contract (jails, unjails, removes for fraud, vets operators).
    address public staking;

    constructor(address initialOwner, uint256 _electionTimeout) Ownable2Step(initialOwner) {
        if (_electionTimeout == 0) revert InvalidTimeout();
        electionTimeout = _electionTimeout;
        emit ElectionTimeoutSet(_electionTimeout);
    }

    modifier onlyStaking() {
        if (msg.sender != staking) revert NotStaking(msg.sender);
        _;
    }

    // ---- governance ----------------------------------------------------------------------------

    /// @notice Wires the staking contract, once (the two contracts reference each other).
    function setStaking(address _staking) external onlyOwner {
        if (_staking == address(0)) revert ZeroAddress();
        if (staking != address(0)) revert StakingAlreadySet();
        staking = _staking;
        emit StakingSet(_staking);
    }

    function setElectionTimeout(uint256 _timeout) external onlyOwner {
        if (_timeout == 0) revert InvalidTimeout();
        electionTimeout = _timeout;
        emit ElectionTimeoutSet(_timeout);
    }

    /// @notice Bans a node for good (governance's answer to evidence outside the contracts).
    function ban(address node) external onlyOwner {
        if (banned[node]) revert AlreadyBanned(node);
        banned[node] = true;
        emit MemberBanned(node);
    }

    /// @notice Opens the election of round `round + 1` (Mantle ABI). Replaces any pending one.
    /// @param _threshold tss-lib's t (`t + 1` signers), `1 <= t < n`.
    /// @param _pubkeys   the committee, 64-byte keys, each a registered, staked, unbanned operator.
    function setTssGroupMember(uint256 _threshold, bytes[] calldata _pubkeys) external onlyOwner {
        uint256 n = _pubkeys.length;
        if (n < 2) revert InvalidGroupSize(n);
        if (_threshold == 0 || _threshold >= n) revert InvalidThreshold(_threshold, n);
        if (staking == address(0)) revert StakingNotSet();
        uint256 id = ++electionId;
        delete pending;
        for (uint256 i = 0; i < n; i++) {
            bytes calldata key = _pubkeys[i];
            if (key.length != 64) revert InvalidPublicKeyLength(i, key.length);
            address node = _toAddress(key);
            if (banned[node]) revert MemberIsBanned(node);
            if (!ICohortStaking(staking).isCanOperator(node)) revert NotOperator(node);
            bytes32 h = keccak256(key);
            if (isPending[id][h]) revert DuplicateMember(node);
            isPending[id][h] = true;
            pending.push(key);
        }
        pendingThreshold = _threshold;
        electionDeadline = block.timestamp + electionTimeout;
        emit tssGroupMemberAppend(round + 1, _threshold, _pubkeys);
    }

    /// @notice Drops the pending election. The owner may always; anyone may after the deadline,
    ///         so a silent member cannot hold the cluster hostage.
    function cancelElection() external {
        if (pending.length == 0) revert NoPendingElection();
        if (msg.sender != owner() && block.timestamp <= electionDeadline) {
            revert ElectionNotExpired(electionDeadline);
        }
        _clearPending();
        emit ElectionExpired(round + 1);
    }

    // ---- members -------------------------------------------------------------------------------

    /// @notice A pending member submits the group key its committee generated (Mantle ABI).
    ///         Activation happens when every pending member has submitted the same key.
    function setGroupPublicKey(bytes calldata _publicKey, bytes calldata _groupPublicKey) external {
        uint256 id = electionId;
        bytes32 h = keccak256(_publicKey);
        if (pending.length == 0 || !isPending[id][h]) revert NotPendingMember();
        address member = _toAddress(_publicKey);
        if (msg.sender != member) revert SenderNotMember(msg.sender, member);
        // Banned while the election ran (a fraud slash as an active member): its vote never
        // counts, so the election cannot activate with it and has to be re-run without it.
        if (banned[member]) revert MemberIsBanned(member);
        if (block.timestamp > electionDeadline) revert ElectionDeadlinePassed(electionDeadline);
        if (_groupPublicKey.length != 64) revert InvalidGroupKeyLength(_groupPublicKey.length);
        if (!_onCurve(_groupPublicKey)) revert GroupKeyNotOnCurve();

        bytes32 cpk = keccak256(_groupPublicKey);
        bytes32 previous = submitted[id][h];
        if (previous != cpk) {
            if (previous != bytes32(0)) count[id][previous] -= 1;
            count[id][cpk] += 1;
            submitted[id][h] = cpk;
        }
        uint256 c = count[id][cpk];
        uint256 n = pending.length;
        emit GroupKeySubmitted(round + 1, member, cpk, c, n);
        if (c == n) _activate(_groupPublicKey);
    }

    /// @notice Staking jails a member (liveness slash). Mantle ABI.
    function memberJail(bytes calldata _publicKey) external onlyStaking {
        TssMember storage m = _active(_publicKey);
        m.status = MemberStatus.jail;
        emit MemberJailed(round, m.nodeAddress);
    }

    /// @notice Staking unjails a member after its jail period. Mantle ABI.
    function memberUnJail(bytes calldata _publicKey) external onlyStaking {
        TssMember storage m = _active(_publicKey);
        m.status = MemberStatus.unJail;
        emit MemberUnjailed(round, m.nodeAddress);
    }

    /// @notice Mantle's owner-only removal, without a reason (no ban).
    function removeMember(bytes calldata _publicKey) external onlyOwner {
        _remove(_publicKey, bytes32(0));
    }

    /// @notice Removes an active member; `REASON_FRAUD` also bans it. The group key is unchanged:
    ///         the cluster reshares to the remaining members off-chain.
    function removeMember(bytes calldata _publicKey, bytes32 reason) external {
        if (msg.sender != staking && msg.sender != owner()) revert NotStakingOrOwner(msg.sender);
        _remove(_publicKey, reason);
    }

    // ---- views (Mantle's) ----------------------------------------------------------------------

    /// @return the active round, its tss-lib threshold, the group key and the active members.
    function getTssGroupInfo() external view returns (uint256, uint256, bytes memory, bytes[] memory) {
        return (round, threshold, groupKey, active);
    }

    /// @return the pending round (`round + 1`), its tss-lib threshold and the pending members.
    function getTssInactiveGroupInfo() external view returns (uint256, uint256, bytes[] memory) {
        return (round + 1, pendingThreshold, pending);
    }

    function getTssGroupMembers() external view returns (bytes[] memory) {
        return active;
    }

    function getTssMember(bytes calldata _publicKey) external view returns (TssMember memory) {
        return memberInfo[keccak256(_publicKey)];
    }

    /// @notice Mantle's public mapping getter, kept for its bindings.
    function tssActiveMemberInfo(bytes calldata _publicKey)
        external
        view
        returns (bytes memory publicKey, address nodeAddress, MemberStatus status)
    {
        TssMember storage m = memberInfo[keccak256(_publicKey)];
        return (m.publicKey, m.nodeAddress, m.status);
    }

    function getTssGroupUnJailMembers() external view returns (address[] memory) {
        uint256 n;
        for (uint256 i = 0; i < active.length; i++) {
            if (memberInfo[keccak256(active[i])].status == MemberStatus.unJail) n++;
        }
        address[] memory out = new address[](n);
        uint256 j;
        for (uint256 i = 0; i < active.length; i++) {
            TssMember storage m = memberInfo[keccak256(active[i])];
            if (m.status == MemberStatus.unJail) out[j++] = m.nodeAddress;
        }
        return out;
    }

    function isTssGroupUnJailMembers(address _addr) external view returns (bool) {
        for (uint256 i = 0; i < active.length; i++) {
            TssMember storage m = memberInfo[keccak256(active[i])];
            if (m.nodeAddress == _addr) return m.status == MemberStatus.unJail;
        }
        return false;
    }

    function memberExistActive(bytes calldata _publicKey) external view returns (bool) {
        return memberInfo[keccak256(_publicKey)].nodeAddress != address(0);
    }

    function memberExistActive(address _addr) external view returns (bool) {
        for (uint256 i = 0; i < active.length; i++) {
            if (memberInfo[keccak256(active[i])].nodeAddress == _addr) return true;
        }
        return false;
    }

    function memberExistInActive(bytes calldata _publicKey) public view returns (bool) {
        return pending.length != 0 && isPending[electionId][keccak256(_publicKey)];
    }

    /// @notice Mantle's public mapping getter name for pending membership.
    function isInActiveMember(bytes calldata _publicKey) external view returns (bool) {
        return memberExistInActive(_publicKey);
    }

    function inActiveIsEmpty() external view returns (bool) {
        return pending.length == 0;
    }

    /// @notice Mantle's name for the staking contract.
    function stakingSlash() external view returns (address) {
        return staking;
    }

    function publicKeyToAddress(bytes calldata publicKey) external pure returns (address) {
        if (publicKey.length != 64) revert InvalidPublicKeyLength(0, publicKey.length);
        return _toAddress(publicKey);
    }

    /// @notice True only for a canonical signature of the active group key over `digest`.
    /// @dev    Returns false (never reverts) on any malformed input so callers decide the error:
    ///         length 65; v = sig[64], +27 when below 27, then in {27, 28}; s <= n/2 (no
    ///         malleable twin); a group key present; ecrecover equals `groupAddress`.
    function verifySign(bytes32 digest, bytes calldata sig) external view returns (bool) {
        address group = groupAddress;
        if (group == address(0) || sig.length != 65) return false;
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (v < 27) v += 27;
        if (v != 27 && v != 28) return false;
        if (uint256(s) > HALF_N) return false;
        return ecrecover(digest, v, r, s) == group;
    }

    // ---- views (Cohort's) ----------------------------------------------------------------------

    /// @notice Signers a signature of the group key needs: tss-lib's t + 1 (Cohort's threshold).
    function signersRequired() external view returns (uint256) {
        return threshold + 1;
    }

    /// @notice keccak256 of the group key `_publicKey` submitted in the pending election (0: none).
    function submittedGroupKey(bytes calldata _publicKey) external view returns (bytes32) {
        if (pending.length == 0) return bytes32(0);
        return submitted[electionId][keccak256(_publicKey)];
    }

    // ---- internals -----------------------------------------------------------------------------

    function _toAddress(bytes calldata key) internal pure returns (address) {
        return address(uint160(uint256(keccak256(key))));
    }

    /// @dev y^2 == x^3 + 7 (mod p) with 0 <= x, y < p; excludes the point at infinity (0, 0).
    function _onCurve(bytes calldata key) internal pure returns (bool) {
        uint256 x = uint256(bytes32(key[0:32]));
        uint256 y = uint256(bytes32(key[32:64]));
        if (x >= P || y >= P) return false;
        uint256 lhs = mulmod(y, y, P);
        uint256 rhs = addmod(mulmod(mulmod(x, x, P), x, P), 7, P);
        return lhs == rhs;
    }

    function _active(bytes calldata _publicKey) internal view returns (TssMember storage m) {
        m = memberInfo[keccak256(_publicKey)];
        if (m.nodeAddress == address(0)) revert NotActiveMember();
    }

    function _clearPending() internal {
        delete pending;
        pendingThreshold = 0;
        electionDeadline = 0;
        electionId++;
    }

    function _activate(bytes calldata _groupPublicKey) internal {
        for (uint256 i = 0; i < active.length; i++) {
            delete memberInfo[keccak256(active[i])];
        }
        delete active;
        for (uint256 i = 0; i < pending.length; i++) {
            bytes memory key = pending[i];
            active.push(key);
            memberInfo[keccak256(key)] = TssMember({
                publicKey: key, nodeAddress: address(uint160(uint256(keccak256(key)))), status: MemberStatus.unJail
            });
        }
        groupKey = _groupPublicKey;
        groupAddress = _toAddress(_groupPublicKey);
        threshold = pendingThreshold;
        round += 1;
        _clearPending();
        emit tssActiveMemberAppended(round, _groupPublicKey, active);
    }

    function _remove(bytes calldata _publicKey, bytes32 reason) internal {
        bytes32 h = keccak256(_publicKey);
        address node = memberInfo[h].nodeAddress;
        if (node == address(0)) revert NotActiveMember();
        uint256 remaining = active.length - 1;
        if (remaining < threshold + 1) revert TooFewMembers(remaining, threshold + 1);
        for (uint256 i = 0; i < active.length; i++) {
            if (keccak256(active[i]) == h) {
                for (uint256 j = i; j + 1 < active.length; j++) {
                    active[j] = active[j + 1];
                }
                active.pop();
                break;
            }
        }
        delete memberInfo[h];
        if (reason == REASON_FRAUD && !banned[node]) {
            banned[node] = true;
            emit MemberBanned(node);
        }
        emit MemberRemoved(round, node, reason);
    }
}
