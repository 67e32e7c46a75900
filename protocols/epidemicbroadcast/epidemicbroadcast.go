package epidemicbroadcast

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
)

// Name is the protocol's name in specs and plans.
const Name = "epidemic-broadcast"

func init() {
	protocols.Default.MustRegister(NewModule(DefaultConfig()))
}

// NewModule is the module with tuning c, for a registry of one's own
// (tests, benchmarks); the default registry holds
// NewModule(DefaultConfig()).
func NewModule(c Config) protocols.Module {
	return protocols.Module{
		Name:     Name,
		Provides: []string{"broadcast"},
		New:      func() protocols.Instance { return New(c) },
	}
}

type phase int

const (
	phaseNew phase = iota
	phaseProvisioned
	phaseRunning
	phaseClosed
)

// Broadcaster is one epidemic broadcast instance: the Core driven by one
// goroutine over the Transport below, with peers from the Membership
// below. See the package documentation.
type Broadcaster struct {
	cfg Config // Fanout as the plan sets it

	// Set by Provision, read-only afterwards.
	id        string
	service   string
	transport protocols.Transport
	members   protocols.Membership
	key       []byte
	log       *slog.Logger

	out  chan protocols.Delivery
	reqs chan request
	done chan struct{}
	wg   sync.WaitGroup

	closeOnce sync.Once

	mu     sync.Mutex // guards phase, core, port, cancel
	phase  phase
	core   *Core
	port   network.Port
	unsub  func()
	sealer *sealer
	ep     network.Endpoint
}

type request struct {
	payload []byte
	reply   chan error
}

// New returns an unprovisioned instance with tuning c (copied).
func New(c Config) *Broadcaster {
	return &Broadcaster{
		cfg:  c,
		log:  slog.New(slog.DiscardHandler),
		reqs: make(chan request),
		done: make(chan struct{}),
		out:  make(chan protocols.Delivery, max(c.DeliveryBuffer, 1)),
	}
}

// Provision takes the Transport and Membership below, the `fanout`
// parameter, and the group's key for this layer.
func (b *Broadcaster) Provision(env *protocols.Env) error {
	if env == nil {
		return errors.New("epidemic-broadcast: provision: no environment")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.phase != phaseNew {
		return errors.New("epidemic-broadcast: provisioned twice")
	}
	for n := range env.Params {
		if n != "fanout" {
			return fmt.Errorf("epidemic-broadcast: unknown parameter %q: it takes only fanout", n)
		}
	}
	fanout, err := env.IntParam("fanout", b.cfg.Fanout)
	if err != nil {
		return fmt.Errorf("epidemic-broadcast: %w", err)
	}
	b.cfg.Fanout = fanout
	if b.transport, err = protocols.Need[protocols.Transport](env, Name, "transport"); err != nil {
		return err
	}
	if b.members, err = protocols.Need[protocols.Membership](env, Name, "membership"); err != nil {
		return err
	}
	// Per group; the class is bound into every datagram by the sealer.
	if b.key, err = env.DeriveKey("epidemic-broadcast/aead", 32); err != nil {
		return fmt.Errorf("epidemic-broadcast: %w", err)
	}
	b.id = env.Node.ID
	b.service = "broadcast/" + env.Class
	if env.Logger != nil {
		b.log = env.Logger
	}
	b.phase = phaseProvisioned
	return nil
}

// Validate checks the configuration (the plan's fanout included) and
// what Provision took from env.
func (b *Broadcaster) Validate() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.phase == phaseNew {
		return errors.New("epidemic-broadcast: validate before provision")
	}
	if err := b.cfg.Validate(); err != nil {
		return err
	}
	if b.id == "" || len(b.id) > maxOriginLen {
		return fmt.Errorf("epidemic-broadcast: env.Node.ID %q: want 1..%d bytes", b.id, maxOriginLen)
	}
	if b.service == "broadcast/" {
		return errors.New("epidemic-broadcast: env.Class is empty")
	}
	return nil
}

// Start claims the service on the transport's endpoint, follows the
// membership view and starts the driver. The node's incarnation (epoch)
// is the wall clock now, so it is above any earlier incarnation's as
// long as the clock does not go back across a restart.
func (b *Broadcaster) Start(ctx context.Context) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("epidemic-broadcast: start: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.phase {
	case phaseClosed:
		return fmt.Errorf("epidemic-broadcast: start: %w", protocols.ErrClosed)
	case phaseRunning:
		return errors.New("epidemic-broadcast: started twice")
	}
	ep := b.transport.Endpoint()
	if ep == nil {
		return errors.New("epidemic-broadcast: the transport below has no endpoint (not started?)")
	}
	var seed [16]byte
	crand.Read(seed[:])
	rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	core, err := NewCore(b.id, uint64(time.Now().UnixNano()), b.cfg, rng)
	if err != nil {
		return err
	}
	s, err := newSealer(b.key, b.service)
	if err != nil {
		return err
	}
	port, err := ep.Open(b.service)
	if err != nil {
		return fmt.Errorf("epidemic-broadcast: open %q on %s: %w", b.service, ep.Addr(), err)
	}
	events, unsub := b.members.Subscribe()
	b.ep, b.core, b.sealer, b.port, b.unsub = ep, core, s, port, unsub
	b.core.SetPeers(b.peers())
	b.phase = phaseRunning
	b.wg.Add(1)
	go b.run(port.Packets(), events)
	return nil
}

// peers are the alive members other than this node.
func (b *Broadcaster) peers() []string {
	var out []string
	for _, m := range b.members.Members() {
		if m.ID != b.id && m.State == protocols.MemberAlive && m.Addr != "" {
			out = append(out, m.Addr)
		}
	}
	return out
}

// run is the driver: the one goroutine that steps the core.
func (b *Broadcaster) run(packets <-chan network.Packet, events <-chan protocols.MemberEvent) {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.TickInterval)
	defer t.Stop()
	for {
		var rd Ready
		select {
		case <-b.done:
			return
		case p, ok := <-packets:
			if !ok {
				// The endpoint is gone (closed under us, or a crash):
				// nothing more will arrive; keep serving until Close.
				packets = nil
				b.log.Warn("epidemic-broadcast: port closed")
				continue
			}
			plain, err := b.sealer.open(p.Payload)
			if err != nil {
				b.log.Debug("epidemic-broadcast: dropped datagram", "from", p.From, "err", err)
				continue
			}
			m, err := decode(plain)
			if err != nil {
				b.log.Debug("epidemic-broadcast: dropped datagram", "from", p.From, "err", err)
				continue
			}
			b.mu.Lock()
			rd = b.core.Step(p.From, m)
			b.mu.Unlock()
		case <-t.C:
			b.mu.Lock()
			rd = b.core.Tick()
			b.mu.Unlock()
		case req := <-b.reqs:
			var err error
			b.mu.Lock()
			rd, err = b.core.Broadcast(req.payload)
			b.mu.Unlock()
			// Answer before delivering, so a caller that reads its own
			// deliveries after Broadcast returns is not deadlocked.
			req.reply <- err
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			peers := b.peers()
			b.mu.Lock()
			b.core.SetPeers(peers)
			b.mu.Unlock()
			continue
		}
		if !b.carryOut(rd) {
			return
		}
	}
}

// carryOut sends and delivers what rd says; it reports false if Close
// interrupted it.
func (b *Broadcaster) carryOut(rd Ready) bool {
	ctx := context.Background()
	for _, e := range rd.Send {
		buf := b.sealer.seal(encode(nil, e.Msg))
		if err := b.ep.Send(ctx, e.To, b.service, buf); err != nil {
			b.log.Debug("epidemic-broadcast: send", "to", e.To, "kind", e.Msg.Kind, "err", err)
		}
	}
	for _, d := range rd.Deliver {
		select {
		// A copy: the core keeps the payload to repair others with, and
		// the application may scribble on what it is given.
		case b.out <- protocols.Delivery{From: d.From, Payload: slices.Clone(d.Payload)}:
		case <-b.done:
			return false
		}
	}
	return true
}

// Broadcast sends payload to every member, this node included (it is
// delivered here too). It returns once the message is taken, before it
// has reached anyone else; it blocks while the application is
// DeliveryBuffer deliveries behind, until ctx ends.
func (b *Broadcaster) Broadcast(ctx context.Context, payload []byte) error {
	if len(payload) > b.cfg.MaxPayload {
		return fmt.Errorf("epidemic-broadcast: payload of %d bytes: above MaxPayload (%d)", len(payload), b.cfg.MaxPayload)
	}
	b.mu.Lock()
	p := b.phase
	b.mu.Unlock()
	switch p {
	case phaseNew, phaseProvisioned:
		return errors.New("epidemic-broadcast: broadcast before start")
	case phaseClosed:
		return fmt.Errorf("epidemic-broadcast: broadcast: %w", protocols.ErrClosed)
	}
	req := request{payload: payload, reply: make(chan error, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return fmt.Errorf("epidemic-broadcast: broadcast: %w", ctx.Err())
	case <-b.done:
		return fmt.Errorf("epidemic-broadcast: broadcast: %w", protocols.ErrClosed)
	}
	return <-req.reply // answered at once by the driver
}

// Deliveries delivers every message broadcast by any member, its own
// included, once each, in no particular order. It is closed by Close.
func (b *Broadcaster) Deliveries() <-chan protocols.Delivery { return b.out }

// Stats returns the core's counters (zero before Start).
func (b *Broadcaster) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.core == nil {
		return Stats{}
	}
	return b.core.Stats()
}

// Report is for the live view.
func (b *Broadcaster) Report(context.Context) (map[string]any, error) {
	s := b.Stats()
	return map[string]any{
		"retained":   s.Retained,
		"origins":    s.Origins,
		"delivered":  s.Delivered,
		"duplicates": s.Duplicates,
		"skipped":    s.Skipped,
	}, nil
}

// Close stops the driver, releases the service and closes Deliveries.
// It is idempotent. The endpoint stays up: it belongs to the transport.
func (b *Broadcaster) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.phase = phaseClosed
		b.mu.Unlock()
		close(b.done)
		b.wg.Wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.unsub != nil {
			b.unsub()
		}
		if b.port != nil {
			if cerr := b.port.Close(); cerr != nil && !errors.Is(cerr, network.ErrClosed) {
				err = fmt.Errorf("epidemic-broadcast: close %q: %w", b.service, cerr)
			}
		}
		close(b.out)
	})
	return err
}

var (
	_ protocols.Instance  = (*Broadcaster)(nil)
	_ protocols.Broadcast = (*Broadcaster)(nil)
	_ protocols.Reporter  = (*Broadcaster)(nil)
)
