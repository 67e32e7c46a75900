package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/diag"
	"github.com/rime-dev/rime/spec"
)

// maxParamValue bounds the upward search for an integer parameter. Every
// built-in integer parameter counts nodes or clones, far below it.
const maxParamValue = 256

// classInput is one class's requirement as the protocols see it.
type classInput struct {
	kind   string         // "data" or "compute"
	fields map[string]any // field -> concrete value
}

// keyFor renders the fields p reads, so instances are shared between
// classes that differ only in fields p ignores.
func (c classInput) keyFor(p *spec.Protocol) string {
	var b strings.Builder
	b.WriteString(c.kind)
	if p.AllClass {
		return b.String() + "|" + c.key()
	}
	for _, f := range p.ClassFields {
		fmt.Fprintf(&b, "|%s=%v", f, c.fields[f])
	}
	return b.String()
}

func (c classInput) key() string { return demand(c.fields).key() }

// readBy returns the class fields p reads (all of them if it reads the
// class as a whole).
func (c classInput) readBy(p *spec.Protocol) map[string]any {
	if p.AllClass {
		return c.fields
	}
	out := make(map[string]any, len(p.ClassFields))
	for _, f := range p.ClassFields {
		if v, ok := c.fields[f]; ok {
			out[f] = v
		}
	}
	return out
}

// instance is a protocol with its inputs and parameters filled in.
type instance struct {
	proto      *spec.Protocol
	params     map[string]any
	guarantees demand
	requires   []requirement
	costParts  map[string]float64
	cost       float64
	value      cue.Value
}

func (in *instance) paramKey() string { return demand(in.params).key() }

type requirement struct {
	Capability string
	Demand     demand
	Why        string
	Pos        diag.Pos
}

// withEnv returns p's spec as written with the plan's environment and p's
// eligible hosts filled in: the inputs every class shares, filled once per
// plan.
//
// Instances are evaluated on the spec as written rather than on the spec
// closed against #Protocol: re-checking the schema's disjunctions (the
// layer, each requirement's *{} | #Guarantees) on every evaluation cost
// several times the spec's own work. The load checked the spec against
// #Protocol; what an instance computes from its inputs is checked against
// it once concrete, on the small parts the planner reads
// (spec.InstanceChecker). An instance that fails is evaluated again
// closed against #Protocol (schemaError), so that it fails with the
// reason CUE gives there.
func (r *run) withEnv(p *spec.Protocol) cue.Value {
	if v, ok := r.specs[p.Name]; ok {
		return v
	}
	v := p.Instance.Unify(r.ctx.Encode(map[string]any{"env": r.envFor(p), "eligible": r.assume(p).eligible}))
	r.specs[p.Name] = v
	return v
}

// envFor returns the facts p reads (spec.Protocol.EnvPaths): every
// instance evaluates the env it is given again, and a spec reads one or
// two facts of a dozen. A path that leaves the facts keeps what it
// reached, so an instance fails as it would with all of them.
func (r *run) envFor(p *spec.Protocol) map[string]any {
	if p.AllEnv {
		return r.app.FactsData
	}
	t := pathTree{}
	for _, path := range p.EnvPaths {
		t.add(path)
	}
	return t.pick(r.app.FactsData)
}

// pathTree is a set of paths; a nil subtree ends a path, which takes the
// value there whole.
type pathTree map[string]pathTree

func (t pathTree) add(path []string) {
	if len(path) == 0 {
		return
	}
	sub, seen := t[path[0]]
	switch {
	case seen && sub == nil:
		// A prefix is taken whole already.
	case len(path) == 1:
		t[path[0]] = nil
	default:
		if sub == nil {
			sub = pathTree{}
			t[path[0]] = sub
		}
		sub.add(path[1:])
	}
}

func (t pathTree) pick(data map[string]any) map[string]any {
	out := make(map[string]any, len(t))
	for k, sub := range t {
		v, ok := data[k]
		if !ok {
			continue
		}
		if m, isMap := v.(map[string]any); isMap && sub != nil {
			v = sub.pick(m)
		}
		out[k] = v
	}
	return out
}

// paramsFor returns p's params filled for cls from p.ParamsOnly, cached;
// whole is true when p has no ParamsOnly and only a whole instance has
// them.
func (r *run) paramsFor(p *spec.Protocol, cls classInput) (params cue.Value, whole bool) {
	if !p.ParamsOnly.Exists() {
		return cue.Value{}, true
	}
	key := p.Name + "|" + cls.keyFor(p)
	if v, ok := r.params[key]; ok {
		return v, false
	}
	withEnv, ok := r.params[p.Name]
	if !ok {
		withEnv = p.ParamsOnly.Unify(r.ctx.Encode(map[string]any{"env": r.envFor(p), "eligible": r.assume(p).eligible}))
		r.params[p.Name] = withEnv
	}
	v := withEnv.Unify(r.ctx.Encode(map[string]any{"class": cls.readBy(p)}))
	r.params[key] = v
	return v, false
}

// base fills a protocol's inputs for one class.
func (r *run) base(p *spec.Protocol, cls classInput) (cue.Value, error) {
	v := r.instantiate(p, cls, nil)
	return v.v, v.err
}

// instantiate returns p filled for cls with the given parameters set: one
// CUE evaluation, cached, since CUE values are the expensive part of
// planning. Only the class fields p reads are filled, so an instance is
// exactly a function of its cache key.
func (r *run) instantiate(p *spec.Protocol, cls classInput, params map[string]any) valErr {
	key := p.Name + "|" + cls.keyFor(p) + "|" + demand(params).key()
	if v, ok := r.values[key]; ok {
		return v
	}
	in := map[string]any{"class": cls.readBy(p)}
	if len(params) > 0 {
		in["params"] = params
	}
	v := r.withEnv(p).Unify(r.ctx.Encode(in))
	err := v.Err()
	if err != nil {
		err = r.schemaError(p, cls, params, err, cue.Value.Err)
	} else {
		r.sound[p.Name+"|"+cls.keyFor(p)] = true
	}
	ve := valErr{v, err}
	r.values[key] = ve
	return ve
}

// schemaError evaluates p for cls with params closed against #Protocol,
// as the schema states the spec, and returns what check finds there, or
// err if it finds nothing. Only failures get here.
func (r *run) schemaError(p *spec.Protocol, cls classInput, params map[string]any, err error, check func(cue.Value) error) error {
	v := p.Value.Unify(r.ctx.Encode(map[string]any{
		"class": cls.fields, "env": r.app.FactsData, "eligible": r.assume(p).eligible,
	}))
	for _, name := range paramOrder(p, params) {
		v = v.FillPath(cue.MakePath(cue.Str("params"), cue.Str(name)), params[name])
	}
	if e := check(v); e != nil {
		return e
	}
	return err
}

// schemaBaseError returns the error of p's inputs for cls closed against
// #Protocol. The spec as written may take inputs that the schema refuses
// whatever the parameters (a guarantee computed out of its range); every
// instance then fails once concrete, and the protocol is reported as
// failing for its inputs, not for each choice of parameters.
func (r *run) schemaBaseError(p *spec.Protocol, cls classInput) error {
	key := p.Name + "|" + cls.keyFor(p)
	if err, ok := r.schemaBase[key]; ok {
		return err
	}
	err := r.schemaError(p, cls, nil, nil, cue.Value.Err)
	r.schemaBase[key] = err
	return err
}

// paramOrder lists the names set in params, choice parameters first, in
// the order the spec declares them.
func paramOrder(p *spec.Protocol, params map[string]any) []string {
	var out []string
	for _, kind := range []bool{false, true} {
		for _, pa := range p.Params {
			if _, ok := params[pa.Name]; ok && (pa.Kind == "int") == kind {
				out = append(out, pa.Name)
			}
		}
	}
	return out
}

type valErr struct {
	v   cue.Value
	err error
}

// candidates returns, for each combination of p's choice parameters, the
// instance with the smallest integer parameters whose guarantees meet all
// demands, cheapest first. A nil result with a non-empty reason says why
// there is none.
func (r *run) candidates(p *spec.Protocol, cls classInput, dems []demand) ([]*instance, string) {
	key := p.Name + "|" + cls.keyFor(p) + "|" + demandsKey(dems)
	if c, ok := r.cands[key]; ok {
		return c.insts, c.reason
	}
	insts, reason := r.solve(p, cls, dems)
	r.cands[key] = candResult{insts, reason}
	return insts, reason
}

type candResult struct {
	insts  []*instance
	reason string
}

func demandsKey(ds []demand) string {
	ks := make([]string, len(ds))
	for i, d := range ds {
		ks[i] = d.key()
	}
	sort.Strings(ks)
	return strings.Join(ks, "&")
}

func (r *run) solve(p *spec.Protocol, cls classInput, dems []demand) ([]*instance, string) {
	// The parameters' values are read from p's params alone where the
	// spec allows (paramsFor), and p is evaluated whole for its inputs
	// only if no instance comes out and none evaluated without error: a
	// conflict in p's inputs is one in every instance too, since a CUE
	// conflict stays one whatever is added, so an instance without error
	// shows the inputs have none, and one with an error leaves the
	// question to the evaluation of the inputs alone, as before.
	base, whole := r.paramsFor(p, cls)
	if whole {
		var err error
		if base, err = r.base(p, cls); err != nil {
			return nil, "its parameters cannot be satisfied: " + firstLine(err)
		}
	}
	var choiceParams, intParams []spec.Param
	for _, pa := range p.Params {
		if pa.Kind == "int" {
			intParams = append(intParams, pa)
		} else {
			choiceParams = append(choiceParams, pa)
		}
	}
	var out []*instance
	var reasons []string
	var combo func(i int, chosen map[string]any)
	combo = func(i int, chosen map[string]any) {
		if i < len(choiceParams) {
			pa := choiceParams[i]
			for _, c := range pa.Choices {
				var val any = c
				if pa.Kind == "bool" {
					val = c == "true"
				}
				if !r.admits(p, cls, base, pa.Name, val) {
					// The class already rules this choice out (a
					// parameter bound to a class field): trying it would
					// only fail, and failures are the costly path.
					continue
				}
				next := copyMap(chosen)
				next[pa.Name] = val
				combo(i+1, next)
			}
			return
		}
		inst, why, _ := r.ascend(p, cls, intParams, chosen, dems)
		if inst != nil {
			out = append(out, inst)
		} else if why != "" {
			reasons = append(reasons, why)
		}
	}
	combo(0, map[string]any{})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].cost != out[j].cost {
			return out[i].cost < out[j].cost
		}
		return out[i].paramKey() < out[j].paramKey()
	})
	if len(out) == 0 {
		if !whole && !r.sound[p.Name+"|"+cls.keyFor(p)] {
			if _, err := r.base(p, cls); err != nil {
				return nil, "its parameters cannot be satisfied: " + firstLine(err)
			}
		}
		if r.failed[p.Name+"|"+cls.keyFor(p)] {
			if err := r.schemaBaseError(p, cls); err != nil {
				return nil, "its parameters cannot be satisfied: " + firstLine(err)
			}
		}
		sort.Strings(reasons)
		return nil, strings.Join(dedupe(reasons), "; ")
	}
	return out, ""
}

// admits reports whether the parameter name of base (a spec instantiated
// for a class) can take val. Choices are read from the spec alone, before
// any class; a choice bound to a class field ("type: ... & class.type")
// has one value per class, and the others need not be tried.
func (r *run) admits(p *spec.Protocol, cls classInput, base cue.Value, name string, val any) bool {
	key := fmt.Sprintf("%s|%s|%s=%v", p.Name, cls.keyFor(p), name, val)
	if ok, seen := r.admitted[key]; seen {
		return ok
	}
	ok := true
	if pv := base.LookupPath(cue.MakePath(cue.Str("params"), cue.Str(name))); pv.Exists() {
		ck := p.Name + "|" + cls.keyFor(p) + "|" + name
		c, seen := r.choices[ck]
		if !seen {
			c.vals, c.ok = r.choicesIn(pv)
			r.choices[ck] = c
		}
		if c.ok {
			ok = slices.Contains(c.vals, val)
		} else {
			ok = pv.Unify(r.ctx.Encode(val)).Err() == nil
		}
	}
	r.admitted[key] = ok
	return ok
}

// feasibleInts lists, ascending, the values of an integer parameter that
// satisfy its constraints given the parameters already chosen.
func (r *run) feasibleInts(p *spec.Protocol, cls classInput, pa spec.Param, chosen map[string]any) []int64 {
	params, whole := r.paramsFor(p, cls)
	if !whole {
		chosen = nil // the constraint reads the inputs only
	}
	key := p.Name + "|" + cls.keyFor(p) + "|" + demand(chosen).key() + "|" + pa.Name
	if xs, ok := r.ints[key]; ok {
		return xs
	}
	if whole {
		params = r.instantiate(p, cls, chosen).v
	}
	pv := params.LookupPath(cue.MakePath(cue.Str("params"), cue.Str(pa.Name)))
	xs := r.intsIn(pv)
	if len(xs) == 0 {
		r.failed[p.Name+"|"+cls.keyFor(p)] = true
	}
	r.ints[key] = xs
	return xs
}

// maxIntTries bounds how many feasible values of an integer parameter are
// tried: the guarantees that depend on one grow with it in every built-in,
// so past a few feasible values a larger one will not help.
const maxIntTries = 8

// ascend searches the integer parameters upward, in written order, for
// the first values whose instance meets every demand. It also returns the
// last instance it built, so the caller can tell whether raising a
// parameter changes anything.
func (r *run) ascend(p *spec.Protocol, cls classInput, ints []spec.Param, chosen map[string]any, dems []demand) (*instance, string, *instance) {
	if len(ints) == 0 {
		inst, err := r.finishCached(p, cls, chosen)
		if err != nil {
			return nil, fmt.Sprintf("with %s: %s", demand(chosen), firstLine(err)), nil
		}
		if sf := meetsAll(r.l, inst.guarantees, dems); len(sf) > 0 {
			return nil, fmt.Sprintf("with %s it guarantees %s", demand(chosen), sf[0]), inst
		}
		return inst, "", inst
	}
	pa := ints[0]
	lastWhy := ""
	var prev *instance
	for _, x := range r.feasibleInts(p, cls, pa, chosen) {
		next := copyMap(chosen)
		next[pa.Name] = x
		inst, why, last := r.ascend(p, cls, ints[1:], next, dems)
		if inst != nil {
			return inst, "", inst
		}
		lastWhy = why
		// If raising the parameter left every guarantee that falls short
		// where it was, raising it further will not help either (the
		// guarantees are monotone in their parameters).
		if prev != nil && last != nil && sameShortfalls(r, prev, last, dems) {
			break
		}
		prev = last
	}
	if lastWhy == "" {
		return nil, fmt.Sprintf("no value of %s in 0..%d satisfies %s%s", pa.Name, maxParamValue, pa.Constraint, r.inputsNote(p)), prev
	}
	return nil, lastWhy, prev
}

// sameShortfalls reports whether b falls short exactly where a does, with
// the same guarantees on those dimensions.
func sameShortfalls(r *run, a, b *instance, dems []demand) bool {
	for _, sf := range meetsAll(r.l, b.guarantees, dems) {
		if fmt.Sprint(a.guarantees[sf.Dim]) != fmt.Sprint(b.guarantees[sf.Dim]) {
			return false
		}
	}
	return true
}

func (r *run) inputsNote(p *spec.Protocol) string {
	a := r.assume(p)
	return fmt.Sprintf(" (eligible = %d)", a.eligible)
}

// finishCached shares finished instances between demand sets: an
// instance depends only on the protocol, the class fields it reads and
// its parameters.
func (r *run) finishCached(p *spec.Protocol, cls classInput, params map[string]any) (*instance, error) {
	key := p.Name + "|" + cls.keyFor(p) + "|" + demand(params).key()
	if f, ok := r.finished[key]; ok {
		return f.in, f.err
	}
	in, err := r.finish(p, cls, params)
	if err != nil {
		r.failed[p.Name+"|"+cls.keyFor(p)] = true
	}
	r.finished[key] = finished{in, err}
	return in, err
}

type finished struct {
	in  *instance
	err error
}

// finish decodes what the planner needs from p's instance for cls with
// params.
func (r *run) finish(p *spec.Protocol, cls classInput, params map[string]any) (*instance, error) {
	v := r.instantiate(p, cls, params).v
	if err := concrete(v); err != nil {
		return nil, r.schemaError(p, cls, params, err, concrete)
	}
	// The parts are read as Go data, decoded once for the checker and
	// the planner both; data of an unexpected shape is read from the CUE
	// value as before, which words the errors.
	if parts, ok := decodeParts(v); ok {
		if err := r.checker.CheckData(parts); err != nil {
			return nil, r.schemaError(p, cls, params, err, concrete)
		}
		if in, ok := r.fromData(p, params, v, parts); ok {
			return in, nil
		}
	}
	if err := r.checker.Check(v); err != nil {
		return nil, r.schemaError(p, cls, params, err, concrete)
	}
	return r.fromCUE(p, params, v)
}

// fromCUE reads p's instance from its CUE value, field by field.
func (r *run) fromCUE(p *spec.Protocol, params map[string]any, v cue.Value) (*instance, error) {
	in := &instance{proto: p, params: params, value: v, costParts: map[string]float64{}}
	var err error
	if in.guarantees, err = r.decodeDemand(v.LookupPath(spec.Path("guarantees"))); err != nil {
		return nil, err
	}
	if in.requires, err = r.decodeRequires(v.LookupPath(spec.Path("requires"))); err != nil {
		return nil, err
	}
	for _, k := range []string{"rtt", "messages", "copies"} {
		f, err := v.LookupPath(cue.MakePath(cue.Str("cost"), cue.Str(k))).Float64()
		if err != nil {
			return nil, err
		}
		in.costParts[k] = f
		in.cost += f * r.l.Weights[k]
	}
	return in, nil
}

// decodeRequires reads an instance's requires; a spec that leaves them
// out requires nothing.
func (r *run) decodeRequires(v cue.Value) ([]requirement, error) {
	if !v.Exists() {
		return nil, nil
	}
	it, err := v.List()
	if err != nil {
		return nil, err
	}
	var out []requirement
	for it.Next() {
		rv := it.Value()
		var req requirement
		if req.Capability, err = rv.LookupPath(spec.Path("capability")).String(); err != nil {
			return nil, err
		}
		if req.Demand, err = r.decodeDemand(rv.LookupPath(spec.Path("guarantees"))); err != nil {
			return nil, err
		}
		if w := rv.LookupPath(spec.Path("why")); w.Exists() {
			req.Why, _ = w.String()
		}
		req.Pos = spec.PosOf(rv)
		out = append(out, req)
	}
	return out, nil
}

// concrete checks that the parts of an instance the planner reads are
// concrete. A part the spec leaves out is the schema's, which
// spec.InstanceChecker checks.
func concrete(v cue.Value) error {
	for _, f := range []string{"params", "guarantees", "requires", "cost"} {
		fv := v.LookupPath(cue.MakePath(cue.Str(f)))
		if !fv.Exists() {
			continue
		}
		if err := fv.Validate(cue.Concrete(true)); err != nil {
			return err
		}
	}
	return nil
}

// decodeDemand reads a guarantees struct by the kinds of its dimensions.
func (r *run) decodeDemand(v cue.Value) (demand, error) {
	d := demand{}
	if !v.Exists() {
		return d, nil
	}
	it, err := v.Fields()
	if err != nil {
		return nil, err
	}
	for it.Next() {
		dim := it.Selector().Unquoted()
		fv := it.Value()
		dd, ok := r.l.Dimensions[dim]
		if !ok {
			return nil, fmt.Errorf("guarantee %q is not a dimension in spec/cue/models.cue", dim)
		}
		switch dd.Kind {
		case "int":
			d[dim], err = fv.Int64()
		case "flag":
			d[dim], err = fv.Bool()
		case "set":
			var s []string
			err = fv.Decode(&s)
			d[dim] = s
		default:
			d[dim], err = fv.String()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dim, err)
		}
	}
	return d, nil
}

func meetsAll(l *spec.Loader, g demand, dems []demand) []shortfall {
	var out []shortfall
	for _, d := range dems {
		out = append(out, meets(l, g, d)...)
	}
	return out
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func dedupe(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
