package workload

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/verify/check"
)

// The convergent workload drives an available class's convergent
// channel (protocols/convergentchannel) as applications do:
//
//  1. a client connects to its node's channel and keeps the class's
//     state as the session gives it: the Initialize checkpoint decoded
//     (crdt.Decode), then every Update's delta merged in;
//  2. it submits operations of the class's type, each with a unique
//     value (register writes, map puts, log appends, set adds and
//     removes of members it has seen, counter increments of one, text
//     inserts of a unique token at a token boundary); Submit returning
//     is the node accepting the update (check.Op.Accepted), and a Sync
//     that covers it, once the client's state has caught up with it, is
//     its acknowledgement (Return, outcome ok): the update is durable on
//     as many nodes as the class asks. An update never acknowledged
//     before the session ends has an unknown outcome;
//  3. reads are local: the client's state of one key (check.Read), as an
//     available class serves them;
//  4. for a log, each delta's entries are recorded as the session's
//     deliveries, in order, so the causal checker can hold every
//     session's delivery order to causality;
//  5. the stream contract is checked as events arrive: one Initialize,
//     then contiguous Seqs, every delta decoding to the class's type, and
//     one delta per Seq on each channel proxy.

// ConvergentConfig shapes the clients of a convergent class.
type ConvergentConfig struct {
	// Type is the class's convergent type.
	Type crdt.Type
	// Reads is the share of operations that are (local) reads.
	Reads float64
	// Removes is the share of a set's updates that remove a member.
	Removes float64
	// Keys is how many keys a map's clients write.
	Keys int
	// Think is the pause between a client's operations: an available
	// class's client does not wait for acknowledgements, so without one
	// it would submit as fast as the disk takes updates.
	Think time.Duration
	// Backoff is how long a client waits before reconnecting.
	Backoff time.Duration
	// Deliveries records each session's deliveries (a log's entries)
	// as check.Delivered operations.
	Deliveries bool
}

// DefaultConvergentConfig: 30% reads, 20% of a set's updates removes,
// four map keys, 15 ms between operations, deliveries recorded for a
// log.
func DefaultConvergentConfig(t crdt.Type) ConvergentConfig {
	return ConvergentConfig{Type: t, Reads: 0.3, Removes: 0.2, Keys: 4, Think: 15 * time.Millisecond,
		Backoff: 50 * time.Millisecond, Deliveries: t == crdt.TypeLog}
}

// Validate names the field out of range.
func (c ConvergentConfig) Validate() error {
	if _, err := crdt.New(c.Type); err != nil {
		return fmt.Errorf("workload: ConvergentConfig.Type: %w", err)
	}
	switch {
	case c.Reads < 0 || c.Reads >= 1:
		return fmt.Errorf("workload: ConvergentConfig.Reads is %v, want [0, 1)", c.Reads)
	case c.Removes < 0 || c.Removes >= 1:
		return fmt.Errorf("workload: ConvergentConfig.Removes is %v, want [0, 1)", c.Removes)
	case c.Keys < 1:
		return fmt.Errorf("workload: ConvergentConfig.Keys is %d, want at least 1", c.Keys)
	case c.Think < 0 || c.Backoff < 0:
		return fmt.Errorf("workload: ConvergentConfig.Think %v and Backoff %v must not be negative", c.Think, c.Backoff)
	}
	return nil
}

// Project turns a state of class into the checkers' form: for each key,
// its values in the replica's order. A log, a set (members sorted), a
// text (its tokens in text order), a register and a counter (its value
// in decimal) are one key, the class; a map is one key per map key,
// "class/key".
func Project(class string, st crdt.State) map[string][]string {
	out := map[string][]string{}
	switch s := st.(type) {
	case *crdt.Log:
		var vs []string
		for _, e := range s.Entries() {
			vs = append(vs, string(e.Data))
		}
		out[class] = vs
	case *crdt.Register:
		if v, ok := s.Get(); ok {
			out[class] = []string{string(v)}
		}
	case *crdt.Map:
		for _, k := range s.Keys() {
			if v, ok := s.Get(k); ok {
				out[class+"/"+k] = []string{string(v)}
			}
		}
	case *crdt.Set:
		out[class] = s.Elems()
	case *crdt.Counter:
		out[class] = []string{strconv.FormatInt(s.Value(), 10)}
	case *crdt.Text:
		out[class] = tokens(s.String())
	}
	return out
}

// tokens are the "<value>" tokens of a text, in order.
func tokens(text string) []string {
	var out []string
	for {
		i := strings.IndexByte(text, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(text[i:], '>')
		if j < 0 {
			return out
		}
		out = append(out, text[i+1:i+j])
		text = text[i+j+1:]
	}
}

// boundaries are the rune positions between a text's tokens.
func boundaries(text string) []int {
	out := []int{0}
	n := 0
	for _, r := range text {
		n++
		if r == '>' {
			out = append(out, n)
		}
	}
	return out
}

// convState is one session's copy of the class's state.
type convState struct {
	mu    sync.Mutex
	st    crdt.State
	seq   uint64
	init  bool
	moved chan struct{}
	ended chan struct{}
}

func newConvState(t crdt.Type) *convState {
	st, _ := crdt.New(t)
	return &convState{st: st, moved: make(chan struct{}), ended: make(chan struct{})}
}

// waitFor waits until the state holds the updates up to seq.
func (cs *convState) waitFor(ctx context.Context, seq uint64) error {
	for {
		cs.mu.Lock()
		ok, moved := cs.init && cs.seq >= seq, cs.moved
		cs.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-moved:
		case <-cs.ended:
			return protocols.ErrDisconnected
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// consumeConvergent applies a session's events to cs, checking the
// stream contract and recording deliveries as client id's on node.
func (r *Recorder) consumeConvergent(who string, id int, node, proxy string, s protocols.Session, cs *convState, cfg ConvergentConfig) {
	defer close(cs.ended)
	for ev := range s.Events() {
		var (
			delta crdt.State
			err   error
		)
		if len(ev.Data) > 0 {
			delta, err = crdt.Decode(ev.Data)
		} else if ev.Kind == protocols.Initialize {
			delta, err = crdt.New(cfg.Type) // an empty replica
		} else {
			err = errors.New("empty delta")
		}
		if err == nil && delta.Type() != cfg.Type {
			err = fmt.Errorf("a %s, the class is a %s", delta.Type(), cfg.Type)
		}
		cs.mu.Lock()
		switch ev.Kind {
		case protocols.Initialize:
			if cs.init {
				r.violation("%s: a second initialize, at %d", who, ev.Seq)
			}
			if err != nil {
				r.violation("%s: checkpoint at %d does not decode: %v", who, ev.Seq, err)
				delta, _ = crdt.New(cfg.Type)
			}
			cs.st, cs.seq, cs.init = delta, ev.Seq, true
			r.deliver(id, node, cfg, delta)
		case protocols.Update:
			if !cs.init {
				r.violation("%s: update %d before initialize", who, ev.Seq)
			} else if ev.Seq != cs.seq+1 {
				r.violation("%s: update %d after %d: the stream is not contiguous", who, ev.Seq, cs.seq)
			}
			r.observeAt(who, proxy, ev.Seq, ev.Data)
			if err != nil {
				r.violation("%s: delta %d does not decode: %v", who, ev.Seq, err)
			} else if merr := cs.st.Merge(delta); merr != nil {
				r.violation("%s: delta %d does not merge: %v", who, ev.Seq, merr)
			} else {
				r.deliver(id, node, cfg, delta)
			}
			cs.seq = ev.Seq
		case protocols.RequestCheckpoint:
			r.violation("%s: the convergent channel asked for a checkpoint at %d; it never should", who, ev.Seq)
		}
		close(cs.moved)
		cs.moved = make(chan struct{})
		cs.mu.Unlock()
	}
}

// deliver records a delta's log entries as deliveries, in order.
func (r *Recorder) deliver(id int, node string, cfg ConvergentConfig, delta crdt.State) {
	l, ok := delta.(*crdt.Log)
	if !cfg.Deliveries || !ok {
		return
	}
	now := r.Now()
	for _, e := range l.Entries() {
		r.add(check.Op{Client: id, Node: node, Kind: check.Delivered, Key: r.class, Value: string(e.Data), Call: now, Return: now, Outcome: check.OK})
	}
}

// observeAt records that proxy delivered data at seq: every session of
// one channel proxy must see the same delta at each Seq.
func (r *Recorder) observeAt(who, proxy string, seq uint64, data []byte) {
	h := fnv.New64a()
	h.Write(data)
	sum := fmt.Sprintf("%x", h.Sum64())
	key := fmt.Sprintf("%s#%d", proxy, seq)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byProxy == nil {
		r.byProxy = map[string]string{}
	}
	if prev, ok := r.byProxy[key]; ok && prev != sum {
		r.violations = append(r.violations, fmt.Sprintf("%s saw another delta at %d than an earlier session of the same proxy", who, seq))
		return
	}
	r.byProxy[key] = sum
}

// pendingUpdate is an accepted update waiting for its acknowledgement.
type pendingUpdate struct{ op check.Op }

// ConvergentClient is one application component of a convergent class.
// It runs until ctx ends, on whichever channel channel() returns (nil
// while its node is down), and names its node with node().
func (r *Recorder) ConvergentClient(ctx context.Context, id int, node func() string, channel func() protocols.Channel, cfg ConvergentConfig) {
	rng := rand.New(rand.NewPCG(uint64(id), 11))
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
		who, name := fmt.Sprintf("client %d", id), node()
		cs := newConvState(cfg.Type)
		go r.consumeConvergent(who, id, name, fmt.Sprintf("%s/%p", name, ch), s, cs, cfg)
		a := newAcker(r, s, cs)
		for ctx.Err() == nil && s.Err() == nil {
			Pause(ctx, cfg.Think)
			if ctx.Err() != nil {
				break
			}
			k++
			if !r.convergentOp(ctx, id, name, s, cs, a, cfg, rng, fmt.Sprintf("c%d-%d", id, k)) {
				break
			}
		}
		if err := s.Err(); err != nil && !errors.Is(err, protocols.ErrDisconnected) {
			r.mu.Lock()
			r.refused++
			r.mu.Unlock()
		}
		s.Disconnect()
		<-cs.ended
		a.stop()
	}
}

// convergentOp performs one operation; false means the session ended.
func (r *Recorder) convergentOp(ctx context.Context, id int, node string, s protocols.Session, cs *convState, a *acker, cfg ConvergentConfig, rng *rand.Rand, v string) bool {
	key := r.class
	cs.mu.Lock()
	init := cs.init
	// The read takes effect here, under the lock deliveries are recorded
	// under: a delivery recorded later is not in it.
	viewAt := r.Now()
	view := Project(r.class, cs.st)
	text := ""
	if t, ok := cs.st.(*crdt.Text); ok {
		text = t.String()
	}
	cs.mu.Unlock()
	if cfg.Type == crdt.TypeMap {
		key = fmt.Sprintf("%s/k%d", r.class, rng.IntN(cfg.Keys))
	}
	if rng.Float64() < cfg.Reads {
		if !init {
			return true // nothing to read yet: the checkpoint has not come
		}
		r.add(check.Op{Client: id, Node: node, Kind: check.Read, Key: key, Values: view[key], Call: viewAt, Return: viewAt, Outcome: check.OK})
		return true
	}
	var (
		op   crdt.Op
		kind = check.Append
	)
	switch cfg.Type {
	case crdt.TypeLog:
		op = crdt.LogAppend{Data: []byte(v)}
	case crdt.TypeRegister:
		op, kind = crdt.RegisterSet{Value: []byte(v)}, check.Write
	case crdt.TypeMap:
		op, kind = crdt.MapPut{Key: strings.TrimPrefix(key, r.class+"/"), Value: []byte(v)}, check.Write
	case crdt.TypeSet:
		op = crdt.SetAdd{Elem: v}
		if members := view[key]; len(members) > 0 && rng.Float64() < cfg.Removes {
			v = members[rng.IntN(len(members))]
			op, kind = crdt.SetRemove{Elem: v}, check.Remove
		}
	case crdt.TypeCounter:
		op = crdt.CounterAdd{Delta: 1}
	case crdt.TypeText:
		if !init {
			return true // positions need the state
		}
		b := boundaries(text)
		op = crdt.TextInsert{Pos: b[rng.IntN(len(b))], Text: "<" + v + ">"}
	}
	data, err := crdt.MarshalOp(op)
	if err != nil {
		r.violation("client %d: %v", id, err)
		return false
	}
	o := check.Op{Client: id, Node: node, Kind: kind, Key: key, Value: v, Call: r.Now()}
	if err := s.Submit(ctx, data); err != nil {
		// Not accepted; it may still have reached the replica's disk.
		o.Outcome, o.Return = check.Info, r.Now()
		r.add(o)
		return false
	}
	o.Accepted = r.Now()
	a.push(o)
	return true
}

// acker acknowledges a session's accepted updates: a Sync called after
// Submit returned covers them, and once the session's state has caught
// up with the Seq it returned they are acknowledged (durable on the
// class's copies, per the convergent channel's contract).
type acker struct {
	r       *Recorder
	s       protocols.Session
	cs      *convState
	mu      sync.Mutex
	pending []check.Op
	more    chan struct{} // closed when pending grows
	quit    chan struct{}
	done    chan struct{}
}

func newAcker(r *Recorder, s protocols.Session, cs *convState) *acker {
	a := &acker{r: r, s: s, cs: cs, more: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *acker) push(op check.Op) {
	a.mu.Lock()
	a.pending = append(a.pending, op)
	close(a.more)
	a.more = make(chan struct{})
	a.mu.Unlock()
}

func (a *acker) run() {
	defer close(a.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.quit:
		case <-a.cs.ended:
		}
		cancel()
	}()
	for {
		a.mu.Lock()
		n, more := len(a.pending), a.more
		a.mu.Unlock()
		if n == 0 {
			select {
			case <-more:
				continue
			case <-ctx.Done():
				return
			}
		}
		seq, err := a.s.Sync(ctx)
		if err == nil {
			err = a.cs.waitFor(ctx, seq)
		}
		if err != nil {
			return
		}
		now := a.r.Now()
		a.mu.Lock()
		acked := a.pending[:n]
		a.pending = slices.Clone(a.pending[n:])
		a.mu.Unlock()
		for _, op := range acked {
			op.Outcome, op.Return = check.OK, now
			a.r.add(op)
			a.r.ack(op.Value)
		}
	}
}

// stop ends the acker; updates still pending have unknown outcomes.
func (a *acker) stop() {
	close(a.quit)
	<-a.done
	now := a.r.Now()
	for _, op := range a.pending {
		op.Outcome, op.Return = check.Info, now
		a.r.add(op)
	}
	a.pending = nil
}

// ack counts an acknowledged update.
func (r *Recorder) ack(v string) {
	r.mu.Lock()
	r.acked = append(r.acked, v)
	close(r.acks)
	r.acks = make(chan struct{})
	r.mu.Unlock()
}

// ConvergentState opens a session on ch, syncs, and returns the class's
// state as that session holds it then (Project's form), checking the
// stream as it goes. It tries again, as an application would, until ctx
// ends.
func (r *Recorder) ConvergentState(ctx context.Context, who, node string, ch protocols.Channel, cfg ConvergentConfig) (map[string][]string, error) {
	for {
		out, err := r.convergentState(ctx, who, node, ch, cfg)
		if err == nil || ctx.Err() != nil {
			return out, err
		}
		Pause(ctx, 100*time.Millisecond)
	}
}

func (r *Recorder) convergentState(ctx context.Context, who, node string, ch protocols.Channel, cfg ConvergentConfig) (map[string][]string, error) {
	s, err := ch.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Disconnect()
	cs := newConvState(cfg.Type)
	quiet := cfg
	quiet.Deliveries = false // a final read is no client's stream
	go r.consumeConvergent(who, -1, node, fmt.Sprintf("%s/%p", node, ch), s, cs, quiet)
	seq, err := s.Sync(ctx)
	if err != nil {
		return nil, err
	}
	if err := cs.waitFor(ctx, seq); err != nil {
		if serr := s.Err(); serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("the session never delivered up to %d: %w", seq, err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return Project(r.class, cs.st), nil
}
