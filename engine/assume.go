package engine

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/diag"
	"github.com/rime-dev/rime/spec"
)

// assumed is what the environment says about one protocol's assumptions.
type assumed struct {
	ok       bool
	eligible int
	hosts    []string // node classes that may host it
	steps    []proofStep
	failures []failure
}

// failure is an assumption the environment does not entail, with both
// positions: where the protocol assumes it and where the app says
// otherwise.
type failure struct {
	Text      string
	Assume    diag.Pos
	Env       diag.Pos
	Assumed   string
	Contrary  string
	NodeClass string
}

// instanceOf reports whether a concrete value is an instance of a
// pattern. CUE's Subsume does not decide disjunctions in v0.17 (it answers
// "not an instance" for "crash-recovery" against "crash-stop" |
// "crash-recovery"), so this unifies: for a concrete value, the value is
// an instance of the pattern exactly when unifying them is not an error.
// A field the app left out is still the schema's whole disjunction
// (*"volatile" | "durable"), which would unify with any pattern, so the
// default is taken first: the cautious default is the fact.
func instanceOf(pattern, value cue.Value) bool {
	if d, ok := value.Default(); ok {
		value = d
	}
	return pattern.Unify(value).Validate(cue.Concrete(true)) == nil
}

// assume checks p's assumptions against the app's environment once per
// plan (assumptions never depend on the class).
func (r *run) assume(p *spec.Protocol) *assumed {
	if a, ok := r.assumed[p.Name]; ok {
		return a
	}
	a := &assumed{ok: true}
	r.assumed[p.Name] = a
	env := r.app.Env

	for _, as := range p.AssumeEnv {
		ev := env.Value.LookupPath(spec.Path(as.Field))
		envPos := env.FieldPos[as.Field]
		if instanceOf(as.Value, ev) {
			a.steps = append(a.steps, proofStep{
				claim: fmt.Sprintf("%s assumes environment.%s: %s", p.Name, as.Field, as.Text),
				by:    fmt.Sprintf("the environment has %s: %v%s", as.Field, ev, defaultNote(r.app, "environment."+as.Field)),
				pos:   envPos,
			})
			continue
		}
		a.ok = false
		a.failures = append(a.failures, failure{
			Text:   fmt.Sprintf("%s assumes environment.%s: %s, but the environment has %s: %v%s", p.Name, as.Field, as.Text, as.Field, ev, defaultNote(r.app, "environment."+as.Field)),
			Assume: as.Pos, Env: envPos, Assumed: as.Text, Contrary: fmt.Sprint(ev),
		})
	}

	if len(p.AssumeNodes) > 0 {
		var names []string
		for _, n := range env.Nodes {
			names = append(names, n.Name)
			for _, as := range p.AssumeNodes {
				nv := n.Value.LookupPath(spec.Path(as.Field))
				if instanceOf(as.Value, nv) {
					continue
				}
				a.ok = false
				a.failures = append(a.failures, failure{
					Text:   fmt.Sprintf("%s assumes every node has %s: %s, but node class %s has %s: %v%s", p.Name, as.Field, as.Text, n.Name, as.Field, nv, defaultNote(r.app, nodePath(n.Name, as.Field))),
					Assume: as.Pos, Env: n.FieldPos[as.Field], Assumed: as.Text, Contrary: fmt.Sprint(nv), NodeClass: n.Name,
				})
			}
		}
		if a.ok {
			for _, as := range p.AssumeNodes {
				a.steps = append(a.steps, proofStep{
					claim: fmt.Sprintf("%s assumes every node has %s: %s", p.Name, as.Field, as.Text),
					by:    fmt.Sprintf("so do all node classes (%s)", strings.Join(names, ", ")),
					pos:   firstNodePos(env, as.Field),
				})
			}
		}
	}

	a.eligible = 0
	var misfits []failure
	for _, n := range env.Nodes {
		fits := true
		for _, as := range p.AssumeHosts {
			nv := n.Value.LookupPath(spec.Path(as.Field))
			if !instanceOf(as.Value, nv) {
				fits = false
				misfits = append(misfits, failure{
					Text:   fmt.Sprintf("node class %s has %s: %v%s", n.Name, as.Field, nv, defaultNote(r.app, nodePath(n.Name, as.Field))),
					Assume: as.Pos, Env: n.FieldPos[as.Field], Assumed: as.Text, Contrary: fmt.Sprint(nv), NodeClass: n.Name,
				})
				break
			}
		}
		if fits {
			a.eligible += n.Count
			a.hosts = append(a.hosts, n.Name)
		}
	}
	if len(p.AssumeHosts) > 0 {
		pattern := hostPattern(p)
		if a.eligible == 0 {
			a.ok = false
			var parts []string
			for _, m := range misfits {
				parts = append(parts, m.Text)
			}
			f := failure{
				Text: fmt.Sprintf("%s needs a host with %s, but no node class is one: %s", p.Name, pattern, strings.Join(parts, "; ")),
			}
			if len(misfits) > 0 {
				f.Assume, f.Env = misfits[0].Assume, misfits[0].Env
				f.Assumed, f.Contrary, f.NodeClass = misfits[0].Assumed, misfits[0].Contrary, misfits[0].NodeClass
			}
			a.failures = append(a.failures, f)
		} else {
			first, _ := env.Node(a.hosts[0])
			a.steps = append(a.steps, proofStep{
				claim: fmt.Sprintf("%s runs on hosts with %s", p.Name, pattern),
				by:    fmt.Sprintf("%d nodes qualify: %s", a.eligible, strings.Join(a.hosts, ", ")),
				pos:   first.Pos,
			})
		}
	} else {
		a.eligible = total(env)
	}
	return a
}

// layerHosts is the node classes a layer of p may run on, or nil when
// p places no condition on its hosts.
func (r *run) layerHosts(p *spec.Protocol) []string {
	if len(p.AssumeHosts) == 0 {
		return nil
	}
	return r.assume(p).hosts
}

func hostPattern(p *spec.Protocol) string {
	parts := make([]string, len(p.AssumeHosts))
	for i, as := range p.AssumeHosts {
		parts[i] = as.Field + ": " + as.Text
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func total(env spec.Environment) int {
	n := 0
	for _, c := range env.Nodes {
		n += c.Count
	}
	return n
}

func nodePath(node, field string) string {
	return cue.MakePath(cue.Str("environment"), cue.Str("nodes"), cue.Str(node), cue.Str(field)).String()
}

func firstNodePos(env spec.Environment, field string) diag.Pos {
	if len(env.Nodes) == 0 {
		return diag.Pos{}
	}
	return env.Nodes[0].FieldPos[field]
}

// defaultNote says " (default)" when the app left the field out.
func defaultNote(app *spec.App, path string) string {
	for _, d := range app.Defaults {
		if d.Path == path {
			return " (default)"
		}
	}
	return ""
}
