package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ConvergenceConfig configures Convergence.
type ConvergenceConfig struct {
	// Unordered compares each key's values as sets, for classes whose
	// replicas may list members in any order (set, map, counter). By
	// default order counts: a log converges to one order.
	Unordered bool
}

// Convergence checks strong eventual consistency: after the network
// healed and the system went quiet, every replica holds the same state.
// The replicas that agree with most others are the reference (ties go to
// the group with the smallest node name); each other replica is reported
// with the smallest difference that shows it: the first key that differs,
// and in it the values only one side holds or, if both hold the same
// values, the first position where their orders part.
func Convergence(h History, cfg ConvergenceConfig) (Result, error) {
	if err := h.Validate(); err != nil {
		return Result{}, fmt.Errorf("check: convergence: %w", err)
	}
	switch len(h.Final) {
	case 0:
		return Result{Check: CheckConvergence, Unknown: true, Note: "no final states recorded"}, nil
	case 1:
		return Result{Check: CheckConvergence, OK: true, Note: "only one replica's final state recorded"}, nil
	}
	canon := func(r Replica) string {
		var b strings.Builder
		for _, k := range stateKeys(r.State) {
			vs := r.State[k]
			if len(vs) == 0 {
				continue // an empty key is the same as an absent one
			}
			if cfg.Unordered {
				vs = slices.Clone(vs)
				sort.Strings(vs)
			}
			fmt.Fprintf(&b, "%q:%q;", k, vs)
		}
		return b.String()
	}
	groups := map[string][]Replica{}
	for _, r := range h.Final {
		groups[canon(r)] = append(groups[canon(r)], r)
	}
	if len(groups) == 1 {
		return Result{Check: CheckConvergence, OK: true}, nil
	}
	var ref []Replica
	for _, g := range groups {
		sort.Slice(g, func(i, j int) bool { return g[i].Node < g[j].Node })
		if len(g) > len(ref) || len(g) == len(ref) && g[0].Node < ref[0].Node {
			ref = g
		}
	}
	base := ref[0]
	writers := updatesByValue(h.Ops)
	var others []Replica
	for _, r := range h.Final {
		if canon(r) != canon(base) {
			others = append(others, r)
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].Node < others[j].Node })
	var c collector
	for _, r := range others {
		c.add(difference(base, r, cfg.Unordered, writers))
	}
	return c.result(CheckConvergence), nil
}

// stateKeys returns a state's keys, sorted.
func stateKeys(states ...map[string][]string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, s := range states {
		for k := range s {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// difference describes how r differs from base.
func difference(base, r Replica, unordered bool, writers map[string]Op) Violation {
	var differing []string
	for _, k := range stateKeys(base.State, r.State) {
		a, b := base.State[k], r.State[k]
		if unordered {
			a, b = slices.Clone(a), slices.Clone(b)
			sort.Strings(a)
			sort.Strings(b)
		}
		if !slices.Equal(a, b) {
			differing = append(differing, k)
		}
	}
	k := differing[0]
	a, b := base.State[k], r.State[k]
	onlyA, onlyB := minus(a, b), minus(b, a)
	var ops []Op
	for _, v := range append(head(onlyA), head(onlyB)...) {
		if w, ok := writers[v]; ok {
			ops = append(ops, w)
		}
	}
	more := ""
	if len(differing) > 1 {
		more = fmt.Sprintf(" (and %d more keys differ)", len(differing)-1)
	}
	var what string
	i := commonPrefix(a, b)
	switch {
	case len(onlyA) == 0 && len(onlyB) == 0 && i < len(a) && i < len(b):
		what = fmt.Sprintf("the same values in another order: at position %d %s has %q, %s has %q", i, base.Node, a[i], r.Node, b[i])
	case len(onlyA) == 0 && len(onlyB) == 0:
		long, n := a, base.Node
		if len(b) > len(a) {
			long, n = b, r.Node
		}
		what = fmt.Sprintf("the same values, but %s repeats %q at position %d", n, long[i], i)
	default:
		what = fmt.Sprintf("the first %d values agree; only %s has %s; only %s has %s",
			i, base.Node, listSome(onlyA), r.Node, listSome(onlyB))
	}
	return Violation{Nodes: []string{r.Node, base.Node}, Ops: ops, Explain: fmt.Sprintf(
		"divergence: %s differs from %s on key %q: %s%s", r.Node, base.Node, k, what, more)}
}

// minus returns the values of a that b lacks, in a's order.
func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, v := range b {
		in[v] = true
	}
	var out []string
	for _, v := range a {
		if !in[v] {
			out = append(out, v)
		}
	}
	return out
}

func commonPrefix(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

const listed = 5

func head(vs []string) []string { return vs[:min(len(vs), listed)] }

// listSome shows up to five values and counts the rest.
func listSome(vs []string) string {
	switch {
	case len(vs) == 0:
		return "nothing"
	case len(vs) <= listed:
		return fmt.Sprintf("%q", vs)
	}
	return fmt.Sprintf("%q and %d more", vs[:listed], len(vs)-listed)
}
