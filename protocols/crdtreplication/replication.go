package crdtreplication

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/rime-dev/rime/protocols/seal"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/crdt/vv"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
)

// Name is the protocol's name in its spec.
const Name = "crdt-replication"

// Config tunes the layer; the plan's parameters (type, delivery, copies)
// come from the environment.
type Config struct {
	// AntiEntropyInterval is how often a node pulls from one random
	// member what it lacks. It bounds how long after a partition heals
	// (or a node comes back) the replicas differ, beyond the broadcast.
	AntiEntropyInterval time.Duration
	// AckInterval is how long an update of this node waits for
	// acknowledgements before it is pushed again to the placement
	// targets that lack it.
	AckInterval time.Duration
	// FeedRetain is how many visible updates are kept for sessions that
	// are behind; a session further behind starts again from the state.
	FeedRetain int
	// PreferClasses are node classes to place copies on first, most
	// preferred first (see uptime.rank).
	PreferClasses []string
	// SnapshotBytes is how large the write-ahead log may grow before a
	// snapshot, at least (it may also grow to the last snapshot's size,
	// so that snapshots cost O(1) per byte merged).
	SnapshotBytes int64
	// MaxBatch bounds the events handled between two disk flushes.
	MaxBatch int
}

// DefaultConfig suits interactive applications on a WAN.
func DefaultConfig() Config {
	return Config{
		AntiEntropyInterval: time.Second,
		AckInterval:         500 * time.Millisecond,
		FeedRetain:          4096,
		SnapshotBytes:       1 << 20,
		MaxBatch:            256,
	}
}

// Validate names the first field out of range.
func (c Config) Validate() error {
	switch {
	case c.AntiEntropyInterval <= 0:
		return fmt.Errorf("%s: Config.AntiEntropyInterval is %v, want > 0", Name, c.AntiEntropyInterval)
	case c.AckInterval <= 0:
		return fmt.Errorf("%s: Config.AckInterval is %v, want > 0", Name, c.AckInterval)
	case c.FeedRetain < 1:
		return fmt.Errorf("%s: Config.FeedRetain is %d, want at least 1", Name, c.FeedRetain)
	case c.SnapshotBytes < 1:
		return fmt.Errorf("%s: Config.SnapshotBytes is %d, want at least 1", Name, c.SnapshotBytes)
	case c.MaxBatch < 1:
		return fmt.Errorf("%s: Config.MaxBatch is %d, want at least 1", Name, c.MaxBatch)
	}
	return nil
}

// NewModule returns the module with cfg.
func NewModule(cfg Config) protocols.Module {
	return protocols.Module{Name: Name, Provides: []string{"replica", "local-replica"},
		New: func() protocols.Instance { return &Replication{cfg: cfg} }}
}

func init() { protocols.Default.MustRegister(NewModule(DefaultConfig())) }

// Replication is one node's replica of one class.
type Replication struct {
	cfg     Config
	env     *protocols.Env
	lg      *slog.Logger
	typ     crdt.Type
	causal  bool
	copies  int
	bc      protocols.Broadcast
	catch   protocols.CatchUp // nil: the broadcast holds nothing back
	mem     protocols.Membership
	ep      network.Endpoint
	store   protocols.Store // nil: the replica lives in memory
	service string
	seal    *seal.Sealer
	sealed  *sealedStore // nil: plain mode (see sealed.go)

	// Owned by the loop goroutine.
	disk    *disk
	state   crdt.State
	rid     string
	bvec    vv.VV               // broadcast messages whose effects state holds
	acked   map[string]*vv.Dots // by address: the peer's persisted context, as last heard
	sent    map[string]*vv.Dots // by address: acked plus what was pushed since
	pending []pendingOp         // own updates not yet on copies nodes, oldest first
	up      *uptime
	pullAt  time.Time // when the outstanding pull left; zero: none
	rng     *rand.Rand
	b       batch

	applies   chan applyReq
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	port      network.Port
	memEv     <-chan protocols.MemberEvent
	memCancel func()

	fmu        sync.Mutex
	feed       []feedEntry // Seqs first, first+1, ..., last
	first      uint64
	last       uint64
	visibleSeq uint64
	// deliveries is the broadcast's; held are deliveries taken while the
	// loop's own broadcasts waited, not yet handled (broadcastAll).
	deliveries       <-chan protocols.Delivery
	held             []protocols.Delivery
	deliveriesClosed bool
	base             uint64 // the feed's Seqs start after it (see load)
	visible          crdt.State
	changed          chan struct{}
	closed           bool

	npending atomic.Int64
}

type pendingOp struct {
	seq  uint64
	dots *vv.Dots
	at   time.Time
}

type feedEntry struct {
	data  []byte
	delta crdt.State
}

type applyReq struct {
	op   []byte
	done chan error
}

// batch is what one round of the loop did, to persist and act on once.
type batch struct {
	delta   crdt.State // everything merged, for the log; nil: nothing
	bvec    vv.VV      // broadcast vector entries raised
	replies []chan error
	own     [][]byte // own deltas to broadcast once persisted
	pushNew bool
	// asks are pulls to answer: answered in commit, once the batch's own
	// updates are broadcast, so that the answer's broadcast vector covers
	// every effect its delta carries.
	asks []ask
	out  []outFrame
}

type ask struct {
	to    string
	ctx   *vv.Dots
	flags byte
}

type outFrame struct {
	to string
	f  frame
}

// Provision reads the plan's parameters and finds the layers below.
func (r *Replication) Provision(env *protocols.Env) error {
	r.env = env
	r.lg = env.Logger
	if r.lg == nil {
		r.lg = slog.New(slog.DiscardHandler)
	}
	t, _ := env.Params["type"].(string)
	if t == "" {
		t = string(crdt.TypeLog) // the surface's default type
	}
	r.typ = crdt.Type(t)
	d, _ := env.Params["delivery"].(string)
	r.causal = d == "causal"
	var err error
	if r.copies, err = env.IntParam("copies", 1); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if r.bc, err = protocols.Need[protocols.Broadcast](env, Name, "broadcast"); err != nil {
		return err
	}
	if c, ok := r.bc.(protocols.CatchUp); ok {
		// This layer's anti-entropy repairs what a node missed, by state,
		// so the broadcast resends nothing (see protocols.CatchUp).
		c.DelegateRepair()
		r.catch = c
	}
	if r.mem, err = protocols.Need[protocols.Membership](env, Name, "membership"); err != nil {
		return err
	}
	tr, err := protocols.Need[protocols.Transport](env, Name, "transport")
	if err != nil {
		return err
	}
	r.ep = tr.Endpoint()
	r.store, _ = protocols.Find[protocols.Store](env)
	if s, ok := protocols.Find[protocols.Sealer](env); ok {
		// Sealed mode: the replicated state is a log of sealed deltas of
		// the class's type (sealed.go).
		r.sealed = newSealedStore(s, r.typ, r.lg)
		r.typ = crdt.TypeLog
		if c, ok := s.(interface{ Claim() }); ok {
			c.Claim() // tell it its ciphertext is what this replica keeps
		}
	}
	r.service = "crdt/" + env.Class
	key, err := env.DeriveKey("crdt-replication/"+env.Class, 32)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if r.seal, err = seal.New(key, r.service); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	var seed [16]byte
	crand.Read(seed[:])
	r.rng = rand.New(rand.NewPCG(be64(seed[:8]), be64(seed[8:])))
	return nil
}

func be64(p []byte) uint64 {
	var x uint64
	for _, c := range p {
		x = x<<8 | uint64(c)
	}
	return x
}

// Validate checks the parameters and the configuration.
func (r *Replication) Validate() error {
	if err := r.cfg.Validate(); err != nil {
		return err
	}
	if _, err := crdt.New(r.classType()); err != nil {
		return fmt.Errorf("%s: parameter type: %w", Name, err)
	}
	if d, ok := r.env.Params["delivery"]; ok && d != "causal" && d != "none" {
		return fmt.Errorf("%s: parameter delivery is %v, want \"causal\" or \"none\"", Name, d)
	}
	if r.copies < 1 {
		return fmt.Errorf("%s: parameter copies is %d, want at least 1", Name, r.copies)
	}
	if r.copies > 1 && r.store == nil {
		return fmt.Errorf("%s: copies is %d but no store layer keeps this node's copy", Name, r.copies)
	}
	return nil
}

// Start loads the replica, claims the service and starts the loop.
func (r *Replication) Start(ctx context.Context) error {
	if err := r.load(ctx); err != nil {
		return fmt.Errorf("%s: class %s: %w", Name, r.env.Class, err)
	}
	port, err := r.ep.Open(r.service)
	if err != nil {
		return fmt.Errorf("%s: class %s: %w", Name, r.env.Class, err)
	}
	r.port = port
	r.acked, r.sent, r.up = map[string]*vv.Dots{}, map[string]*vv.Dots{}, newUptime()
	r.b = batch{bvec: vv.VV{}}
	r.applies = make(chan applyReq)
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	r.memEv, r.memCancel = r.mem.Subscribe()
	now := time.Now()
	for _, m := range r.mem.Members() {
		r.up.observe(m, now)
	}
	if r.catch != nil {
		// Whatever this replica held before a restart needs no delivery.
		r.catch.CaughtUp(r.bvec)
	}
	go r.run()
	return nil
}

// load restores the replica from the store, or starts an empty one.
func (r *Replication) load(ctx context.Context) error {
	empty, _ := crdt.New(r.typ)
	r.state, r.bvec = empty, vv.VV{}
	if r.store == nil {
		// Nothing survives a restart, so a restarted node must not number
		// its updates from 1 again under the same replica ID.
		var inc [4]byte
		crand.Read(inc[:])
		r.rid = r.env.Node.ID + "~" + hex.EncodeToString(inc[:])
	} else {
		r.disk = &disk{store: r.store}
		s, ok, err := r.disk.load(ctx, r.typ)
		if err != nil {
			return err
		}
		if ok {
			r.state, r.bvec, r.rid = s.state, s.bvec, s.rid
		} else {
			r.rid = r.env.Node.ID
			if err := r.disk.save(ctx, snapshot{rid: r.rid, bvec: r.bvec, state: r.state}); err != nil {
				return err
			}
		}
	}
	if r.sealed != nil {
		r.visible = r.sealed.rebuild(r.state.(*crdt.Log))
	} else {
		r.visible = r.state.Clone()
	}
	// The feed's numbering starts past every Seq an earlier start used:
	// from a start count kept in the store, or from the clock without one
	// (a node cannot have made more than one update a nanosecond).
	base := uint64(time.Now().UnixNano())
	if r.disk != nil {
		var err error
		if base, err = r.disk.started(ctx); err != nil {
			return err
		}
	}
	r.base, r.first, r.last, r.visibleSeq = base, base+1, base, base
	r.changed = make(chan struct{})
	return nil
}

// Close stops the loop; sessions following the replica end.
func (r *Replication) Close() error {
	r.closeOnce.Do(func() {
		if r.stop == nil {
			return
		}
		close(r.stop)
		<-r.done
		r.memCancel()
		r.port.Close()
		if r.disk != nil && r.disk.wal != nil {
			r.disk.wal.close()
		}
		r.fmu.Lock()
		r.closed = true
		close(r.changed)
		r.fmu.Unlock()
	})
	return nil
}

// run is the loop: it handles events in batches, each followed by one
// commit (disk flush, then broadcasts, answers and acknowledgements).
func (r *Replication) run() {
	defer close(r.done)
	r.deliveries = r.bc.Deliveries()
	l := &loopState{
		ae:      time.NewTicker(r.cfg.AntiEntropyInterval),
		ack:     time.NewTicker(r.cfg.AckInterval),
		packets: r.port.Packets(),
	}
	if r.sealed != nil {
		l.keys = r.sealed.sealer.Changed()
	}
	defer l.ae.Stop()
	defer l.ack.Stop()
	for {
		if !r.step(l, true) {
			return
		}
		for i := 1; i < r.cfg.MaxBatch && r.step(l, false); i++ {
			if l.idle {
				break
			}
		}
		if l.stopped {
			return
		}
		r.commit()
	}
}

type loopState struct {
	ae, ack *time.Ticker
	packets <-chan network.Packet
	keys    <-chan struct{} // the Sealer's keys changed (sealed mode)
	idle    bool            // the last non-blocking step found nothing
	stopped bool
}

// step handles one event, waiting for it if block (else it sets
// l.idle when nothing is ready); it returns false once the layer is
// stopping.
func (r *Replication) step(l *loopState, block bool) bool {
	l.idle = false
	if len(r.held) > 0 {
		// Taken while the loop's broadcasts were waiting (broadcastAll).
		d := r.held[0]
		r.held = r.held[1:]
		r.delivered(d)
		return true
	}
	if r.deliveriesClosed {
		r.deliveriesClosed = false
		r.onDelivery(l, protocols.Delivery{}, false)
		return true
	}
	if !block {
		// Stop and the tickers wait for the next blocking step; only the
		// work that piles up under load is batched.
		select {
		case req := <-r.applies:
			r.apply(req)
		case d, open := <-r.deliveries:
			r.onDelivery(l, d, open)
		case p, open := <-l.packets:
			r.onPacket(l, p, open)
		default:
			l.idle = true
		}
		return true
	}
	select {
	case <-r.stop:
		r.failReplies(protocols.ErrClosed)
		l.stopped = true
		return false
	case req := <-r.applies:
		r.apply(req)
	case d, open := <-r.deliveries:
		r.onDelivery(l, d, open)
	case p, open := <-l.packets:
		r.onPacket(l, p, open)
	case ev, open := <-r.memEv:
		if !open {
			r.memEv = nil // membership closed: the ranking keeps its last view
		} else {
			r.up.observe(ev.Member, time.Now())
		}
	case <-l.ae.C:
		r.antiEntropy()
	case <-l.ack.C:
		r.resend()
	case <-l.keys:
		l.keys = r.sealed.sealer.Changed()
		r.openWaiting()
	}
	return true
}

func (r *Replication) onDelivery(l *loopState, d protocols.Delivery, open bool) {
	if !open {
		r.deliveries = nil // the broadcast closed; anti-entropy still runs
		return
	}
	r.delivered(d)
}

func (r *Replication) onPacket(l *loopState, p network.Packet, open bool) {
	if !open {
		l.packets = nil
		return
	}
	r.received(p)
}

func (r *Replication) failReplies(err error) {
	for _, c := range r.b.replies {
		c <- err
	}
	r.b.replies = nil
}

// apply performs a local operation.
func (r *Replication) apply(req applyReq) {
	op, err := crdt.UnmarshalOp(req.op)
	if err != nil {
		req.done <- fmt.Errorf("%s: class %s: %w: %w", Name, r.env.Class, protocols.ErrRefused, err)
		return
	}
	at := crdt.Stamp{Replica: r.rid, Time: uint64(time.Now().UnixMilli())}
	var delta crdt.State
	var shown feedEntry
	if r.sealed != nil {
		r.openWaiting()
		if delta, shown, err = r.sealed.apply(r.state.(*crdt.Log), at, op); err != nil {
			req.done <- fmt.Errorf("%s: class %s: %w", Name, r.env.Class, err)
			return
		}
	} else if delta, err = r.state.Apply(at, op); err != nil {
		req.done <- fmt.Errorf("%s: class %s: %w: %w", Name, r.env.Class, protocols.ErrRefused, err)
		return
	}
	data, err := delta.MarshalBinary()
	if err != nil {
		req.done <- fmt.Errorf("%s: %w", Name, err)
		return
	}
	if r.sealed == nil {
		shown = feedEntry{data: data, delta: delta}
	}
	seq := r.appendFeed(shown.data, shown.delta)
	r.addDelta(delta)
	r.b.replies = append(r.b.replies, req.done)
	r.b.own = append(r.b.own, data)
	if r.copies > 1 {
		r.pending = append(r.pending, pendingOp{seq: seq, dots: delta.Context().Clone(), at: time.Now()})
		r.b.pushNew = true
	}
}

// delivered merges a delta the broadcast delivered.
func (r *Replication) delivered(d protocols.Delivery) {
	data, err := decodePayload(d.Payload)
	if err != nil {
		r.lg.Warn("crdt-replication: broadcast payload", "from", d.From, "err", err)
		return
	}
	if !r.mergeBytes(data, d.From) {
		return
	}
	if d.Seq > 0 && d.Seq > r.bvec[d.From] {
		r.bvec[d.From] = d.Seq
		r.b.bvec[d.From] = d.Seq
	}
}

// mergeBytes decodes and merges a delta; it reports whether the delta
// was well formed.
func (r *Replication) mergeBytes(data []byte, from string) bool {
	st, err := crdt.Decode(data)
	if err == nil && st.Type() != r.typ {
		err = fmt.Errorf("%w: a %s delta for a %s", crdt.ErrType, st.Type(), r.typ)
	}
	if err != nil {
		r.lg.Warn("crdt-replication: refused delta", "from", from, "err", err)
		return false
	}
	r.merge(data, st)
	return true
}

// merge joins a delta into the replica; a delta with no event the
// replica lacks changes nothing and is not shown again.
func (r *Replication) merge(data []byte, st crdt.State) {
	if st.Context().Missing(r.state.Context()).IsEmpty() {
		return
	}
	shown, show := feedEntry{data: data, delta: st}, true
	if r.sealed != nil {
		// Open what the log lacks before the log takes it (sealed.go).
		shown, show = r.sealed.opened(st, r.state.Context())
	}
	if err := r.state.Merge(st); err != nil {
		r.lg.Warn("crdt-replication: merge", "err", err)
		return
	}
	if show {
		r.appendFeed(shown.data, shown.delta)
	}
	r.addDelta(st)
}

func (r *Replication) addDelta(st crdt.State) {
	if r.disk == nil {
		return
	}
	if r.b.delta == nil {
		r.b.delta = st.Clone()
		return
	}
	r.b.delta.Merge(st)
}

// received handles a frame from a peer.
func (r *Replication) received(p network.Packet) {
	plain, err := r.seal.Open(p.Payload)
	if err == nil {
		var f frame
		if f, err = decodeFrame(plain); err == nil {
			r.handle(p.From, f)
			return
		}
	}
	r.lg.Debug("crdt-replication: dropped datagram", "from", p.From, "err", err)
}

func (r *Replication) heard(from string, ctx *vv.Dots) {
	r.acked[from] = ctx
	if s := r.sent[from]; s != nil {
		s.Merge(ctx)
	} else {
		r.sent[from] = ctx.Clone()
	}
}

func (r *Replication) handle(from string, f frame) {
	r.heard(from, f.ctx)
	switch f.kind {
	case kindPull:
		r.b.asks = append(r.b.asks, ask{to: from, ctx: f.ctx, flags: fReply})
	case kindState:
		if f.flags&fReply != 0 {
			r.pullAt = time.Time{}
		}
		if len(f.delta) > 0 && !r.mergeBytes(f.delta, from) {
			return
		}
		if len(f.bvec) > 0 {
			// The answer to a pull (and a causal replica's push) holds
			// everything the peer had beyond what this replica holds (or
			// acknowledged): the replica now holds the effects of every
			// broadcast message the peer's did.
			r.bvec.Merge(f.bvec)
			r.b.bvec.Merge(f.bvec)
			if r.catch != nil {
				r.catch.CaughtUp(f.bvec)
			}
		}
		if f.flags&fAck != 0 {
			r.b.out = append(r.b.out, outFrame{to: from, f: frame{kind: kindAck}})
		}
	}
}

// reply sends the peer what it lacks given its context, with the
// broadcast vector of this replica's state.
func (r *Replication) reply(to string, ctx *vv.Dots, flags byte) {
	var data []byte
	if d := r.state.DeltaSince(ctx); !d.Context().IsEmpty() {
		var err error
		if data, err = d.MarshalBinary(); err != nil {
			r.lg.Warn("crdt-replication: encode delta", "err", err)
			return
		}
	}
	r.b.out = append(r.b.out, outFrame{to: to, f: frame{kind: kindState, flags: flags, bvec: r.bvec.Clone(), delta: data}})
}

// antiEntropy pulls from one random alive member, one pull at a time:
// a second pull while the first answer is on its way would bring the
// same updates twice.
func (r *Replication) antiEntropy() {
	now := time.Now()
	for _, m := range r.mem.Members() {
		r.up.observe(m, now)
	}
	if !r.pullAt.IsZero() && now.Sub(r.pullAt) < 4*r.cfg.AntiEntropyInterval {
		return
	}
	peers := r.up.rank(r.mem.Self().ID, nil, now)
	if len(peers) == 0 {
		return
	}
	p := peers[r.rng.IntN(len(peers))]
	r.pullAt = now
	r.b.out = append(r.b.out, outFrame{to: p.Addr, f: frame{kind: kindPull}})
}

// resend pushes again the updates that waited AckInterval for their
// acknowledgements.
func (r *Replication) resend() {
	if len(r.pending) == 0 || time.Since(r.pending[0].at) < r.cfg.AckInterval {
		return
	}
	for addr, a := range r.acked {
		// What was pushed and not acknowledged may have been lost.
		r.sent[addr] = a.Clone()
	}
	r.pending[0].at = time.Now()
	r.b.pushNew = true
}

// push sends the pending updates to the placement targets that lack the
// oldest one, until copies nodes would hold it, each asked to
// acknowledge once the update is on its disk.
func (r *Replication) push() {
	if len(r.pending) == 0 {
		return
	}
	head := r.pending[0].dots
	need := r.copies - r.holders(head)
	for _, m := range r.up.rank(r.mem.Self().ID, r.cfg.PreferClasses, time.Now()) {
		if need <= 0 {
			break
		}
		if a := r.acked[m.Addr]; a != nil && head.Missing(a).IsEmpty() {
			continue // counted in holders
		}
		need--
		s := r.sent[m.Addr]
		if s == nil {
			// Unknown peer: learn its context first (its answer is also
			// anti-entropy); the next push sends it what it lacks.
			r.b.out = append(r.b.out, outFrame{to: m.Addr, f: frame{kind: kindPull}})
			continue
		}
		base, bvec := s, vv.VV{}
		if r.causal {
			// A causal replica must merge only causally closed
			// differences: what this (closed) replica holds beyond what
			// the target is known to keep (acked, never more than it
			// has) is one; beyond what was merely sent is not, if a push
			// was lost or overtaken. So one push at a time per target,
			// from what it acknowledged; the next waits for its ack, or
			// for resend after AckInterval. It carries the broadcast
			// vector, as an answer to a pull does, so that the target's
			// later broadcasts name these updates as their causes.
			a := r.acked[m.Addr]
			if a == nil || !s.Missing(a).IsEmpty() {
				continue // a push is in flight
			}
			base, bvec = a, r.bvec.Clone()
		}
		d := r.state.DeltaSince(base)
		if d.Context().IsEmpty() {
			continue
		}
		data, err := d.MarshalBinary()
		if err != nil {
			continue
		}
		s.Merge(d.Context())
		r.b.out = append(r.b.out, outFrame{to: m.Addr, f: frame{kind: kindState, flags: fAck, bvec: bvec, delta: data}})
	}
}

// broadcastAll broadcasts the batch's own deltas, in order. A Broadcast
// may wait while its Deliveries are not read (epidemic-broadcast's
// backpressure), and this loop is their reader: so the broadcasts run on
// a goroutine of their own while the loop keeps taking deliveries, which
// it holds for its next steps (step takes held ones first).
func (r *Replication) broadcastAll(ctx context.Context, own [][]byte) {
	if len(own) == 0 {
		return
	}
	type numbered struct {
		from string
		seq  uint64
	}
	done := make(chan []numbered, 1)
	go func() {
		var ns []numbered
		for _, data := range own {
			from, seq, err := r.broadcast(ctx, encodePayload(data))
			if err != nil {
				r.lg.Warn("crdt-replication: broadcast", "err", err)
				continue
			}
			ns = append(ns, numbered{from, seq})
		}
		done <- ns
	}()
	for {
		select {
		case ns := <-done:
			// Count the own messages' effects as held at once (they are:
			// applied and on disk), not only when they come back.
			for _, n := range ns {
				if n.seq > r.bvec[n.from] {
					r.bvec[n.from] = n.seq
					r.b.bvec[n.from] = n.seq
				}
			}
			return
		case d, open := <-r.deliveries:
			if !open {
				r.deliveries = nil
				r.deliveriesClosed = true
				continue
			}
			r.held = append(r.held, d)
		}
	}
}

// broadcast sends an own delta. A broadcast that numbers its messages
// tells at once which message it is, and the replica counts its effects
// as held (they are: the update is applied and on disk); otherwise the
// count waits for the message to come back through Deliveries.
func (r *Replication) broadcast(ctx context.Context, payload []byte) (string, uint64, error) {
	if nb, ok := r.bc.(protocols.Numbered); ok {
		return nb.BroadcastNumbered(ctx, payload)
	}
	return "", 0, r.bc.Broadcast(ctx, payload)
}

// holders counts the nodes known to keep every event of dots on disk,
// this one included.
func (r *Replication) holders(dots *vv.Dots) int {
	n := 1
	for _, a := range r.acked {
		if dots.Missing(a).IsEmpty() {
			n++
		}
	}
	return n
}

// commit persists the batch, then broadcasts, answers and sends, and
// makes visible what is acknowledged.
func (r *Replication) commit() {
	b := r.b
	r.b = batch{bvec: vv.VV{}}
	if err := r.persist(b); err != nil {
		r.lg.Error("crdt-replication: persist", "class", r.env.Class, "err", err)
		for _, c := range b.replies {
			c <- fmt.Errorf("%s: class %s: %w", Name, r.env.Class, err)
		}
		return
	}
	ctx := context.Background()
	r.broadcastAll(ctx, b.own)
	for _, c := range b.replies {
		c <- nil
	}
	// States sent to peers are computed now, after the broadcasts: their
	// deltas may hold this batch's own updates, and their broadcast
	// vector must then name those updates' messages.
	for _, a := range b.asks {
		r.reply(a.to, a.ctx, a.flags)
	}
	if b.pushNew {
		r.push()
	}
	b.out = append(b.out, r.b.out...)
	r.b.out = nil
	if len(b.out) > 0 {
		mine := r.state.Context().Clone()
		for _, o := range b.out {
			o.f.ctx = mine
			r.send(ctx, o.to, encodeFrame(o.f))
		}
	}
	r.settle()
}

// persist writes the batch to the log, one record and one flush, and
// snapshots when the log has grown enough.
func (r *Replication) persist(b batch) error {
	if r.disk == nil || (b.delta == nil && len(b.bvec) == 0) {
		return nil
	}
	var data []byte
	if b.delta != nil {
		var err error
		if data, err = b.delta.MarshalBinary(); err != nil {
			return err
		}
	}
	if err := r.disk.wal.append(encodeRecord(b.bvec, data)); err != nil {
		return err
	}
	if r.disk.wal.size > max(r.cfg.SnapshotBytes, r.disk.snapBytes) {
		return r.disk.save(context.Background(), snapshot{rid: r.rid, bvec: r.bvec, state: r.state})
	}
	return nil
}

func (r *Replication) send(ctx context.Context, to string, plain []byte) {
	sealed := r.seal.Seal(plain)
	if len(sealed) > network.MaxDatagram {
		// TODO: split deltas beyond one datagram (16 MiB) by replica.
		r.lg.Error("crdt-replication: delta too large for one datagram", "to", to, "bytes", len(sealed))
		return
	}
	if err := r.ep.Send(ctx, to, r.service, sealed); err != nil && !errors.Is(err, network.ErrClosed) {
		r.lg.Debug("crdt-replication: send", "to", to, "err", err)
	}
}

// settle drops the pending updates now on copies nodes and makes
// visible everything before the oldest one still pending.
func (r *Replication) settle() {
	for len(r.pending) > 0 && r.holders(r.pending[0].dots) >= r.copies {
		r.pending = r.pending[1:]
	}
	r.npending.Store(int64(len(r.pending)))
	r.fmu.Lock()
	h := r.last
	if len(r.pending) > 0 {
		h = r.pending[0].seq - 1
	}
	r.advanceLocked(h)
	r.fmu.Unlock()
}

func (r *Replication) appendFeed(data []byte, d crdt.State) uint64 {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	r.last++
	r.feed = append(r.feed, feedEntry{data: data, delta: d})
	return r.last
}

func (r *Replication) advanceLocked(h uint64) {
	if h <= r.visibleSeq {
		return
	}
	for s := r.visibleSeq + 1; s <= h; s++ {
		r.visible.Merge(r.feed[s-r.first].delta)
	}
	r.visibleSeq = h
	close(r.changed)
	r.changed = make(chan struct{})
	if r.visibleSeq > uint64(r.cfg.FeedRetain) {
		if keep := r.visibleSeq - uint64(r.cfg.FeedRetain) + 1; keep > r.first {
			r.feed = slices.Clone(r.feed[keep-r.first:])
			r.first = keep
		}
	}
}

// Apply performs op on the local replica; see protocols.Replica.
func (r *Replication) Apply(ctx context.Context, op []byte) error {
	if r.sealed == nil {
		return r.applyOnce(ctx, op)
	}
	// Sealed mode: wait for a key here, not in the loop, and for the
	// keys of this node's own earlier updates after a restart.
	for {
		keys := r.sealed.sealer.Changed()
		if err := r.sealed.sealer.Ready(ctx); err != nil {
			return fmt.Errorf("%s: class %s: %w", Name, r.env.Class, err)
		}
		err := r.applyOnce(ctx, op)
		if !errors.Is(err, errKeysBehind) {
			return err
		}
		select {
		case <-keys:
		case <-ctx.Done():
			return fmt.Errorf("%s: class %s: %w: %w", Name, r.env.Class, err, ctx.Err())
		}
	}
}

func (r *Replication) applyOnce(ctx context.Context, op []byte) error {
	req := applyReq{op: op, done: make(chan error, 1)}
	select {
	case r.applies <- req:
	case <-r.stop:
		return fmt.Errorf("%s: class %s: %w", Name, r.env.Class, protocols.ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Snapshot is the visible state and its Seq; in sealed mode on a node
// that holds no key, 0 and nil (see Readable).
func (r *Replication) Snapshot() (uint64, []byte) {
	if r.sealed != nil && !r.sealed.sealer.CanOpen() {
		return 0, nil
	}
	r.fmu.Lock()
	defer r.fmu.Unlock()
	b, err := r.visible.MarshalBinary()
	if err != nil {
		r.lg.Error("crdt-replication: encode state", "err", err)
	}
	return r.visibleSeq, b
}

// Follow follows the visible updates from Seq from on.
func (r *Replication) Follow(from uint64) protocols.Follower {
	return &follower{r: r, next: from}
}

// Seen waits until every update the replica holds now is visible.
func (r *Replication) Seen(ctx context.Context) (uint64, error) {
	r.fmu.Lock()
	target := r.last
	r.fmu.Unlock()
	for {
		r.fmu.Lock()
		vis, closed, ch := r.visibleSeq, r.closed, r.changed
		r.fmu.Unlock()
		if vis >= target {
			return target, nil
		}
		if closed {
			return 0, fmt.Errorf("%s: class %s: %w", Name, r.env.Class, protocols.ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

type follower struct {
	r    *Replication
	next uint64
}

func (f *follower) Next(ctx context.Context) (protocols.Entry, error) {
	r := f.r
	if err := r.Readable(); err != nil {
		return protocols.Entry{}, err
	}
	for {
		r.fmu.Lock()
		if r.closed {
			r.fmu.Unlock()
			return protocols.Entry{}, fmt.Errorf("%s: class %s: %w", Name, r.env.Class, protocols.ErrClosed)
		}
		if f.next < r.first {
			r.fmu.Unlock()
			return protocols.Entry{}, fmt.Errorf("%s: update %d: %w", Name, f.next, protocols.ErrCompacted)
		}
		if f.next <= r.visibleSeq {
			e := r.feed[f.next-r.first]
			seq := f.next
			f.next++
			r.fmu.Unlock()
			return protocols.Entry{Seq: seq, Data: e.data}, nil
		}
		ch := r.changed
		r.fmu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return protocols.Entry{}, ctx.Err()
		}
	}
}

func (f *follower) Close() {}

// Report is what a live view shows of the replica.
func (r *Replication) Report(context.Context) (map[string]any, error) {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	return map[string]any{
		"replica_type":    string(r.classType()),
		"replica_sealed":  r.sealed != nil,
		"replica_visible": r.visibleSeq - r.base,
		"replica_held":    r.last - r.base,
		"replica_pending": r.npending.Load(),
	}, nil
}

// classType is the class's convergent type (the plan's type parameter),
// whichever the mode.
func (r *Replication) classType() crdt.Type {
	if r.sealed != nil {
		return r.sealed.typ
	}
	return r.typ
}

// openWaiting shows the sealed updates that open now that the keys
// changed.
func (r *Replication) openWaiting() {
	if e, ok := r.sealed.retry(); ok {
		r.appendFeed(e.data, e.delta)
		// No own update is pending behind them, or they are shown with
		// the next settle.
	}
}

// Readable is nil when this node can read the class: always in the
// plain mode; in the sealed mode, on a node given the group's keys. A
// channel refuses sessions on a node that holds only ciphertext.
func (r *Replication) Readable() error {
	if r.sealed != nil && !r.sealed.sealer.CanOpen() {
		return fmt.Errorf("%s: node %s holds only ciphertext of class %s: %w", Name, r.env.Node.ID, r.env.Class, protocols.ErrNoKey)
	}
	return nil
}

var (
	_ protocols.Instance = (*Replication)(nil)
	_ protocols.Replica  = (*Replication)(nil)
	_ protocols.Reporter = (*Replication)(nil)
)
