package hub

import (
	"encoding/json"
	"fmt"
	"github.com/rime-dev/rime/protocols/raft"
	"io"
	"sync"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// core is the State of one replica behind a lock: dragonboat applies
// entries from its own goroutine while the request handlers read.
type core struct {
	mu      sync.RWMutex
	st      *State
	changes *raft.Changes
}

func (c *core) view(f func(*State)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	f(c.st)
}

// readQuery is what Lookup answers: a read op, with the answering
// replica's clock.
type readQuery struct {
	req *Request
	now int64
}

// readResult carries a read's error inside the result, so it is never
// confused with dragonboat's own errors.
type readResult struct {
	v   any
	err error
}

// fsm adapts core to dragonboat's regular state machine.
type fsm struct{ c *core }

// Update applies one entry. A command that does not decode is refused in
// its result, as it would be on every replica, rather than halting the
// shard.
func (f fsm) Update(e sm.Entry) (sm.Result, error) {
	var o Outcome
	cmd, err := DecodeCommand(e.Cmd)
	f.c.mu.Lock()
	if err != nil {
		f.c.st.Index = e.Index
		o = fail(err)
	} else {
		o = f.c.st.Apply(e.Index, cmd)
	}
	f.c.mu.Unlock()
	f.c.changes.Notify()
	b, _ := json.Marshal(o)
	return sm.Result{Value: e.Index, Data: b}, nil
}

// Lookup answers a readQuery.
func (f fsm) Lookup(q any) (any, error) {
	rq, ok := q.(readQuery)
	if !ok {
		return nil, fmt.Errorf("hub: lookup of %T", q)
	}
	f.c.mu.RLock()
	defer f.c.mu.RUnlock()
	v, err := f.c.st.Read(rq.req, rq.now)
	if err == nil {
		// Encode under the lock: v may share slices with the state.
		var b []byte
		b, err = json.Marshal(v)
		v = json.RawMessage(b)
	}
	return readResult{v, err}, nil
}

// SaveSnapshot writes the state's deterministic encoding.
func (f fsm) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	f.c.mu.RLock()
	b, err := f.c.st.Encode()
	f.c.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("hub: snapshot: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// RecoverFromSnapshot replaces the state with a snapshot's.
func (f fsm) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	b, err := io.ReadAll(io.LimitReader(r, maxSnapshot+1))
	if err != nil {
		return fmt.Errorf("hub: snapshot: %w", err)
	}
	st, err := DecodeState(b)
	if err != nil {
		return err
	}
	f.c.mu.Lock()
	f.c.st = st
	f.c.mu.Unlock()
	f.c.changes.Notify()
	return nil
}

// Close releases nothing: the state lives in memory.
func (f fsm) Close() error { return nil }

var _ sm.IStateMachine = fsm{}
