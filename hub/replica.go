package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/logger"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols/raft"
)

// shardID is the hub's one Raft shard.
const shardID uint64 = 0x6875622d72696d65 // "hub-rime"

// Config configures one hub replica. DefaultConfig documents the values.
type Config struct {
	// Identity is the replica's node key: its ID names it in the shard
	// and in HubGroup, and it signs its own requests. Required.
	Identity *identity.Identity
	// Endpoint is the replica's attachment to the network (memnet or
	// tlsnet), already listening. Required.
	Endpoint network.Endpoint
	// DataDir holds the Raft log and snapshots. Required.
	DataDir string
	// Bootstrap lists the IDs of the first replicas, this one included,
	// when starting a new hub: all of them must be given the same list.
	// Empty to join a running hub (or to restart from DataDir).
	Bootstrap []string
	// Join lists addresses of running replicas: where this one sends
	// hellos (how bootstrap replicas find each other) and, when joining,
	// its registration and its request to join HubGroup.
	Join []string
	// Authorizer takes the trust decisions. nil means Builtin.
	Authorizer Authorizer
	// OnDecision, if set, is called with each decision this replica
	// answers without the log (OpAuthorize, relay attach); decisions
	// taken for writes are recorded in the replicated state.
	OnDecision func(DecisionRecord)
	// Logger; nil discards.
	Logger *slog.Logger

	// RTT is dragonboat's tick; ElectionRTT and HeartbeatRTT are in RTTs.
	RTT                       time.Duration
	ElectionRTT, HeartbeatRTT uint64
	// SnapshotEntries and CompactionOverhead bound the log (dragonboat
	// keeps it forever otherwise).
	SnapshotEntries, CompactionOverhead uint64
	// ManageEvery is how often a replica says hello, and the leader
	// reconciles the shard's voters with HubGroup.
	ManageEvery time.Duration
	// RequestTimeout bounds one request's handling.
	RequestTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig suits a LAN or loopback hub.
func DefaultConfig() Config {
	return Config{
		// 10 ms ticks, elections after 100-200 ms of silence: failover in
		// ~140 ms as measured in LIBRARIES.md.
		RTT: 10 * time.Millisecond, ElectionRTT: 10, HeartbeatRTT: 1,
		// The hub's state is small; a snapshot every 1000 entries keeps
		// restarts short.
		SnapshotEntries: 1000, CompactionOverhead: 500,
		ManageEvery:    200 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
	}
}

// Validate names the field and value that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Identity == nil || len(c.Identity.Public()) == 0:
		return errors.New("hub: Config.Identity is missing or not an ed25519 key")
	case c.Endpoint == nil:
		return errors.New("hub: Config.Endpoint is nil")
	case c.DataDir == "":
		return errors.New("hub: Config.DataDir is empty")
	case c.RTT < time.Millisecond:
		return fmt.Errorf("hub: Config.RTT %v: want at least 1ms", c.RTT)
	case c.HeartbeatRTT == 0 || c.ElectionRTT < 2*c.HeartbeatRTT:
		return fmt.Errorf("hub: Config.ElectionRTT %d must be at least twice HeartbeatRTT %d (and HeartbeatRTT > 0)", c.ElectionRTT, c.HeartbeatRTT)
	case c.ManageEvery <= 0 || c.RequestTimeout <= 0:
		return fmt.Errorf("hub: Config.ManageEvery %v and RequestTimeout %v must be positive", c.ManageEvery, c.RequestTimeout)
	}
	if len(c.Bootstrap) > 0 && !slices.Contains(c.Bootstrap, c.Identity.ID()) {
		return fmt.Errorf("hub: Config.Bootstrap %v does not list this replica's ID %s", c.Bootstrap, c.Identity.ID())
	}
	return nil
}

// Replica is one hub replica: a dragonboat NodeHost running the hub's
// shard over rime's network, serving requests and relaying.
type Replica struct {
	cfg     Config
	id      string
	rid     uint64
	ep      network.Endpoint
	log     *slog.Logger
	auth    Authorizer
	nh      *dragonboat.NodeHost
	core    *core
	book    *book
	changes *raft.Changes
	relay   *relay
	client  *Client
	joining bool

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	ports     []network.Port
	closeOnce sync.Once
}

var quietOnce sync.Once

// quiet turns dragonboat's process-wide loggers down to errors.
func quiet() {
	quietOnce.Do(func() {
		for _, n := range []string{"config", "dragonboat", "gossip", "grpc", "logdb", "pebblekv", "raft", "raftpb", "registry", "rsm", "server", "settings", "tan", "tools", "transport"} {
			logger.GetLogger(n).SetLevel(logger.ERROR)
		}
	})
}

// Start opens the replica: the request and relay services, then the
// NodeHost, then the shard (restarted from DataDir if it holds one,
// bootstrapped from cfg.Bootstrap, or joining), then the background
// loops. The caller keeps cfg.Endpoint open until Close.
func Start(ctx context.Context, cfg Config) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	quiet()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Replica{cfg: cfg, id: cfg.Identity.ID(), ep: cfg.Endpoint, auth: cfg.Authorizer, log: cfg.Logger}
	r.cfg.Bootstrap = slices.Clone(cfg.Bootstrap)
	r.cfg.Join = slices.Clone(cfg.Join)
	if r.auth == nil {
		r.auth = Builtin{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.rid = raft.ReplicaID(r.id)
	r.changes = raft.NewChanges()
	r.core = &core{st: NewState(), changes: r.changes}
	r.book = newBook(r.id, r.stateAddr)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	self, err := r.hello()
	if err != nil {
		return nil, err
	}
	r.book.learn(self)

	for _, svc := range []string{Service, RelayService, relayForward} {
		p, err := r.ep.Open(svc)
		if err != nil {
			r.closePorts()
			return nil, fmt.Errorf("hub: %w", err)
		}
		r.ports = append(r.ports, p)
	}
	r.relay = newRelay(r)
	hubs := append([]string{r.ep.Addr()}, r.cfg.Join...)
	r.client, err = NewClient(ClientConfig{Identity: cfg.Identity, Endpoint: r.ep, Hubs: hubs, Now: cfg.Now})
	if err != nil {
		r.closePorts()
		return nil, err
	}

	nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
		RaftEventListener:   raft.Listener{C: r.changes},
		SystemEventListener: raft.Listener{C: r.changes},
		NodeHostDir:         cfg.DataDir,
		WALDir:              cfg.DataDir,
		RTTMillisecond:      uint64(cfg.RTT / time.Millisecond),
		RaftAddress:         r.id,
		Expert: config.ExpertConfig{
			TransportFactory: raft.NewTransportFactory(r.ep, raftService, r.book.lookup, r.log),
			LogDB:            config.GetTinyMemLogDBConfig(),
		},
	})
	if err != nil {
		r.closePorts()
		return nil, fmt.Errorf("hub: open node host in %s: %w", cfg.DataDir, err)
	}
	r.nh = nh
	var members map[uint64]dragonboat.Target
	join := false
	switch {
	case nh.HasNodeInfo(shardID, r.rid):
	case len(cfg.Bootstrap) > 0:
		members = map[uint64]dragonboat.Target{}
		for _, id := range cfg.Bootstrap {
			members[raft.ReplicaID(id)] = id
		}
	default:
		join = true
		r.joining = true
	}
	rc := config.Config{
		ShardID: shardID, ReplicaID: r.rid,
		ElectionRTT: cfg.ElectionRTT, HeartbeatRTT: cfg.HeartbeatRTT,
		CheckQuorum: true, PreVote: true,
		SnapshotEntries: cfg.SnapshotEntries, CompactionOverhead: cfg.CompactionOverhead,
	}
	create := func(uint64, uint64) sm.IStateMachine { return fsm{r.core} }
	if err := nh.StartReplica(members, join, create, rc); err != nil {
		nh.Close()
		r.closePorts()
		return nil, fmt.Errorf("hub: start replica: %w", err)
	}
	r.wg.Add(4)
	go r.serve(r.ports[0])
	go r.relay.serve(r.ports[1])
	go r.relay.forwarded(r.ports[2])
	go r.manage()
	return r, nil
}

func (r *Replica) closePorts() {
	for _, p := range r.ports {
		p.Close()
	}
}

// Close stops the replica; it is idempotent. The endpoint stays the
// caller's to close.
func (r *Replica) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		r.closePorts()
		r.relay.close()
		r.client.Close()
		r.wg.Wait()
		r.nh.Close()
	})
	return nil
}

// ID is the replica's node ID; Addr its network address.
func (r *Replica) ID() string   { return r.id }
func (r *Replica) Addr() string { return r.ep.Addr() }

// Changed returns a channel closed at the next change this replica sees:
// an entry applied, a leader elected, a membership change, a snapshot
// installed. Take it before checking a condition, then wait on it.
func (r *Replica) Changed() <-chan struct{} { return r.changes.Next() }

// Status is the replica's view of the shard.
type Status struct {
	ID       string   `json:"id"`
	Addr     string   `json:"addr"`
	Leader   string   `json:"leader,omitempty"`
	IsLeader bool     `json:"is_leader"`
	Term     uint64   `json:"term"`
	Applied  uint64   `json:"applied"`
	Replicas []string `json:"replicas"`
	Groups   int      `json:"groups"`
	Nodes    int      `json:"nodes"`
}

// Status reads the replica's local view (no network round trip).
func (r *Replica) Status() Status {
	st := Status{ID: r.id, Addr: r.ep.Addr()}
	if lid, term, ok, err := r.nh.GetLeaderID(shardID); err == nil && ok {
		st.Term, st.IsLeader = term, lid == r.rid
		st.Leader = r.idOf(lid)
	}
	r.core.view(func(s *State) {
		st.Applied, st.Groups, st.Nodes = s.Index, len(s.Groups), len(s.Nodes)
		st.Replicas = sortedKeys(s.Replicas())
	})
	return st
}

// Voters are the shard's voting replicas (node IDs) as dragonboat knows
// them, read through the log.
func (r *Replica) Voters(ctx context.Context) ([]string, error) {
	m, err := r.nh.SyncGetShardMembership(ctx, shardID)
	if err != nil {
		return nil, fmt.Errorf("hub: membership: %w", err)
	}
	var out []string
	for _, t := range m.Nodes {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// idOf is the node ID of replica rid, if known.
func (r *Replica) idOf(rid uint64) string {
	var id string
	r.core.view(func(s *State) {
		for cand := range s.Replicas() {
			if raft.ReplicaID(cand) == rid {
				id = cand
			}
		}
	})
	if id == "" {
		for _, h := range r.book.known() {
			if raft.ReplicaID(h.Signer) == rid {
				id = h.Signer
			}
		}
	}
	for _, b := range r.cfg.Bootstrap {
		if id == "" && raft.ReplicaID(b) == rid {
			id = b
		}
	}
	return id
}

// stateAddr is the address a node registered, for the book.
func (r *Replica) stateAddr(id string) (string, bool) {
	r.core.mu.RLock()
	defer r.core.mu.RUnlock()
	if n, ok := r.core.st.Nodes[id]; ok && n.Addr != "" {
		return n.Addr, true
	}
	return "", false
}

func (r *Replica) hello() (Request, error) {
	return NewRequest(r.cfg.Identity, OpHello, HelloArgs{Addr: r.ep.Addr()}, r.cfg.Now())
}

func (r *Replica) serve(p network.Port) {
	defer r.wg.Done()
	for {
		c, err := p.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.serveConn(c)
		}()
	}
}

func (r *Replica) serveConn(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(r.ctx, func() { c.Close() })
	defer stop()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		b, err := readFrame(br)
		if err != nil {
			return
		}
		resp := r.handle(r.ctx, b)
		out, _ := json.Marshal(resp)
		if err := writeFrame(bw, out); err != nil {
			return
		}
	}
}

func errResponse(err error) Response { return Response{Code: codeOf(err), Msg: err.Error()} }

// handle answers one encoded request.
func (r *Replica) handle(ctx context.Context, b []byte) Response {
	req, err := DecodeRequest(b)
	if err != nil {
		return errResponse(err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	switch {
	case req.Op == OpHello:
		return r.answerHello(&req)
	case req.Op == OpStatus:
		b, _ := json.Marshal(r.Status())
		return Response{Result: b}
	case isWrite(req.Op):
		return r.write(ctx, &req)
	default:
		return r.read(ctx, &req)
	}
}

func (r *Replica) answerHello(req *Request) Response {
	if !r.book.learn(*req) && req.Verify(req.Key) != nil {
		return errResponse(fmt.Errorf("%w: hello", ErrBadSignature))
	}
	self, err := r.hello()
	if err != nil {
		return errResponse(err)
	}
	b, _ := json.Marshal(HelloReply{Self: self, Known: r.book.known()})
	return Response{Result: b}
}

func (r *Replica) isLeader() bool {
	lid, _, ok, err := r.nh.GetLeaderID(shardID)
	return err == nil && ok && lid == r.rid
}

// notLeader answers a write sent to a follower with the leader's address
// when this replica knows it.
func (r *Replica) notLeader() Response {
	resp := Response{Code: codeOf(ErrNotLeader), Msg: fmt.Sprintf("%s: replica %s", ErrNotLeader, r.id)}
	if lid, _, ok, err := r.nh.GetLeaderID(shardID); err == nil && ok {
		if id := r.idOf(lid); id != "" {
			resp.Leader, _ = r.book.lookup(id)
			resp.Msg += ", try " + id + " at " + resp.Leader
		}
	}
	return resp
}

// write takes the trust decision a write needs and proposes the request
// with it. Only the leader does, so decisions are taken once, by the
// replica whose state is the newest; Apply refuses the command if the
// state moved under the decision (ErrConflict, and the client retries).
func (r *Replica) write(ctx context.Context, req *Request) Response {
	if !r.isLeader() {
		return r.notLeader()
	}
	now := r.cfg.Now()
	if w := int64(ReplayWindow); req.Time < now.UnixNano()-w || req.Time > now.UnixNano()+w {
		return errResponse(fmt.Errorf("%w: request time %s, leader time %s", ErrStale, time.Unix(0, req.Time).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	var key []byte
	var err error
	r.core.view(func(s *State) { key, err = s.keyOf(req) })
	if err != nil {
		return errResponse(err)
	}
	// Verify outside the lock: it is the costliest step, and Apply waits
	// for the lock.
	if err := req.Verify(key); err != nil {
		return errResponse(err)
	}
	var in *Input
	r.core.view(func(s *State) { in, err = s.InputFor(req) })
	if err != nil {
		return errResponse(err)
	}
	cmd := Command{Now: now.UnixNano(), Req: req, Input: in}
	if in != nil {
		d, err := r.auth.Decide(ctx, *in)
		if err != nil {
			// An error denies, and the denial is recorded like any other.
			d = Decision{Allow: false, Reasons: []string{"the authorizer failed: " + err.Error()}, DecisionID: d.DecisionID}
		}
		cmd.Decision = &d
	}
	b, err := EncodeCommand(cmd)
	if err != nil {
		return errResponse(err)
	}
	res, err := r.propose(ctx, b)
	if err != nil {
		return errResponse(err)
	}
	var o Outcome
	if err := json.Unmarshal(res.Data, &o); err != nil {
		return errResponse(fmt.Errorf("hub: outcome: %w", err))
	}
	return Response{Code: o.Code, Msg: o.Msg, Result: o.Result, Decision: o.Decision}
}

// retryable errors are the ones where dragonboat did not take the
// request, so sending it again cannot apply it twice.
func (r *Replica) propose(ctx context.Context, cmd []byte) (sm.Result, error) {
	res, err := raft.Retry(ctx, func() (sm.Result, error) { return r.nh.SyncPropose(ctx, r.nh.GetNoOPSession(shardID), cmd) })
	if err != nil {
		return res, fmt.Errorf("%w: propose: %v", ErrUnavailable, err)
	}
	return res, nil
}

// read answers a read op linearizably: a ReadIndex round (any replica
// may serve it), then the local state.
func (r *Replica) read(ctx context.Context, req *Request) Response {
	v, err := r.syncRead(ctx, readQuery{req: req, now: r.cfg.Now().UnixNano()})
	if err != nil {
		return errResponse(err)
	}
	rr := v.(readResult)
	if rr.err != nil {
		return errResponse(rr.err)
	}
	raw := rr.v.(json.RawMessage)
	if req.Op != OpAuthorize {
		return Response{Result: raw}
	}
	var in Input
	if err := json.Unmarshal(raw, &in); err != nil {
		return errResponse(err)
	}
	d := r.decide(ctx, req.Signer, req.Op, in)
	return Response{Result: raw, Decision: &d}
}

// decide takes a decision that is not in the log, and reports it.
func (r *Replica) decide(ctx context.Context, signer, op string, in Input) Decision {
	d, err := r.auth.Decide(ctx, in)
	if err != nil {
		d = Decision{Allow: false, Reasons: []string{"the authorizer failed: " + err.Error()}, DecisionID: d.DecisionID}
	}
	if r.cfg.OnDecision != nil {
		r.cfg.OnDecision(DecisionRecord{Time: r.cfg.Now().UnixNano(), Signer: signer, Op: op, Input: in, Decision: d})
	}
	return d
}

func (r *Replica) syncRead(ctx context.Context, q readQuery) (any, error) {
	v, err := raft.Retry(ctx, func() (any, error) { return r.nh.SyncRead(ctx, shardID, q) })
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", ErrUnavailable, err)
	}
	return v, nil
}

// manage runs the replica's background duties every ManageEvery: say
// hello to the replicas it knows (so addresses stay current), register
// itself, join HubGroup when it was started to join, and, on the leader,
// initialize the hub and keep the shard's voters equal to HubGroup.
func (r *Replica) manage() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.ManageEvery)
	defer t.Stop()
	round := 0
	for {
		if round%5 == 0 {
			r.greet()
		}
		round++
		r.tend()
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// greet says hello to every replica address known.
func (r *Replica) greet() {
	// Once the state names the replicas, hellos go only to them (and to
	// --join): a removed replica is not greeted forever.
	var current map[string]string
	r.core.view(func(s *State) { current = s.Replicas() })
	addrs := slices.Clone(r.cfg.Join)
	for _, h := range r.book.known() {
		if _, ok := current[h.Signer]; (ok || len(current) == 0) && h.Signer != r.id {
			if a, ok := r.book.lookup(h.Signer); ok {
				addrs = append(addrs, a)
			}
		}
	}
	slices.Sort(addrs)
	for _, a := range slices.Compact(addrs) {
		if a == r.ep.Addr() || r.ctx.Err() != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RequestTimeout)
		reply, err := r.client.helloTo(ctx, a)
		cancel()
		if err != nil {
			r.log.Debug("hub: hello", "to", a, "err", err)
			continue
		}
		r.book.learn(reply.Self)
		for _, h := range reply.Known {
			r.book.learn(h)
		}
	}
}

func (r *Replica) tend() {
	ctx, cancel := context.WithTimeout(r.ctx, 5*r.cfg.ManageEvery)
	defer cancel()
	var initialized, registered, member bool
	r.core.view(func(s *State) {
		initialized = s.Initialized
		n, ok := s.Nodes[r.id]
		registered = ok && n.Addr == r.ep.Addr()
		_, member = s.Replicas()[r.id]
	})
	if r.isLeader() {
		if !initialized && len(r.cfg.Bootstrap) > 0 {
			b, _ := EncodeCommand(Command{Now: r.cfg.Now().UnixNano(), Init: r.cfg.Bootstrap})
			if _, err := r.propose(ctx, b); err != nil {
				r.log.Debug("hub: init", "err", err)
			}
			return
		}
		if err := r.reconcile(ctx); err != nil && r.ctx.Err() == nil {
			r.log.Debug("hub: reconcile", "err", err)
		}
	}
	if !registered && (initialized || r.joining) {
		err := r.client.Register(ctx, RegisterArgs{Class: "hub", Reachability: "public", Addr: r.ep.Addr()})
		if err != nil {
			r.log.Debug("hub: register", "err", err)
			return
		}
	}
	if r.joining && !member {
		_, err := r.client.Accept(ctx, HubGroup)
		switch {
		case err == nil || errors.Is(err, ErrExists):
			r.joining = false
			r.log.Info("hub: joined", "id", r.id)
		case errors.Is(err, ErrDenied):
			r.log.Info("hub: waiting for an invitation to the hub: a replica must invite this key", "id", r.id)
		default:
			r.log.Debug("hub: join", "err", err)
		}
	}
}

// reconcile makes one change that brings the shard's voters closer to
// HubGroup's members: add a member that is not a voter, else remove a
// voter that is not a member (handing leadership over first if it is this
// replica). One change per round, members taken in ID order.
func (r *Replica) reconcile(ctx context.Context) error {
	var want map[string]string
	r.core.view(func(s *State) { want = s.Replicas() })
	if len(want) == 0 {
		return nil
	}
	m, err := r.nh.SyncGetShardMembership(ctx, shardID)
	if err != nil {
		return err
	}
	for _, id := range sortedKeys(want) {
		rid := raft.ReplicaID(id)
		if _, ok := m.Nodes[rid]; ok {
			continue
		}
		if _, ok := m.Removed[rid]; ok {
			continue
		}
		if _, ok := r.book.lookup(id); !ok {
			continue
		}
		r.log.Info("hub: adding replica", "id", id)
		return r.nh.SyncRequestAddReplica(ctx, shardID, rid, id, m.ConfigChangeID)
	}
	wantRID := map[uint64]string{}
	for id := range want {
		wantRID[raft.ReplicaID(id)] = id
	}
	var rids []uint64
	for rid := range m.Nodes {
		rids = append(rids, rid)
	}
	slices.Sort(rids)
	for _, rid := range rids {
		if _, ok := wantRID[rid]; ok || len(m.Nodes) <= 1 {
			continue
		}
		if rid == r.rid {
			for _, other := range rids {
				if _, ok := wantRID[other]; ok {
					r.log.Info("hub: handing leadership over before leaving the shard", "to", wantRID[other])
					return r.nh.RequestLeaderTransfer(shardID, other)
				}
			}
			return nil
		}
		r.log.Info("hub: removing replica", "id", m.Nodes[rid])
		return r.nh.SyncRequestDeleteReplica(ctx, shardID, rid, m.ConfigChangeID)
	}
	return nil
}
