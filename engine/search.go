package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/spec"
)

// goal is an open capability with every demand made of it.
type goal struct {
	capability string
	demands    []demand
}

// solution is a complete stack: for each capability, the instance that
// provides it.
type solution struct {
	cost  float64
	binds map[string]*instance
}

// search finds the cheapest stack providing the root goals.
//
// Capabilities are ordered so that every capability comes before those
// its providers may require (a topological order of the requires graph,
// for this class). Deciding them in that order, the demands on a
// capability are all known when its turn comes, and what remains to decide
// depends only on the open goals, so the best completion of each set of
// open goals is computed once (a dynamic program).
func (r *run) search(cls classInput, roots []goal) (*solution, error) {
	order, err := r.capabilityOrder(cls, roots)
	if err != nil {
		return nil, err
	}
	st := &dpState{open: map[string][]demand{}, bound: map[string]*instance{}}
	for _, g := range roots {
		st.open[g.capability] = append(st.open[g.capability], g.demands...)
	}
	memo := map[string]*dpResult{}
	res := r.best(cls, order, 0, st, memo)
	if res == nil {
		return nil, nil
	}
	sol := &solution{cost: res.cost, binds: map[string]*instance{}}
	for _, c := range res.choices {
		sol.binds[c.capability] = c.inst
	}
	return sol, nil
}

type dpState struct {
	open  map[string][]demand
	bound map[string]*instance // capabilities already provided by a chosen layer
}

func (s *dpState) key(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|", i)
	for _, c := range sortedKeys(s.open) {
		fmt.Fprintf(&b, "%s:%s|", c, demandsKey(s.open[c]))
	}
	b.WriteString("#")
	for _, c := range sortedKeys(s.bound) {
		fmt.Fprintf(&b, "%s=%s/%s|", c, s.bound[c].proto.Name, s.bound[c].paramKey())
	}
	return b.String()
}

type choice struct {
	capability string
	inst       *instance
}

type dpResult struct {
	cost    float64
	choices []choice
}

func (r *run) best(cls classInput, order []string, i int, st *dpState, memo map[string]*dpResult) *dpResult {
	if i == len(order) {
		if len(st.open) > 0 {
			return nil // a requirement outside the order: cannot happen for a valid order
		}
		return &dpResult{}
	}
	key := st.key(i)
	if res, ok := memo[key]; ok {
		return res
	}
	capName := order[i]
	dems, open := st.open[capName]
	var res *dpResult
	switch {
	case !open:
		next := st.without(capName)
		res = r.best(cls, order, i+1, next, memo)
	case st.bound[capName] != nil:
		// Already provided by a layer chosen for another capability.
		if len(meetsAll(r.l, st.bound[capName].guarantees, dems)) == 0 {
			res = r.best(cls, order, i+1, st.without(capName), memo)
		}
	default:
		for _, p := range r.cat.Providers(capName) {
			if !r.assume(p).ok {
				continue
			}
			// Branch and bound: a provider whose fixed cost alone exceeds
			// the best stack so far cannot win, so it is never
			// instantiated. Strictly greater, so ties resolve as before.
			if res != nil && r.lowerBound(p) > res.cost {
				continue
			}
			insts, _ := r.candidates(p, cls, dems)
			for _, in := range insts {
				next := st.without(capName)
				for _, q := range in.requires {
					next.open[q.Capability] = append(next.open[q.Capability], nonEmpty(q.Demand)...)
				}
				for _, also := range p.Provides {
					if also != capName && indexOf(order, also) > i {
						next.bound[also] = in
					}
				}
				sub := r.best(cls, order, i+1, next, memo)
				if sub == nil {
					continue
				}
				total := in.cost + sub.cost
				if res == nil || total < res.cost {
					res = &dpResult{cost: total, choices: append([]choice{{capName, in}}, sub.choices...)}
				}
			}
		}
	}
	memo[key] = res
	return res
}

// nonEmpty keeps a requirement with no demand open: an empty demand is
// met by any provider, but the capability must still be provided.
func nonEmpty(d demand) []demand {
	if len(d) == 0 {
		return []demand{{}}
	}
	return []demand{d}
}

func (s *dpState) without(capName string) *dpState {
	n := &dpState{open: map[string][]demand{}, bound: map[string]*instance{}}
	for k, v := range s.open {
		if k != capName {
			n.open[k] = v
		}
	}
	for k, v := range s.bound {
		if k != capName {
			n.bound[k] = v
		}
	}
	return n
}

func indexOf(s []string, x string) int {
	for i, y := range s {
		if y == x {
			return i
		}
	}
	return -1
}

// lowerBound is the part of p's cost that holds for every instance: the
// cost figures its spec gives as constants (a figure that depends on
// parameters or inputs counts as zero).
func (r *run) lowerBound(p *spec.Protocol) float64 {
	if lb, ok := r.bounds[p.Name]; ok {
		return lb
	}
	lb := 0.0
	for _, k := range []string{"rtt", "messages", "copies"} {
		if f, err := p.Written.LookupPath(cue.MakePath(cue.Str("cost"), cue.Str(k))).Float64(); err == nil {
			lb += f * r.l.Weights[k]
		}
	}
	r.bounds[p.Name] = lb
	return lb
}

// capabilityOrder orders the capabilities reachable from the roots so that
// each comes before every capability its providers require. Ties are
// broken by the highest layer of the capability's providers, then by name,
// so the order (and so the plan) is deterministic.
func (r *run) capabilityOrder(cls classInput, roots []goal) ([]string, error) {
	edges := map[string]map[string]bool{}
	var visit func(c string)
	visit = func(c string) {
		if _, seen := edges[c]; seen {
			return
		}
		edges[c] = map[string]bool{}
		for _, p := range r.cat.Providers(c) {
			if !r.assume(p).ok {
				continue
			}
			for _, q := range p.MayRequire {
				edges[c][q] = true
			}
		}
		for _, q := range sortedKeys(edges[c]) {
			visit(q)
		}
	}
	for _, g := range roots {
		visit(g.capability)
	}
	indeg := map[string]int{}
	for c := range edges {
		indeg[c] += 0
		for q := range edges[c] {
			indeg[q]++
		}
	}
	rank := func(c string) int {
		top := -1
		for _, p := range r.cat.Providers(c) {
			if i := r.l.LayerIndex(p.Layer); i > top {
				top = i
			}
		}
		return top
	}
	var ready, order []string
	for c, d := range indeg {
		if d == 0 {
			ready = append(ready, c)
		}
	}
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool {
			ri, rj := rank(ready[i]), rank(ready[j])
			if ri != rj {
				return ri > rj
			}
			return ready[i] < ready[j]
		})
		c := ready[0]
		ready = ready[1:]
		order = append(order, c)
		for _, q := range sortedKeys(edges[c]) {
			if indeg[q]--; indeg[q] == 0 {
				ready = append(ready, q)
			}
		}
	}
	if len(order) != len(edges) {
		var cyc []string
		for c, d := range indeg {
			if d > 0 {
				cyc = append(cyc, c)
			}
		}
		sort.Strings(cyc)
		return nil, fmt.Errorf("the catalogue's requires form a cycle through capabilities %s", strings.Join(cyc, ", "))
	}
	return order, nil
}

// stackOf lists a solution's distinct instances bottom to top.
func (r *run) stackOf(sol *solution) []*instance {
	seen := map[*instance][]string{}
	var out []*instance
	for _, c := range sortedKeys(sol.binds) {
		in := sol.binds[c]
		if _, ok := seen[in]; !ok {
			out = append(out, in)
		}
		seen[in] = append(seen[in], c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := r.l.LayerIndex(out[i].proto.Layer), r.l.LayerIndex(out[j].proto.Layer)
		if li != lj {
			return li < lj
		}
		return out[i].proto.Name < out[j].proto.Name
	})
	return out
}

// requiredCapabilities lists the capabilities in requires, sorted.
func requiredCapabilities(in *instance) []string {
	var out []string
	for _, rq := range in.requires {
		if !slices.Contains(out, rq.Capability) {
			out = append(out, rq.Capability)
		}
	}
	sort.Strings(out)
	return out
}

// providesIn returns the capabilities in serves within sol, sorted.
func providesIn(sol *solution, in *instance) []string {
	var out []string
	for _, c := range sortedKeys(sol.binds) {
		if sol.binds[c] == in {
			out = append(out, c)
		}
	}
	return out
}
