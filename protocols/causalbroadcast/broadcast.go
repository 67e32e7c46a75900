package causalbroadcast

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
	"time"

	"github.com/rime-dev/rime/causal"
	"github.com/rime-dev/rime/crdt/vv"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
)

// Name is the protocol's name in its spec.
const Name = "causal-broadcast"

// Config tunes the driver. The plan's `fanout` parameter overrides
// Fanout.
type Config struct {
	// Fanout is how many random members a new message is pushed to, by
	// its sender and by each member that sees it first.
	Fanout int
	// AntiEntropyInterval is how often a node asks one random member for
	// the messages it has not delivered. It bounds how long a message
	// lost to a partition stays missing after the partition heals.
	AntiEntropyInterval time.Duration
	// RetainMessages and RetainBytes bound the delivered messages a node
	// keeps to resend by anti-entropy (bounded memory per node): a
	// partition that lasts longer than this many messages is repaired by
	// skipping, or by the layer above (see the package comment).
	RetainMessages int
	RetainBytes    int
	// MaxPending and MaxPendingBytes bound the hold-back buffer (see
	// causal.Config).
	MaxPending      int
	MaxPendingBytes int
	// DeliveryBuffer is how many delivered messages wait for the layer
	// above before receiving slows down (datagrams that arrive meanwhile
	// may be dropped; anti-entropy resends them).
	DeliveryBuffer int
	// MaxFrame is the size a datagram of several messages stays under.
	MaxFrame int
}

// DefaultConfig suits groups of tens of nodes on a LAN or WAN.
func DefaultConfig() Config {
	c := causal.DefaultConfig("x")
	return Config{
		Fanout:              3,
		AntiEntropyInterval: time.Second,
		RetainMessages:      1 << 16,
		RetainBytes:         32 << 20,
		MaxPending:          c.MaxPending,
		MaxPendingBytes:     c.MaxPendingBytes,
		DeliveryBuffer:      1024,
		MaxFrame:            60 << 10,
	}
}

// Validate names the first field out of range.
func (c Config) Validate() error {
	switch {
	case c.Fanout < 1:
		return fmt.Errorf("%s: Config.Fanout is %d, want at least 1", Name, c.Fanout)
	case c.AntiEntropyInterval <= 0:
		return fmt.Errorf("%s: Config.AntiEntropyInterval is %v, want > 0", Name, c.AntiEntropyInterval)
	case c.RetainMessages < 0 || c.RetainBytes < 0:
		return fmt.Errorf("%s: Config.RetainMessages %d and RetainBytes %d must not be negative", Name, c.RetainMessages, c.RetainBytes)
	case c.MaxPending < 1 || c.MaxPendingBytes < 1:
		return fmt.Errorf("%s: Config.MaxPending %d and MaxPendingBytes %d must be positive", Name, c.MaxPending, c.MaxPendingBytes)
	case c.DeliveryBuffer < 1:
		return fmt.Errorf("%s: Config.DeliveryBuffer is %d, want at least 1", Name, c.DeliveryBuffer)
	case c.MaxFrame < 512:
		return fmt.Errorf("%s: Config.MaxFrame is %d, want at least 512", Name, c.MaxFrame)
	}
	return nil
}

// NewModule returns the module with cfg.
func NewModule(cfg Config) protocols.Module {
	return protocols.Module{Name: Name, Provides: []string{"broadcast"},
		New: func() protocols.Instance { return &Broadcast{cfg: cfg} }}
}

func init() { protocols.Default.MustRegister(NewModule(DefaultConfig())) }

// Broadcast is one node's causal broadcast for one class.
type Broadcast struct {
	cfg     Config
	env     *protocols.Env
	lg      *slog.Logger
	mem     protocols.Membership
	ep      network.Endpoint
	service string
	seal    *seal.Sealer
	self    string // sender name: node ID and incarnation

	port       network.Port
	deliveries chan protocols.Delivery
	stop       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once

	mu        sync.Mutex
	core      *causal.Node
	delegated bool
	retained  map[string]map[uint64]causal.Msg
	order     []vv.Dot // retention order, oldest first
	retBytes  int
	refused   uint64 // messages the hold-back buffer could not take
	rng       *rand.Rand

	outMu   sync.Mutex
	outCond *sync.Cond
	outQ    []protocols.Delivery
	stopped bool
}

// Provision takes the membership and transport below and derives the key.
func (b *Broadcast) Provision(env *protocols.Env) error {
	b.env = env
	b.lg = env.Logger
	if b.lg == nil {
		b.lg = slog.New(slog.DiscardHandler)
	}
	fanout, err := env.IntParam("fanout", b.cfg.Fanout)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	b.cfg.Fanout = fanout
	if b.mem, err = protocols.Need[protocols.Membership](env, Name, "membership"); err != nil {
		return err
	}
	tr, err := protocols.Need[protocols.Transport](env, Name, "transport")
	if err != nil {
		return err
	}
	b.ep = tr.Endpoint()
	b.service = "causal/" + env.Class
	key, err := env.DeriveKey("causal-broadcast/"+env.Class, 32)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if b.seal, err = seal.New(key, b.service); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	var inc [4]byte
	crand.Read(inc[:])
	b.self = env.Node.ID + "." + hex.EncodeToString(inc[:])
	var seed [16]byte
	crand.Read(seed[:])
	b.rng = rand.New(rand.NewPCG(uint64FromBytes(seed[:8]), uint64FromBytes(seed[8:])))
	b.retained = map[string]map[uint64]causal.Msg{}
	b.outCond = sync.NewCond(&b.outMu)
	return nil
}

func uint64FromBytes(p []byte) uint64 {
	var x uint64
	for _, c := range p {
		x = x<<8 | uint64(c)
	}
	return x
}

// Validate checks the configuration and the node's identity.
func (b *Broadcast) Validate() error {
	if err := b.cfg.Validate(); err != nil {
		return err
	}
	if b.env.Node.ID == "" {
		return fmt.Errorf("%s: the node has no ID", Name)
	}
	cc := causal.Config{ID: b.self, MaxPending: b.cfg.MaxPending, MaxPendingBytes: b.cfg.MaxPendingBytes}
	core, err := causal.New(cc)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	b.core = core
	return nil
}

// DelegateRepair makes the layer above responsible for repairing what a
// node missed; see protocols.CatchUp. Call it before Start.
func (b *Broadcast) DelegateRepair() {
	b.mu.Lock()
	b.delegated = true
	b.mu.Unlock()
}

// CaughtUp counts the messages v covers as delivered without delivering
// them: the layer above holds their effects.
func (b *Broadcast) CaughtUp(v map[string]uint64) {
	b.mu.Lock()
	rd := b.core.Catchup(vv.VV(v))
	b.mu.Unlock()
	b.enqueue(rd.Deliver)
}

// Start claims the service and starts receiving, delivering and
// anti-entropy.
func (b *Broadcast) Start(ctx context.Context) error {
	port, err := b.ep.Open(b.service)
	if err != nil {
		return fmt.Errorf("%s: class %s: %w", Name, b.env.Class, err)
	}
	b.port = port
	b.deliveries = make(chan protocols.Delivery, b.cfg.DeliveryBuffer)
	b.stop = make(chan struct{})
	b.wg.Add(3)
	go b.receive()
	go b.deliver()
	go b.antiEntropy()
	return nil
}

// Close stops the driver and closes Deliveries.
func (b *Broadcast) Close() error {
	b.closeOnce.Do(func() {
		if b.stop == nil {
			return
		}
		close(b.stop)
		b.outMu.Lock()
		b.stopped = true
		b.outCond.Broadcast()
		b.outMu.Unlock()
		b.port.Close()
		b.wg.Wait()
		close(b.deliveries)
	})
	return nil
}

// Deliveries are the delivered messages, in causal order; closed by
// Close.
func (b *Broadcast) Deliveries() <-chan protocols.Delivery { return b.deliveries }

// Broadcast delivers payload locally and pushes it to Fanout members.
func (b *Broadcast) Broadcast(ctx context.Context, payload []byte) error {
	_, _, err := b.BroadcastNumbered(ctx, payload)
	return err
}

// BroadcastNumbered is Broadcast, returning the message's From and Seq
// (protocols.Numbered).
func (b *Broadcast) BroadcastNumbered(ctx context.Context, payload []byte) (string, uint64, error) {
	select {
	case <-b.stop:
		return "", 0, fmt.Errorf("%s: class %s: %w", Name, b.env.Class, protocols.ErrClosed)
	default:
	}
	if len(payload) > causal.MaxPayload {
		return "", 0, fmt.Errorf("%s: payload of %d bytes, the limit is %d", Name, len(payload), causal.MaxPayload)
	}
	b.mu.Lock()
	rd := b.core.Broadcast(payload)
	b.retainLocked(rd.Send)
	b.mu.Unlock()
	b.enqueue(rd.Deliver)
	b.push(ctx, rd.Send, "")
	var from string
	var seq uint64
	if len(rd.Send) > 0 {
		id := rd.Send[len(rd.Send)-1].ID
		from, seq = id.Replica, id.Seq
	}
	return from, seq, nil
}

// push sends msgs to Fanout random alive members other than except.
func (b *Broadcast) push(ctx context.Context, msgs []causal.Msg, except string) {
	if len(msgs) == 0 {
		return
	}
	peers := b.peers(except)
	b.mu.Lock()
	b.rng.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	b.mu.Unlock()
	peers = peers[:min(len(peers), b.cfg.Fanout)]
	for _, frame := range b.frames(msgs) {
		sealed := b.seal.Seal(frame)
		for _, p := range peers {
			b.send(ctx, p, sealed)
		}
	}
}

// frames packs msgs into frames under MaxFrame (a larger message goes
// alone).
func (b *Broadcast) frames(msgs []causal.Msg) [][]byte {
	var out [][]byte
	var cur []causal.Msg
	size := 0
	flush := func() {
		if len(cur) == 0 {
			return
		}
		f, err := encodeMsgs(cur)
		if err != nil {
			b.lg.Warn("causal-broadcast: encode", "err", err)
		} else {
			out = append(out, f)
		}
		cur, size = nil, 0
	}
	for _, m := range msgs {
		n := len(m.Payload) + 16*len(m.Deps) + 32
		if size+n > b.cfg.MaxFrame || len(cur) == maxBatch {
			flush()
		}
		cur = append(cur, m)
		size += n
	}
	flush()
	return out
}

func (b *Broadcast) send(ctx context.Context, addr string, sealed []byte) {
	if err := b.ep.Send(ctx, addr, b.service, sealed); err != nil && !errors.Is(err, network.ErrClosed) {
		b.lg.Debug("causal-broadcast: send", "to", addr, "err", err)
	}
}

// peers are the addresses of the alive members other than this node and
// except.
func (b *Broadcast) peers(except string) []string {
	self := b.mem.Self().ID
	var out []string
	for _, m := range b.mem.Members() {
		if m.ID != self && m.State == protocols.MemberAlive && m.Addr != "" && m.Addr != except && m.Addr != b.ep.Addr() {
			out = append(out, m.Addr)
		}
	}
	return out
}

// retainLocked keeps msgs for anti-entropy, evicting the oldest beyond
// the bounds.
func (b *Broadcast) retainLocked(msgs []causal.Msg) {
	if b.delegated {
		return // the layer above repairs; nothing is resent from here
	}
	for _, m := range msgs {
		q := b.retained[m.ID.Replica]
		if q == nil {
			q = map[uint64]causal.Msg{}
			b.retained[m.ID.Replica] = q
		}
		if _, ok := q[m.ID.Seq]; ok {
			continue
		}
		q[m.ID.Seq] = m
		b.order = append(b.order, m.ID)
		b.retBytes += len(m.Payload)
	}
	for len(b.order) > 0 && (len(b.order) > b.cfg.RetainMessages || b.retBytes > b.cfg.RetainBytes) {
		id := b.order[0]
		b.order = b.order[1:]
		if q := b.retained[id.Replica]; q != nil {
			b.retBytes -= len(q[id.Seq].Payload)
			delete(q, id.Seq)
			if len(q) == 0 {
				delete(b.retained, id.Replica)
			}
		}
	}
	if cap(b.order) > 2*len(b.order)+1024 {
		b.order = slices.Clone(b.order)
	}
}

// enqueue hands delivered messages to the delivery goroutine, keeping
// the core's order across every caller.
func (b *Broadcast) enqueue(msgs []causal.Msg) {
	if len(msgs) == 0 {
		return
	}
	b.outMu.Lock()
	for _, m := range msgs {
		b.outQ = append(b.outQ, protocols.Delivery{From: m.ID.Replica, Seq: m.ID.Seq, Payload: m.Payload})
	}
	b.outCond.Broadcast()
	b.outMu.Unlock()
}

// deliver moves delivered messages to Deliveries.
func (b *Broadcast) deliver() {
	defer b.wg.Done()
	for {
		b.outMu.Lock()
		for len(b.outQ) == 0 && !b.stopped {
			b.outCond.Wait()
		}
		if b.stopped {
			b.outMu.Unlock()
			return
		}
		q := b.outQ
		b.outQ = nil
		b.outCond.Broadcast()
		b.outMu.Unlock()
		for _, d := range q {
			select {
			case b.deliveries <- d:
			case <-b.stop:
				return
			}
		}
	}
}

// backlogged waits while the layer above is behind by more than
// DeliveryBuffer messages.
func (b *Broadcast) backlogged() {
	b.outMu.Lock()
	for len(b.outQ) >= b.cfg.DeliveryBuffer && !b.stopped {
		b.outCond.Wait()
	}
	b.outMu.Unlock()
}

// receive steps every datagram through the core.
func (b *Broadcast) receive() {
	defer b.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-b.stop; cancel() }()
	for p := range b.port.Packets() {
		plain, err := b.seal.Open(p.Payload)
		if err != nil {
			b.lg.Debug("causal-broadcast: dropped datagram", "from", p.From, "err", err)
			continue
		}
		f, err := decodeFrame(plain)
		if err != nil {
			b.lg.Warn("causal-broadcast: dropped frame", "from", p.From, "err", err)
			continue
		}
		switch f.kind {
		case kindMsgs:
			b.step(ctx, f.msgs, p.From)
		case kindDigest:
			b.answer(ctx, f.vec, p.From)
		case kindSkip:
			b.mu.Lock()
			rd := b.core.Catchup(f.vec)
			b.mu.Unlock()
			b.enqueue(rd.Deliver)
		}
		b.backlogged()
	}
}

// step hands received messages to the core and relays the new ones.
func (b *Broadcast) step(ctx context.Context, msgs []causal.Msg, from string) {
	var deliver, relay []causal.Msg
	b.mu.Lock()
	for _, m := range msgs {
		rd, err := b.core.Step(m)
		switch {
		case errors.Is(err, causal.ErrBufferFull):
			b.refused++ // anti-entropy or the layer above repairs it
		case err != nil:
			b.lg.Warn("causal-broadcast: refused message", "from", from, "err", err)
		}
		deliver = append(deliver, rd.Deliver...)
		relay = append(relay, rd.Send...)
	}
	b.retainLocked(relay)
	b.mu.Unlock()
	b.enqueue(deliver)
	b.push(ctx, relay, from)
}

// answer sends the asker the retained messages it has not delivered, in
// a causal order, after a skip for what is no longer retained.
func (b *Broadcast) answer(ctx context.Context, asker vv.VV, to string) {
	b.mu.Lock()
	if b.delegated {
		b.mu.Unlock()
		return
	}
	mine := b.core.Delivered()
	skip := vv.VV{}
	var msgs []causal.Msg
	for _, s := range mine.Replicas() {
		have, top := asker[s], mine[s]
		if top <= have {
			continue
		}
		q := b.retained[s]
		lo := have + 1
		for lo <= top {
			if _, ok := q[lo]; ok {
				break
			}
			lo++
		}
		if lo > have+1 && s != b.self {
			skip[s] = lo - 1
		}
		for seq := lo; seq <= top; seq++ {
			if m, ok := q[seq]; ok {
				msgs = append(msgs, m)
			}
		}
	}
	b.mu.Unlock()
	if len(skip) > 0 {
		b.send(ctx, to, b.seal.Seal(encodeVec(kindSkip, skip)))
	}
	// A message's vector sum exceeds each of its causes', so this order
	// lets the asker deliver each message as it arrives.
	slices.SortFunc(msgs, func(x, y causal.Msg) int {
		if sx, sy := sum(x.Deps), sum(y.Deps); sx != sy {
			return cmpU(sx, sy)
		}
		return x.ID.Compare(y.ID)
	})
	for _, f := range b.frames(msgs) {
		b.send(ctx, to, b.seal.Seal(f))
	}
}

func sum(v vv.VV) uint64 {
	var s uint64
	for _, k := range v {
		s += k
	}
	return s
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// antiEntropy asks one random member per interval for what this node
// has not delivered, unless the layer above repairs.
func (b *Broadcast) antiEntropy() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.AntiEntropyInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		b.mu.Lock()
		delegated := b.delegated
		mine := b.core.Delivered()
		b.mu.Unlock()
		if delegated {
			continue
		}
		peers := b.peers("")
		if len(peers) == 0 {
			continue
		}
		b.mu.Lock()
		p := peers[b.rng.IntN(len(peers))]
		b.mu.Unlock()
		b.send(ctx, p, b.seal.Seal(encodeVec(kindDigest, mine)))
	}
}

// Report is what a live view shows of the layer.
func (b *Broadcast) Report(context.Context) (map[string]any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.core.Stats()
	return map[string]any{
		"causal_delivered": sum(b.core.Delivered()),
		"causal_pending":   st.Pending,
		"causal_retained":  len(b.order),
		"causal_refused":   b.refused,
	}, nil
}

var (
	_ protocols.Instance  = (*Broadcast)(nil)
	_ protocols.Broadcast = (*Broadcast)(nil)
	_ protocols.CatchUp   = (*Broadcast)(nil)
	_ protocols.Reporter  = (*Broadcast)(nil)
)
