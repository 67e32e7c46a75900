package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/rime-dev/rime/protocols"
)

// The history of a run: every client operation with its call and return
// times, checked by porcupine against a sequential log with linearizable
// reads, plus a direct check that every session saw the same update at
// every Seq, with no gaps.

type opInput struct {
	read   bool
	update string
}

// logModel: the state is the whole log, one update per line. A submit
// appends (its output is irrelevant); a read returns the log up to the
// Seq that Sync returned, which must be the whole log at its
// linearization point.
var logModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(opInput)
		if in.read {
			return output.(string) == state.(string), state
		}
		return true, state.(string) + in.update + "\n"
	},
	DescribeOperation: func(input, output any) string {
		in := input.(opInput)
		if in.read {
			return fmt.Sprintf("read -> %d updates", strings.Count(output.(string), "\n"))
		}
		return "submit " + in.update
	},
}

type history struct {
	t     *testing.T
	began time.Time

	mu         sync.Mutex
	ops        []porcupine.Operation
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

func (h *history) add(op porcupine.Operation) {
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
	// A submit whose outcome the client never learned either took effect
	// (some session saw it: it was committed by then, so that is when it
	// returned at the latest) or was never seen by anyone (equivalent to
	// never having happened, and left out so the checker need not place
	// it anywhere).
	var ops []porcupine.Operation
	for _, op := range h.ops {
		if in := op.Input.(opInput); !in.read && op.Return == math.MaxInt64 {
			seen, ok := h.firstSeen[in.update]
			if !ok {
				continue
			}
			op.Return = max(seen, op.Call+1)
		}
		ops = append(ops, op)
	}
	// Every read must return a prefix of the one sequence all sessions
	// saw; checked directly, it names the culprit if it fails.
	for _, op := range ops {
		if in := op.Input.(opInput); in.read {
			lines := strings.Split(strings.TrimSuffix(op.Output.(string), "\n"), "\n")
			if op.Output.(string) == "" {
				lines = nil
			}
			for i, l := range lines {
				if want := h.bySeq[uint64(i+1)]; want != l {
					h.t.Fatalf("client %d read %q at %d, the sequence has %q", op.ClientId, l, i+1, want)
				}
			}
		}
	}
	start := time.Now()
	var writes []porcupine.Operation
	for _, op := range ops {
		if !op.Input.(opInput).read {
			writes = append(writes, op)
		}
	}
	// No stale read: a write acknowledged before a read began is in what
	// the read returned.
	for _, r := range ops {
		if !r.Input.(opInput).read {
			continue
		}
		got := map[string]bool{}
		for _, l := range strings.Split(r.Output.(string), "\n") {
			got[l] = true
		}
		for _, w := range writes {
			if u := w.Input.(opInput).update; w.Return < r.Call && !got[u] {
				h.t.Fatalf("stale read: client %d's read (called at %v) misses %q, acknowledged at %v", r.ClientId, time.Duration(r.Call), u, time.Duration(w.Return))
			}
		}
	}
	// porcupine over the writes: the total order respects real time.
	// (The full history with reads times out in porcupine's search -- an
	// open problem in how reads are modelled, see the note on issue 3 --
	// so reads are checked directly above instead.)
	res := porcupine.CheckOperationsTimeout(logModel, writes, 30*time.Second)
	h.t.Logf("porcupine: %v in %v", res, time.Since(start))
	if res != porcupine.Ok {
		h.t.Fatalf("history of %d operations is not linearizable (%v)", len(h.ops), res)
	}
	h.t.Logf("history: %d operations, %d acknowledged updates, %d refused sessions; writes linearizable, no stale or divergent read", len(h.ops), len(h.acked), h.refused)
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
		h.add(porcupine.Operation{ClientId: id, Input: opInput{update: u}, Call: call, Return: h.now()})
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
	h.add(porcupine.Operation{ClientId: id, Input: opInput{update: u}, Call: call, Return: math.MaxInt64})
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
			out := strings.Join(r.lines[:seq], "\n")
			if seq > 0 {
				out += "\n"
			}
			r.mu.Unlock()
			h.add(porcupine.Operation{ClientId: id, Input: opInput{read: true}, Output: out, Call: call, Return: h.now()})
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
