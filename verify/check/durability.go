package check

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
)

// StateModel says what a replica's final state of a key holds, so that
// Durability knows what "the update survived" means there.
type StateModel string

const (
	// Accumulate (the default): the state lists every update that took
	// effect and was not removed (a log, a set, a text's inserts).
	Accumulate StateModel = "accumulate"
	// LastWriter: the state holds one value, the last writer's (a
	// register, a map's key): older values are overwritten, so only the
	// trace of acknowledged writes can be checked (the key is not empty
	// and holds a value some write that did not fail wrote).
	LastWriter StateModel = "last-writer"
	// Count: the state holds one decimal number, the number of Appends
	// that took effect (a counter whose every update adds one).
	Count StateModel = "count"
)

// DurabilityConfig configures Durability.
type DurabilityConfig struct {
	// K is the promise: an acknowledged update survives the permanent
	// loss of any K nodes (the app spec's `durability`).
	K int
	// Model is what the final states hold; empty means Accumulate.
	Model StateModel
}

// Validate reports a config Durability cannot use.
func (c DurabilityConfig) Validate() error {
	if c.K < 0 {
		return fmt.Errorf("check: durability config: K %d is negative", c.K)
	}
	switch c.Model {
	case "", Accumulate, LastWriter, Count:
	default:
		return fmt.Errorf("check: durability config: Model %q is not %q, %q or %q", c.Model, Accumulate, LastWriter, Count)
	}
	return nil
}

// Durability checks that every acknowledged update is in the final state
// of every surviving replica (every replica in h.Final; h.Lost are the
// nodes lost for good), and that no update whose write failed is in any.
// That is the Accumulate model (a log, a set, a text); there an
// acknowledged Remove of a value means no surviving replica may hold it,
// and an update whose remove may have taken effect need not be held.
// For the LastWriter and Count models see StateModel.
//
// If more nodes were lost than K, the promise does not cover the run and
// the result is OK with a note saying nothing was checked.
func Durability(h History, cfg DurabilityConfig) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if err := h.Validate(); err != nil {
		return Result{}, fmt.Errorf("check: durability: %w", err)
	}
	lost := slices.Clone(h.Lost)
	sort.Strings(lost)
	lost = slices.Compact(lost)
	if len(lost) > cfg.K {
		return Result{Check: CheckDurability, OK: true, Note: fmt.Sprintf(
			"%d nodes lost %v, more than the %d the promise covers: not checked", len(lost), lost, cfg.K)}, nil
	}
	var c collector
	if len(h.Final) == 0 {
		for _, op := range h.Ops {
			if op.isUpdate() && op.Outcome == OK {
				c.addf([]Op{op}, "lost write: %q was acknowledged at %d, and no replica survived (lost: %v)", op.Value, op.Return, lost)
			}
		}
		if c.empty() {
			return Result{Check: CheckDurability, Unknown: true, Note: "no final states recorded and no acknowledged writes"}, nil
		}
		return c.result(CheckDurability), nil
	}
	switch cfg.Model {
	case LastWriter:
		lastWriter(h, lost, cfg.K, &c)
		return c.result(CheckDurability), nil
	case Count:
		count(h, lost, cfg.K, &c)
		return c.result(CheckDurability), nil
	}
	removed := map[string]Op{} // value -> a remove that may have taken effect
	for _, op := range h.Ops {
		if op.Kind == Remove && op.Outcome != Fail {
			if prev, ok := removed[op.Value]; !ok || prev.Outcome != OK {
				removed[op.Value] = op
			}
		}
	}
	has := make([]map[string]map[string]bool, len(h.Final))
	for i, r := range h.Final {
		has[i] = map[string]map[string]bool{}
		for k, vs := range r.State {
			has[i][k] = map[string]bool{}
			for _, v := range vs {
				has[i][k][v] = true
			}
		}
	}
	for _, op := range h.Ops {
		if !op.isUpdate() {
			continue
		}
		var missing, holding []string
		for i, r := range h.Final {
			if has[i][op.Key][op.Value] {
				holding = append(holding, r.Node)
			} else {
				missing = append(missing, r.Node)
			}
		}
		rm, isRemoved := removed[op.Value]
		switch {
		case isRemoved && rm.Outcome == OK && len(holding) > 0:
			c.add(Violation{Ops: []Op{rm, op}, Nodes: holding, Explain: fmt.Sprintf(
				"removal lost: the remove of %q was acknowledged at %d, but the final state of %v still holds it",
				op.Value, rm.Return, holding)})
		case isRemoved:
		case op.Outcome == OK && len(missing) > 0:
			c.add(Violation{Ops: []Op{op}, Nodes: missing, Explain: fmt.Sprintf(
				"lost write: %q was acknowledged at %d, but the final state of %v lacks it (%d nodes lost, %d promised)",
				op.Value, op.Return, missing, len(lost), cfg.K)})
		case op.Outcome == Fail && len(holding) > 0:
			c.add(Violation{Ops: []Op{op}, Nodes: holding, Explain: fmt.Sprintf(
				"failed write applied: %q was reported failed (definitely not applied), but the final state of %v holds it",
				op.Value, holding)})
		}
	}
	return c.result(CheckDurability), nil
}

// lastWriter checks keys that keep one value: each key with an
// acknowledged write holds, on every surviving replica, exactly one
// value, written by an update of that key that did not fail.
func lastWriter(h History, lost []string, k int, c *collector) {
	writers := updatesByValue(h.Ops)
	keys, groups := byKey(h.Ops, func(op Op) bool { return op.isUpdate() && op.Outcome == OK })
	for _, key := range keys {
		first := groups[key][0]
		for _, r := range h.Final {
			vs := r.State[key]
			switch w, ok := writers[firstOr(vs)]; {
			case len(vs) == 0:
				c.add(Violation{Ops: []Op{first}, Nodes: []string{r.Node}, Explain: fmt.Sprintf(
					"lost write: key %q had %d acknowledged writes (the first %q at %d), but the final state of %s holds no value (%d nodes lost, %d promised)",
					key, len(groups[key]), first.Value, first.Return, r.Node, len(lost), k)})
			case len(vs) > 1:
				c.add(Violation{Nodes: []string{r.Node}, Explain: fmt.Sprintf(
					"key %q holds %d values %s on %s: a last-writer-wins key holds one", key, len(vs), listSome(vs), r.Node)})
			case !ok || w.Key != key:
				c.add(Violation{Ops: []Op{first}, Nodes: []string{r.Node}, Explain: fmt.Sprintf(
					"key %q holds %q on %s, which no update of that key wrote", key, vs[0], r.Node)})
			case w.Outcome == Fail:
				c.add(Violation{Ops: []Op{w}, Nodes: []string{r.Node}, Explain: fmt.Sprintf(
					"failed write applied: key %q holds %q on %s, whose write was reported failed", key, vs[0], r.Node)})
			}
		}
	}
}

func firstOr(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// count checks counters: on every surviving replica each key's number is
// at least its acknowledged increments and at most those plus the ones
// whose outcome is unknown.
func count(h History, lost []string, k int, c *collector) {
	type tally struct {
		ok, info int
		some     Op
	}
	t := map[string]*tally{}
	for _, op := range h.Ops {
		if !op.isUpdate() || op.Outcome == Fail {
			continue
		}
		if t[op.Key] == nil {
			t[op.Key] = &tally{some: op}
		}
		if op.Outcome == OK {
			t[op.Key].ok++
		} else {
			t[op.Key].info++
		}
	}
	keys := make([]string, 0, len(t))
	for key := range t {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		x := t[key]
		for _, r := range h.Final {
			vs := r.State[key]
			n, err := strconv.Atoi(firstOr(vs))
			switch {
			case len(vs) != 1 || err != nil:
				c.add(Violation{Nodes: []string{r.Node}, Explain: fmt.Sprintf(
					"key %q on %s holds %s, not one count", key, r.Node, listSome(vs))})
			case n < x.ok:
				c.add(Violation{Ops: []Op{x.some}, Nodes: []string{r.Node}, Explain: fmt.Sprintf(
					"lost increments: key %q counts %d on %s, but %d increments were acknowledged (%d nodes lost, %d promised)",
					key, n, r.Node, x.ok, len(lost), k)})
			case n > x.ok+x.info:
				c.add(Violation{Ops: []Op{x.some}, Nodes: []string{r.Node}, Explain: fmt.Sprintf(
					"phantom increments: key %q counts %d on %s, but only %d increments may have taken effect (%d acknowledged, %d unknown)",
					key, n, r.Node, x.ok+x.info, x.ok, x.info)})
			}
		}
	}
}
