package engine

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/diag"
	"github.com/rime-dev/rime/spec"
)

// proofStep is a step before it is placed in the tree.
type proofStep struct {
	claim, by string
	pos       diag.Pos
}

type proofWriter struct {
	steps []Step
	depth []int
}

func (w *proofWriter) add(depth int, s proofStep) {
	w.steps = append(w.steps, Step{Claim: s.claim, By: s.by, Source: s.pos.String()})
	w.depth = append(w.depth, depth)
}

// writeProof writes the proof tree of a solution, depth first from the
// goal: which guarantee meets each requirement, then for each layer which
// lower layer meets each of its requirements, which facts discharge its
// assumptions and why each parameter has its value.
func (r *run) writeProof(w *proofWriter, o outcome, stack []*instance) {
	top := o.sol.binds[o.goal.capability]
	for _, dim := range sortedKeys(o.goal.demand) {
		want := o.goal.demand[dim]
		w.add(0, proofStep{
			claim: fmt.Sprintf("the class needs %s %s", dim, show(want)),
			by:    fmt.Sprintf("%s guarantees %s %s", top.proto.Name, dim, show(top.guarantees[dim])),
			pos:   valuePos(top, "guarantees."+dim),
		})
	}
	done := map[*instance]bool{}
	r.writeLayer(w, o.sol, top, o.goal.capability, 1, done)
	for _, f := range o.demands {
		in := o.sol.binds[f.th.Demand]
		w.add(0, proofStep{
			claim: fmt.Sprintf("the stack must provide %s: %s", f.th.Demand, f.reason),
			by:    fmt.Sprintf("%s (%s); %s provides it", f.th.Title, f.th.Cite, in.proto.Name),
			pos:   f.th.Pos,
		})
		r.writeLayer(w, o.sol, in, f.th.Demand, 1, done)
	}
	if o.cls.kind == "data" {
		if conf, _ := o.cls.fields["confidential"].(bool); conf && !r.confidentialityDemanded(o) {
			w.add(0, proofStep{
				claim: "the class needs confidentiality",
				by:    "every node that may hold it is a group member, so no theorem asks for encryption",
				pos:   firstNodePos(r.app.Env, "trust"),
			})
		}
		for _, f := range r.fire(o.cls, stackLayers(stack)) {
			if f.th.Effect != spec.Caveat {
				continue
			}
			w.add(0, proofStep{
				claim: "caveat: " + f.reason,
				by:    fmt.Sprintf("%s: %s (%s)", f.th.Title, f.th.Statement, f.th.Cite),
				pos:   f.th.Pos,
			})
		}
	}
}

func (r *run) writeLayer(w *proofWriter, sol *solution, in *instance, capName string, depth int, done map[*instance]bool) {
	if done[in] {
		return
	}
	done[in] = true
	p := in.proto
	impl := "implemented"
	if !p.Implemented {
		impl = "not implemented yet"
	}
	w.add(depth, proofStep{
		claim: fmt.Sprintf("%s layer: %s provides %s", p.Layer, p.Name, capName),
		by:    fmt.Sprintf("%s (%s)", p.Summary, impl),
		pos:   p.Pos,
	})
	for _, s := range r.assume(p).steps {
		w.add(depth+1, s)
	}
	for _, pa := range p.Params {
		v := in.params[pa.Name]
		by := fmt.Sprintf("the cheapest value satisfying %s", pa.Constraint)
		if pa.Kind == "int" {
			by = fmt.Sprintf("the smallest value satisfying %s%s whose guarantees meet the demand", pa.Constraint, r.inputsFor(in, pa))
		}
		w.add(depth+1, proofStep{claim: fmt.Sprintf("%s.%s = %v", p.Name, pa.Name, v), by: by, pos: pa.Pos})
	}
	for _, q := range in.requires {
		below := sol.binds[q.Capability]
		if below == nil {
			continue
		}
		claim := fmt.Sprintf("%s requires %s", p.Name, q.Capability)
		if len(q.Demand) > 0 {
			claim += " " + q.Demand.String()
		}
		if q.Why != "" {
			claim += ": " + q.Why
		}
		by := fmt.Sprintf("%s provides %s", below.proto.Name, q.Capability)
		if len(q.Demand) > 0 {
			by += fmt.Sprintf(" with %s", pick(below.guarantees, q.Demand).String())
		}
		w.add(depth+1, proofStep{claim: claim, by: by, pos: below.proto.Pos})
		r.writeLayer(w, sol, below, q.Capability, depth+2, done)
	}
}

// inputsFor names the inputs a parameter's constraint reads, with values.
func (r *run) inputsFor(in *instance, pa spec.Param) string {
	var parts []string
	if strings.Contains(pa.Constraint, "eligible") {
		parts = append(parts, fmt.Sprintf("eligible = %d", r.assume(in.proto).eligible))
	}
	for _, f := range in.proto.ClassFields {
		if strings.Contains(pa.Constraint, "class."+f) {
			parts = append(parts, fmt.Sprintf("class.%s = %v", f, in.value.LookupPath(cue.MakePath(cue.Str("class"), cue.Str(f)))))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// stackLayers lists the layer kinds of a stack, bottom to top.
func stackLayers(stack []*instance) []string {
	var layers []string
	for _, in := range stack {
		layers = append(layers, in.proto.Layer)
	}
	return layers
}

// pick keeps the guarantees on the dimensions a demand names.
func pick(g, d demand) demand {
	out := demand{}
	for k := range d {
		if v, ok := g[k]; ok {
			out[k] = v
		}
	}
	return out
}
