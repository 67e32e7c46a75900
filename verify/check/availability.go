package check

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Promise is what a class promised about availability under partition
// (the app spec's `available`).
type Promise string

const (
	// Always: every live node keeps reading and writing in any partition.
	Always Promise = "always"
	// Majority: nodes on the side holding a majority of the replicas do.
	Majority Promise = "majority"
	// None: no promise.
	None Promise = "none"
)

// AvailabilityConfig configures Availability.
type AvailabilityConfig struct {
	Promise Promise
	// Replicas are the nodes that hold the class; a side is the majority
	// side if it holds more than half of them. Empty means every node
	// named on a side of the partition.
	Replicas []string
	// Grace exempts operations invoked less than Grace after a partition
	// began: detecting the partition and electing a leader on the
	// majority side take time, and the promise is about the partition,
	// not its first moments.
	Grace time.Duration
}

// Validate reports a config Availability cannot use.
func (c AvailabilityConfig) Validate() error {
	switch c.Promise {
	case Always, Majority, None:
	default:
		return fmt.Errorf("check: availability config: Promise %q is not %q, %q or %q", c.Promise, Always, Majority, None)
	}
	if c.Grace < 0 {
		return fmt.Errorf("check: availability config: Grace %v is negative", c.Grace)
	}
	return nil
}

// Availability checks that client operations invoked during a partition
// succeeded wherever the promise says they must: on every side for
// Always, on the majority side for Majority. An operation that failed or
// never learned its outcome there breaks the promise, unless its node
// accepted it (Op.Accepted: an available class's replica took the update
// on its own, to be acknowledged once the partition lets it); one on a node that
// was down (h.Crashes) is exempt, and so is one whose Node is not
// recorded (the Note counts them). Deliveries are not operations a
// client waits for and are not checked.
//
// Violations are grouped by partition and side, each naming up to five
// of the operations.
func Availability(h History, cfg AvailabilityConfig) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if err := h.Validate(); err != nil {
		return Result{}, fmt.Errorf("check: availability: %w", err)
	}
	res := Result{Check: CheckAvailability, OK: true}
	if len(h.Partitions) == 0 {
		res.Note = "no partition in the history: nothing to check"
		return res, nil
	}
	if cfg.Promise == None {
		res.Note = "the class promised no availability under partition"
		return res, nil
	}
	var c collector
	unplaced := 0
	for pi, p := range h.Partitions {
		replicas := cfg.Replicas
		if len(replicas) == 0 {
			for _, s := range p.Sides {
				replicas = append(replicas, s...)
			}
		}
		sideOf := func(node string) []string {
			for _, s := range p.Sides {
				if slices.Contains(s, node) {
					return s
				}
			}
			return []string{node} // named on no side: cut off alone
		}
		majority := func(side []string) bool {
			n := 0
			for _, x := range side {
				if slices.Contains(replicas, x) {
					n++
				}
			}
			return 2*n > len(replicas)
		}
		type group struct {
			side       []string
			major      bool
			ops, total int
			bad        []Op
		}
		groups := map[string]*group{}
		from := p.Start + int64(cfg.Grace)
		for _, op := range h.Ops {
			if !(op.isUpdate() || op.isRead() || op.Kind == Remove) || op.Call < from || p.End != 0 && op.Call >= p.End {
				continue
			}
			if op.Node == "" {
				unplaced++
				continue
			}
			if down(h.Crashes, op.Node, op.Call) {
				continue
			}
			side := sideOf(op.Node)
			major := majority(side)
			if cfg.Promise == Majority && !major {
				continue
			}
			key := fmt.Sprint(side)
			g := groups[key]
			if g == nil {
				g = &group{side: side, major: major}
				groups[key] = g
			}
			g.total++
			if op.Outcome != OK && op.Accepted == 0 {
				g.bad = append(g.bad, op)
			}
		}
		var keys []string
		for k := range groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			g := groups[k]
			if len(g.bad) == 0 {
				continue
			}
			which := "minority"
			if g.major {
				which = "majority"
			}
			end := "never healed"
			if p.End != 0 {
				end = fmt.Sprintf("until %d", p.End)
			}
			c.add(Violation{Ops: g.bad[:min(len(g.bad), listed)], Nodes: g.side, Explain: fmt.Sprintf(
				"unavailable: during partition %d (from %d, %s), %d of %d operations on the %s side %v did not succeed, though the class promised %q",
				pi, p.Start, end, len(g.bad), g.total, which, g.side, cfg.Promise)})
		}
	}
	res = c.result(CheckAvailability)
	if unplaced > 0 {
		res.Note = fmt.Sprintf("%d operations during partitions name no node and were not checked", unplaced)
	}
	return res, nil
}

// down reports whether node was crashed at time t.
func down(crashes []Crash, node string, t int64) bool {
	for _, c := range crashes {
		if c.Node == node && t >= c.Start && (c.End == 0 || t < c.End) {
			return true
		}
	}
	return false
}
