package engine

import (
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/spec"
)

// Planner plans apps against one catalogue.
type Planner struct {
	l   *spec.Loader
	cat *spec.Catalogue
}

// New returns a planner. The loader must be the one the catalogue and the
// apps were loaded with.
func New(l *spec.Loader, cat *spec.Catalogue) *Planner { return &Planner{l: l, cat: cat} }

// run is the state of planning one app: memo tables only, dropped when
// Plan returns.
type run struct {
	*Planner
	ctx     *cue.Context
	app     *spec.App
	assumed map[string]*assumed
	specs   map[string]cue.Value
	// params holds paramsFor's values: under the protocol's name with
	// the plan's inputs, under protocol|class key with a class's too.
	params map[string]cue.Value
	// sound marks the protocol|class keys for which some instance
	// evaluated without error, so the inputs alone have none.
	sound    map[string]bool
	checker  *spec.InstanceChecker
	cands    map[string]candResult
	rules    map[string]ruleResult
	goals    map[string]goalResult
	finished map[string]finished
	values   map[string]valErr
	// failed marks the protocol|class keys for which an instance failed
	// once concrete or an integer parameter had no feasible value;
	// schemaBase holds their inputs' errors closed against #Protocol.
	failed     map[string]bool
	schemaBase map[string]error
	// admitted caches admits: protocol|class key|param=value.
	admitted map[string]bool
	// choices caches the values read off a choice parameter's constraint
	// (choicesIn): protocol|class key|param.
	choices map[string]readChoices
	ints    map[string][]int64
	bounds  map[string]float64
}

// Plan plans every class and computation of app.
func (p *Planner) Plan(app *spec.App) *Plan { return p.newRun(app).plan() }

func (p *Planner) newRun(app *spec.App) *run {
	return &run{
		Planner: p, ctx: p.l.Context(), app: app,
		assumed:    map[string]*assumed{},
		specs:      map[string]cue.Value{},
		params:     map[string]cue.Value{},
		sound:      map[string]bool{},
		checker:    p.l.NewInstanceChecker(),
		cands:      map[string]candResult{},
		rules:      map[string]ruleResult{},
		goals:      map[string]goalResult{},
		finished:   map[string]finished{},
		values:     map[string]valErr{},
		failed:     map[string]bool{},
		schemaBase: map[string]error{},
		admitted:   map[string]bool{},
		choices:    map[string]readChoices{},
		ints:       map[string][]int64{},
		bounds:     map[string]float64{},
	}
}

func (r *run) plan() *Plan {
	app := r.app
	out := &Plan{App: app.Name, Group: app.Group, Classes: []ClassPlan{}}
	// Theorems are evaluated in as few CUE evaluations as the order of
	// planning allows, each rule on every situation known by then (see
	// evaluateRules): every class before its search, then every stack
	// found and every weakening of the classes without one.
	sits := make([]situation, len(app.Classes))
	classes := make([]classInput, 0, len(app.Classes)+len(app.Compute))
	for i, c := range app.Classes {
		sits[i] = situation{cls: r.dataInput(c.Requirement)}
		classes = append(classes, sits[i].cls)
	}
	for _, c := range app.Compute {
		classes = append(classes, r.computeInput(c))
	}
	r.evaluateRules(sits...)
	r.evaluateGoals(classes...)
	outcomes := make([]outcome, len(app.Classes))
	sits = sits[:0]
	for i, c := range app.Classes {
		outcomes[i] = r.attempt(r.dataInput(c.Requirement))
		if o := outcomes[i]; o.sol != nil {
			sits = append(sits, situation{o.cls, stackLayers(r.stackOf(o.sol))})
		} else {
			for _, w := range r.weakenings(c.Requirement) {
				sits = append(sits, situation{cls: r.dataInput(w)})
			}
		}
	}
	r.evaluateRules(sits...)
	classes = classes[:0]
	for _, sit := range sits {
		if sit.layers == nil {
			classes = append(classes, sit.cls)
		}
	}
	r.evaluateGoals(classes...)
	for i, c := range app.Classes {
		out.Classes = append(out.Classes, r.planData(c, outcomes[i]))
	}
	for _, c := range app.Compute {
		out.Compute = append(out.Compute, r.planCompute(c))
	}
	return out
}

// dataInput encodes a data class requirement for the protocols.
func (r *run) dataInput(req spec.Requirement) classInput {
	f := map[string]any{
		"consistency": req.Consistency, "durability": int64(req.Durability),
		"available": req.Available, "confidential": req.Confidential, "type": req.Type,
	}
	return classInput{kind: "data", fields: f}
}

func (r *run) computeInput(c spec.Compute) classInput {
	f := map[string]any{"offload": c.Offload, "clones": int64(c.Clones), "module": c.Module}
	return classInput{kind: "compute", fields: f}
}

// goal is the root of a class's search: a capability and its demand.
type goalResult struct {
	capability string
	demand     demand
	err        error
}

// rootGoal evaluates spec/cue/goals.cue for one class.
func (r *run) rootGoal(cls classInput) goalResult {
	r.evaluateGoals(cls)
	return r.goals[cls.key()]
}

// evaluateGoals evaluates, in one CUE evaluation, the goals of every
// class whose goal is not known yet.
func (r *run) evaluateGoals(classes ...classInput) {
	items := map[string]any{}
	todo := map[string]classInput{}
	var keys []string
	for _, cls := range classes {
		key := cls.key()
		if _, ok := r.goals[key]; ok {
			continue
		}
		if _, ok := todo[key]; ok {
			continue
		}
		items[key] = map[string]any{"kind": cls.kind, "class": cls.fields}
		todo[key] = cls
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return
	}
	batch := r.l.GoalBatch().Unify(r.ctx.Encode(map[string]any{"batchIn": items}))
	for _, key := range keys {
		g, err := r.decodeGoal(batch.LookupPath(cue.MakePath(cue.Str("batchOut"), cue.Str(key))))
		if err != nil {
			// Evaluated alone, so that the error is worded as the goal
			// writes it.
			g = r.evaluateGoal(todo[key])
		}
		r.goals[key] = g
	}
}

// evaluateGoal evaluates one class's goal.
func (r *run) evaluateGoal(cls classInput) goalResult {
	gv := r.l.Schema().LookupPath(cue.MakePath(cue.Str("goals"), cue.Str(cls.kind))).
		FillPath(spec.Path("class"), cls.fields)
	g, err := r.decodeGoal(gv)
	g.err = err
	return g
}

func (r *run) decodeGoal(gv cue.Value) (goalResult, error) {
	var g goalResult
	var err error
	if g.capability, err = gv.LookupPath(spec.Path("capability")).String(); err != nil {
		return g, err
	}
	g.demand, err = r.decodeDemand(gv.LookupPath(spec.Path("guarantees")))
	return g, err
}

// fired is a theorem that fires on a situation, with its reason.
type fired struct {
	th     spec.Theorem
	reason string
}

// situation is a class with the layers of a chosen stack (nil before the
// search): what theorems are evaluated on.
type situation struct {
	cls    classInput
	layers []string
}

// fire evaluates every theorem on a data class, with the layers of a
// chosen stack (nil before the search). Each rule's result is kept under
// the inputs it reads (spec.Theorem.Reads), so a rule is evaluated once
// per distinct projection: FLP once per set of layers, CAP once per
// (consistency, available), and so on. CUE evaluation is the planner's
// main cost.
func (r *run) fire(cls classInput, layers []string) []fired {
	r.evaluateRules(situation{cls, layers})
	var out []fired
	for _, th := range r.l.Theorems {
		if res := r.rules[th.Name+"|"+projection(th, cls, layers)]; res.fires {
			out = append(out, fired{th: th, reason: res.reason})
		}
	}
	return out
}

// evaluateRules evaluates, in one CUE evaluation, every rule on every
// situation whose result is not known yet. A rule reads only the class
// fields in its projection (and the stack if it reads it), so its result
// is exactly a function of its key.
func (r *run) evaluateRules(sits ...situation) {
	items := map[string]any{}
	var keys []string
	for _, sit := range sits {
		for _, th := range r.l.Theorems {
			key := th.Name + "|" + projection(th, sit.cls, sit.layers)
			if _, ok := r.rules[key]; ok {
				continue
			}
			if _, ok := items[key]; ok {
				continue
			}
			items[key] = map[string]any{"theorem": th.Name, "s": situationData(th, sit)}
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return
	}
	batch := r.l.RuleBatch().Unify(r.ctx.Encode(map[string]any{"batchEnv": r.app.FactsData, "batchIn": items}))
	for _, key := range keys {
		tv := batch.LookupPath(cue.MakePath(cue.Str("batchOut"), cue.Str(key)))
		fires, err := tv.LookupPath(cue.MakePath(cue.Str("fires"))).Bool()
		if err != nil {
			// Evaluated alone, so that the reason names the rule's
			// fields as the rule writes them.
			item := items[key].(map[string]any)
			r.rules[key] = r.evaluateRule(item["theorem"].(string), item["s"].(map[string]any))
			continue
		}
		res := ruleResult{fires: fires}
		if fires {
			res.reason, _ = tv.LookupPath(cue.MakePath(cue.Str("reason"))).String()
		}
		r.rules[key] = res
	}
}

// evaluateRule evaluates one rule on a situation.
func (r *run) evaluateRule(name string, s map[string]any) ruleResult {
	th := r.theorem(name)
	in := map[string]any{"env": r.app.FactsData}
	for k, v := range s {
		in[k] = v
	}
	tv := r.l.Rules().LookupPath(cue.MakePath(cue.Str("theorems"), cue.Str(name))).
		FillPath(spec.Path("s"), in)
	var res ruleResult
	fires, err := tv.LookupPath(spec.Path("fires")).Bool()
	res.fires = err == nil && fires
	if res.fires {
		res.reason, _ = tv.LookupPath(spec.Path("reason")).String()
	}
	if err != nil && th.Effect == spec.Forbid {
		// A rule that cannot be decided must not pass silently: a
		// forbid rule then blocks, with the evaluation error as its
		// reason, so the broken rule shows in the plan.
		res.fires, res.reason = true, "the rule could not be evaluated: "+firstLine(err)
	}
	return res
}

func (r *run) theorem(name string) spec.Theorem {
	for _, th := range r.l.Theorems {
		if th.Name == name {
			return th
		}
	}
	return spec.Theorem{}
}

// situationData is what a rule reads of a situation: the class fields
// and the stack in its projection, or all of them when it reads the
// situation as a whole. The environment is the plan's, filled once.
func situationData(th spec.Theorem, sit situation) map[string]any {
	layers := sit.layers
	if layers == nil {
		layers = []string{}
	}
	if th.Reads == nil {
		return map[string]any{"class": sit.cls.fields, "stack": map[string]any{"layers": layers}}
	}
	class := map[string]any{}
	out := map[string]any{"class": class}
	for _, f := range th.Reads {
		if f == "stack" {
			out["stack"] = map[string]any{"layers": layers}
		} else if v, ok := sit.cls.fields[f]; ok {
			class[f] = v
		}
	}
	return out
}

type ruleResult struct {
	fires  bool
	reason string
}

// projection renders the inputs a theorem reads.
func projection(th spec.Theorem, cls classInput, layers []string) string {
	if th.Reads == nil {
		return cls.key() + "|" + joinComma(layers)
	}
	var b strings.Builder
	for _, f := range th.Reads {
		if f == "stack" {
			fmt.Fprintf(&b, "stack=%s;", joinComma(layers))
			continue
		}
		fmt.Fprintf(&b, "%s=%v;", f, cls.fields[f])
	}
	return b.String()
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
