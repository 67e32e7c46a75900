package check

import "fmt"

// registerKey is one key's operations prepared for the register model.
type registerKey struct {
	writes []Op // ok, or info and seen by a read
	reads  []Op // ok reads of the kinds asked for
	seen   map[string]bool
}

// prepareRegister builds a registerKey and collects the violations that
// can be named without search: a read of a value nobody wrote (or whose
// write failed), a stale read (the value read had certainly been
// overwritten before the read began) and a read from the future.
func prepareRegister(key string, ops []Op, writers map[string]Op, readKinds func(Op) bool, c *collector) (*registerKey, error) {
	seen := map[string]bool{}
	rk := &registerKey{seen: seen}
	for _, op := range ops {
		if op.isRead() && op.Outcome == OK && readKinds(op) {
			if len(op.Values) > 1 {
				return nil, fmt.Errorf("check: linearizable: register model: %v returned %d values, a register holds one", op, len(op.Values))
			}
			rk.reads = append(rk.reads, op)
			for _, v := range op.Values {
				seen[v] = true
			}
		}
	}
	for _, op := range ops {
		if op.isUpdate() && (op.Outcome == OK || op.Outcome == Info && seen[op.Value]) {
			rk.writes = append(rk.writes, op)
		}
	}
	for _, r := range rk.reads {
		var (
			w       Op
			initial = len(r.Values) == 0
		)
		if !initial {
			v := r.Values[0]
			var ok bool
			w, ok = writers[v]
			switch {
			case !ok:
				c.addf([]Op{r}, "read returned %q, which no operation wrote", v)
				continue
			case w.Key != key:
				c.addf([]Op{r, w}, "read of key %q returned %q, which was written to key %q", key, v, w.Key)
				continue
			case w.Outcome == Fail:
				c.addf([]Op{r, w}, "read returned %q, whose write failed (definitely not applied)", v)
				continue
			case w.Call > r.Return:
				c.addf([]Op{r, w}, "read from the future: a read returned %q at %d, but its write was invoked only at %d", v, r.Return, w.Call)
				continue
			}
		}
		for _, w2 := range rk.writes {
			if w2.Outcome != OK || w2.Value == w.Value || w2.Return >= r.Call {
				continue
			}
			if initial {
				c.addf([]Op{r, w2}, "stale read: a read invoked at %d returned the initial value, but %q was acknowledged at %d", r.Call, w2.Value, w2.Return)
				break
			}
			if w.end() < w2.Call {
				c.addf([]Op{r, w, w2}, "stale read: a read invoked at %d returned %q, but %q, invoked after it was acknowledged and acknowledged itself at %d, had overwritten it",
					r.Call, w.Value, w2.Value, w2.Return)
				break
			}
		}
	}
	return rk, nil
}
