package engine_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/spec"
)

var (
	models       = []string{"linearizable", "sequential", "causal", "pram", "read-your-writes", "monotonic-reads", "monotonic-writes", "writes-follow-reads", "eventual"}
	availability = []string{"none", "majority", "always"}
	dataTypes    = []string{"log", "register", "map", "set", "counter", "text", "state-machine"}
	nodeFields   = map[string][]string{
		"mobility":     {"mobile", "static"},
		"connectivity": {"intermittent", "always"},
		"reachable":    {"nat", "public"},
		"trust":        {"honest-but-curious", "member", "byzantine"},
		"storage":      {"volatile", "durable"},
		"power":        {"battery", "mains"},
	}
	nodeFieldOrder = []string{"mobility", "connectivity", "reachable", "trust", "storage", "power"}
)

// randomApp writes a random but valid app: 1-4 node classes whose fields
// are each set or left to the default, and 1-5 data classes.
func randomApp(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString("app: {\n\tname: \"rnd\"\n\tgroup: \"g\"\n\tenvironment: {\n\t\tnodes: {\n")
	for i, n := 0, 1+rng.Intn(4); i < n; i++ {
		fmt.Fprintf(&b, "\t\t\tn%d: {", i)
		if rng.Intn(4) > 0 {
			fmt.Fprintf(&b, "count: %d, ", 1+rng.Intn(7))
		}
		for _, f := range nodeFieldOrder {
			if rng.Intn(3) == 0 {
				continue // default
			}
			vs := nodeFields[f]
			v := vs[rng.Intn(len(vs))]
			if f == "trust" && v == "byzantine" && rng.Intn(3) > 0 {
				v = "member" // keep byzantine nodes rare
			}
			fmt.Fprintf(&b, "%s: %q, ", f, v)
		}
		b.WriteString("}\n")
	}
	b.WriteString("\t\t}\n")
	if rng.Intn(3) > 0 {
		fmt.Fprintf(&b, "\t\tnetwork: partitions: %v\n", rng.Intn(2) == 0)
	}
	if rng.Intn(3) > 0 {
		fs := []string{"crash-recovery", "crash-stop", "byzantine"}
		fmt.Fprintf(&b, "\t\tfailures: %q\n", fs[rng.Intn(len(fs))])
	}
	b.WriteString("\t}\n\tdata: {\n")
	for i, n := 0, 1+rng.Intn(5); i < n; i++ {
		fmt.Fprintf(&b, "\t\td%d: {consistency: %q, available: %q", i, models[rng.Intn(len(models))], availability[rng.Intn(len(availability))])
		if rng.Intn(3) > 0 {
			fmt.Fprintf(&b, ", durability: %d", rng.Intn(4))
		}
		if rng.Intn(2) == 0 {
			fmt.Fprintf(&b, ", confidential: %v", rng.Intn(2) == 0)
		}
		if rng.Intn(4) > 0 {
			fmt.Fprintf(&b, ", type: %q", dataTypes[rng.Intn(len(dataTypes))])
		}
		b.WriteString("}\n")
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// holds reports whether a field's value is an instance of a pattern. The
// value is resolved to its default first: a node class that leaves
// `storage` out has storage "volatile" (the cautious default), not
// `*"volatile" | "durable"`, which would unify with any pattern.
func holds(pattern, value cue.Value) bool {
	if d, ok := value.Default(); ok {
		value = d
	}
	return pattern.Unify(value).Validate(cue.Concrete(true)) == nil
}

func chainIndex(v string) int {
	for i, a := range availability {
		if a == v {
			return i
		}
	}
	return -1
}

// TestPlanProperties re-checks every plan of ~200 random apps without
// looking at the planner's internals.
func TestPlanProperties(t *testing.T) {
	l, cat, pl := newPlanner(t)
	ctx := l.Context()
	n := 200
	if testing.Short() {
		n = 40
	}
	sat, unsat := 0, 0
	var strict []string
	for seed := int64(1); seed <= int64(n); seed++ {
		src := randomApp(rand.New(rand.NewSource(seed)))
		app, err := l.LoadAppSource(spec.Source{Name: "app.cue", Data: []byte(src)})
		if err != nil {
			t.Fatalf("seed %d: generated app does not load: %v\n%s", seed, err, src)
		}
		plan := pl.Plan(app)
		if len(plan.Classes) != len(app.Classes) {
			t.Fatalf("seed %d: %d class plans for %d classes", seed, len(plan.Classes), len(app.Classes))
		}
		for i, cp := range plan.Classes {
			c := app.Classes[i]
			errs := checkClassPlan(l, cat, ctx, app, c, cp)
			// plan.go documents Unmet as "a theorem, or a missing
			// capability": check that separately, so a failure here is
			// told apart from a wrong plan.
			for _, u := range cp.Unmet {
				if !cp.Satisfiable && u.Theorem == "" && u.Capability == "" && len(strict) < 5 {
					strict = append(strict, fmt.Sprintf("seed %d, class %s %+v: Unmet names neither a theorem nor a capability: %+v", seed, c.Name, c.Requirement, u))
				}
			}
			if cp.Satisfiable {
				sat++
			} else {
				unsat++
			}
			if len(errs) > 0 {
				t.Errorf("seed %d, class %s %+v:\n  %s\napp:\n%s\nplan:\n%s", seed, c.Name, c.Requirement, strings.Join(errs, "\n  "), src, dumpPlan(cp))
			}
		}
		if t.Failed() && seed > 5 {
			// Enough to diagnose; do not flood the log.
			break
		}
	}
	t.Run("UnmetNamesTheoremOrCapability", func(t *testing.T) {
		for _, s := range strict {
			t.Error(s)
		}
	})
	t.Logf("%d satisfiable and %d unsatisfiable classes checked", sat, unsat)
	if sat == 0 || unsat == 0 {
		t.Errorf("the generator should produce both satisfiable (%d) and unsatisfiable (%d) classes", sat, unsat)
	}
}

func checkClassPlan(l *spec.Loader, cat *spec.Catalogue, ctx *cue.Context, app *spec.App, c spec.Class, cp engine.ClassPlan) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if cp.Name != c.Name {
		fail("plan name %q, class name %q", cp.Name, c.Name)
	}
	if !cp.Satisfiable {
		if len(cp.Unmet) == 0 {
			fail("unsatisfiable with no Unmet entry")
		}
		if len(cp.Stack) != 0 {
			fail("unsatisfiable with a stack")
		}
		for _, u := range cp.Unmet {
			if u.Requirement == "" || u.Reason == "" {
				fail("Unmet entry lacks a requirement or a reason: %+v", u)
			}
			if u.Theorem != "" && (u.Cite == "" || u.Source == "") {
				fail("Unmet entry names theorem %q without cite or source", u.Theorem)
			}
		}
		return errs
	}
	if len(cp.Unmet) != 0 {
		fail("satisfiable with Unmet entries: %+v", cp.Unmet)
	}

	// Guarantees meet the requirement.
	g, ok := cp.Guarantees.(engine.DataGuarantees)
	if !ok {
		fail("guarantees are %T, want engine.DataGuarantees", cp.Guarantees)
	} else {
		req := c.Requirement
		if !l.Lattice.Known(g.Consistency) || !l.Lattice.AtLeast(g.Consistency, req.Consistency) {
			fail("consistency %q does not meet %q", g.Consistency, req.Consistency)
		}
		if gi, ri := chainIndex(g.Available), chainIndex(req.Available); gi < 0 || gi < ri {
			fail("availability %q does not meet %q", g.Available, req.Available)
		}
		if g.Durability < int64(req.Durability) {
			fail("durability %d does not meet %d", g.Durability, req.Durability)
		}
		if req.Confidential && !g.Confidential {
			fail("class is confidential, guarantees are not")
		}
	}

	classVal := ctx.Encode(map[string]any{
		"consistency": c.Consistency, "durability": int64(c.Durability), "available": c.Available,
		"confidential": c.Confidential, "type": c.Type,
	})
	served := map[string]string{}
	provided := map[string]string{}
	prev := -1
	total := 0
	for _, n := range app.Env.Nodes {
		total += n.Count
	}
	for _, ly := range cp.Stack {
		p, ok := cat.Lookup(ly.Protocol)
		if !ok {
			fail("layer %s: protocol %q not in the catalogue", ly.Layer, ly.Protocol)
			continue
		}
		if ly.Layer != p.Layer {
			fail("layer %s: protocol %s is a %s layer", ly.Layer, p.Name, p.Layer)
		}
		idx := l.LayerIndex(ly.Layer)
		if idx < 0 {
			fail("unknown layer kind %q", ly.Layer)
		}
		if idx < prev {
			fail("stack not sorted bottom to top: %s after a higher layer", ly.Layer)
		}
		prev = idx
		if ly.Implemented != p.Implemented {
			fail("layer %s: implemented = %v, spec says %v", p.Name, ly.Implemented, p.Implemented)
		}
		// Capabilities: each served by exactly one layer, and only ones the
		// protocol provides.
		if len(ly.Provides) == 0 {
			fail("layer %s serves no capability", p.Name)
		}
		for _, pc := range ly.Provides {
			if !contains(p.Provides, pc) {
				fail("layer %s serves %s, which its spec does not provide", p.Name, pc)
			}
			if other, dup := served[pc]; dup {
				fail("capability %s served by both %s and %s", pc, other, p.Name)
			}
			served[pc] = p.Name
		}
		for _, pc := range p.Provides {
			if other, dup := provided[pc]; dup {
				fail("capability %s provided by both %s and %s", pc, other, p.Name)
			}
			provided[pc] = p.Name
		}

		// Assumptions hold.
		for _, as := range p.AssumeEnv {
			if !holds(as.Value, app.Env.Value.LookupPath(cue.ParsePath(as.Field))) {
				fail("layer %s: environment.%s does not satisfy %s", p.Name, as.Field, as.Text)
			}
		}
		for _, n := range app.Env.Nodes {
			for _, as := range p.AssumeNodes {
				if !holds(as.Value, n.Value.LookupPath(cue.ParsePath(as.Field))) {
					fail("layer %s: node class %s: %s does not satisfy %s", p.Name, n.Name, as.Field, as.Text)
				}
			}
		}
		eligible := total
		if len(p.AssumeHosts) > 0 {
			eligible = 0
			for _, n := range app.Env.Nodes {
				fits := true
				for _, as := range p.AssumeHosts {
					if !holds(as.Value, n.Value.LookupPath(cue.ParsePath(as.Field))) {
						fits = false
						break
					}
				}
				if fits {
					eligible += n.Count
				}
			}
			if eligible == 0 {
				fail("layer %s: no node class can host it", p.Name)
			}
		}

		// Parameters satisfy the protocol's constraints.
		params := ly.Params
		if params == nil {
			params = map[string]any{}
		}
		for _, pa := range p.Params {
			if _, ok := params[pa.Name]; !ok {
				fail("layer %s: parameter %s has no value", p.Name, pa.Name)
			}
		}
		v := p.Value.FillPath(cue.ParsePath("class"), classVal).
			FillPath(cue.ParsePath("env"), app.Facts).
			FillPath(cue.ParsePath("eligible"), eligible).
			FillPath(cue.ParsePath("params"), ctx.Encode(params))
		if err := v.LookupPath(cue.ParsePath("params")).Validate(cue.Concrete(true)); err != nil {
			fail("layer %s: params %v violate the spec (eligible %d): %v", p.Name, params, eligible, err)
		}
		if err := v.Err(); err != nil {
			fail("layer %s: instance with params %v is an error: %v", p.Name, params, err)
		}

		// The proof mentions the layer.
		want := fmt.Sprintf("%s layer: %s provides", ly.Layer, ly.Protocol)
		found := false
		for _, s := range cp.Proof {
			found = found || strings.HasPrefix(s.Claim, want)
		}
		if !found {
			fail("no proof step %q...", want)
		}
	}
	if len(cp.Stack) == 0 {
		fail("satisfiable with an empty stack")
	}
	if len(cp.Proof) < len(cp.Stack) {
		fail("%d proof steps for %d layers", len(cp.Proof), len(cp.Stack))
	}
	// The root capability of a data class is served.
	if _, ok := served["channel"]; !ok {
		fail("no layer serves the goal capability channel")
	}
	return errs
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
