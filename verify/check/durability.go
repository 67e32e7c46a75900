package check

import (
	"fmt"
	"slices"
	"sort"
)

// DurabilityConfig configures Durability.
type DurabilityConfig struct {
	// K is the promise: an acknowledged update survives the permanent
	// loss of any K nodes (the app spec's `durability`).
	K int
}

// Validate reports a config Durability cannot use.
func (c DurabilityConfig) Validate() error {
	if c.K < 0 {
		return fmt.Errorf("check: durability config: K %d is negative", c.K)
	}
	return nil
}

// Durability checks that every acknowledged update is in the final state
// of every surviving replica (every replica in h.Final; h.Lost are the
// nodes lost for good), and that no update whose write failed is in any.
// It is meant for accumulating types (log, set, map of keys): a register
// keeps only its last value, so for one the caller records in Final the
// values each replica applied.
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
		switch {
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
