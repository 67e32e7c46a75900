package crdt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/rime-dev/rime/crdt/vv"
)

// Type is a convergent type of the CUE surface (`type` of a data class).
type Type string

// The convergent types. "state-machine" is not one: its updates do not
// commute and need a total order (a Log from consensus), not a CRDT.
const (
	TypeLog      Type = "log"
	TypeRegister Type = "register"
	TypeMap      Type = "map"
	TypeSet      Type = "set"
	TypeCounter  Type = "counter"
	TypeText     Type = "text"
)

// Types lists the convergent types, in the order of the CUE surface.
var Types = []Type{TypeLog, TypeRegister, TypeMap, TypeSet, TypeCounter, TypeText}

// Stamp is who performs a local operation and when. The state numbers the
// operation's dot itself (the replica's next seq), so the caller passes
// only its identity and a clock reading.
type Stamp struct {
	// Replica is the local replica's ID. It must be unique among the
	// replicas of a class and must keep its state across restarts: a
	// replica that forgets its dots would number new events with seqs
	// already used.
	Replica string
	// Time is the caller's clock in any unit that only grows (Unix
	// milliseconds are plenty). Apply raises it above every timestamp the
	// state has seen, which makes it a hybrid logical clock: an operation
	// always orders after everything its replica had seen, even when the
	// wall clock is behind.
	Time uint64
}

// State is a replica of one convergent type. Deltas are States too (a
// delta-state CRDT): a delta is a small state that, merged into a replica,
// has the effect of the operations it carries.
//
// A replication layer uses it like this:
//
//  1. Apply a local operation; it changes the state and returns the delta
//     to send to the other replicas.
//  2. Merge a delta (or a whole state) received from a peer. Merge is
//     commutative, associative and idempotent, so deltas may arrive
//     duplicated, reordered or not at all: anti-entropy fills the gaps.
//  3. For anti-entropy, exchange Contexts: DeltaSince(peerContext) is
//     exactly what the peer lacks, and it grows with what the peer missed,
//     not with the history.
//  4. Persist and ship states with MarshalBinary and Decode.
//  5. Once every replica is known to have seen some events (the meet of
//     their contexts' VVs), Compact drops the removal records they needed.
//
// A State is not safe for concurrent use.
type State interface {
	// Type is the state's convergent type.
	Type() Type
	// Context is the set of events whose effects the state holds (its
	// causal context). It belongs to the state: do not modify it.
	Context() *vv.Dots
	// Apply performs op as the local replica and returns its delta. An op
	// of another type or out of range is refused with an error wrapping
	// ErrOp, and the state is unchanged.
	Apply(at Stamp, op Op) (delta State, err error)
	// Merge joins other (a delta or a full state of the same type) into
	// the state.
	Merge(other State) error
	// DeltaSince is what a replica whose context is peer lacks: merged
	// there, it gives the same state as merging this whole state.
	DeltaSince(peer *vv.Dots) State
	// Compact forgets removal records of events every replica has seen:
	// stable must be covered by every replica's context (the meet of
	// their Context().VV()). A replica that merges a delta made before
	// its own context reached stable still converges; a replica that
	// was not counted in stable may not.
	Compact(stable vv.VV)
	// Clone is a deep copy.
	Clone() State
	// MarshalBinary is the state's versioned binary encoding. Equal
	// states have equal encodings.
	MarshalBinary() ([]byte, error)
}

// Errors.
var (
	// ErrType: states or operations of different types were mixed.
	ErrType = errors.New("crdt: type mismatch")
	// ErrOp: an operation that cannot be applied (wrong type, position
	// out of range).
	ErrOp = errors.New("crdt: invalid operation")
	// ErrEncoding: bytes that are not a valid encoding.
	ErrEncoding = errors.New("crdt: invalid encoding")
)

// New is an empty state of type t.
func New(t Type) (State, error) {
	switch t {
	case TypeLog:
		return NewLog(), nil
	case TypeRegister:
		return NewRegister(), nil
	case TypeMap:
		return NewMap(), nil
	case TypeSet:
		return NewSet(), nil
	case TypeCounter:
		return NewCounter(), nil
	case TypeText:
		return NewText(), nil
	}
	return nil, fmt.Errorf("%w: %q is not a convergent type", ErrType, t)
}

// Equal reports whether a and b are the same state (same type, same
// context, same contents, same pending removal records).
func Equal(a, b State) bool {
	ea, err1 := a.MarshalBinary()
	eb, err2 := b.MarshalBinary()
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}

// checkStamp refuses a stamp without a replica, or one whose replica has
// no seqs left for n more events (only a hostile peer's context can
// bring a replica there).
func checkStamp(ctx *vv.Dots, at Stamp, n int) error {
	if at.Replica == "" {
		return fmt.Errorf("%w: no replica in the stamp", ErrOp)
	}
	if ctx.Max(at.Replica)+uint64(n) > vv.MaxSeq {
		return fmt.Errorf("%w: replica %q has no seqs left", ErrOp, at.Replica)
	}
	return nil
}

// nextDot is the dot of replica r's next event in ctx.
func nextDot(ctx *vv.Dots, r string) vv.Dot { return vv.Dot{Replica: r, Seq: ctx.Max(r) + 1} }

// tick is the hybrid clock: a timestamp after both the caller's clock and
// everything seen.
func tick(clock *uint64, now uint64) uint64 {
	t := max(now, *clock+1)
	*clock = t
	return t
}

func mismatch(want Type, got State) error {
	return fmt.Errorf("%w: merging a %s into a %s", ErrType, got.Type(), want)
}

func badOp(t Type, op Op) error {
	return fmt.Errorf("%w: %T on a %s", ErrOp, op, t)
}

// newer orders (ts, dot) pairs: the last-writer-wins order, ties broken by
// replica then seq so that every replica picks the same winner.
func newer(ts uint64, d vv.Dot, ots uint64, od vv.Dot) bool {
	if ts != ots {
		return ts > ots
	}
	return d.Compare(od) > 0
}
