package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/protocols"
)

// Convergent is an application component's view of a convergent class
// (a class served by the convergent channel): the CRDT state its session
// was initialized with, merged with every delta since. Run keeps the
// session open, reconnecting; Submit sends an operation; State, Encoded
// and Changed read the view.
type Convergent struct {
	ch protocols.Channel

	mu      sync.Mutex
	state   crdt.State
	updates int
	s       protocols.Session
	changed chan struct{}
}

// NewConvergent returns a replica of the class served by ch.
func NewConvergent(ch protocols.Channel) *Convergent {
	return &Convergent{ch: ch, changed: make(chan struct{})}
}

// Run keeps a session open (reconnecting after a disconnection) and
// merges its events until ctx ends.
func (r *Convergent) Run(ctx context.Context) error {
	return Reconnect(ctx, r.session, func() {})
}

func (r *Convergent) session(ctx context.Context) error {
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

func (r *Convergent) apply(ev protocols.Event) error {
	if ev.Kind != protocols.Initialize && ev.Kind != protocols.Update {
		return nil
	}
	st, err := crdt.Decode(ev.Data)
	if err != nil {
		return fmt.Errorf("client: event %v %d: %w", ev.Kind, ev.Seq, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Kind == protocols.Initialize || r.state == nil {
		r.state = st
	} else if err := r.state.Merge(st); err != nil {
		return fmt.Errorf("client: merge update %d: %w", ev.Seq, err)
	}
	r.updates++
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// Submit applies op through the session, if one is open; offline, the
// channel queues it and it flows out on reconnection.
func (r *Convergent) Submit(ctx context.Context, op crdt.Op) error {
	b, err := crdt.MarshalOp(op)
	if err != nil {
		return err
	}
	r.mu.Lock()
	s := r.s
	r.mu.Unlock()
	if s == nil {
		return errors.New("client: no session yet")
	}
	return s.Submit(ctx, b)
}

// Encoded is the replica's state in the crdt encoding (nil before the
// session's Initialize): equal encodings mean equal states.
func (r *Convergent) Encoded() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		return nil
	}
	b, _ := r.state.MarshalBinary()
	return b
}

// Changed returns a channel closed at the replica's next change.
func (r *Convergent) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// State is a copy of the view's CRDT state (nil before the session's
// Initialize): a *crdt.Map, *crdt.Log, ... as the class's type says.
func (r *Convergent) State() crdt.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		return nil
	}
	return r.state.Clone()
}

// Updates is how many events the view has merged.
func (r *Convergent) Updates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updates
}

// Reconnect runs session until ctx ends or the channel closes for good
// (protocols.ErrClosed), and again, a moment later, after each time it
// returns otherwise (a disconnection), calling dropped first. It is the
// loop every long-lived component around a session needs.
func Reconnect(ctx context.Context, session func(context.Context) error, dropped func()) error {
	for ctx.Err() == nil {
		err := session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		dropped()
		if errors.Is(err, protocols.ErrClosed) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
