package crdt

import (
	"maps"
	"slices"

	"github.com/rime-dev/rime/crdt/vv"
)

// removals are the removal records of a Map, Set or Text: for each
// removal (a delete, or a write that replaces earlier writes), its own dot
// and the dots it removed.
//
// A record is what lets a peer that has seen a removed event learn of its
// removal from a delta since its context (the removal's dot is what it
// lacks). Two rules keep this exact:
//
//   - a state adds to its context only events whose records it has
//     applied: the target of a removal that has not been seen yet is
//     "doomed" (dropped on arrival) but stays out of the context until
//     the event itself, or a context that includes it, arrives with its
//     own record;
//   - records are compacted only when every replica has seen both the
//     removal and everything it removed (stable, the meet of every
//     replica's context), and the compaction point is part of the state:
//     merges join it and never bring back a record it covers.
type removals struct {
	recs   map[vv.Dot][]vv.Dot
	stable vv.VV
}

func newRemovals() removals { return removals{recs: map[vv.Dot][]vv.Dot{}, stable: vv.VV{}} }

// obsolete reports whether every replica has seen op and its targets.
func (r *removals) obsolete(op vv.Dot, targets []vv.Dot) bool {
	if !r.stable.Covers(op) {
		return false
	}
	for _, x := range targets {
		if !r.stable.Covers(x) {
			return false
		}
	}
	return true
}

// learn stores a record unless it is held or compacted, and reports
// whether it was new.
func (r *removals) learn(op vv.Dot, targets []vv.Dot) bool {
	if _, ok := r.recs[op]; ok || r.obsolete(op, targets) {
		return false
	}
	r.recs[op] = targets // never modified, so it may be shared
	return true
}

// join raises the compaction point to include stable and reports whether
// it rose.
func (r *removals) join(stable vv.VV) bool {
	raised := false
	for rep, n := range stable {
		if n > r.stable[rep] {
			r.stable[rep] = n
			raised = true
		}
	}
	return raised
}

// compact raises the compaction point to include stable and drops the
// records it covers.
func (r *removals) compact(stable vv.VV) {
	r.join(stable)
	for op, ks := range r.recs {
		if r.obsolete(op, ks) {
			delete(r.recs, op)
		}
	}
}

// since is the records of removals peer has not seen.
func (r *removals) since(peer *vv.Dots) removals {
	out := removals{recs: map[vv.Dot][]vv.Dot{}, stable: r.stable.Clone()}
	for op, ks := range r.recs {
		if !peer.Contains(op) {
			out.recs[op] = ks
		}
	}
	return out
}

func (r *removals) clone() removals {
	return removals{recs: maps.Clone(r.recs), stable: r.stable.Clone()}
}

// sorted is the records' dots in order, for a deterministic walk.
func (r *removals) sorted() []vv.Dot { return slices.SortedFunc(maps.Keys(r.recs), vv.Dot.Compare) }

// encode writes the records, then the compaction point.
func (r *removals) encode(e *encoder) {
	e.kills(r.recs)
	reps := r.stable.Replicas()
	e.uvarint(uint64(len(reps)))
	for _, rep := range reps {
		e.replica(rep)
		e.uvarint(r.stable[rep])
	}
}

func decodeRemovals(d *decoder, ctx *vv.Dots) removals {
	r := newRemovals()
	r.recs = d.kills(ctx)
	n := d.Count(2)
	for i := 0; i < n && d.Err() == nil; i++ {
		rep := d.replica()
		s := d.seq()
		if _, dup := r.stable[rep]; dup && d.Err() == nil {
			d.Failf("%w: replica %q twice in the compaction point", ErrEncoding, rep)
		}
		r.stable[rep] = s
	}
	for op, ks := range r.recs {
		if d.Err() == nil && r.obsolete(op, ks) {
			d.Failf("%w: removal %v is compacted but present", ErrEncoding, op)
		}
	}
	return r
}
