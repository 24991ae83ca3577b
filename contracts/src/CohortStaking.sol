// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.23;

import {Ownable2Step} from "./utils/Ownable2Step.sol";
import {IERC20Minimal} from "./interfaces/IERC20Minimal.sol";
import {ICohortGroupManager} from "./interfaces/ICohortGroupManager.sol";

/// @title CohortStaking
/// @notice Operators stake one ERC-20 (`stakeToken`); stakers delegate to an operator. Each
///         operator has a share pool (`totalShares`, `totalAssets`), so a slash is one write to
///         `totalAssets` and costs the same for one staker or ten thousand (Mantle's
///         `transformDeposit` loops over every delegator: unbounded gas).
/// @dev    Withdrawals are queued: queued shares stay in the pool, and so stay slashable, until
///         `completeWithdraw`, which pays them at the share price of that moment. Otherwise an
///         operator could see a slash coming and run with the stake.
///         The group signature is the slashing authority, so any account may relay a
///         `slashLiveness` proposition (Mantle gates on a `tssManager` account: a single point of
///         failure). Mantle's `slashing(bytes,bytes)` is kept behind `mantleCompat` (off).
///         Names marked "Mantle" keep `TssStakingSlashing`'s ABI.
contract CohortStaking is Ownable2Step {
    struct Pool {
        uint256 totalShares;
        uint256 totalAssets;
    }

    struct Withdrawal {
        address staker;
        address operator;
        uint256 shares;
        uint256 unlockAt;
    }

    /// @notice A liveness proposition the cluster signs (EIP-712, spec 3.4.2).
    struct LivenessSlash {
        uint64 round;
        address node;
        uint64 fromBatch;
        uint64 toBatch;
        uint32 missed;
        address[] approvers;
    }

    /// @notice A fraud proposition (`kind` 1 equivocation, 2 protocol abort, 3 false content).
    struct FraudSlash {
        uint64 round;
        address node;
        uint8 kind;
        bytes32 sessionId;
        bytes32 evidenceHash;
        address[] approvers;
    }

    /// @notice Mantle's slash message, `abi.encode`d and signed as `keccak256(bytes)`.
    struct SlashMsg {
        uint256 batchIndex;
        address jailNode;
        address[] tssNodes;
        uint8 slashType;
    }

    bytes32 public constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant LIVENESS_TYPEHASH = keccak256(
        "LivenessSlash(uint64 round,address node,uint64 fromBatch,uint64 toBatch,uint32 missed,address[] approvers)"
    );
    bytes32 public constant FRAUD_TYPEHASH = keccak256(
        "FraudSlash(uint64 round,address node,uint8 kind,bytes32 sessionId,bytes32 evidenceHash,address[] approvers)"
    );
    uint256 internal constant BPS = 10000;
    /// @notice Mantle's `SlashType.animus`, the value `Slashing` carries for a fraud slash.
    uint8 internal constant SLASH_ANIMUS = 1;
    uint8 internal constant FRAUD_EQUIVOCATION = 1;
    uint8 internal constant FRAUD_PROTOCOL_ABORT = 2;
    uint8 internal constant FRAUD_FALSE_CONTENT = 3;
    /// @notice Mantle's `SlashType.uptime`, the value `Slashing` carries for a liveness slash.
    uint8 internal constant SLASH_UPTIME = 0;

    // ---- errors -------------------------------------------------------------------------------
    error ZeroAddress();
    error ZeroAmount();
    error InvalidPublicKeyLength(uint256 length);
    error NotKeyOwner(address sender, address keyAddress);
    error NotWhitelisted(address operator);
    error OperatorBanned(address operator);
    error AlreadyRegistered(address operator);
    error NotRegistered(address operator);
    error AlreadyDelegated(address staker, address operator);
    error NotDelegated(address staker);
    error PoolInsolvent(address operator);
    error InsufficientShares(uint256 available, uint256 requested);
    error BelowMinStake(uint256 stakeAfter, uint256 minStake);
    error NothingToComplete();
    error TransferFailed();
    error NotMember(address operator);
    error AlreadyQuitRequested(address operator);
    error NotJailed(address operator);
    error JailPeriodNotOver(uint256 until);
    error NotOperator(address caller);
    error NothingToClaim();
    error InvalidParameter(bytes32 name);
    error WrongRound(uint256 expected, uint256 given);
    error NodeNotSlashable(address node);
    error InvalidWindow(uint64 fromBatch, uint64 toBatch);
    error InvalidMissed(uint32 missed);
    error WindowAlreadySlashed(uint64 fromBatch, uint64 lastSlashed);
    error ApproversNotAscending(uint256 index);
    error InvalidApprover(address approver);
    error TooFewApprovers(uint256 given, uint256 required);
    error QuorumNotReached(uint256 approverStake, uint256 totalStake);
    error PropositionUsed(bytes32 digest);
    error InvalidGroupSignature();
    error InvalidFraudKind(uint8 kind);
    error MantleCompatDisabled();
    error InvalidSlashType(uint8 slashType);
    error AlreadySlashed(uint256 batchIndex, address node);

    // ---- events -------------------------------------------------------------------------------
    event OperatorRegistered(address indexed operator, bytes publicKey);
    event DelegatedTo(address indexed staker, address indexed operator);
    event Deposited(address indexed staker, address indexed operator, uint256 amount, uint256 shares);
    /// @notice Mantle's event (`WithdrawQueue(address,uint256)`), beside `WithdrawalQueued`.
    event WithdrawQueue(address staker, uint256 shares);
    event WithdrawalQueued(
        uint256 indexed id, address indexed staker, address indexed operator, uint256 shares, uint256 unlockAt
    );
    event WithdrawalCompleted(uint256 indexed id, address indexed staker, uint256 shares, uint256 amount);
    event QuitRequested(address indexed operator);
    event QuitRequestListCleared();
    event Unjailed(address indexed operator);
    event ClaimerSet(address indexed operator, address indexed claimer);
    event Claimed(address indexed account, address indexed to, uint256 amount);
    event ParameterSet(bytes32 indexed name, uint256 value);
    event TreasurySet(address indexed treasury);
    event WhitelistSet(address indexed operator, bool allowed);
    event WhitelistEnabledSet(bool enabled);
    /// @notice Mantle's event: `slashType` 0 = uptime, 1 = animus.
    event Slashing(address node, uint8 slashType);
    event LivenessSlashed(
        uint256 indexed round,
        address indexed node,
        uint64 fromBatch,
        uint64 toBatch,
        uint32 missed,
        uint256 amount,
        address[] approvers
    );

    event FraudSlashed(
        uint256 indexed round,
        address indexed node,
        uint8 kind,
        bytes32 evidenceHash,
        uint256 amount,
        address[] approvers
    );
    event FalseContentEnabledSet(bool enabled);
    event MantleCompatSet(bool enabled);

    // ---- storage -------------------------------------------------------------------------------
    IERC20Minimal public immutable stakeToken;
    ICohortGroupManager public immutable group;

    mapping(address => bytes) internal operatorKey;
    mapping(address => Pool) internal pools;
    /// @notice The operator a staker's shares belong to (an operator delegates to itself).
    mapping(address staker => address) public delegation;
    /// @notice A staker's shares in its operator's pool, queued ones included.
    mapping(address staker => uint256) public shares;
    /// @notice Shares a staker has queued and not yet completed (still in the pool, slashable).
    mapping(address staker => uint256) public queuedShares;
    /// @notice Queued shares of an operator's pool, all stakers together.
    mapping(address operator => uint256) public poolQueuedShares;
    Withdrawal[] internal withdrawals;
    mapping(address => uint256[]) internal withdrawalIds;
    mapping(address => uint256) internal withdrawalHead;

    address[] internal quitRequestList;
    mapping(address operator => uint256) public jailedAt;
    mapping(address operator => address) public claimerOf;
    /// @notice Accrued slash rewards, claimable in `stakeToken`.
    mapping(address account => uint256) public rewards;

    /// @notice Mantle `getSlashRecord`: batch index => node => slashed.
    mapping(uint256 => mapping(address => bool)) internal slashRecord;
    /// @notice Last batch of the last liveness window a node was slashed for (windows never overlap).
    mapping(address node => uint64) public lastLivenessBatch;
    /// @notice Proposition digests already executed.
    mapping(bytes32 digest => bool) public usedProposition;

    uint256 public minStake;
    /// @notice [0] liveness (Mantle's uptime), [1] fraud (Mantle's animus).
    uint256[2] public slashAmount;
    uint64 public livenessWindow;
    uint32 public livenessMaxMissed;
    uint256 public quorumBps;
    uint256 public rewardBps;
    uint256 public withdrawalDelay;
    uint256 public jailPeriod;
    address public treasury;
    bool public whitelistEnabled;
    mapping(address operator => bool) public whitelist;
    /// @notice Whether fraud kind 3 (false content) may be slashed; off until governance trusts it.
    bool public falseContentEnabled;
    /// @notice Whether Mantle's `slashing(bytes,bytes)` is accepted. Off by default: its digest has
    ///         no domain, so a signature replays across deployments that share a group key.
    bool public mantleCompat;

    constructor(address initialOwner, address _stakeToken, address _group, address _treasury)
        Ownable2Step(initialOwner)
    {
        if (_stakeToken == address(0) || _group == address(0) || _treasury == address(0)) revert ZeroAddress();
        stakeToken = IERC20Minimal(_stakeToken);
        group = ICohortGroupManager(_group);
        treasury = _treasury;
        livenessWindow = 200;
        livenessMaxMissed = 50;
        quorumBps = 6667;
        rewardBps = 10000;
        withdrawalDelay = 7 days;
        jailPeriod = 1 days;
        emit TreasurySet(_treasury);
    }

    modifier onlyOperator() {
        if (operatorKey[msg.sender].length == 0) revert NotOperator(msg.sender);
        _;
    }

    // ---- governance ----------------------------------------------------------------------------

    function setMinStake(uint256 value) external onlyOwner {
        minStake = value;
        emit ParameterSet("minStake", value);
    }

    /// @notice [0] liveness, [1] fraud. Mantle's shape without `exIncome` (rewards are `rewardBps`).
    function setSlashingParams(uint256[2] calldata _slashAmount) external onlyOwner {
        slashAmount = _slashAmount;
        emit ParameterSet("slashAmount0", _slashAmount[0]);
        emit ParameterSet("slashAmount1", _slashAmount[1]);
    }

    function setLivenessParams(uint64 window, uint32 maxMissed) external onlyOwner {
        if (window == 0 || maxMissed >= window) revert InvalidParameter("liveness");
        livenessWindow = window;
        livenessMaxMissed = maxMissed;
        emit ParameterSet("livenessWindow", window);
        emit ParameterSet("livenessMaxMissed", maxMissed);
    }

    function setQuorumBps(uint256 value) external onlyOwner {
        if (value == 0 || value > BPS) revert InvalidParameter("quorumBps");
        quorumBps = value;
        emit ParameterSet("quorumBps", value);
    }

    function setRewardBps(uint256 value) external onlyOwner {
        if (value > BPS) revert InvalidParameter("rewardBps");
        rewardBps = value;
        emit ParameterSet("rewardBps", value);
    }

    function setWithdrawalDelay(uint256 value) external onlyOwner {
        withdrawalDelay = value;
        emit ParameterSet("withdrawalDelay", value);
    }

    function setJailPeriod(uint256 value) external onlyOwner {
        jailPeriod = value;
        emit ParameterSet("jailPeriod", value);
    }

    function setTreasury(address value) external onlyOwner {
        if (value == address(0)) revert ZeroAddress();
        treasury = value;
        emit TreasurySet(value);
    }

    function setWhitelist(address operator, bool allowed) external onlyOwner {
        whitelist[operator] = allowed;
        emit WhitelistSet(operator, allowed);
    }

    function setWhitelistEnabled(bool enabled) external onlyOwner {
        whitelistEnabled = enabled;
        emit WhitelistEnabledSet(enabled);
    }

    function setFalseContentEnabled(bool enabled) external onlyOwner {
        falseContentEnabled = enabled;
        emit FalseContentEnabledSet(enabled);
    }

    function setMantleCompat(bool enabled) external onlyOwner {
        mantleCompat = enabled;
        emit MantleCompatSet(enabled);
    }

    /// @notice Mantle: governance has read the quit requests. Owner only.
    function clearQuitRequestList() external onlyOwner {
        delete quitRequestList;
        emit QuitRequestListCleared();
    }

    // ---- operators and stakers -----------------------------------------------------------------

    /// @notice Registers `msg.sender` as an operator with its 64-byte node key (Mantle name).
    ///         The sender must own the key, so nobody can register someone else's node.
    function registerAsOperator(bytes calldata pubKey) external {
        if (pubKey.length != 64) revert InvalidPublicKeyLength(pubKey.length);
        address keyAddress = address(uint160(uint256(keccak256(pubKey))));
        if (msg.sender != keyAddress) revert NotKeyOwner(msg.sender, keyAddress);
        if (whitelistEnabled && !whitelist[msg.sender]) revert NotWhitelisted(msg.sender);
        if (group.banned(msg.sender)) revert OperatorBanned(msg.sender);
        if (operatorKey[msg.sender].length != 0) revert AlreadyRegistered(msg.sender);
        address current = delegation[msg.sender];
        if (current != address(0) && current != msg.sender) revert AlreadyDelegated(msg.sender, current);
        operatorKey[msg.sender] = pubKey;
        emit OperatorRegistered(msg.sender, pubKey);
        if (current == address(0)) {
            delegation[msg.sender] = msg.sender;
            emit DelegatedTo(msg.sender, msg.sender);
        }
    }

    /// @notice Chooses the operator for all of the sender's deposits; once, before the first.
    function delegateTo(address operator) external {
        address current = delegation[msg.sender];
        if (current != address(0)) revert AlreadyDelegated(msg.sender, current);
        if (operatorKey[operator].length == 0) revert NotRegistered(operator);
        if (group.banned(operator)) revert OperatorBanned(operator);
        delegation[msg.sender] = operator;
        emit DelegatedTo(msg.sender, operator);
    }

    /// @notice Deposits `amount` of `stakeToken` into the sender's operator's pool (Mantle name).
    function deposit(uint256 amount) external returns (uint256 minted) {
        if (amount == 0) revert ZeroAmount();
        address operator = delegation[msg.sender];
        if (operator == address(0)) revert NotDelegated(msg.sender);
        if (group.banned(operator)) revert OperatorBanned(operator);
        Pool storage pool = pools[operator];
        if (pool.totalShares == 0) {
            minted = amount;
        } else {
            if (pool.totalAssets == 0) revert PoolInsolvent(operator);
            minted = amount * pool.totalShares / pool.totalAssets;
        }
        if (minted == 0) revert ZeroAmount();
        pool.totalShares += minted;
        pool.totalAssets += amount;
        shares[msg.sender] += minted;
        _pull(msg.sender, amount);
        emit Deposited(msg.sender, operator, amount, minted);
    }

    /// @notice Queues `amount` shares for withdrawal after `withdrawalDelay`. They stay in the
    ///         pool (slashable) until `completeWithdraw`. A member's operator may not fall below
    ///         `minStake` (Mantle `_checkMinStakeAmount`).
    function queueWithdrawal(uint256 amount) public returns (uint256 id) {
        if (amount == 0) revert ZeroAmount();
        uint256 available = shares[msg.sender] - queuedShares[msg.sender];
        if (amount > available) revert InsufficientShares(available, amount);
        address operator = delegation[msg.sender];
        bytes memory key = operatorKey[operator];
        if (key.length != 0 && (group.memberExistActive(key) || group.memberExistInActive(key))) {
            uint256 after_ = _assets(operator, pools[operator].totalShares - poolQueuedShares[operator] - amount);
            if (after_ < minStake) revert BelowMinStake(after_, minStake);
        }
        queuedShares[msg.sender] += amount;
        poolQueuedShares[operator] += amount;
        id = withdrawals.length;
        uint256 unlockAt = block.timestamp + withdrawalDelay;
        withdrawals.push(Withdrawal({staker: msg.sender, operator: operator, shares: amount, unlockAt: unlockAt}));
        withdrawalIds[msg.sender].push(id);
        emit WithdrawQueue(msg.sender, amount);
        emit WithdrawalQueued(id, msg.sender, operator, amount, unlockAt);
    }

    /// @notice Mantle name: queues all of the sender's shares that are not queued yet.
    function withdraw() external returns (uint256) {
        return queueWithdrawal(shares[msg.sender] - queuedShares[msg.sender]);
    }

    /// @notice Mantle name, kept for ABI compatibility; a no-op, the clock starts at queueing.
    function startWithdraw() external pure {}

    /// @notice Whether the sender's oldest queued withdrawal is due.
    function canCompleteQueuedWithdrawal() external view returns (bool) {
        uint256 head = withdrawalHead[msg.sender];
        uint256[] storage ids = withdrawalIds[msg.sender];
        return head < ids.length && withdrawals[ids[head]].unlockAt <= block.timestamp;
    }

    /// @notice Completes the sender's due withdrawals, oldest first, at the current share price.
    function completeWithdraw() external returns (uint256 paid) {
        uint256 head = withdrawalHead[msg.sender];
        uint256[] storage ids = withdrawalIds[msg.sender];
        uint256 done;
        while (head < ids.length && withdrawals[ids[head]].unlockAt <= block.timestamp) {
            Withdrawal storage w = withdrawals[ids[head]];
            Pool storage pool = pools[w.operator];
            uint256 amount = w.shares * pool.totalAssets / pool.totalShares;
            pool.totalShares -= w.shares;
            pool.totalAssets -= amount;
            poolQueuedShares[w.operator] -= w.shares;
            queuedShares[msg.sender] -= w.shares;
            shares[msg.sender] -= w.shares;
            paid += amount;
            emit WithdrawalCompleted(ids[head], msg.sender, w.shares, amount);
            head++;
            done++;
        }
        if (done == 0) revert NothingToComplete();
        withdrawalHead[msg.sender] = head;
        if (shares[msg.sender] == 0 && operatorKey[msg.sender].length == 0) {
            delete delegation[msg.sender];
        }
        _push(msg.sender, paid);
    }

    /// @notice Mantle: an active or pending member asks governance to leave at the next election.
    function quitRequest() external onlyOperator {
        bytes memory key = operatorKey[msg.sender];
        if (!group.memberExistActive(key) && !group.memberExistInActive(key)) revert NotMember(msg.sender);
        for (uint256 i = 0; i < quitRequestList.length; i++) {
            if (quitRequestList[i] == msg.sender) revert AlreadyQuitRequested(msg.sender);
        }
        quitRequestList.push(msg.sender);
        emit QuitRequested(msg.sender);
    }

    function getQuitRequestList() external view returns (address[] memory) {
        return quitRequestList;
    }

    /// @notice A jailed operator returns after `jailPeriod`, staked at least `minStake` (Mantle name).
    function unJail() external onlyOperator {
        if (group.banned(msg.sender)) revert OperatorBanned(msg.sender);
        if (!isJailed(msg.sender)) revert NotJailed(msg.sender);
        uint256 until = jailedAt[msg.sender] + jailPeriod;
        if (block.timestamp < until) revert JailPeriodNotOver(until);
        uint256 stake = operatorStake(msg.sender);
        if (stake < minStake) revert BelowMinStake(stake, minStake);
        group.memberUnJail(operatorKey[msg.sender]);
        emit Unjailed(msg.sender);
    }

    /// @notice Mantle: an operator names who receives its slash rewards from now on.
    function setClaimer(address operator, address claimer) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        if (operatorKey[operator].length == 0) revert NotRegistered(operator);
        claimerOf[operator] = claimer;
        emit ClaimerSet(operator, claimer);
    }

    /// @notice Pays the sender's accrued slash rewards.
    function claim() external returns (uint256 amount) {
        amount = rewards[msg.sender];
        if (amount == 0) revert NothingToClaim();
        rewards[msg.sender] = 0;
        _push(msg.sender, amount);
        emit Claimed(msg.sender, msg.sender, amount);
    }

    // ---- slashing ------------------------------------------------------------------------------

    /// @notice Executes a liveness proposition signed by the group key (spec 3.3.2). Any account
    ///         may relay it. Selector 0xe243650f.
    function slashLiveness(LivenessSlash calldata p, bytes calldata sig) external {
        uint256 currentRound = group.round();
        if (p.round != currentRound) revert WrongRound(currentRound, p.round);
        if (!group.isTssGroupUnJailMembers(p.node) || group.banned(p.node)) revert NodeNotSlashable(p.node);
        if (p.fromBatch > p.toBatch || p.toBatch - p.fromBatch + 1 > livenessWindow) {
            revert InvalidWindow(p.fromBatch, p.toBatch);
        }
        if (p.missed <= livenessMaxMissed || p.missed > p.toBatch - p.fromBatch + 1) revert InvalidMissed(p.missed);
        if (p.fromBatch <= lastLivenessBatch[p.node]) revert WindowAlreadySlashed(p.fromBatch, lastLivenessBatch[p.node]);
        (uint256[] memory approverStake, uint256 approverTotal) = _checkApprovers(p.node, p.approvers);
        bytes32 d = livenessDigest(p);
        if (usedProposition[d]) revert PropositionUsed(d);
        if (!group.verifySign(d, sig)) revert InvalidGroupSignature();

        usedProposition[d] = true;
        lastLivenessBatch[p.node] = p.toBatch;
        slashRecord[p.toBatch][p.node] = true;
        uint256 amount = _slash(p.node, slashAmount[0], p.approvers, approverStake, approverTotal);
        jailedAt[p.node] = block.timestamp;
        group.memberJail(operatorKey[p.node]);
        emit Slashing(p.node, SLASH_UPTIME);
        emit LivenessSlashed(p.round, p.node, p.fromBatch, p.toBatch, p.missed, amount, p.approvers);
    }

    /// @notice Executes a fraud proposition signed by the group key: slashes `slashAmount[1]`,
    ///         jails, removes and bans the node (the group key stays; the cluster reshares).
    ///         Selector 0x01279427.
    /// @dev    The removal's floor (`threshold + 1` members left) never blocks a valid proposition:
    ///         it needs `threshold + 1` approvers other than the node, who all remain.
    function slashFraud(FraudSlash calldata p, bytes calldata sig) external {
        uint256 currentRound = group.round();
        if (p.round != currentRound) revert WrongRound(currentRound, p.round);
        if (!group.isTssGroupUnJailMembers(p.node) || group.banned(p.node)) revert NodeNotSlashable(p.node);
        if (
            p.kind != FRAUD_EQUIVOCATION && p.kind != FRAUD_PROTOCOL_ABORT
                && !(p.kind == FRAUD_FALSE_CONTENT && falseContentEnabled)
        ) revert InvalidFraudKind(p.kind);
        (uint256[] memory approverStake, uint256 approverTotal) = _checkApprovers(p.node, p.approvers);
        bytes32 d = fraudDigest(p);
        if (usedProposition[d]) revert PropositionUsed(d);
        if (!group.verifySign(d, sig)) revert InvalidGroupSignature();

        usedProposition[d] = true;
        slashRecord[type(uint64).max][p.node] = true;
        uint256 amount = _slash(p.node, slashAmount[1], p.approvers, approverStake, approverTotal);
        jailedAt[p.node] = block.timestamp;
        bytes memory key = operatorKey[p.node];
        group.memberJail(key);
        group.removeMember(key, "fraud");
        emit Slashing(p.node, SLASH_ANIMUS);
        emit FraudSlashed(p.round, p.node, p.kind, p.evidenceHash, amount, p.approvers);
    }

    /// @notice Mantle's entry point (`TssStakingSlashing.slashing`), only with `mantleCompat`.
    ///         `_messageBytes` is `abi.encode(SlashMsg)`, signed as `keccak256(_messageBytes)`;
    ///         once per `(batchIndex, jailNode)`. Type 0 (uptime) slashes `slashAmount[0]` and
    ///         jails; type 1 (animus) slashes `slashAmount[1]`, jails, removes and bans. Rewards
    ///         are split equally among `tssNodes` (Mantle's rule), the dust to the treasury.
    ///         Selector 0x5887c33c.
    function slashing(bytes calldata _messageBytes, bytes calldata _sig) external {
        if (!mantleCompat) revert MantleCompatDisabled();
        SlashMsg memory m = abi.decode(_messageBytes, (SlashMsg));
        if (m.slashType > SLASH_ANIMUS) revert InvalidSlashType(m.slashType);
        if (slashRecord[m.batchIndex][m.jailNode]) revert AlreadySlashed(m.batchIndex, m.jailNode);
        if (!group.isTssGroupUnJailMembers(m.jailNode) || group.banned(m.jailNode)) revert NodeNotSlashable(m.jailNode);
        if (!group.verifySign(keccak256(_messageBytes), _sig)) revert InvalidGroupSignature();

        slashRecord[m.batchIndex][m.jailNode] = true;
        uint256[] memory equal = new uint256[](m.tssNodes.length);
        for (uint256 i = 0; i < equal.length; i++) {
            equal[i] = 1;
        }
        _distribute(m.jailNode, slashAmount[m.slashType], m.tssNodes, equal, equal.length);
        jailedAt[m.jailNode] = block.timestamp;
        bytes memory key = operatorKey[m.jailNode];
        group.memberJail(key);
        if (m.slashType == SLASH_ANIMUS) group.removeMember(key, "fraud");
        emit Slashing(m.jailNode, m.slashType);
    }

    /// @notice The EIP-712 digest the cluster signs for a fraud proposition `p`.
    function fraudDigest(FraudSlash calldata p) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                FRAUD_TYPEHASH,
                p.round,
                p.node,
                p.kind,
                p.sessionId,
                p.evidenceHash,
                keccak256(abi.encodePacked(p.approvers))
            )
        );
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    /// @notice The EIP-712 digest the cluster signs for `p`.
    function livenessDigest(LivenessSlash calldata p) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                LIVENESS_TYPEHASH,
                p.round,
                p.node,
                p.fromBatch,
                p.toBatch,
                p.missed,
                keccak256(abi.encodePacked(p.approvers))
            )
        );
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    // ---- views ---------------------------------------------------------------------------------

    /// @notice EIP-712 domain: name "Cohort", version "1", this chain, this contract.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("Cohort"), keccak256("1"), block.chainid, address(this)));
    }

    function livenessParams() external view returns (uint64 window, uint32 maxMissed) {
        return (livenessWindow, livenessMaxMissed);
    }

    /// @notice Mantle: was `user` slashed for `batchIndex`.
    function getSlashRecord(uint256 batchIndex, address user) external view returns (bool) {
        return slashRecord[batchIndex][user];
    }

    /// @notice Mantle's shape `(slashAmount, exIncome)`; `exIncome` is always zero here.
    function getSlashingParams() external view returns (uint256[2] memory, uint256[2] memory) {
        uint256[2] memory none;
        return (slashAmount, none);
    }

    /// @notice Mantle: is `user` an active member in jail.
    function isJailed(address user) public view returns (bool) {
        bytes memory key = operatorKey[user];
        if (key.length == 0) return false;
        ICohortGroupManager.TssMember memory m = group.getTssMember(key);
        return m.nodeAddress != address(0) && m.status == ICohortGroupManager.MemberStatus.jail;
    }

    /// @notice Mantle: registered, not banned, and staked at least `minStake`.
    function isCanOperator(address operator) external view returns (bool) {
        return operatorKey[operator].length != 0 && !group.banned(operator) && operatorStake(operator) >= minStake;
    }

    /// @notice Mantle: the operator's 64-byte node key (empty when not registered).
    function operators(address operator) external view returns (bytes memory) {
        return operatorKey[operator];
    }

    /// @notice The operator's stake that is not queued for withdrawal, in `stakeToken`.
    function operatorStake(address operator) public view returns (uint256) {
        return _assets(operator, pools[operator].totalShares - poolQueuedShares[operator]);
    }

    function poolOf(address operator) external view returns (uint256 totalShares, uint256 totalAssets) {
        Pool storage p = pools[operator];
        return (p.totalShares, p.totalAssets);
    }

    /// @notice A staker's queued withdrawal `id`.
    function getWithdrawal(uint256 id) external view returns (Withdrawal memory) {
        return withdrawals[id];
    }

    // ---- internals -----------------------------------------------------------------------------

    function _assets(address operator, uint256 shareCount) internal view returns (uint256) {
        Pool storage p = pools[operator];
        if (p.totalShares == 0) return 0;
        return shareCount * p.totalAssets / p.totalShares;
    }

    /// @dev Spec 3.3.2 check 6: ascending, active unjailed members other than `node`, at least
    ///      `signersRequired()`, and a stake quorum of the unjailed members other than `node`.
    function _checkApprovers(address node, address[] calldata approvers)
        internal
        view
        returns (uint256[] memory stakes, uint256 approverTotal)
    {
        uint256 required = group.signersRequired();
        if (approvers.length < required) revert TooFewApprovers(approvers.length, required);
        stakes = new uint256[](approvers.length);
        for (uint256 i = 0; i < approvers.length; i++) {
            address a = approvers[i];
            if (i > 0 && a <= approvers[i - 1]) revert ApproversNotAscending(i);
            if (a == node || !group.isTssGroupUnJailMembers(a)) revert InvalidApprover(a);
            stakes[i] = operatorStake(a);
            approverTotal += stakes[i];
        }
        address[] memory members = group.getTssGroupUnJailMembers();
        uint256 total;
        for (uint256 i = 0; i < members.length; i++) {
            if (members[i] != node) total += operatorStake(members[i]);
        }
        if (approverTotal * BPS < quorumBps * total) revert QuorumNotReached(approverTotal, total);
    }

    /// @dev Lowers the pool's assets (every staker of `node` shares the loss through the share
    ///      price); `rewardBps` goes to the approvers pro rata to stake, the rest to the treasury.
    function _slash(
        address node,
        uint256 wanted,
        address[] calldata approvers,
        uint256[] memory stakes,
        uint256 approverTotal
    ) internal returns (uint256) {
        return _distribute(node, wanted, approvers, stakes, approverTotal);
    }

    function _distribute(
        address node,
        uint256 wanted,
        address[] memory approvers,
        uint256[] memory stakes,
        uint256 approverTotal
    ) internal returns (uint256 amount) {
        Pool storage p = pools[node];
        amount = wanted < p.totalAssets ? wanted : p.totalAssets;
        p.totalAssets -= amount;
        uint256 reward = amount * rewardBps / BPS;
        uint256 paid;
        if (approverTotal > 0) {
            for (uint256 i = 0; i < approvers.length; i++) {
                uint256 share = reward * stakes[i] / approverTotal;
                address to = claimerOf[approvers[i]];
                if (to == address(0)) to = approvers[i];
                rewards[to] += share;
                paid += share;
            }
        }
        rewards[treasury] += amount - paid;
    }

    function _pull(address from, uint256 amount) internal {
        (bool ok, bytes memory ret) =
            address(stakeToken).call(abi.encodeCall(IERC20Minimal.transferFrom, (from, address(this), amount)));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TransferFailed();
    }

    function _push(address to, uint256 amount) internal {
        (bool ok, bytes memory ret) = address(stakeToken).call(abi.encodeCall(IERC20Minimal.transfer, (to, amount)));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TransferFailed();
    }
}
