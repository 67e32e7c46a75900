package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rime-dev/rime/diag"
	"github.com/rime-dev/rime/spec"
)

// outcome is one attempt to plan a requirement.
type outcome struct {
	cls     classInput
	goal    goalResult
	forbids []fired
	demands []fired
	roots   []goal
	sol     *solution
	err     error
}

func (r *run) attempt(cls classInput) outcome {
	o := outcome{cls: cls, goal: r.rootGoal(cls)}
	if o.goal.err != nil {
		o.err = o.goal.err
		return o
	}
	if cls.kind == "data" {
		for _, f := range r.fire(cls, nil) {
			switch f.th.Effect {
			case spec.Forbid:
				o.forbids = append(o.forbids, f)
			case spec.Demand:
				o.demands = append(o.demands, f)
			}
		}
	}
	if len(o.forbids) > 0 {
		return o
	}
	o.roots = []goal{{capability: o.goal.capability, demands: []demand{o.goal.demand}}}
	for _, f := range o.demands {
		o.roots = append(o.roots, goal{capability: f.th.Demand, demands: []demand{{}}})
	}
	o.sol, o.err = r.search(cls, o.roots)
	return o
}

// planData writes a data class's plan from its attempt.
func (r *run) planData(c spec.Class, o outcome) ClassPlan {
	cp := r.classPlan(c.Name, o)
	if cp.Satisfiable {
		cp.Guarantees = r.dataGuarantees(c.Requirement, o)
	} else {
		cp.Relaxations = r.relax(c.Requirement)
	}
	return cp
}

func (r *run) planCompute(c spec.Compute) ClassPlan {
	o := r.attempt(r.computeInput(c))
	cp := r.classPlan(c.Name, o)
	if cp.Satisfiable {
		top := o.sol.binds[o.goal.capability]
		g := ComputeGuarantees{}
		g.Offload, _ = top.guarantees["offload"].(string)
		g.Clones, _ = top.guarantees["clones"].(int64)
		cp.Guarantees = g
	}
	return cp
}

func (r *run) classPlan(name string, o outcome) ClassPlan {
	cp := ClassPlan{Name: name, Stack: []Layer{}, Proof: []Step{}, Unmet: []Unmet{}, Relaxations: []Relaxation{}}
	switch {
	case len(o.forbids) > 0:
		for _, f := range o.forbids {
			cp.Unmet = append(cp.Unmet, Unmet{
				Requirement: f.th.Blocks, Reason: f.reason, Theorem: f.th.Title,
				Cite: f.th.Cite, Source: f.th.Pos.String(),
			})
		}
	case o.err != nil:
		cp.Unmet = append(cp.Unmet, Unmet{Requirement: "catalogue", Reason: o.err.Error()})
	case o.sol == nil:
		cp.Unmet, cp.Why = r.explainFailure(o)
	default:
		cp.Satisfiable = true
		cp.Cost = o.sol.cost
		stack := r.stackOf(o.sol)
		for _, in := range stack {
			cp.Stack = append(cp.Stack, Layer{
				Layer: in.proto.Layer, Protocol: in.proto.Name, Params: in.params,
				Implemented: in.proto.Implemented, Provides: providesIn(o.sol, in),
				Requires: requiredCapabilities(in), Hosts: r.layerHosts(in.proto),
			})
		}
		var ps proofWriter
		r.writeProof(&ps, o, stack)
		cp.Proof, cp.Depth = ps.steps, ps.depth
	}
	return cp
}

// dataGuarantees reads what the stack promises: the top layer's
// guarantees for the goal's dimensions, and confidentiality from any
// layer that encrypts or, if no theorem asked for encryption, from the
// environment itself.
func (r *run) dataGuarantees(req spec.Requirement, o outcome) DataGuarantees {
	top := o.sol.binds[o.goal.capability]
	g := DataGuarantees{}
	g.Consistency, _ = top.guarantees["consistency"].(string)
	g.Durability, _ = top.guarantees["durability"].(int64)
	g.Available, _ = top.guarantees["available"].(string)
	for _, in := range o.sol.binds {
		if b, _ := in.guarantees["confidential"].(bool); b {
			g.Confidential = true
		}
	}
	if req.Confidential && !r.confidentialityDemanded(o) {
		g.Confidential = true
	}
	return g
}

// confidentialityDemanded reports whether a theorem that constrains
// confidentiality fired, i.e. the environment alone does not keep the
// class confidential.
func (r *run) confidentialityDemanded(o outcome) bool {
	for _, f := range o.demands {
		if f.th.Blocks == "confidential" {
			return true
		}
	}
	return false
}

// relax weakens one requirement at a time along its dimension, nearest
// weakening first, and returns every weakening at the nearest level that
// plans, per dimension.
func (r *run) relax(req spec.Requirement) []Relaxation {
	out := []Relaxation{}
	for _, dim := range r.l.DimensionOrder {
		d := r.l.Dimensions[dim]
		if !d.Relaxable {
			continue
		}
		for _, level := range r.weakerLevels(d, req) {
			var found []Relaxation
			for _, v := range level {
				weaker, ok := withField(req, dim, v)
				if !ok {
					continue
				}
				o := r.attempt(r.dataInput(weaker))
				if o.sol == nil {
					continue
				}
				var names []string
				for _, in := range r.stackOf(o.sol) {
					names = append(names, in.proto.Name)
				}
				found = append(found, Relaxation{Change: map[string]any{dim: v}, Stack: names})
			}
			if len(found) > 0 {
				out = append(out, found...)
				break
			}
		}
	}
	return out
}

// weakenings lists the requirements relax tries first for req: the
// nearest level of weakening on each dimension. relax goes further only
// on a dimension where none of these plans, which is rare, so the further
// levels are evaluated when relax reaches them rather than in advance
// (each situation evaluated costs the same, batched or not).
func (r *run) weakenings(req spec.Requirement) []spec.Requirement {
	var out []spec.Requirement
	for _, dim := range r.l.DimensionOrder {
		d := r.l.Dimensions[dim]
		if !d.Relaxable {
			continue
		}
		for _, level := range r.weakerLevels(d, req) {
			for _, v := range level {
				if weaker, ok := withField(req, dim, v); ok {
					out = append(out, weaker)
				}
			}
			break
		}
	}
	return out
}

// weakerLevels lists the values weaker than req's value on d, nearest
// first, grouped by distance.
func (r *run) weakerLevels(d spec.Dimension, req spec.Requirement) [][]any {
	cur, ok := fieldOf(req, d.Name)
	if !ok {
		return nil
	}
	var out [][]any
	switch d.Kind {
	case "lattice":
		for _, lv := range r.l.Lattice.WeakerLevels(cur.(string)) {
			var level []any
			for _, m := range lv {
				level = append(level, m)
			}
			out = append(out, level)
		}
	case "chain":
		for i := d.ChainIndex(cur.(string)) - 1; i >= 0; i-- {
			out = append(out, []any{d.Chain[i]})
		}
	case "int":
		for k := cur.(int64) - 1; k >= 0; k-- {
			out = append(out, []any{k})
		}
	}
	return out
}

func fieldOf(req spec.Requirement, field string) (any, bool) {
	switch field {
	case "consistency":
		return req.Consistency, true
	case "available":
		return req.Available, true
	case "durability":
		return int64(req.Durability), true
	}
	return nil, false
}

func withField(req spec.Requirement, field string, v any) (spec.Requirement, bool) {
	switch field {
	case "consistency":
		req.Consistency = v.(string)
	case "available":
		req.Available = v.(string)
	case "durability":
		req.Durability = int(v.(int64))
	default:
		return req, false
	}
	return req, true
}

// explainFailure says why no stack exists: for each root goal that cannot
// be met on its own, the reasons of every candidate, nested.
func (r *run) explainFailure(o outcome) ([]Unmet, []WhyLine) {
	var unmet []Unmet
	var why []WhyLine
	for i, g := range o.roots {
		if sol, _ := r.search(o.cls, []goal{g}); sol != nil {
			continue
		}
		lines, missing, dims := r.whyNot(o.cls, g.capability, g.demands, 1, map[string]bool{})
		header := fmt.Sprintf("no stack provides %s %s", g.capability, demandsString(g.demands))
		why = append(why, WhyLine{Depth: 0, Text: header})
		why = append(why, lines...)
		// The capability no usable protocol provides; failing that, the
		// goal itself, which nothing provides with this demand.
		u := Unmet{Reason: header + ": " + summarize(lines), Capability: g.capability}
		if len(missing) > 0 {
			u.Capability = missing[0]
		}
		switch {
		case i > 0: // a capability a theorem demanded
			th := o.demands[i-1]
			u.Requirement, u.Theorem, u.Cite, u.Source = th.th.Blocks, th.th.Title, th.th.Cite, th.th.Pos.String()
			u.Reason = th.reason + "; " + u.Reason
		case len(dims) > 0:
			u.Requirement = r.requirementOf(dims[0])
		default:
			u.Requirement = "environment"
		}
		unmet = append(unmet, u)
	}
	if len(unmet) == 0 {
		// Each goal alone plans, together they do not.
		var caps []string
		for _, g := range o.roots {
			caps = append(caps, g.capability)
		}
		unmet = append(unmet, Unmet{Requirement: "stack", Capability: strings.Join(caps, "+"),
			Reason: "every capability can be provided alone, but no single stack provides them together"})
	}
	return unmet, why
}

// requirementOf maps a guarantee dimension back to the app field it
// stems from ("types" comes from "type").
func (r *run) requirementOf(dim string) string {
	if d, ok := r.l.Dimensions[dim]; ok && d.Requirement != "" {
		return d.Requirement
	}
	return dim
}

func demandsString(ds []demand) string {
	var parts []string
	for _, d := range ds {
		if len(d) > 0 {
			parts = append(parts, d.String())
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "with " + strings.Join(parts, " and ")
}

func summarize(lines []WhyLine) string {
	var parts []string
	for _, l := range lines {
		if l.Depth == 1 {
			parts = append(parts, l.Text)
		}
	}
	return strings.Join(parts, "; ")
}

// whyNot explains why capability cannot be provided with the demands. It
// returns the reasons, the capabilities nothing usable provides, and the
// guarantee dimensions that fell short directly.
func (r *run) whyNot(cls classInput, capName string, dems []demand, depth int, seen map[string]bool) ([]WhyLine, []string, []string) {
	if seen[capName] || depth > 6 {
		return nil, nil, nil
	}
	seen[capName] = true
	defer delete(seen, capName)
	providers := r.cat.Providers(capName)
	if len(providers) == 0 {
		return []WhyLine{{Depth: depth, Text: fmt.Sprintf("no protocol in the catalogue provides %s", capName)}}, []string{capName}, nil
	}
	var lines []WhyLine
	var missing, dims []string
	usable := 0
	for _, p := range providers {
		a := r.assume(p)
		if !a.ok {
			for _, f := range a.failures {
				lines = append(lines, WhyLine{Depth: depth, Text: f.Text + positions(f.Assume, f.Env), Pos: f.Assume})
			}
			continue
		}
		usable++
		insts, reason := r.candidates(p, cls, dems)
		if len(insts) == 0 {
			lines = append(lines, WhyLine{Depth: depth, Text: fmt.Sprintf("%s: %s", p.Name, reason), Pos: p.Pos})
			if plain, _ := r.candidates(p, cls, nil); len(plain) > 0 {
				for _, sf := range meetsAll(r.l, plain[0].guarantees, dems) {
					dims = append(dims, sf.Dim)
				}
			}
			continue
		}
		in := insts[0]
		for _, q := range in.requires {
			if sol, _ := r.search(cls, []goal{{q.Capability, nonEmpty(q.Demand)}}); sol != nil {
				continue
			}
			lines = append(lines, WhyLine{Depth: depth, Text: fmt.Sprintf("%s needs %s %s", p.Name, q.Capability, demandsString(nonEmpty(q.Demand))), Pos: q.Pos})
			sub, m, _ := r.whyNot(cls, q.Capability, nonEmpty(q.Demand), depth+1, seen)
			lines = append(lines, sub...)
			missing = append(missing, m...)
		}
	}
	if usable == 0 {
		missing = append([]string{capName}, missing...)
	}
	sort.Strings(dims)
	return lines, missing, dims
}

func positions(a, e diag.Pos) string {
	var ps []string
	for _, p := range []diag.Pos{a, e} {
		if p.IsValid() {
			ps = append(ps, p.String())
		}
	}
	if len(ps) == 0 {
		return ""
	}
	return " [" + strings.Join(ps, "; ") + "]"
}

// valuePos returns where a field of an instance's spec is written.
func valuePos(in *instance, path string) diag.Pos { return in.proto.PosOf(path) }
