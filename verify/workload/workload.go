// Package workload drives a class's channels the way applications do and
// records what they saw as a check.History: clients connect to a node's
// channel (reconnecting when a session ends), submit unique updates and
// make linearizable reads (Sync, then the stream up to the Seq it
// returned), each with its call and return times. Classes whose channel
// is convergent (available classes over a CRDT replica) have their own
// clients, ConvergentClient: see convergent.go.
//
// Every client keeps the application state the channel contract asks
// for (the log it applied, answered as checkpoints), and the recorder
// checks the stream contract as events arrive: contiguous Seqs, one
// update per Seq across every session.
package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/verify/check"
)

// Recorder collects one run's history. Its clock starts at NewRecorder.
type Recorder struct {
	began time.Time
	class string

	mu         sync.Mutex
	ops        []check.Op
	bySeq      map[uint64]string
	byProxy    map[string]string // "proxy#seq" -> the delta's hash (convergent)
	violations []string
	acked      []string
	refused    int
	acks       chan struct{}
}

// NewRecorder starts a history of class.
func NewRecorder(class string) *Recorder {
	return &Recorder{began: time.Now(), class: class, bySeq: map[uint64]string{}, acks: make(chan struct{})}
}

// Now is the history's clock: nanoseconds since NewRecorder.
func (r *Recorder) Now() int64 { return int64(time.Since(r.began)) }

// Began is when the history's clock started.
func (r *Recorder) Began() time.Time { return r.began }

func (r *Recorder) add(op check.Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *Recorder) violation(format string, args ...any) {
	r.mu.Lock()
	r.violations = append(r.violations, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// observe records that a session saw update at seq.
func (r *Recorder) observe(who string, seq uint64, update string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.bySeq[seq]; ok && prev != update {
		r.violations = append(r.violations, fmt.Sprintf("%s saw %q at %d, another session saw %q", who, update, seq, prev))
		return
	}
	r.bySeq[seq] = update
}

// Ops is a copy of the operations so far.
func (r *Recorder) Ops() []check.Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]check.Op(nil), r.ops...)
}

// StreamViolations are breaches of the stream contract seen as events
// arrived (gaps, two updates at one Seq, bad checkpoints).
func (r *Recorder) StreamViolations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.violations...)
}

// Acked lists the acknowledged updates, in acknowledgement order.
func (r *Recorder) Acked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.acked...)
}

// AckCount returns how many updates are acknowledged and a channel closed
// at the next acknowledgement.
func (r *Recorder) AckCount() (int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked), r.acks
}

// Refused counts sessions ended because an update was not accepted.
func (r *Recorder) Refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// Config shapes the clients.
type Config struct {
	// Reads is the share of operations that are linearizable reads.
	Reads float64
	// OpTimeout bounds how long a client waits for a submit to arrive or
	// a read to complete before it gives up (the op's outcome is then
	// unknown).
	OpTimeout time.Duration
	// Backoff is how long a client waits before reconnecting.
	Backoff time.Duration
}

// DefaultConfig: 30% reads, 5 s per operation, 50 ms between attempts
// to reconnect.
func DefaultConfig() Config {
	return Config{Reads: 0.3, OpTimeout: 5 * time.Second, Backoff: 50 * time.Millisecond}
}

// Client is one application component. It runs until ctx ends, on
// whichever channel channel() returns (nil while its node is down), and
// names its node with node().
func (r *Recorder) Client(ctx context.Context, id int, node func() string, channel func() protocols.Channel, cfg Config) {
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	k := 0
	for ctx.Err() == nil {
		ch := channel()
		if ch == nil {
			Pause(ctx, cfg.Backoff)
			continue
		}
		s, err := ch.Connect(ctx)
		if err != nil {
			Pause(ctx, cfg.Backoff)
			continue
		}
		rep := newReplica()
		done := make(chan struct{})
		go func() { defer close(done); r.consume(fmt.Sprintf("client %d", id), s, rep) }()
		who := node()
		for ctx.Err() == nil && s.Err() == nil {
			k++
			if rng.Float64() >= cfg.Reads {
				if !r.submit(ctx, id, who, s, rep, fmt.Sprintf("c%d-%d", id, k), cfg.OpTimeout) {
					break
				}
			} else if !r.read(ctx, id, who, s, rep, cfg.OpTimeout) {
				break
			}
		}
		if err := s.Err(); err != nil && !errors.Is(err, protocols.ErrDisconnected) {
			r.mu.Lock()
			r.refused++
			r.mu.Unlock()
		}
		s.Disconnect()
		<-done
	}
}

// Pause waits d or until ctx ends: a client's back-off before it tries
// again, and a run's settling time.
func Pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// replica is a client's application state: the log it has applied.
type replica struct {
	mu    sync.Mutex
	lines []string
	seq   uint64
	moved chan struct{}
	own   map[string]chan struct{}
	ended chan struct{}
}

func newReplica() *replica {
	return &replica{moved: make(chan struct{}), own: map[string]chan struct{}{}, ended: make(chan struct{})}
}

func (r *Recorder) consume(who string, s protocols.Session, rep *replica) {
	defer close(rep.ended)
	for ev := range s.Events() {
		rep.mu.Lock()
		switch ev.Kind {
		case protocols.Initialize:
			var lines []string
			if len(ev.Data) > 0 {
				if err := json.Unmarshal(ev.Data, &lines); err != nil {
					r.violation("%s: checkpoint at %d does not decode: %v", who, ev.Seq, err)
				}
			}
			if uint64(len(lines)) != ev.Seq {
				r.violation("%s: checkpoint at %d holds %d updates", who, ev.Seq, len(lines))
			}
			for i, l := range lines {
				r.observe(who+" (checkpoint)", uint64(i+1), l)
			}
			rep.lines, rep.seq = lines, ev.Seq
		case protocols.Update:
			if ev.Seq != rep.seq+1 {
				r.violation("%s: update %d after %d: the stream is not contiguous", who, ev.Seq, rep.seq)
			}
			u := string(ev.Data)
			r.observe(who, ev.Seq, u)
			rep.lines = append(rep.lines, u)
			rep.seq = ev.Seq
			if c, ok := rep.own[u]; ok {
				close(c)
				delete(rep.own, u)
			}
		case protocols.RequestCheckpoint:
			if ev.Seq != rep.seq {
				r.violation("%s: checkpoint requested at %d, the session is at %d", who, ev.Seq, rep.seq)
			}
			b, _ := json.Marshal(rep.lines)
			s.Checkpoint(rep.seq, b)
		}
		close(rep.moved)
		rep.moved = make(chan struct{})
		rep.mu.Unlock()
	}
}

// submit records a submit that completes when the update arrives in the
// submitter's own stream; if the session ends or the wait times out
// first, its outcome is unknown.
func (r *Recorder) submit(ctx context.Context, id int, node string, s protocols.Session, rep *replica, u string, timeout time.Duration) bool {
	arrived := make(chan struct{})
	rep.mu.Lock()
	rep.own[u] = arrived
	rep.mu.Unlock()
	call := r.Now()
	if err := s.Submit(ctx, []byte(u)); err != nil {
		return false // not submitted at all
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-arrived:
		r.add(check.Op{Client: id, Node: node, Kind: check.Append, Key: r.class, Value: u, Call: call, Return: r.Now(), Outcome: check.OK})
		r.mu.Lock()
		r.acked = append(r.acked, u)
		close(r.acks)
		r.acks = make(chan struct{})
		r.mu.Unlock()
		return true
	case <-ctx.Done():
	case <-t.C:
	case <-rep.ended:
	}
	r.add(check.Op{Client: id, Node: node, Kind: check.Append, Key: r.class, Value: u, Call: call, Return: r.Now(), Outcome: check.Info})
	return false
}

// read records a linearizable read: Sync, then the replica's log up to
// the Seq Sync returned. A read that fails had no effect and is recorded
// as failed.
func (r *Recorder) read(ctx context.Context, id int, node string, s protocols.Session, rep *replica, timeout time.Duration) bool {
	call := r.Now()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seq, err := s.Sync(sctx)
	if err != nil {
		r.add(check.Op{Client: id, Node: node, Kind: check.SyncRead, Key: r.class, Call: call, Return: r.Now(), Outcome: check.Fail})
		return s.Err() == nil
	}
	for {
		rep.mu.Lock()
		if rep.seq >= seq {
			vals := append([]string{}, rep.lines[:seq]...)
			rep.mu.Unlock()
			r.add(check.Op{Client: id, Node: node, Kind: check.SyncRead, Key: r.class, Values: vals, Call: call, Return: r.Now(), Outcome: check.OK})
			return true
		}
		moved := rep.moved
		rep.mu.Unlock()
		select {
		case <-moved:
		case <-sctx.Done():
			r.add(check.Op{Client: id, Node: node, Kind: check.SyncRead, Key: r.class, Call: call, Return: r.Now(), Outcome: check.Fail})
			return false
		}
	}
}

// SessionLog opens a session on ch, syncs, and returns the log as that
// session sees it (checkpoint then tail), checking the stream as it goes.
// A session can end before it is done (a compaction overtook it, or the
// node is still catching up after a fault and its read timed out); then
// SessionLog tries again, as an application would, until ctx ends.
func (r *Recorder) SessionLog(ctx context.Context, who string, ch protocols.Channel) ([]string, error) {
	for {
		out, err := r.sessionLog(ctx, who, ch)
		if err == nil || ctx.Err() != nil {
			return out, err
		}
		Pause(ctx, 100*time.Millisecond)
	}
}

func (r *Recorder) sessionLog(ctx context.Context, who string, ch protocols.Channel) ([]string, error) {
	s, err := ch.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Disconnect()
	rep := newReplica()
	go r.consume(who, s, rep)
	seq, err := s.Sync(ctx)
	if err != nil {
		return nil, err
	}
	for {
		rep.mu.Lock()
		if rep.seq >= seq {
			out := append([]string(nil), rep.lines...)
			rep.mu.Unlock()
			return out, nil
		}
		moved := rep.moved
		rep.mu.Unlock()
		select {
		case <-moved:
		case <-rep.ended:
			if err := s.Err(); err != nil {
				return nil, err
			}
			return nil, protocols.ErrDisconnected
		case <-ctx.Done():
			return nil, fmt.Errorf("the session never delivered up to %d: %w", seq, ctx.Err())
		}
	}
}
