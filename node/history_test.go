package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/rime-dev/rime/verify/check"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/protocols"
)

// The history of a run: every client operation with its call and return
// times, in verify/check's format, checked for linearizability with its
// log model (appends and linearizable reads together), plus a direct
// check that every session saw the same update at every Seq, with no
// gaps.

type history struct {
	t     *testing.T
	began time.Time

	mu         sync.Mutex
	ops        []check.Op
	bySeq      map[uint64]string
	firstSeen  map[string]int64 // update -> when a session first saw it
	violations []string
	acked      []string
	refused    int           // sessions disconnected because an update was not accepted
	acks       chan struct{} // closed and replaced at every acknowledgement
}

func newHistory(t *testing.T) *history {
	return &history{t: t, began: time.Now(), bySeq: map[uint64]string{}, firstSeen: map[string]int64{}, acks: make(chan struct{})}
}

func (h *history) now() int64 { return int64(time.Since(h.began)) }

func (h *history) add(op check.Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *history) violation(format string, args ...any) {
	h.mu.Lock()
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

// observe records that some session saw update at seq.
func (h *history) observe(who string, seq uint64, update string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if prev, ok := h.bySeq[seq]; ok && prev != update {
		h.violations = append(h.violations, fmt.Sprintf("%s saw %q at %d, another session saw %q", who, update, seq, prev))
		return
	}
	h.bySeq[seq] = update
	if _, ok := h.firstSeen[update]; !ok {
		h.firstSeen[update] = h.now()
	}
}

// check fails the test on any violation or a non-linearizable history.
func (h *history) check() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.violations {
		h.t.Error(v)
	}
	start := time.Now()
	cfg := check.DefaultLinearizableConfig()
	cfg.Timeout = 30 * time.Second
	res, err := check.Linearizable(check.History{Ops: h.ops}, cfg)
	if err != nil {
		h.t.Fatalf("the history does not validate: %v", err)
	}
	reads := 0
	for _, op := range h.ops {
		if op.Kind == check.SyncRead {
			reads++
		}
	}
	h.t.Logf("linearizability of %d operations (%d linearizable reads): ok=%v unknown=%v in %v", len(h.ops), reads, res.OK, res.Unknown, time.Since(start))
	if !res.OK {
		for _, v := range res.Violations {
			h.t.Errorf("violation: %s (ops %v)", v.Explain, v.Ops)
		}
		h.t.Fatalf("history of %d operations is not linearizable: %s", len(h.ops), res.Note)
	}
	h.t.Logf("history: %d operations, %d acknowledged updates, %d refused sessions; linearizable, no divergent delivery", len(h.ops), len(h.acked), h.refused)
}

// acked returns how many updates are acknowledged and a channel closed
// at the next acknowledgement.
func (h *history) ackCount() (int, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.acked), h.acks
}

func (h *history) ackedUpdates() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.acked...)
}

// replica is a client's application state: the log it has applied.
type replica struct {
	mu    sync.Mutex
	lines []string
	seq   uint64
	moved chan struct{}
	own   map[string]chan struct{}
	ended chan struct{} // closed when the session's events end
}

// client runs one application component: it connects to a node's channel
// (reconnecting when a session ends), and alternates submits and
// linearizable reads, recording each in the history.
func client(ctx context.Context, h *history, id int, channel func() protocols.Channel) {
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	k := 0
	for ctx.Err() == nil {
		ch := channel()
		if ch == nil {
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		s, err := ch.Connect(ctx)
		if err != nil {
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		r := &replica{moved: make(chan struct{}), own: map[string]chan struct{}{}, ended: make(chan struct{})}
		done := make(chan struct{})
		go func() { defer close(done); consume(h, id, s, r) }()
		for ctx.Err() == nil && s.Err() == nil {
			k++
			if rng.IntN(10) < 7 {
				u := fmt.Sprintf("c%d-%d", id, k)
				if !submit(ctx, h, id, s, r, u) {
					break
				}
			} else if !read(ctx, h, id, s, r) {
				break
			}
		}
		if err := s.Err(); err != nil && strings.Contains(err.Error(), "not accepted") {
			h.mu.Lock()
			h.refused++
			h.mu.Unlock()
		}
		s.Disconnect()
		<-done
	}
}

func consume(h *history, id int, s protocols.Session, r *replica) {
	who := fmt.Sprintf("client %d", id)
	defer close(r.ended)
	for ev := range s.Events() {
		r.mu.Lock()
		switch ev.Kind {
		case protocols.Initialize:
			var lines []string
			if len(ev.Data) > 0 {
				if err := json.Unmarshal(ev.Data, &lines); err != nil {
					h.violation("%s: checkpoint at %d does not decode: %v", who, ev.Seq, err)
				}
			}
			if uint64(len(lines)) != ev.Seq {
				h.violation("%s: checkpoint at %d holds %d updates", who, ev.Seq, len(lines))
			}
			for i, l := range lines {
				h.observe(who+" (checkpoint)", uint64(i+1), l)
			}
			r.lines, r.seq = lines, ev.Seq
		case protocols.Update:
			if ev.Seq != r.seq+1 {
				h.violation("%s: update %d after %d: the stream is not contiguous", who, ev.Seq, r.seq)
			}
			u := string(ev.Data)
			h.observe(who, ev.Seq, u)
			r.lines = append(r.lines, u)
			r.seq = ev.Seq
			if c, ok := r.own[u]; ok {
				close(c)
				delete(r.own, u)
			}
		case protocols.RequestCheckpoint:
			if ev.Seq != r.seq {
				h.violation("%s: checkpoint requested at %d, the session is at %d", who, ev.Seq, r.seq)
			}
			b, _ := json.Marshal(r.lines)
			s.Checkpoint(r.seq, b)
		}
		close(r.moved)
		r.moved = make(chan struct{})
		r.mu.Unlock()
	}
}

// submit records a submit that returns when the update arrives in the
// submitter's own stream; if the session ends first, the outcome is
// unknown and the operation stays open forever, as porcupine expects.
func submit(ctx context.Context, h *history, id int, s protocols.Session, r *replica, u string) bool {
	arrived := make(chan struct{})
	r.mu.Lock()
	r.own[u] = arrived
	r.mu.Unlock()
	call := h.now()
	if err := s.Submit(ctx, []byte(u)); err != nil {
		return false // not submitted at all
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-arrived:
		h.add(check.Op{Client: id, Kind: check.Append, Key: class, Value: u, Call: call, Return: h.now(), Outcome: check.OK})
		h.mu.Lock()
		h.acked = append(h.acked, u)
		close(h.acks)
		h.acks = make(chan struct{})
		h.mu.Unlock()
		return true
	case <-ctx.Done():
	case <-t.C:
	case <-r.ended:
	}
	// The outcome is unknown: it may take effect at any later time.
	h.add(check.Op{Client: id, Kind: check.Append, Key: class, Value: u, Call: call, Return: h.now(), Outcome: check.Info})
	return false
}

// read records a linearizable read: Sync, then the replica's log up to
// the Seq Sync returned. A read that fails has no effect and is not
// recorded.
func read(ctx context.Context, h *history, id int, s protocols.Session, r *replica) bool {
	call := h.now()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	seq, err := s.Sync(sctx)
	if err != nil {
		return s.Err() == nil
	}
	for {
		r.mu.Lock()
		if r.seq >= seq {
			vals := append([]string{}, r.lines[:seq]...)
			r.mu.Unlock()
			h.add(check.Op{Client: id, Kind: check.SyncRead, Key: class, Values: vals, Call: call, Return: h.now(), Outcome: check.OK})
			return true
		}
		moved := r.moved
		r.mu.Unlock()
		select {
		case <-moved:
		case <-sctx.Done():
			return false
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// workload runs clients on the given nodes until ctx ends.
func (c *cluster) workload(ctx context.Context, h *history, clientsPerNode int, nodes ...int) *sync.WaitGroup {
	var wg sync.WaitGroup
	id := 0
	for _, i := range nodes {
		for range clientsPerNode {
			id++
			cid := id + 100*i
			wg.Add(1)
			go func() {
				defer wg.Done()
				client(ctx, h, cid, func() protocols.Channel {
					if n := c.node(i); n != nil {
						ch, _ := n.Channel(class)
						return ch
					}
					return nil
				})
			}()
		}
	}
	return &wg
}
