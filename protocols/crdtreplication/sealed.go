package crdtreplication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/crdt/vv"
	"github.com/rime-dev/rime/protocols"
)

// Sealed mode: with a protocols.Sealer below (e2e-encryption), the
// replica keeps on disk and sends on the wire only sealed material.
//
//  1. The replicated state is a crdt.Log of sealed deltas: each local
//     operation becomes one entry, whose data is the operation's delta
//     (the class's type, crdt encoding) sealed by the Sealer. Entries have
//     dots like any CRDT's events, so anti-entropy by context, the
//     broadcast, persistence and acknowledgements work unchanged, on any
//     node, keyed or not: a non-member (an honest-but-curious relay)
//     replicates, keeps and acknowledges the class without ever holding
//     its plaintext.
//  2. A member also materializes the class's real state, in memory only:
//     it opens each entry as it arrives and merges the delta. Local
//     operations are applied to that plaintext state at the source, so a
//     set's remove or a text edit carries what its author observed; the
//     delta is then sealed and appended to the log. After a restart the
//     state is rebuilt from the sealed log; nothing plaintext is written.
//  3. What a channel sees (Snapshot, Follow) is the plaintext state and
//     plaintext deltas, as in the plain mode. On a non-member, Apply,
//     Follow and Readable fail with protocols.ErrNoKey, and Snapshot is
//     empty.
//  4. Keys rotate: new entries are sealed under the newest epoch the
//     node holds. An entry of an epoch whose key this node does not
//     (yet) hold stays sealed in the log and is opened when the keys
//     change (Sealer.Changed); a member removed from the group never
//     opens the entries written under later epochs.
//
// Known gap: an entry opened late (its key arrived after it) shows in
// the stream after entries that followed it, so a causal class's stream
// is causal only among the entries that opened on arrival.

// errKeysBehind: an own entry is not opened yet (the keys have not been
// fetched since the restart), so a new local operation would reuse its
// dots; Apply waits for the keys and tries again.
var errKeysBehind = errors.New("this node's own sealed updates are not opened yet")

// sealTimeout bounds a Seal in the loop: Apply waited for a key first
// (Sealer.Ready), so this is a safety net, never a wait.
const sealTimeout = time.Second

type sealedStore struct {
	sealer protocols.Sealer
	typ    crdt.Type // the class's type
	lg     *slog.Logger
	// plain is the class's state opened so far (a member only).
	plain crdt.State
	// unopened are held entries this node has no key for yet.
	unopened map[vv.Dot][]byte
}

func newSealedStore(s protocols.Sealer, typ crdt.Type, lg *slog.Logger) *sealedStore {
	return &sealedStore{sealer: s, typ: typ, lg: lg}
}

// rebuild opens the whole log (at load) and returns the plaintext state
// to show.
func (s *sealedStore) rebuild(log *crdt.Log) crdt.State {
	s.plain, _ = crdt.New(s.typ)
	s.unopened = map[vv.Dot][]byte{}
	if !s.sealer.CanOpen() {
		return s.plain.Clone()
	}
	for _, e := range log.Entries() {
		s.open(e.Dot, e.Data)
	}
	return s.plain.Clone()
}

// open opens one entry and merges it into the plaintext state, returning
// its delta; nil if it does not open (yet).
func (s *sealedStore) open(dot vv.Dot, sealed []byte) crdt.State {
	p, err := s.sealer.Open(context.Background(), sealed)
	var d crdt.State
	if err == nil {
		d, err = crdt.Decode(p)
		if err == nil && d.Type() != s.typ {
			err = fmt.Errorf("%w: a %s delta in a %s class", crdt.ErrType, d.Type(), s.typ)
		}
		if err == nil {
			err = s.plain.Merge(d)
		}
	}
	switch {
	case err == nil:
		delete(s.unopened, dot)
		return d
	case errors.Is(err, protocols.ErrNoKey):
		s.unopened[dot] = sealed
	default:
		// Sealed for another class, or forged: it stays in the log (the
		// log replicates what it was given), and is never shown.
		delete(s.unopened, dot)
		s.lg.Warn("crdt-replication: sealed update refused", "dot", dot, "err", err)
	}
	return nil
}

// opened opens the entries of delta that the log (context held) lacks,
// before the log merges it; it returns their plaintext delta to show,
// or ok false when none opened.
func (s *sealedStore) opened(delta crdt.State, held *vv.Dots) (feedEntry, bool) {
	if !s.sealer.CanOpen() {
		return feedEntry{}, false
	}
	l, ok := delta.(*crdt.Log)
	if !ok {
		return feedEntry{}, false
	}
	var acc crdt.State
	for _, e := range l.Entries() {
		if held.Contains(e.Dot) {
			continue
		}
		acc = join(acc, s.open(e.Dot, e.Data))
	}
	return shown(acc, s.lg)
}

// retry opens the entries that waited for keys.
func (s *sealedStore) retry() (feedEntry, bool) {
	if len(s.unopened) == 0 {
		return feedEntry{}, false
	}
	var acc crdt.State
	for dot, sealed := range s.unopened {
		acc = join(acc, s.open(dot, sealed))
	}
	return shown(acc, s.lg)
}

func join(acc, d crdt.State) crdt.State {
	switch {
	case d == nil:
		return acc
	case acc == nil:
		return d.Clone()
	}
	acc.Merge(d)
	return acc
}

func shown(d crdt.State, lg *slog.Logger) (feedEntry, bool) {
	if d == nil {
		return feedEntry{}, false
	}
	data, err := d.MarshalBinary()
	if err != nil {
		lg.Error("crdt-replication: encode opened delta", "err", err)
		return feedEntry{}, false
	}
	return feedEntry{data: data, delta: d}, true
}

// apply performs op on the plaintext state, seals its delta and appends
// it to the log; it returns the log's delta and the plaintext one to
// show.
func (s *sealedStore) apply(log *crdt.Log, at crdt.Stamp, op crdt.Op) (crdt.State, feedEntry, error) {
	if !s.sealer.CanOpen() {
		return nil, feedEntry{}, protocols.ErrNoKey
	}
	for dot := range s.unopened {
		if dot.Replica == at.Replica {
			return nil, feedEntry{}, errKeysBehind
		}
	}
	pd, err := s.plain.Apply(at, op)
	if err != nil {
		return nil, feedEntry{}, fmt.Errorf("%w: %w", protocols.ErrRefused, err)
	}
	data, err := pd.MarshalBinary()
	var sealed []byte
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), sealTimeout)
		sealed, err = s.sealer.Seal(ctx, data)
		cancel()
	}
	var sd crdt.State
	if err == nil {
		sd, err = log.Apply(at, crdt.LogAppend{Data: sealed})
	}
	if err != nil {
		// The plaintext state took an operation the log did not: open
		// the log again rather than keep an event no one else will see.
		s.rebuild(log)
		return nil, feedEntry{}, err
	}
	return sd, feedEntry{data: data, delta: pd}, nil
}
