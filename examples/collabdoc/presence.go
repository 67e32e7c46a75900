package collabdoc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/protocols"
)

// The available classes of the example: each editor shows where it is in
// the document (cursors: a map from editor to line, eventual) and leaves
// a comment now and then (comments: a log, causal). Both stay writable on
// every side of a partition; the replicas converge once it heals.
const (
	CursorsClass  = "cursors"
	CommentsClass = "comments"
)

// Replica is one component's view of a convergent class: the CRDT state
// its session was initialized with, merged with every delta since.
type Replica struct {
	ch protocols.Channel

	mu      sync.Mutex
	state   crdt.State
	updates int
	s       protocols.Session
	changed chan struct{}
}

// NewReplica returns a replica of the class served by ch.
func NewReplica(ch protocols.Channel) *Replica {
	return &Replica{ch: ch, changed: make(chan struct{})}
}

// Run keeps a session open (reconnecting after a disconnection) and
// merges its events until ctx ends.
func (r *Replica) Run(ctx context.Context) error {
	return reconnecting(ctx, r.session, func() {})
}

func (r *Replica) session(ctx context.Context) error {
	s, err := r.ch.Connect(ctx)
	if err != nil {
		return err
	}
	defer s.Disconnect()
	r.mu.Lock()
	r.s = s
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.s = nil
		r.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-s.Events():
			if !ok {
				return s.Err()
			}
			if err := r.apply(ev); err != nil {
				return err
			}
		}
	}
}

func (r *Replica) apply(ev protocols.Event) error {
	if ev.Kind != protocols.Initialize && ev.Kind != protocols.Update {
		return nil
	}
	st, err := crdt.Decode(ev.Data)
	if err != nil {
		return fmt.Errorf("collabdoc: event %v %d: %w", ev.Kind, ev.Seq, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Kind == protocols.Initialize || r.state == nil {
		r.state = st
	} else if err := r.state.Merge(st); err != nil {
		return fmt.Errorf("collabdoc: merge update %d: %w", ev.Seq, err)
	}
	r.updates++
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// Submit applies op through the session, if one is open; offline, the
// channel queues it and it flows out on reconnection.
func (r *Replica) Submit(ctx context.Context, op crdt.Op) error {
	b, err := crdt.MarshalOp(op)
	if err != nil {
		return err
	}
	r.mu.Lock()
	s := r.s
	r.mu.Unlock()
	if s == nil {
		return errors.New("collabdoc: no session yet")
	}
	return s.Submit(ctx, b)
}

// Encoded is the replica's state in the crdt encoding (nil before the
// session's Initialize): equal encodings mean equal states.
func (r *Replica) Encoded() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		return nil
	}
	b, _ := r.state.MarshalBinary()
	return b
}

// Changed returns a channel closed at the replica's next change.
func (r *Replica) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Cursors is the cursors replica's map: editor name to line.
func (r *Replica) Cursors() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	if m, ok := r.state.(*crdt.Map); ok {
		for _, k := range m.Keys() {
			v, _ := m.Get(k)
			out[k], _ = strconv.Atoi(string(v))
		}
	}
	return out
}

// Comments is how many comments the comments replica holds.
func (r *Replica) Comments() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.state.(*crdt.Log); ok {
		return l.Len()
	}
	return 0
}

// Presence is one editor's cursor and comments: it moves its cursor to
// the document's end at each tick and comments every fifth.
type Presence struct {
	Name              string
	Cursors, Comments *Replica
	Editor            *Editor
}

// Run runs the two replicas and writes until ctx ends.
func (p *Presence) Run(ctx context.Context, every time.Duration) {
	var wg sync.WaitGroup
	for _, r := range []*Replica{p.Cursors, p.Comments} {
		if r != nil {
			wg.Go(func() { r.Run(ctx) })
		}
	}
	defer wg.Wait()
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.Cursors != nil {
			line := 0
			if p.Editor != nil {
				_, line, _ = p.Editor.State()
			}
			// Not yet connected or reconnecting: the next tick tries again.
			_ = p.Cursors.Submit(ctx, crdt.MapPut{Key: p.Name, Value: []byte(strconv.Itoa(line))})
		}
		if p.Comments != nil && n%5 == 0 {
			_ = p.Comments.Submit(ctx, crdt.LogAppend{Data: fmt.Appendf(nil, "%s: comment %d", p.Name, n/5)})
		}
	}
}
