package checkpointedchannel

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rime-dev/rime/protocols"
)

// Config tunes the channel proxy.
type Config struct {
	// CheckpointEvery: once this many updates follow the latest
	// checkpoint, the proxy asks one connected component for a checkpoint,
	// so the log can be compacted and late joiners start from a state
	// rather than replaying everything.
	CheckpointEvery uint64
	// EventBuffer is how many events a session queues for a slow reader
	// before the proxy waits for it (only that session waits).
	EventBuffer int
	// SubmitBuffer is how many submitted updates a session queues before
	// Submit blocks.
	SubmitBuffer int
	// AppendTimeout bounds one update's way into the log; past it the
	// update cannot be accepted and the session is disconnected.
	AppendTimeout time.Duration
}

// DefaultConfig suits interactive applications.
func DefaultConfig() Config {
	return Config{CheckpointEvery: 1000, EventBuffer: 1024, SubmitBuffer: 1024, AppendTimeout: 5 * time.Second}
}

// Name is the protocol's name in its spec.
const Name = "checkpointed-channel"

// NewModule returns the module with cfg.
func NewModule(cfg Config) protocols.Module {
	return protocols.Module{Name: Name, Provides: []string{"channel"}, New: func() protocols.Instance { return &Channel{cfg: cfg} }}
}

func init() { protocols.Default.MustRegister(NewModule(DefaultConfig())) }

// Channel is one node's proxy of a class's checkpointed channel over the
// totally ordered Log below it.
type Channel struct {
	cfg Config
	env *protocols.Env
	log protocols.Log
	lg  *slog.Logger

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
	// asker is the session that answers checkpoint requests; asking one
	// component is enough. Written under mu; read without it by every
	// session's delivery, once per update.
	asker atomic.Pointer[session]

	// feed reads the log once for the sessions that keep up (feed.go).
	feed feed
	// ctx lives as long as the channel; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
}

// Provision finds the log below.
func (c *Channel) Provision(env *protocols.Env) error {
	c.env = env
	c.lg = env.Logger
	if c.lg == nil {
		c.lg = slog.New(slog.DiscardHandler)
	}
	var err error
	c.log, err = protocols.Need[protocols.Log](env, Name, "log")
	c.sessions = map[*session]struct{}{}
	c.feed.c = c
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return err
}

// Validate checks the configuration.
func (c *Channel) Validate() error {
	if c.cfg.CheckpointEvery == 0 || c.cfg.EventBuffer < 1 || c.cfg.SubmitBuffer < 1 || c.cfg.AppendTimeout <= 0 {
		return fmt.Errorf("%s: Config %+v: every field must be positive", Name, c.cfg)
	}
	return nil
}

// Start has nothing to start: sessions drive the proxy.
func (c *Channel) Start(context.Context) error { return nil }

// Close disconnects every session.
func (c *Channel) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.cancel != nil {
		c.cancel()
	}
	c.feed.stop()
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

// Connect opens a session: its first event is Initialize with the latest
// checkpoint this replica holds (c_n), then updates n+1, n+2, ...
func (c *Channel) Connect(ctx context.Context) (protocols.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s: class %s: %w", Name, c.env.Class, protocols.ErrClosed)
	}
	c.feed.start(c.ctx)
	sctx, cancel := context.WithCancel(context.Background())
	s := &session{
		c: c, ctx: sctx, cancel: cancel,
		events:  make(chan protocols.Event, c.cfg.EventBuffer),
		submits: make(chan []byte, c.cfg.SubmitBuffer),
		dropped: make(chan uint64, 1),
	}
	c.sessions[s] = struct{}{}
	if c.asker.Load() == nil {
		c.asker.Store(s)
	}
	next, fed := c.feed.connect(s)
	s.wg.Add(2)
	go s.deliver(next, fed)
	go s.submit()
	go func() {
		s.wg.Wait()
		// The feed may still hold the session; once removed it never
		// sends to it again, and only then may the queue close.
		c.feed.remove(s)
		close(s.events)
	}()
	return s, nil
}

func (c *Channel) forget(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, s)
	if c.asker.Load() == s {
		c.asker.Store(nil)
		for o := range c.sessions {
			c.asker.Store(o)
			break
		}
	}
}

func (c *Channel) isAsker(s *session) bool { return c.asker.Load() == s }

type session struct {
	c      *Channel
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	events  chan protocols.Event
	submits chan []byte
	protocols.Ending
	// dropped carries the Seq at which the feed stopped feeding the
	// session (its queue was full, or the feed lost its place); the
	// session reads on by itself from there.
	dropped chan uint64
	// next is the Seq the session needs next while the feed holds it
	// (guarded by the feed's mu).
	next uint64

	// delivered is the Seq of the last update queued on events. It is
	// written once per update, so it is an atomic; a Sync that waits for
	// it to grow sets waiting and waits on moved.
	delivered atomic.Uint64
	waiting   atomic.Bool

	mu    sync.Mutex
	moved chan struct{} // closed when delivered grows, while waiting
	asked uint64        // Seq of the outstanding checkpoint request
}

func (s *session) Events() <-chan protocols.Event { return s.events }

// end disconnects the session with err (the first cause wins).
func (s *session) end(err error) {
	s.End(err)
	s.cancel()
	s.c.forget(s)
}

func (s *session) Disconnect() { s.end(protocols.ErrDisconnected) }

// deliver sends every committed update from next on, in order (the
// feed queued Initialize at Connect): by itself until it is level with
// the channel's feed, then through the feed until the feed drops it, and
// so on until the session ends. fed: the feed holds the session already.
func (s *session) deliver(next uint64, fed bool) {
	defer s.wg.Done()
	for {
		if !fed && !s.catchUp(next) {
			return
		}
		fed = false
		select {
		case next = <-s.dropped:
		case <-s.ctx.Done():
			return
		}
	}
}

// catchUp reads the log from next by itself until the session can join
// the feed; false if the session ended instead.
func (s *session) catchUp(next uint64) bool {
	var f protocols.Follower
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		if s.c.feed.join(s, next) {
			return true
		}
		if f == nil {
			f = s.c.log.Follow(next)
		}
		e, err := f.Next(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				// Compacted past this session, or the log closed: the
				// stream cannot stay contiguous, so the session ends; the
				// component reconnects and starts from the checkpoint.
				s.end(fmt.Errorf("%s: class %s: %w", Name, s.c.env.Class, err))
			}
			return false
		}
		if !s.emit(protocols.Event{Kind: protocols.Update, Seq: e.Seq, Data: e.Data}) {
			return false
		}
		next = e.Seq + 1
		if s.c.isAsker(s) {
			s.maybeAsk(e.Seq, s.emit)
		}
	}
}

// emit queues ev, waiting for room, and records how far the session got.
func (s *session) emit(ev protocols.Event) bool {
	select {
	case s.events <- ev:
	case <-s.ctx.Done():
		return false
	}
	s.sent(ev)
	return true
}

// offer queues ev if there is room (the feed never waits on a session).
func (s *session) offer(ev protocols.Event) bool {
	select {
	case s.events <- ev:
		s.sent(ev)
		return true
	default:
		return false
	}
}

// drop hands the session back from the feed at seq. Called with the
// feed's mu held; the session is fed at most once at a time, so the
// one-slot channel has room.
func (s *session) drop(seq uint64) {
	select {
	case s.dropped <- seq:
	default:
		// Cannot happen (a session rejoins only after taking its last
		// drop); if it did, the session's stream would lose its place,
		// so it ends rather than skip or repeat an update.
		go s.end(fmt.Errorf("%s: class %s: session dropped by the feed twice at %d: %w", Name, s.c.env.Class, seq, protocols.ErrDisconnected))
	}
}

// sent records that ev is queued.
func (s *session) sent(ev protocols.Event) {
	if ev.Kind == protocols.RequestCheckpoint {
		return
	}
	s.delivered.Store(ev.Seq)
	// A Sync sets waiting before it reads delivered, and this reads
	// waiting after writing delivered, so one of the two sees the other.
	if s.waiting.Load() {
		s.mu.Lock()
		if s.moved != nil {
			close(s.moved)
			s.moved = nil
		}
		s.waiting.Store(false)
		s.mu.Unlock()
	}
}

// maybeAskNow is maybeAsk from the feed, which may not wait: a request
// that finds the queue full is left for a later update.
func (s *session) maybeAskNow(seq uint64) { s.maybeAsk(seq, s.offer) }

// maybeAsk asks this session's component for a checkpoint, through send,
// when enough updates follow the last one and no request is
// outstanding. Only the asker is asked (callers check isAsker first:
// this runs for every update).
func (s *session) maybeAsk(seq uint64, send func(protocols.Event) bool) {
	snap, _ := s.c.log.Snapshot()
	s.mu.Lock()
	due := seq-snap >= s.c.cfg.CheckpointEvery && s.asked <= snap
	s.mu.Unlock()
	if !due || !s.c.isAsker(s) {
		return
	}
	if send(protocols.Event{Kind: protocols.RequestCheckpoint, Seq: seq}) {
		s.mu.Lock()
		s.asked = seq
		s.mu.Unlock()
	}
}

// Checkpoint records the component's state after update seq as the
// channel's checkpoint, through the log, so every replica agrees on it.
func (s *session) Checkpoint(seq uint64, state []byte) error {
	if err := s.Err(); err != nil {
		return err
	}
	if seq > s.delivered.Load() {
		return fmt.Errorf("%s: checkpoint at %d is ahead of the updates delivered to this session", Name, seq)
	}
	go func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.c.cfg.AppendTimeout)
		defer cancel()
		if err := s.c.log.Compact(ctx, seq, state); err != nil && s.ctx.Err() == nil {
			s.c.lg.Warn("checkpoint not recorded", "class", s.c.env.Class, "seq", seq, "err", err)
		}
	}()
	return nil
}

// Submit queues update for the log. It fails only on a session already
// disconnected; an update that cannot be appended disconnects the session.
func (s *session) Submit(ctx context.Context, update []byte) error {
	select {
	case <-s.Ended():
		return s.Err()
	default:
	}
	select {
	case s.submits <- update:
		return nil
	case <-s.Ended():
		return s.Err()
	case <-ctx.Done():
		// Not queued: the caller knows it was not submitted.
		return ctx.Err()
	}
}

// submit appends the session's updates one at a time, so they enter the
// total order in the order the component submitted them.
func (s *session) submit() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case u := <-s.submits:
			ctx, cancel := context.WithTimeout(s.ctx, s.c.cfg.AppendTimeout)
			_, err := s.c.log.Append(ctx, u)
			cancel()
			if err != nil {
				if s.ctx.Err() == nil {
					s.end(fmt.Errorf("%s: class %s: update not accepted: %w: %w", Name, s.c.env.Class, protocols.ErrDisconnected, err))
				}
				return
			}
		}
	}
}

// Sync is a linearizable read: the log's end as of now, once delivered.
func (s *session) Sync(ctx context.Context) (uint64, error) {
	seq, err := s.c.log.ReadIndex(ctx)
	if err != nil {
		return 0, err
	}
	for {
		s.mu.Lock()
		err := s.Err()
		if err == nil && s.moved == nil {
			s.moved = make(chan struct{})
		}
		moved := s.moved
		s.waiting.Store(true)
		d := s.delivered.Load()
		s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if d >= seq {
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
