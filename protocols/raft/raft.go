package raft

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/logger"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/rime-dev/rime/internal/backoff"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
)

// Config tunes the Raft layer. DefaultConfig documents each value.
type Config struct {
	// RTT is the message round trip dragonboat's ticks are measured in.
	RTT time.Duration
	// ElectionRTT and HeartbeatRTT are in RTTs: 10 and 1 give elections
	// after 100-200 ms of silence at RTT 10 ms, as measured in LIBRARIES.md.
	ElectionRTT, HeartbeatRTT uint64
	// SnapshotEntries: dragonboat snapshots the state machine every this
	// many entries, so a restart replays a bounded log (off by default in
	// dragonboat, which lets the log grow without bound).
	SnapshotEntries uint64
	// CompactionOverhead entries are kept behind a snapshot for slow
	// followers to catch up without a snapshot transfer.
	CompactionOverhead uint64
	// RetainCompacted entries are kept in each replica's memory behind
	// the log's compaction point (Log.Compact), so that a reader of this
	// replica that is that far behind when a compaction lands (a channel
	// session that has not yet read the entry its checkpoint was taken
	// at) keeps its contiguous stream rather than failing with
	// ErrCompacted. 0 drops them at once.
	RetainCompacted uint64
	// ManageEvery is how often the leader reconciles the shard's members
	// with the membership view.
	ManageEvery time.Duration
	// ProposeTimeout bounds one proposal when the caller gives no deadline.
	ProposeTimeout time.Duration
}

// DefaultConfig is tuned for a LAN or loopback cluster.
func DefaultConfig() Config {
	return Config{
		RTT:                10 * time.Millisecond,
		ElectionRTT:        10,
		HeartbeatRTT:       1,
		SnapshotEntries:    1000,
		CompactionOverhead: 500,
		// One checkpoint interval of the channel (its CheckpointEvery):
		// under load the component that answers a checkpoint request
		// is ahead of other sessions, by a few entries on one node and
		// by a commit's delay on others.
		RetainCompacted: 1000,
		ManageEvery:     200 * time.Millisecond,
		ProposeTimeout:  5 * time.Second,
	}
}

// Validate names the field and value that are wrong.
func (c Config) Validate() error {
	switch {
	case c.RTT < time.Millisecond:
		return fmt.Errorf("raft: Config.RTT %v: want at least 1ms", c.RTT)
	case c.HeartbeatRTT == 0 || c.ElectionRTT < 2*c.HeartbeatRTT:
		return fmt.Errorf("raft: Config.ElectionRTT %d must be at least twice HeartbeatRTT %d (and HeartbeatRTT > 0)", c.ElectionRTT, c.HeartbeatRTT)
	case c.ManageEvery <= 0 || c.ProposeTimeout <= 0:
		return fmt.Errorf("raft: Config.ManageEvery %v and ProposeTimeout %v must be positive", c.ManageEvery, c.ProposeTimeout)
	}
	return nil
}

// Name is the protocol's name in its spec.
const Name = "raft"

// NewModule returns the raft module with cfg (DefaultConfig is what the
// default registry uses).
func NewModule(cfg Config) protocols.Module {
	return protocols.Module{Name: Name, Provides: []string{"log"}, New: func() protocols.Instance { return &Raft{cfg: cfg} }}
}

func init() { protocols.Default.MustRegister(NewModule(DefaultConfig())) }

// Raft is one class's Raft shard as seen from one node: a dragonboat
// NodeHost of its own (so classes fail independently), running the
// shard's replica on this node, voting or not.
type Raft struct {
	cfg      Config
	env      *protocols.Env
	replicas int
	members  protocols.Membership
	book     *addressBook
	changes  *Changes
	ep       network.Endpoint
	dir      string
	log      *slog.Logger

	shardID, replicaID uint64
	nh                 *dragonboat.NodeHost
	state              *logState
	sessions           sessionPool

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Provision reads the replica count and finds the layers below: membership
// (to place replicas), the store (for the log's directory) and the
// transport (to reach the other replicas).
func (r *Raft) Provision(env *protocols.Env) error {
	r.env = env
	r.log = env.Logger
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if r.replicas, err = env.IntParam("replicas", 3); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	if r.members, err = protocols.Need[protocols.Membership](env, Name, "membership"); err != nil {
		return err
	}
	if t, ok := protocols.Find[protocols.Transport](env); ok {
		r.ep = t.Endpoint()
	} else {
		r.ep = env.Network
	}
	if st, ok := protocols.Find[protocols.Store](env); ok {
		if r.dir, err = st.Dir("raft-" + env.Class); err != nil {
			return fmt.Errorf("raft: %w", err)
		}
	} else {
		// Durability 0: the plan has no store, and the log is only as
		// durable as the node's data dir happens to be.
		r.dir = filepath.Join(env.DataDir, "raft")
	}
	r.shardID = hash64(env.App + "/" + env.Class)
	r.replicaID = ReplicaID(env.Node.ID)
	return nil
}

// Validate checks the configuration and the replica count.
func (r *Raft) Validate() error {
	if err := r.cfg.Validate(); err != nil {
		return err
	}
	if r.replicas < 1 {
		return fmt.Errorf("raft: replicas %d: want at least 1", r.replicas)
	}
	if r.ep == nil {
		return fmt.Errorf("raft: class %s: no transport below and no network", r.env.Class)
	}
	return nil
}

// ReplicaID is the node's replica id in every shard: a hash of its
// identity, so a node that lost its disk (and so its key) comes back as a
// new replica, as Raft requires.
func ReplicaID(nodeID string) uint64 { return hash64("node/" + nodeID) }

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

var quietOnce sync.Once

// quiet turns dragonboat's package loggers down to errors: they are
// process-wide, and at their default level they drown the user's output.
func quiet() {
	quietOnce.Do(func() {
		for _, n := range []string{"config", "dragonboat", "gossip", "grpc", "logdb", "pebblekv", "raft", "raftpb", "registry", "rsm", "server", "settings", "tan", "tools"} {
			logger.GetLogger(n).SetLevel(logger.ERROR)
		}
		// A send to a stopped or unreachable replica is logged as an
		// error, but to Raft it is a lost message, which it tolerates.
		logger.GetLogger("transport").SetLevel(logger.CRITICAL)
	})
}

// Start opens the NodeHost and starts this node's replica: an existing
// replica restarts from its disk; the bootstrapping node starts the shard
// with itself as the one voter; every other node starts a non-voting
// replica that the leader adds, and promotes when the shard needs voters.
func (r *Raft) Start(ctx context.Context) error {
	quiet()
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	r.book = newAddressBook(r.members)
	r.changes = NewChanges()
	nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
		RaftEventListener:   Listener{r.changes},
		SystemEventListener: Listener{r.changes},
		NodeHostDir:         r.dir,
		WALDir:              r.dir,
		RTTMillisecond:      uint64(r.cfg.RTT / time.Millisecond),
		RaftAddress:         r.env.Node.ID,
		Expert: config.ExpertConfig{
			TransportFactory: &transportFactory{ep: r.ep, service: "raft/" + r.env.Class, lookup: r.book.lookup, log: r.log},
			// The default LogDB reserves ~141 MB per NodeHost; one
			// NodeHost per class needs the small one.
			LogDB: config.GetTinyMemLogDBConfig(),
		},
	})
	if err != nil {
		return fmt.Errorf("raft: class %s: open node host in %s: %w", r.env.Class, r.dir, err)
	}
	r.nh = nh
	r.state = newLogState(r.cfg.RetainCompacted)
	create := func(uint64, uint64) sm.IStateMachine { return fsm{r.state} }

	voter := r.role() == "voter"
	var members map[uint64]dragonboat.Target
	join := false
	switch {
	case nh.HasNodeInfo(r.shardID, r.replicaID):
	case r.env.Node.Bootstrap:
		voter = true
		members = map[uint64]dragonboat.Target{r.replicaID: r.env.Node.ID}
	default:
		voter, join = false, true
	}
	if err := r.setRole(voter); err != nil {
		nh.Close()
		return err
	}
	cfg := config.Config{
		ShardID: r.shardID, ReplicaID: r.replicaID,
		ElectionRTT: r.cfg.ElectionRTT, HeartbeatRTT: r.cfg.HeartbeatRTT,
		CheckQuorum: true, PreVote: true,
		SnapshotEntries: r.cfg.SnapshotEntries, CompactionOverhead: r.cfg.CompactionOverhead,
		IsNonVoting: !voter,
	}
	if err := nh.StartReplica(members, join, create, cfg); err != nil {
		nh.Close()
		return fmt.Errorf("raft: class %s: start replica: %w", r.env.Class, err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(2)
	go r.manage(mctx)
	go func() {
		defer r.wg.Done()
		r.book.follow(mctx)
	}()
	return nil
}

// The role file remembers whether this replica votes, because dragonboat
// must be told at restart and a promotion happens after the first start.
func (r *Raft) role() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "rime-role"))
	return strings.TrimSpace(string(b))
}

func (r *Raft) setRole(voter bool) error {
	role := "non-voting"
	if voter {
		role = "voter"
	}
	if r.role() == role {
		return nil
	}
	p := filepath.Join(r.dir, "rime-role")
	if err := os.WriteFile(p+".tmp", []byte(role+"\n"), 0o600); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	r.changes.Notify()
	return nil
}

// Close stops the manager and the NodeHost; it is idempotent (dragonboat's
// Close is not).
func (r *Raft) Close() error {
	r.closeOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
		r.wg.Wait()
		if r.state != nil {
			r.state.close()
		}
		if r.nh != nil {
			r.nh.Close()
		}
	})
	return nil
}

func (r *Raft) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, r.cfg.ProposeTimeout)
}

// retryable errors are the ones where dragonboat did not accept the
// request at all, so sending it again cannot apply it twice.

// Append proposes data and waits for it to be applied here.
func (r *Raft) Append(ctx context.Context, data []byte) (uint64, error) {
	res, err := r.propose(ctx, encodeAppend(data))
	if err != nil {
		return 0, err
	}
	return res.Value, nil
}

func (r *Raft) propose(ctx context.Context, cmd []byte) (sm.Result, error) {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	delay := backoff.Delay{Next: time.Millisecond, Max: 100 * time.Millisecond}
	cs := r.sessions.get()
	for {
		var err error
		if cs == nil {
			cs, err = r.nh.SyncGetSession(ctx, r.shardID)
		}
		if err == nil {
			var res sm.Result
			res, err = r.nh.SyncPropose(ctx, cs, cmd)
			if err == nil {
				r.sessions.put(cs)
				if len(res.Data) > 0 {
					return res, fmt.Errorf("raft: class %s: %s", r.env.Class, res.Data)
				}
				return res, nil
			}
			if errors.Is(err, dragonboat.ErrRejected) {
				// The session is unknown to the shard (evicted): the
				// proposal was not applied; take a new session.
				cs = nil
			}
		}
		// Retrying in the same series is safe: dragonboat applies it
		// at most once.
		if !Retryable(err) && !errors.Is(err, dragonboat.ErrRejected) {
			return sm.Result{}, fmt.Errorf("raft: class %s: propose: %w", r.env.Class, err)
		}
		if !delay.Wait(ctx) {
			return sm.Result{}, fmt.Errorf("raft: class %s: propose: %w (last: %v)", r.env.Class, ctx.Err(), err)
		}
	}
}

// Applied is the Seq of the last entry applied on this replica: what a
// read served locally, without ReadIndex, would see (tests use it to
// build a deliberately broken log).
func (r *Raft) Applied() uint64 { return r.state.current() }

// ReadIndex is a linearizable read of the log's end (Raft's ReadIndex).
func (r *Raft) ReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	v, err := Retry(ctx, func() (any, error) { return r.nh.SyncRead(ctx, r.shardID, nil) })
	if err != nil {
		return 0, fmt.Errorf("raft: class %s: read: %w", r.env.Class, err)
	}
	return v.(uint64), nil
}

// Follow reads this replica's applied entries from Seq from.
func (r *Raft) Follow(from uint64) protocols.Follower {
	return &follower{s: r.state, next: from}
}

// follower reads entries in batches of up to followBatch, so that a
// reader behind the log takes the lock and wakes once per batch rather
// than once per entry (a channel has one follower per session, each
// reading every entry).
type follower struct {
	s    *logState
	next uint64
	buf  []protocols.Entry
	at   int
}

const followBatch = 256

func (f *follower) Next(ctx context.Context) (protocols.Entry, error) {
	if f.at == len(f.buf) {
		buf, err := f.s.entries(ctx, f.next, f.buf[:0], followBatch)
		if err != nil {
			return protocols.Entry{}, err
		}
		f.buf, f.at = buf, 0
	}
	e := f.buf[f.at]
	f.at++
	f.next++
	return e, nil
}

func (f *follower) Close() {}

// Compact records a compaction point through the log.
func (r *Raft) Compact(ctx context.Context, upTo uint64, state []byte) error {
	_, err := r.propose(ctx, encodeCompact(upTo, state))
	return err
}

// Snapshot is this replica's compaction point.
func (r *Raft) Snapshot() (uint64, []byte) { return r.state.snapshot() }

// Ready waits until the shard has the plan's number of voters and a leader.
func (r *Raft) Ready(ctx context.Context) error {
	for {
		st, err := r.Status(ctx)
		if err == nil && st.LeaderID != 0 && st.Voters >= r.replicas {
			return nil
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return fmt.Errorf("raft: class %s not ready (%+v, %v): %w", r.env.Class, st, err, ctx.Err())
		}
	}
}

// Status is what `rime up` shows for the shard.
type Status struct {
	LeaderID  uint64 `json:"leader"`
	Term      uint64 `json:"term"`
	IsLeader  bool   `json:"is_leader"`
	Voters    int    `json:"voters"`
	NonVoting int    `json:"non_voting"`
	Seq       uint64 `json:"seq"`
	// Recovered counts the snapshots this replica installed since it
	// started (from its disk or from the leader).
	Recovered int `json:"recovered"`
}

// Status reads the shard's leader and members (a linearizable read).
func (r *Raft) Status(ctx context.Context) (Status, error) {
	var st Status
	lid, term, ok, err := r.nh.GetLeaderID(r.shardID)
	if err != nil {
		return st, err
	}
	if ok {
		st.LeaderID, st.Term, st.IsLeader = lid, term, lid == r.replicaID
	}
	st.Seq, st.Recovered = r.state.current(), r.state.recoveries()
	ctx, cancel := context.WithTimeout(ctx, 10*r.cfg.RTT*time.Duration(r.cfg.ElectionRTT))
	defer cancel()
	m, err := r.nh.SyncGetShardMembership(ctx, r.shardID)
	if err != nil {
		return st, err
	}
	st.Voters, st.NonVoting = len(m.Nodes), len(m.NonVotings)
	return st, nil
}

// Changed returns a channel closed at the next change to the shard as
// this replica sees it (leader, term, members, a snapshot installed, its
// own role). Take it before reading Status, then wait on it, to wait for
// a condition without polling.
func (r *Raft) Changed() <-chan struct{} { return r.changes.Next() }

// ShardID and ReplicaIDOf are for tests and status displays.
func (r *Raft) ShardID() uint64 { return r.shardID }

// manage runs on every replica; the leader reconciles the shard's members
// with the membership view, one configuration change per round, and every
// replica records its own promotion.
func (r *Raft) manage(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.ManageEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.Debug("raft: reconcile", "class", r.env.Class, "err", err)
		}
	}
}

func (r *Raft) reconcile(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 5*r.cfg.ManageEvery)
	defer cancel()
	m, err := r.nh.SyncGetShardMembership(rctx, r.shardID)
	if err != nil {
		return err
	}
	if _, voter := m.Nodes[r.replicaID]; voter && r.role() != "voter" {
		if err := r.setRole(true); err != nil {
			return err
		}
	}
	lid, _, ok, err := r.nh.GetLeaderID(r.shardID)
	if err != nil || !ok || lid != r.replicaID {
		return err
	}
	change := plan(m, r.members.Members(), r.replicas, r.env.HostsClass)
	if change == nil {
		return nil
	}
	r.log.Info("raft: membership change", "class", r.env.Class, "change", change.kind, "node", change.node)
	switch change.kind {
	case addNonVoting:
		return r.nh.SyncRequestAddNonVoting(rctx, r.shardID, change.replica, change.node, m.ConfigChangeID)
	case promote:
		return r.nh.SyncRequestAddReplica(rctx, r.shardID, change.replica, change.node, m.ConfigChangeID)
	case remove:
		return r.nh.SyncRequestDeleteReplica(rctx, r.shardID, change.replica, m.ConfigChangeID)
	}
	return nil
}

type changeKind string

const (
	addNonVoting changeKind = "add-non-voting"
	promote      changeKind = "promote"
	remove       changeKind = "remove"
)

type memberChange struct {
	kind    changeKind
	replica uint64
	node    string
}

// plan picks the next configuration change, or nil: add every live member
// as a non-voting replica; promote eligible live non-voting replicas
// while the shard has fewer voters than the plan asks; then remove a dead
// voter once a live voter has replaced it, and non-voting replicas of
// nodes that left. Nodes are taken in ID order so every leader decides
// alike.
func plan(m *dragonboat.Membership, view []protocols.Member, replicas int, eligible func(nodeClass string) bool) *memberChange {
	byReplica := map[uint64]protocols.Member{}
	ids := make([]protocols.Member, 0, len(view))
	for _, mem := range view {
		byReplica[ReplicaID(mem.ID)] = mem
		ids = append(ids, mem)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].ID < ids[j].ID })
	live := func(rid uint64) bool {
		mem, ok := byReplica[rid]
		return ok && (mem.State == protocols.MemberAlive || mem.State == protocols.MemberSuspect)
	}
	for _, mem := range ids {
		rid := ReplicaID(mem.ID)
		_, v := m.Nodes[rid]
		_, nv := m.NonVotings[rid]
		_, gone := m.Removed[rid]
		if !v && !nv && !gone && mem.State == protocols.MemberAlive {
			return &memberChange{kind: addNonVoting, replica: rid, node: mem.ID}
		}
	}
	liveVoters := 0
	for rid := range m.Nodes {
		if live(rid) {
			liveVoters++
		}
	}
	if liveVoters < replicas {
		for _, mem := range ids {
			rid := ReplicaID(mem.ID)
			if _, nv := m.NonVotings[rid]; nv && mem.State == protocols.MemberAlive && eligible(mem.NodeClass) {
				return &memberChange{kind: promote, replica: rid, node: mem.ID}
			}
		}
	}
	if len(m.Nodes) > replicas {
		for _, rid := range sortedKeys(m.Nodes) {
			if !live(rid) {
				return &memberChange{kind: remove, replica: rid, node: byReplica[rid].ID}
			}
		}
	}
	for _, rid := range sortedKeys(m.NonVotings) {
		if mem, ok := byReplica[rid]; ok && mem.State == protocols.MemberLeft {
			return &memberChange{kind: remove, replica: rid, node: mem.ID}
		}
	}
	return nil
}

func sortedKeys(m map[uint64]string) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

var (
	_ protocols.Instance = (*Raft)(nil)
	_ protocols.Log      = (*Raft)(nil)
)

// Report is the shard's status for live views, with the leader named by
// its node ID where the membership view knows it.
func (r *Raft) Report(ctx context.Context) (map[string]any, error) {
	st, err := r.Status(ctx)
	out := map[string]any{"seq": st.Seq, "term": st.Term, "voters": st.Voters, "non_voting": st.NonVoting}
	leader := "none"
	if st.LeaderID != 0 {
		leader = fmt.Sprintf("replica %x", st.LeaderID)
		for _, m := range r.members.Members() {
			if ReplicaID(m.ID) == st.LeaderID {
				leader = m.ID
			}
		}
	}
	out["leader"] = leader
	return out, err
}

var (
	_ protocols.Reporter = (*Raft)(nil)
	_ protocols.Notifier = (*Raft)(nil)
)

// Role is "voter" or "non-voting": what this replica last knew itself to be.
func (r *Raft) Role() string { return r.role() }
