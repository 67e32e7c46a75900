package checktest

import (
	"math/rand/v2"
	"slices"

	"github.com/rime-dev/rime/verify/check"
)

// A Mutation breaks a generated history in one way no correct system
// produces. It returns false, and h unchanged, where the history offers
// no place for it (say, no read after an acknowledged write).
type Mutation func(h check.History, rng *rand.Rand) (check.History, bool)

// Clone returns a deep copy of h.
func Clone(h check.History) check.History {
	out := check.History{Lost: slices.Clone(h.Lost), Crashes: slices.Clone(h.Crashes)}
	for _, op := range h.Ops {
		op.Values, op.Deps = slices.Clone(op.Values), slices.Clone(op.Deps)
		out.Ops = append(out.Ops, op)
	}
	for _, r := range h.Final {
		st := map[string][]string{}
		for k, v := range r.State {
			st[k] = slices.Clone(v)
		}
		out.Final = append(out.Final, check.Replica{Node: r.Node, State: st})
	}
	for _, p := range h.Partitions {
		p.Sides = slices.Clone(p.Sides)
		out.Partitions = append(out.Partitions, p)
	}
	return out
}

// pick returns a random element of the indices for which ok holds, or -1.
func pick(n int, rng *rand.Rand, ok func(i int) bool) int {
	var is []int
	for i := range n {
		if ok(i) {
			is = append(is, i)
		}
	}
	if len(is) == 0 {
		return -1
	}
	return is[rng.IntN(len(is))]
}

// acked returns the index of the acknowledged update of value v.
func ackedWriter(h check.History, v string) (check.Op, bool) {
	for _, op := range h.Ops {
		if (op.Kind == check.Append || op.Kind == check.Write) && op.Value == v {
			return op, op.Outcome == check.OK
		}
	}
	return check.Op{}, false
}

// StaleRead truncates one read just before a value whose append was
// acknowledged before the read was invoked. Not linearizable.
func StaleRead(h check.History, rng *rand.Rand) (check.History, bool) {
	h = Clone(h)
	type cut struct{ op, at int }
	var cuts []cut
	for i, op := range h.Ops {
		if op.Kind != check.SyncRead && op.Kind != check.Read || op.Outcome != check.OK {
			continue
		}
		for j, v := range op.Values {
			if w, ok := ackedWriter(h, v); ok && w.Return < op.Call {
				cuts = append(cuts, cut{i, j})
			}
		}
	}
	if len(cuts) == 0 {
		return h, false
	}
	c := cuts[rng.IntN(len(cuts))]
	h.Ops[c.op].Values = h.Ops[c.op].Values[:c.at]
	return h, true
}

// LostWrite is a write acknowledged before it was committed and then
// dropped: one acknowledged append that a later read saw disappears from
// every read, delivery and final state. Not linearizable (a read invoked
// after the acknowledgement misses it) and not durable.
func LostWrite(h check.History, rng *rand.Rand) (check.History, bool) {
	h = Clone(h)
	i := pick(len(h.Ops), rng, func(i int) bool {
		w := h.Ops[i]
		if w.Kind != check.Append || w.Outcome != check.OK {
			return false
		}
		for _, r := range h.Ops {
			if r.Kind == check.SyncRead && r.Outcome == check.OK && r.Call > w.Return && slices.Contains(r.Values, w.Value) {
				return true
			}
		}
		return false
	})
	if i < 0 {
		return h, false
	}
	v := h.Ops[i].Value
	drop := func(vs []string) []string { return slices.DeleteFunc(vs, func(x string) bool { return x == v }) }
	ops := h.Ops[:0]
	for _, op := range h.Ops {
		if op.Kind == check.Delivered && op.Value == v {
			continue
		}
		op.Values = drop(op.Values)
		ops = append(ops, op)
	}
	h.Ops = ops
	for _, r := range h.Final {
		for k := range r.State {
			r.State[k] = drop(r.State[k])
		}
	}
	return h, true
}

// Reorder swaps two neighbouring values of a log in every read that
// holds both, where the second was invoked after the first was
// acknowledged: the log contradicts real time. Not linearizable.
func Reorder(h check.History, rng *rand.Rand) (check.History, bool) {
	return reorder(h, rng, func(a, b check.Op) bool { return a.Return < b.Call })
}

// ReorderOwn is Reorder for two appends of the same client, one after
// the other: the log contradicts program order. Not sequentially
// consistent.
func ReorderOwn(h check.History, rng *rand.Rand) (check.History, bool) {
	return reorder(h, rng, func(a, b check.Op) bool { return a.Client == b.Client && a.Return <= b.Call })
}

func reorder(h check.History, rng *rand.Rand, ordered func(a, b check.Op) bool) (check.History, bool) {
	h = Clone(h)
	var longest []string
	for _, op := range h.Ops {
		if op.Kind == check.SyncRead && len(op.Values) > len(longest) {
			longest = op.Values
		}
	}
	i := pick(len(longest)-1, rng, func(i int) bool {
		a, okA := ackedWriter(h, longest[i])
		b, okB := ackedWriter(h, longest[i+1])
		return okA && okB && ordered(a, b)
	})
	if i < 0 {
		return h, false
	}
	x, y := longest[i], longest[i+1]
	swap := func(vs []string) {
		for j := 0; j+1 < len(vs); j++ {
			if vs[j] == x && vs[j+1] == y {
				vs[j], vs[j+1] = y, x
			}
		}
	}
	for k := range h.Ops {
		swap(h.Ops[k].Values)
	}
	for _, r := range h.Final {
		for _, vs := range r.State {
			swap(vs)
		}
	}
	return h, true
}

// OwnWriteMissing truncates a read just before a value its own client
// appended (and had acknowledged) earlier. Not sequentially consistent,
// not causal.
func OwnWriteMissing(h check.History, rng *rand.Rand) (check.History, bool) {
	h = Clone(h)
	type cut struct{ op, at int }
	var cuts []cut
	for i, op := range h.Ops {
		if op.Kind != check.SyncRead || op.Outcome != check.OK {
			continue
		}
		for j, v := range op.Values {
			if w, ok := ackedWriter(h, v); ok && w.Client == op.Client && w.Return <= op.Call {
				cuts = append(cuts, cut{i, j})
			}
		}
	}
	if len(cuts) == 0 {
		return h, false
	}
	c := cuts[rng.IntN(len(cuts))]
	h.Ops[c.op].Values = h.Ops[c.op].Values[:c.at]
	return h, true
}

// CausalInversion swaps, in one session's delivery stream, an update
// with the one before it when the second was written by the same client
// after the first was acknowledged (so the first is its cause). Not
// causal.
func CausalInversion(h check.History, rng *rand.Rand) (check.History, bool) {
	h = Clone(h)
	i := pick(len(h.Ops)-1, rng, func(i int) bool {
		a, b := h.Ops[i], h.Ops[i+1]
		if a.Kind != check.Delivered || b.Kind != check.Delivered || a.Client != b.Client || a.Key != b.Key {
			return false
		}
		wa, okA := ackedWriter(h, a.Value)
		wb, okB := ackedWriter(h, b.Value)
		return okA && okB && wa.Client == wb.Client && wa.Return <= wb.Call
	})
	if i < 0 {
		return h, false
	}
	h.Ops[i].Value, h.Ops[i+1].Value = h.Ops[i+1].Value, h.Ops[i].Value
	return h, true
}

// Diverge drops one value from one replica's final state. Not
// convergent.
func Diverge(h check.History, rng *rand.Rand) (check.History, bool) {
	h = Clone(h)
	if len(h.Final) < 2 {
		return h, false
	}
	r := h.Final[rng.IntN(len(h.Final))]
	for k, vs := range r.State {
		if len(vs) > 0 {
			j := rng.IntN(len(vs))
			r.State[k] = slices.Delete(vs, j, j+1)
			return h, true
		}
	}
	return h, false
}
