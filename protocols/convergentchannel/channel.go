// Package convergentchannel is the "convergent-channel" layer: the
// checkpointed channel's API (protocols.Channel and Session) over the
// node's own CRDT replica (protocols.Replica, from crdt-replication),
// for classes that stay available in any partition.
//
// A session works like a checkpointed channel's, with these meanings:
//
//  1. Initialize carries the replica's visible state (crdt encoding) as
//     the checkpoint, at the Seq of the last update in it.
//  2. Update events carry deltas (crdt encoding: crdt.Decode, then Merge
//     into the state), numbered 1, 2, 3, ... on this node (Seqs are not
//     shared between nodes: replicas apply concurrent updates in
//     different orders and converge by merging). When the plan's model
//     is "causal" they come in causal order: no delta before one whose
//     effects its author had seen.
//  3. Submit takes an operation (crdt.MarshalOp) and applies it to the
//     local replica; it returns once the operation is on this device's
//     disk. Offline, submits queue there (in the replica) and flow out by
//     broadcast and anti-entropy on reconnect. The operation's delta
//     arrives in Events once it is acknowledged, that is durable on as
//     many nodes as the class's durability asks (durability+1); updates
//     that became visible on this node after it wait behind it, so the
//     stream stays causal. That arrival is the submit's acknowledgement.
//     An operation the class's type refuses disconnects the session.
//  4. RequestCheckpoint is never sent: the replica's state is the
//     checkpoint, so a component never has to provide one. Checkpoint is
//     accepted (for components written against the checkpointed channel)
//     and changes nothing.
//  5. Sync returns a Seq s once this session has been sent every update
//     up to s, where s covers everything this node's replica held when
//     Sync was called (what it had merged from others and its own
//     submits, which Sync therefore waits to be acknowledged). It is not
//     a linearizable read: a convergent class promises no more than its
//     model. Updates made elsewhere and not yet received are not
//     included.
package convergentchannel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/rime-dev/rime/protocols"
)

// Name is the protocol's name in its spec.
const Name = "convergent-channel"

// Config tunes the channel.
type Config struct {
	// EventBuffer is how many events a session queues for a slow reader
	// before the proxy waits for it (only that session waits).
	EventBuffer int
}

// DefaultConfig suits interactive applications.
func DefaultConfig() Config { return Config{EventBuffer: 1024} }

// Validate names the field out of range.
func (c Config) Validate() error {
	if c.EventBuffer < 1 {
		return fmt.Errorf("%s: Config.EventBuffer is %d, want at least 1", Name, c.EventBuffer)
	}
	return nil
}

// NewModule returns the module with cfg.
func NewModule(cfg Config) protocols.Module {
	return protocols.Module{Name: Name, Provides: []string{"channel"},
		New: func() protocols.Instance { return &Channel{cfg: cfg} }}
}

func init() { protocols.Default.MustRegister(NewModule(DefaultConfig())) }

// Channel is one node's proxy of a class's convergent channel.
type Channel struct {
	cfg   Config
	env   *protocols.Env
	lg    *slog.Logger
	rep   protocols.Replica
	model string

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
}

// Provision finds the replica below.
func (c *Channel) Provision(env *protocols.Env) error {
	c.env = env
	c.lg = env.Logger
	if c.lg == nil {
		c.lg = slog.New(slog.DiscardHandler)
	}
	c.model, _ = env.Params["model"].(string)
	c.sessions = map[*session]struct{}{}
	var err error
	c.rep, err = protocols.Need[protocols.Replica](env, Name, "local-replica")
	return err
}

// Validate checks the configuration and the model.
func (c *Channel) Validate() error {
	if err := c.cfg.Validate(); err != nil {
		return err
	}
	switch c.model {
	case "", "eventual", "causal":
		return nil
	}
	return fmt.Errorf("%s: parameter model is %q, want \"eventual\" or \"causal\"", Name, c.model)
}

// Start has nothing to start: sessions drive the proxy.
func (c *Channel) Start(context.Context) error { return nil }

// Close disconnects every session.
func (c *Channel) Close() error {
	c.mu.Lock()
	c.closed = true
	ss := make([]*session, 0, len(c.sessions))
	for s := range c.sessions {
		ss = append(ss, s)
	}
	c.mu.Unlock()
	for _, s := range ss {
		s.end(protocols.ErrClosed)
	}
	return nil
}

// Connect opens a session: Initialize with the replica's visible state,
// then its updates.
func (c *Channel) Connect(ctx context.Context) (protocols.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s: class %s: %w", Name, c.env.Class, protocols.ErrClosed)
	}
	// A replica sealed end to end on a node given no keys holds only
	// ciphertext: no session could show the class.
	if r, ok := c.rep.(interface{ Readable() error }); ok {
		if err := r.Readable(); err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &session{c: c, ctx: sctx, cancel: cancel, events: make(chan protocols.Event, c.cfg.EventBuffer)}
	c.sessions[s] = struct{}{}
	s.wg.Add(1)
	go s.deliver()
	go func() { s.wg.Wait(); close(s.events) }()
	return s, nil
}

func (c *Channel) forget(s *session) {
	c.mu.Lock()
	delete(c.sessions, s)
	c.mu.Unlock()
}

type session struct {
	c      *Channel
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events chan protocols.Event
	protocols.Ending

	mu        sync.Mutex
	delivered uint64
	started   bool          // Initialize was sent
	moved     chan struct{} // closed when delivered grows, if a Sync waits
}

func (s *session) Events() <-chan protocols.Event { return s.events }

func (s *session) end(err error) {
	s.End(err)
	s.cancel()
	s.c.forget(s)
}

func (s *session) Disconnect() { s.end(protocols.ErrDisconnected) }

// deliver sends Initialize, then every visible update in order.
func (s *session) deliver() {
	defer s.wg.Done()
	seq, state := s.c.rep.Snapshot()
	if !s.emit(protocols.Event{Kind: protocols.Initialize, Seq: seq, Data: state}) {
		return
	}
	f := s.c.rep.Follow(seq + 1)
	defer f.Close()
	for {
		e, err := f.Next(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				// Too far behind (the replica no longer keeps the updates
				// after this session's position), or the replica closed:
				// the component reconnects and starts from the state.
				s.end(fmt.Errorf("%s: class %s: %w", Name, s.c.env.Class, err))
			}
			return
		}
		if !s.emit(protocols.Event{Kind: protocols.Update, Seq: e.Seq, Data: e.Data}) {
			return
		}
	}
}

func (s *session) emit(ev protocols.Event) bool {
	select {
	case s.events <- ev:
	case <-s.ctx.Done():
		return false
	}
	s.mu.Lock()
	s.delivered, s.started = ev.Seq, true
	if s.moved != nil {
		close(s.moved)
		s.moved = nil
	}
	s.mu.Unlock()
	return true
}

// Submit applies update (an operation, crdt.MarshalOp) to the local
// replica and returns once it is on this device's disk; its delta
// arrives in Events once acknowledged. An update the replica refuses
// disconnects the session, and Submit returns why.
func (s *session) Submit(ctx context.Context, update []byte) error {
	select {
	case <-s.Ended():
		return s.Err()
	default:
	}
	err := s.c.rep.Apply(ctx, update)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		// The caller gave up: the update may or may not be applied.
		return ctx.Err()
	case errors.Is(err, protocols.ErrRefused):
		s.end(fmt.Errorf("%s: class %s: update not accepted: %w: %w", Name, s.c.env.Class, protocols.ErrDisconnected, err))
	default:
		s.end(fmt.Errorf("%s: class %s: %w: %w", Name, s.c.env.Class, protocols.ErrDisconnected, err))
	}
	return s.Err()
}

// Checkpoint accepts a component's checkpoint and changes nothing: the
// replica's state is the checkpoint.
func (s *session) Checkpoint(seq uint64, _ []byte) error {
	if err := s.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	ok := s.started && seq <= s.delivered
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s: checkpoint at %d is ahead of the updates delivered to this session", Name, seq)
	}
	return nil
}

// Sync waits until this session has been sent everything the replica
// held when Sync was called; see the package comment.
func (s *session) Sync(ctx context.Context) (uint64, error) {
	seq, err := s.c.rep.Seen(ctx)
	if err != nil {
		return 0, err
	}
	for {
		s.mu.Lock()
		d, started, err := s.delivered, s.started, s.Err()
		if err == nil && (!started || d < seq) && s.moved == nil {
			s.moved = make(chan struct{})
		}
		moved := s.moved
		s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if started && d >= seq {
			return seq, nil
		}
		select {
		case <-moved:
		case <-s.Ended():
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

var (
	_ protocols.Instance = (*Channel)(nil)
	_ protocols.Channel  = (*Channel)(nil)
	_ protocols.Session  = (*session)(nil)
)
