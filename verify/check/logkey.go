package check

import (
	"fmt"
	"slices"
	"sort"
)

// logKey is one key's operations prepared for the log checkers
// (linearizable and sequential).
//
// Every read of a log returns a prefix of the one total order of appends,
// so the longest read, ref, fixes the first len(ref) positions of that
// order: an append whose value ref holds can only be at its position in
// ref, and an append no read saw only after all of them. That turns the
// search for an order into a check of positions, which is what keeps the
// checkers fast: the model state is a count, not the log.
type logKey struct {
	key     string
	appends []Op           // appends that took effect: ok, or info and seen by a read
	reads   []Op           // ok reads (of the kinds asked for)
	ref     []string       // the longest read
	pos     map[string]int // value -> its position in ref
	// prefix[i] reports whether reads[i] is a prefix of ref.
	prefix []bool
}

// updatesByValue indexes every update of the history by its value, so a
// value read names its writer whatever that writer's key or outcome.
func updatesByValue(ops []Op) map[string]Op {
	m := map[string]Op{}
	for _, op := range ops {
		if op.isUpdate() {
			m[op.Value] = op
		}
	}
	return m
}

// byKey groups the operations of the given kinds by key, keeping history
// order, and returns the keys sorted so output is deterministic.
func byKey(ops []Op, keep func(Op) bool) ([]string, map[string][]Op) {
	m := map[string][]Op{}
	for _, op := range ops {
		if keep(op) {
			m[op.Key] = append(m[op.Key], op)
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, m
}

// prepareLog builds a logKey from one key's operations and collects the
// violations that need no order at all: a read that repeats a value,
// shows a value no append of this key wrote (or one whose append failed),
// or is not a prefix of the longest read. views are further states of
// the log to hold to the same order (delivery streams, as Delivered ops
// carrying the stream in Values).
func prepareLog(key string, ops []Op, writers map[string]Op, readKinds func(Op) bool, views []Op, c *collector) *logKey {
	lk := &logKey{key: key, pos: map[string]int{}}
	seen := map[string]bool{}
	for _, op := range ops {
		if op.isRead() && op.Outcome == OK && readKinds(op) {
			lk.reads = append(lk.reads, op)
		}
	}
	lk.reads = append(lk.reads, views...)
	for _, op := range lk.reads {
		for _, v := range op.Values {
			seen[v] = true
		}
		if len(op.Values) > len(lk.ref) {
			lk.ref = op.Values
		}
	}
	for _, op := range ops {
		if op.isUpdate() && (op.Outcome == OK || op.Outcome == Info && seen[op.Value]) {
			lk.appends = append(lk.appends, op)
		}
	}
	for i, v := range lk.ref {
		if _, dup := lk.pos[v]; !dup {
			lk.pos[v] = i
		}
	}
	lk.prefix = make([]bool, len(lk.reads))
	var refRead Op
	for _, r := range lk.reads {
		if len(r.Values) == len(lk.ref) {
			refRead = r
			break
		}
	}
	// A read that is a prefix of ref holds nothing ref does not, so only
	// ref and the reads that are not prefixes need their values checked.
	scan := []Op{refRead}
	for i, r := range lk.reads {
		d := divergence(r.Values, lk.ref)
		lk.prefix[i] = d < 0
		if d >= 0 {
			scan = append(scan, r)
			c.addf([]Op{r, refRead}, "reads disagree on the order: at position %d one returned %q, another %q; both must be prefixes of one log",
				d, r.Values[d], lk.ref[d])
		}
	}
	reported := map[string]bool{}
	for _, r := range scan {
		dups := make(map[string]bool, len(r.Values))
		for _, v := range r.Values {
			if dups[v] {
				c.addf([]Op{r}, "read returned %q twice: each append is in the log once", v)
			}
			dups[v] = true
			if reported[v] {
				continue
			}
			w, ok := writers[v]
			switch {
			case !ok:
				reported[v] = true
				c.addf([]Op{r}, "read returned %q, which no operation wrote", v)
			case w.Key != key:
				reported[v] = true
				c.addf([]Op{r, w}, "read of key %q returned %q, which was written to key %q", key, v, w.Key)
			case w.Outcome == Fail:
				reported[v] = true
				c.addf([]Op{r, w}, "read returned %q, whose write failed (definitely not applied)", v)
			}
		}
	}
	return lk
}

// divergence returns the first position where a is not a prefix of b, or
// -1 if it is.
func divergence(a, b []string) int {
	for i, v := range a {
		if i >= len(b) || b[i] != v {
			return i
		}
	}
	return -1
}

// writerOf returns the effective append of v, if any.
func (lk *logKey) writerOf(v string) (Op, bool) {
	i := slices.IndexFunc(lk.appends, func(op Op) bool { return op.Value == v })
	if i < 0 {
		return Op{}, false
	}
	return lk.appends[i], true
}

// realTime checks, without search, whether the key's operations can be
// linearized in the order ref fixes: appends at their positions in ref,
// every read between the append of its last value and the next, appends
// no read saw at the end. The only freedom left is where in its interval
// each operation takes effect, and taking each as early as the ones
// before it allow is optimal; so an operation that must take effect
// after its own return is a violation, and the operation that pushed the
// lower bound past it is the other half of the explanation.
//
// It is exact when the structural checks of prepareLog found nothing, and
// serves to explain what porcupine decides.
func (lk *logKey) realTime(c *collector) {
	var slots = make([][]Op, len(lk.ref)+1)
	for i, r := range lk.reads {
		if lk.prefix[i] {
			slots[len(r.Values)] = append(slots[len(r.Values)], r)
		}
	}
	byValue := map[string]Op{}
	for _, a := range lk.appends {
		byValue[a.Value] = a
	}
	var (
		t  int64 = -1 << 63 // earliest point the next operation can take
		by Op               // the operation whose call set t
		// set: some operation has set t (by is meaningful).
		set bool
	)
	place := func(op Op) (int64, bool) {
		if set && t > op.end() {
			c.add(explainLate(op, by, lk.pos))
			return t, false
		}
		return max(t, op.Call), true
	}
	for m := 0; m <= len(lk.ref); m++ {
		if m > 0 {
			if a, ok := byValue[lk.ref[m-1]]; ok {
				if p, ok := place(a); ok && (!set || p > t) {
					t, by, set = p, a, true
				}
			}
		}
		var (
			slotMax int64 = t
			slotBy  Op
			moved   bool
		)
		for _, r := range slots[m] {
			if p, ok := place(r); ok && p > slotMax {
				slotMax, slotBy, moved = p, r, true
			}
		}
		if moved {
			t, by, set = slotMax, slotBy, true
		}
	}
	for _, a := range lk.appends {
		if _, observed := lk.pos[a.Value]; !observed {
			place(a)
		}
	}
}

// explainLate says why op cannot take effect after by, in the words of
// the anomaly it is.
func explainLate(op, by Op, pos map[string]int) Violation {
	ops := []Op{op, by}
	_, opSeen := pos[op.Value]
	switch {
	case op.isUpdate() && by.isRead():
		return Violation{Ops: ops, Explain: fmt.Sprintf(
			"stale read: %s %q was acknowledged at %d, but a read invoked later, at %d, does not include it",
			op.Kind, op.Value, op.Return, by.Call)}
	case op.isUpdate() && by.isUpdate() && !opSeen:
		return Violation{Ops: ops, Explain: fmt.Sprintf(
			"lost write: %s %q was acknowledged at %d and no read ever included it, while %q, invoked later at %d, is in the log",
			op.Kind, op.Value, op.Return, by.Value, by.Call)}
	case op.isUpdate() && by.isUpdate():
		return Violation{Ops: ops, Explain: fmt.Sprintf(
			"order against real time: %q comes after %q in the log, but it was acknowledged at %d, before %q was invoked at %d",
			op.Value, by.Value, op.Return, by.Value, by.Call)}
	case op.isRead() && by.isUpdate():
		return Violation{Ops: ops, Explain: fmt.Sprintf(
			"read from the future: a read returned at %d including %q, which was invoked only later, at %d",
			op.Return, by.Value, by.Call)}
	default: // two reads
		return Violation{Ops: ops, Explain: fmt.Sprintf(
			"stale read: a read returned %d values at %d, yet a read invoked later, at %d, returned only %d",
			len(op.Values), op.Return, by.Call, len(by.Values))}
	}
}
