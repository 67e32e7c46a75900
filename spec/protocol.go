package spec

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	"github.com/rime-dev/rime/diag"
)

// Protocol is one protocol spec: the static facts decoded for the planner,
// and the CUE value it instantiates once per class.
type Protocol struct {
	Name        string   `json:"name"`
	Layer       string   `json:"layer"`
	Summary     string   `json:"summary"`
	Cite        string   `json:"cite,omitempty"`
	Implemented bool     `json:"implemented"`
	Provides    []string `json:"provides"`
	// Source is the spec file the protocol was read from.
	Source string   `json:"source"`
	Pos    diag.Pos `json:"-"`

	Params []Param `json:"params"`
	// Assumptions on the environment, on every node, and on hosts.
	AssumeEnv   []Assumption `json:"assumes_environment,omitempty"`
	AssumeNodes []Assumption `json:"assumes_nodes,omitempty"`
	AssumeHosts []Assumption `json:"assumes_hosts,omitempty"`

	// ClassFields are the class fields the spec reads (class.X); nil with
	// AllClass set when it reads `class` as a whole. The planner caches
	// instances by these fields only.
	ClassFields []string `json:"-"`
	AllClass    bool     `json:"-"`
	// EnvPaths are the paths into `env` the spec reads (env.count.keepers
	// is ["count", "keepers"]); nil with AllEnv set when it reads `env`
	// otherwise than through such paths. Every instance evaluates the
	// env it is given again, so the planner gives it these paths only.
	EnvPaths [][]string `json:"-"`
	AllEnv   bool       `json:"-"`
	// MayRequire lists every capability named in the spec's `requires`,
	// whatever its conditions: a superset of what any instance requires,
	// known without instantiating, so capabilities can be ordered cheaply.
	MayRequire []string `json:"may_require"`

	Value cue.Value `json:"-"`
	// Written is the spec file as written, before it is closed against
	// #Protocol: positions are looked up here, since a value derived from
	// an input (durability: class.durability) reports the schema's
	// position once unified. The planner instantiates it, and checks what
	// each instance computes with an InstanceChecker.
	Written cue.Value `json:"-"`
	// Instance is what the planner instantiates: Written without the
	// fields that describe the protocol rather than compute its instances
	// (see instanceFile), or Written itself.
	Instance cue.Value `json:"-"`
	// ParamsOnly, when it exists, is the spec's params alone with the
	// inputs (see paramsFile): every parameter's constraint reads the
	// inputs only, so filled with one class's inputs it is exactly the
	// params of any instance for that class, at a fraction of an
	// instance's evaluation. The planner reads which values the
	// parameters admit from it.
	ParamsOnly cue.Value `json:"-"`
}

// PosOf returns where path (e.g. "guarantees.durability") is written in
// the spec file, or where the protocol's name is if it is not.
func (p *Protocol) PosOf(path string) diag.Pos {
	if pos := PosOf(p.Written.LookupPath(Path(path))); pos.IsValid() {
		return pos
	}
	return p.Pos
}

// Param is one parameter and the values the planner may try.
type Param struct {
	Name string `json:"name"`
	// Kind is "int", "string" or "bool".
	Kind string `json:"kind"`
	// Choices are the alternatives of a string or bool parameter, in the
	// order written; empty for ints, which are searched upward.
	Choices    []string `json:"choices,omitempty"`
	Constraint string   `json:"constraint"`
	Pos        diag.Pos `json:"-"`
}

// Assumption is one field of an assumes pattern.
type Assumption struct {
	Field string    `json:"field"`
	Text  string    `json:"pattern"`
	Pos   diag.Pos  `json:"-"`
	Value cue.Value `json:"-"`
}

// inputs are appended to each spec file before parsing, so the author can
// refer to them without declaring them. They go at the end so that every
// line and column the author wrote keeps its position.
const inputs = "\n// inputs, filled by the planner\nclass: _\nenv: _\neligible: _\n"

// LoadProtocol parses and checks one protocol spec. name is how positions
// name the file (e.g. protocols/raft/spec.cue).
func (l *Loader) LoadProtocol(name string, src []byte) (*Protocol, error) {
	buf := make([]byte, 0, len(src)+len(inputs))
	buf = append(append(buf, src...), inputs...)
	f, err := parser.ParseFile(name, buf, parser.ParseComments)
	if err != nil {
		return nil, Diagnose("protocol.syntax", err)
	}
	file := l.ctx.BuildFile(f, cue.Scope(l.schema))
	if err := file.Err(); err != nil {
		return nil, Diagnose("protocol.invalid", err)
	}
	v := l.schema.LookupPath(Path("#Protocol")).Unify(file)
	if err := v.Validate(); err != nil {
		return nil, Diagnose("protocol.invalid", err)
	}
	p := &Protocol{Source: name, Value: v, Written: file, Instance: file, Pos: diag.Pos{File: name, Line: 1, Col: 1}}
	if inst, ok := l.instanceFile(name, buf, f); ok {
		p.Instance = inst
	}
	if params, ok := l.paramsFile(name, buf, f); ok {
		p.ParamsOnly = params
	}
	var ds diag.Diagnostics
	str := func(field string, dst *string, required bool) {
		fv := v.LookupPath(Path(field))
		s, err := fv.String()
		if err != nil && (required || fv.Exists()) {
			ds.Add("protocol.invalid", PosOf(fv), "%s: %s must be a concrete string", name, field)
		}
		*dst = s
	}
	str("name", &p.Name, true)
	str("layer", &p.Layer, true)
	str("summary", &p.Summary, true)
	if c := v.LookupPath(Path("cite")); c.Exists() {
		str("cite", &p.Cite, false)
	}
	impl, err := v.LookupPath(Path("implemented")).Bool()
	if err != nil {
		ds.Add("protocol.invalid", PosOf(v.LookupPath(Path("implemented"))), "%s: implemented must be true or false", name)
	}
	p.Implemented = impl
	if err := v.LookupPath(Path("provides")).Decode(&p.Provides); err != nil {
		ds.Add("protocol.invalid", PosOf(v.LookupPath(Path("provides"))), "%s: provides must be a concrete list of capabilities: %v", name, err)
	}
	if np := v.LookupPath(Path("name")); np.Exists() {
		p.Pos = PosOf(np)
	}
	// Positions and texts come from the file as written, kinds and
	// choices from the value closed against #Protocol.
	p.AssumeEnv = assumptions(file.LookupPath(Path("assumes.environment")), "")
	p.AssumeNodes = assumptions(file.LookupPath(Path("assumes.nodes")), "")
	p.AssumeHosts = assumptions(file.LookupPath(Path("assumes.hosts")), "")
	p.Params, err = decodeParams(v.LookupPath(Path("params")), file.LookupPath(Path("params")))
	if err != nil {
		ds.Add("protocol.invalid", PosOf(v.LookupPath(Path("params"))), "%s: %v", name, err)
	}
	p.ClassFields, p.AllClass = classRefs(f)
	p.EnvPaths, p.AllEnv = envRefs(f)
	p.MayRequire = requiredCapabilities(f)
	return p, ds.Err()
}

// descriptive are the top-level fields of a spec that the planner decodes
// once at load and never reads from an instance.
func descriptive(label string) bool {
	switch label {
	case "name", "layer", "summary", "cite", "implemented", "provides", "assumes":
		return true
	}
	return false
}

// instanceFile compiles the spec with its descriptive fields left out, so
// that instantiating it does not evaluate them again (the assumes
// patterns' disjunctions above all). It does so only when those fields
// refer to no other field or input, so that they cannot fail with an
// instance's inputs, and nothing else refers to them, so that leaving them
// out changes no other field's value. The fields are blanked out in
// place, so every other field keeps its position.
func (l *Loader) instanceFile(name string, src []byte, f *ast.File) (cue.Value, bool) {
	labels := map[string]bool{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.Field); ok {
			if n, _, err := ast.LabelName(fd.Label); err == nil {
				labels[n] = true
			}
		}
	}
	refersTo := func(n ast.Node, match func(string) bool) bool {
		found := false
		ast.Walk(n, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && match(id.Name) {
				found = true
			}
			return !found
		}, nil)
		return found
	}
	out := append([]byte(nil), src...)
	blanked := false
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			if _, imp := d.(*ast.ImportDecl); imp || isComment(d) {
				continue
			}
			return cue.Value{}, false // an embedding, a comprehension, a let
		}
		n, _, err := ast.LabelName(fd.Label)
		if err != nil {
			return cue.Value{}, false
		}
		if !descriptive(n) {
			if refersTo(fd.Value, descriptive) {
				return cue.Value{}, false
			}
			continue
		}
		if refersTo(fd.Value, func(id string) bool { return labels[id] }) {
			return cue.Value{}, false
		}
		for i := fd.Pos().Offset(); i < fd.End().Offset(); i++ {
			if out[i] != '\n' {
				out[i] = ' '
			}
		}
		blanked = true
	}
	if !blanked {
		return cue.Value{}, false
	}
	g, err := parser.ParseFile(name, out, parser.ParseComments)
	if err != nil {
		return cue.Value{}, false
	}
	v := l.ctx.BuildFile(g, cue.Scope(l.schema))
	return v, v.Err() == nil
}

// paramsFile compiles the spec's params and inputs alone. It does so only
// when the spec is written as plain top-level fields (a comprehension or
// an embedding could add to params, or fail whatever the parameters) and
// every parameter's constraint refers to nothing but the inputs (class,
// env, eligible) and CUE's predeclared names: then no other field, and no
// other parameter's value, can change which values a parameter admits.
// Like instanceFile, it blanks the other fields out in place.
func (l *Loader) paramsFile(name string, src []byte, f *ast.File) (cue.Value, bool) {
	out := append([]byte(nil), src...)
	found := false
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			if _, imp := d.(*ast.ImportDecl); imp || isComment(d) {
				continue
			}
			return cue.Value{}, false
		}
		n, isIdent, err := ast.LabelName(fd.Label)
		if err != nil || !isIdent || fd.Constraint != token.ILLEGAL {
			return cue.Value{}, false
		}
		switch n {
		case "params":
			if !readsInputsOnly(fd.Value) {
				return cue.Value{}, false
			}
			found = true
			continue
		case "class", "env", "eligible":
			continue
		}
		for i := fd.Pos().Offset(); i < fd.End().Offset(); i++ {
			if out[i] != '\n' {
				out[i] = ' '
			}
		}
	}
	if !found {
		return cue.Value{}, false
	}
	g, err := parser.ParseFile(name, out, parser.ParseComments)
	if err != nil {
		return cue.Value{}, false
	}
	v := l.ctx.BuildFile(g, cue.Scope(l.schema))
	return v, v.Err() == nil
}

// predeclared are the names a parameter's constraint may refer to besides
// the inputs: CUE's types and builtin functions.
var predeclared = map[string]bool{
	"_": true, "int": true, "uint": true, "number": true, "float": true, "string": true, "bytes": true,
	"bool": true, "null": true, "div": true, "mod": true, "quo": true, "rem": true, "len": true,
	"close": true, "and": true, "or": true,
}

// readsInputsOnly reports whether params, as written, refers to nothing
// but the inputs and predeclared names, declares only plain fields, and
// declares no field that would shadow one of those names.
func readsInputsOnly(x ast.Expr) bool {
	ok := true
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		ast.Walk(n, func(n ast.Node) bool {
			if !ok {
				return false
			}
			switch x := n.(type) {
			case *ast.Ident:
				switch {
				case x.Name == "class", x.Name == "env", x.Name == "eligible", predeclared[x.Name]:
				default:
					ok = false
				}
			case *ast.SelectorExpr:
				walk(x.X) // the selected name is no reference
				return false
			case *ast.Field:
				n, isIdent, err := ast.LabelName(x.Label)
				if err != nil || !isIdent || n == "class" || n == "env" || n == "eligible" || predeclared[n] {
					ok = false
					return false
				}
				walk(x.Value) // the label is no reference
				return false
			case *ast.StructLit:
				for _, d := range x.Elts {
					if _, isField := d.(*ast.Field); !isField {
						ok = false // a let, an embedding, a comprehension
					}
				}
			case *ast.Comprehension, *ast.LetClause, *ast.Alias, *ast.ForClause:
				ok = false
			}
			return ok
		}, nil)
	}
	walk(x)
	return ok
}

func isComment(d ast.Decl) bool {
	_, ok := d.(*ast.CommentGroup)
	return ok
}

// assumptions flattens a pattern into its leaf fields, in written order.
func assumptions(v cue.Value, prefix string) []Assumption {
	if !v.Exists() {
		return nil
	}
	var out []Assumption
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	for it.Next() {
		f := prefix + it.Selector().Unquoted()
		fv := it.Value()
		if fv.IncompleteKind() == cue.StructKind {
			out = append(out, assumptions(fv, f+".")...)
			continue
		}
		if fv.IncompleteKind() == cue.TopKind {
			continue // `_`: assumes nothing
		}
		out = append(out, Assumption{Field: f, Text: fmt.Sprint(fv), Pos: PosOf(fv), Value: fv})
	}
	return out
}

func decodeParams(v, written cue.Value) ([]Param, error) {
	it, err := v.Fields()
	if err != nil {
		return nil, err
	}
	var out []Param
	for it.Next() {
		fv := it.Value()
		wv := written.LookupPath(cue.MakePath(it.Selector()))
		p := Param{Name: it.Selector().Unquoted(), Constraint: fmt.Sprint(wv), Pos: PosOf(wv)}
		switch k := paramKind(fv); {
		case k == cue.IntKind || k == cue.NumberKind:
			p.Kind = "int"
		case k == cue.StringKind:
			p.Kind = "string"
			p.Choices = choices(fv)
		case k == cue.BoolKind:
			p.Kind = "bool"
			p.Choices = []string{"false", "true"}
		default:
			return nil, fmt.Errorf("params.%s: a parameter is an int, a string or a bool, not %v", p.Name, k)
		}
		if p.Kind == "string" && len(p.Choices) == 0 {
			return nil, fmt.Errorf("params.%s: a string parameter must list its choices as a disjunction (\"a\" | \"b\")", p.Name)
		}
		out = append(out, p)
	}
	return out, nil
}

// paramKind finds a parameter's kind. Before the planner fills the
// inputs, a bound such as `<=eligible` is not yet evaluable and the value
// as a whole has no kind, so look through the conjunction for one.
func paramKind(v cue.Value) cue.Kind {
	switch k := v.IncompleteKind(); k {
	case cue.IntKind, cue.NumberKind, cue.StringKind, cue.BoolKind:
		return k
	}
	op, args := v.Expr()
	if op != cue.AndOp {
		return cue.BottomKind
	}
	found := cue.BottomKind
	for _, a := range args {
		switch k := paramKind(a); k {
		case cue.IntKind, cue.StringKind, cue.BoolKind:
			return k
		case cue.NumberKind:
			found = k // `<=3` alone says number; keep looking for `int`
		}
	}
	return found
}

// choices lists the alternatives of a string disjunction, looking through
// the conjunction with the schema; a concrete string is its only choice.
func choices(v cue.Value) []string {
	if s, err := v.String(); err == nil {
		return []string{s}
	}
	op, args := v.Expr()
	switch op {
	case cue.AndOp:
		for _, a := range args {
			if c := choices(a); len(c) > 0 {
				return c
			}
		}
		return nil
	case cue.OrOp:
	default:
		return nil
	}
	var out []string
	for _, a := range args {
		s, err := a.String()
		if err != nil {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// classRefs finds the fields of `class` a spec reads.
func classRefs(f *ast.File) (fields []string, all bool) {
	seen := map[string]bool{}
	ast.Walk(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok && id.Name == "class" {
				if sel, ok := x.Sel.(*ast.Ident); ok {
					seen[sel.Name] = true
					return false
				}
			}
		case *ast.Ident:
			if x.Name == "class" {
				all = true
			}
		case *ast.Field:
			// The declaration `class: _` itself is not a read.
			if id, ok := x.Label.(*ast.Ident); ok && id.Name == "class" {
				if _, top := x.Value.(*ast.Ident); top {
					return false
				}
			}
		}
		return true
	}, nil)
	for k := range seen {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	return fields, all
}

// envRefs finds the paths into `env` a spec reads. A reference to `env`
// other than at the start of a chain of selectors (env alone, an index, a
// comprehension over it, a selector named env) reads it whole. A field
// that shadows env only adds paths, which is safe.
func envRefs(f *ast.File) (paths [][]string, all bool) {
	seen := map[string][]string{}
	ast.Walk(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.SelectorExpr:
			var path []string
			var e ast.Expr = x
			for {
				sel, ok := e.(*ast.SelectorExpr)
				if !ok {
					break
				}
				name, _, err := ast.LabelName(sel.Sel)
				if err != nil {
					return true // a reference inside reads env whole
				}
				path = append([]string{name}, path...)
				e = sel.X
			}
			if id, ok := e.(*ast.Ident); ok && id.Name == "env" {
				seen[strings.Join(path, ".")] = path
				return false
			}
		case *ast.Ident:
			if x.Name == "env" {
				all = true
			}
		case *ast.Field:
			// The declaration `env: _` itself is not a read.
			if id, ok := x.Label.(*ast.Ident); ok && id.Name == "env" {
				if _, top := x.Value.(*ast.Ident); top {
					return false
				}
			}
		}
		return true
	}, nil)
	if all {
		return nil, true
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		paths = append(paths, seen[k])
	}
	return paths, false
}

// requiredCapabilities collects the string literals given as `capability`
// anywhere under the top-level `requires` field.
func requiredCapabilities(f *ast.File) []string {
	seen := map[string]bool{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if id, ok := fd.Label.(*ast.Ident); !ok || id.Name != "requires" {
			continue
		}
		ast.Walk(fd.Value, func(n ast.Node) bool {
			inner, ok := n.(*ast.Field)
			if !ok {
				return true
			}
			if id, ok := inner.Label.(*ast.Ident); ok && id.Name == "capability" {
				if lit, ok := inner.Value.(*ast.BasicLit); ok {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						seen[s] = true
					}
				}
			}
			return true
		}, nil)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Catalogue is every protocol the planner may use.
type Catalogue struct {
	Protocols []*Protocol
	byName    map[string]*Protocol
}

// Lookup returns the protocol with the given name.
func (c *Catalogue) Lookup(name string) (*Protocol, bool) {
	p, ok := c.byName[name]
	return p, ok
}

// Providers returns the protocols that provide capability, by name.
func (c *Catalogue) Providers(capability string) []*Protocol {
	var out []*Protocol
	for _, p := range c.Protocols {
		for _, pc := range p.Provides {
			if pc == capability {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// NewCatalogue checks protocols for duplicate names and returns them
// sorted by name, the order the planner tries them in.
func (l *Loader) NewCatalogue(ps ...*Protocol) (*Catalogue, error) {
	c := &Catalogue{byName: map[string]*Protocol{}}
	var ds diag.Diagnostics
	for _, p := range ps {
		if q, dup := c.byName[p.Name]; dup {
			ds = append(ds, diag.Diagnostic{Code: "catalogue.duplicate", Pos: p.Pos, Related: []diag.Pos{q.Pos},
				Summary: fmt.Sprintf("protocol %q is defined twice (also in %s)", p.Name, q.Source)})
			continue
		}
		c.byName[p.Name] = p
		c.Protocols = append(c.Protocols, p)
	}
	sort.Slice(c.Protocols, func(i, j int) bool { return c.Protocols[i].Name < c.Protocols[j].Name })
	return c, ds.Err()
}

// Implemented returns the catalogue restricted to protocols whose Go
// implementation exists: what `rime up` can deploy.
func (l *Loader) Implemented(c *Catalogue) (*Catalogue, error) {
	var ps []*Protocol
	for _, p := range c.Protocols {
		if p.Implemented {
			ps = append(ps, p)
		}
	}
	return l.NewCatalogue(ps...)
}

// LoadCatalogue loads every file matching */spec.cue in fsys, naming each
// by prefix + its path, and returns the catalogue.
func (l *Loader) LoadCatalogue(fsys fs.FS, prefix string) (*Catalogue, error) {
	ps, err := l.LoadProtocols(fsys, prefix)
	if err != nil {
		return nil, err
	}
	return l.NewCatalogue(ps...)
}

// LoadProtocols loads every */spec.cue in fsys, collecting all problems.
func (l *Loader) LoadProtocols(fsys fs.FS, prefix string) ([]*Protocol, error) {
	names, err := fs.Glob(fsys, "*/spec.cue")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var ps []*Protocol
	var ds diag.Diagnostics
	for _, n := range names {
		src, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		p, err := l.LoadProtocol(path.Join(prefix, n), src)
		if err != nil {
			if d, ok := err.(diag.Diagnostics); ok {
				ds = append(ds, d...)
				continue
			}
			return nil, err
		}
		if dir, want := path.Base(path.Dir(n)), strings.ReplaceAll(p.Name, "-", ""); dir != want {
			ds = append(ds, diag.Diagnostic{Code: "protocol.name", Pos: p.Pos,
				Summary: fmt.Sprintf("protocol %q lives in directory %q: name the directory %q (the name without dashes)", p.Name, dir, want)})
		}
		ps = append(ps, p)
	}
	return ps, ds.Err()
}
