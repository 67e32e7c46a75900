package spec

import (
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// InstanceChecker checks what concrete instances of specs compute from
// their inputs (guarantees, requires, cost) against #Protocol. The load
// checked each spec as written, but a value computed from the class or the
// environment (durability: class.durability - 1) is known only once they
// are filled.
//
// Checking these parts as plain data is far cheaper than evaluating every
// instance closed against #Protocol, and cheaper still piece by piece,
// since instances of one spec share most pieces: each guarantee on its
// own (when #Guarantees constrains each field independently of the
// others, which newInstanceSchema verifies), each requirement on its own
// (requires is a list of independent elements), and the cost. Each
// distinct piece is checked once per checker. A checker is for one
// planning run; it is not safe for concurrent use.
type InstanceChecker struct {
	l    *Loader
	seen map[string]error
}

// NewInstanceChecker returns a checker with nothing checked yet.
func (l *Loader) NewInstanceChecker() *InstanceChecker {
	return &InstanceChecker{l: l, seen: map[string]error{}}
}

// instanceSchema is #Protocol's schema for the parts of an instance the
// planner reads and that depend on its inputs, besides params (which the
// planner chooses itself among the values their constraints admit).
type instanceSchema struct {
	guarantees, requires, cost cue.Value
	// guarantee, when set, checks guarantees one field at a time.
	guarantee *fieldwise
	// requirement, when byElement, checks requires one element at a
	// time; and within an element, when its guarantees are a fieldwise
	// struct (or {} by default), them one field at a time, and the rest of
	// the element as a whole.
	requirement cue.Value
	byElement   bool
	reqDemand   *fieldwise
}

// fieldwise is a struct schema of independent optional fields: a value is
// an instance of it exactly when each of its fields is.
type fieldwise struct {
	name   string // the definition it is, which names its pieces
	schema cue.Value
}

func newInstanceSchema(schema cue.Value) instanceSchema {
	protocol := schema.LookupPath(cue.MakePath(cue.Def("#Protocol")))
	at := func(f string) cue.Value { return protocol.LookupPath(cue.MakePath(cue.Str(f))) }
	s := instanceSchema{guarantees: at("guarantees"), requires: at("requires"), cost: at("cost")}
	s.guarantee = fieldwiseDef(schema, fieldValue(s.guarantees.Source()))
	// An empty list is an instance of requires only if it has no
	// elements of its own: then every element is checked alike.
	s.requirement = s.requires.LookupPath(cue.MakePath(cue.AnyIndex))
	s.byElement = s.requirement.Exists() &&
		s.requires.Unify(s.requires.Context().CompileString("[]")).Validate(cue.Concrete(true)) == nil
	if list, ok := fieldValue(s.requires.Source()).(*ast.ListLit); ok && s.byElement && len(list.Elts) == 1 {
		if e, ok := list.Elts[0].(*ast.Ellipsis); ok {
			if lit := structLit(schema, e.Type); siblingFree(lit) {
				s.reqDemand = demandField(schema, lit)
			}
		}
	}
	return s
}

// fieldValue returns a field's value expression.
func fieldValue(n ast.Node) ast.Node {
	if f, ok := n.(*ast.Field); ok {
		return f.Value
	}
	return n
}

// fieldwiseDef returns the definition n refers to if its fields are
// independent and optional.
func fieldwiseDef(schema cue.Value, n ast.Node) *fieldwise {
	id, ok := n.(*ast.Ident)
	if !ok || !independentFields(structLit(schema, id)) {
		return nil
	}
	return &fieldwise{name: id.Name, schema: schema.LookupPath(cue.MakePath(cue.Def(id.Name)))}
}

// demandField finds a requirement's `guarantees: *{} | #D` (or `#D`)
// with #D fieldwise.
func demandField(schema cue.Value, lit *ast.StructLit) *fieldwise {
	for _, d := range lit.Elts {
		f := d.(*ast.Field)
		if name, _, _ := ast.LabelName(f.Label); name != "guarantees" {
			continue
		}
		x := f.Value
		if or, ok := x.(*ast.BinaryExpr); ok && or.Op == token.OR {
			empty := or.X
			if u, ok := empty.(*ast.UnaryExpr); ok && u.Op == token.MUL {
				empty = u.X
			}
			if e, ok := empty.(*ast.StructLit); !ok || len(e.Elts) > 0 {
				return nil
			}
			x = or.Y
		}
		return fieldwiseDef(schema, x)
	}
	return nil
}

// structLit finds the struct literal n is written as, through a reference
// to a top-level definition (guarantees: #Guarantees); nil if it is
// written otherwise.
func structLit(schema cue.Value, n ast.Node) *ast.StructLit {
	for range 2 {
		n = fieldValue(n)
		switch x := n.(type) {
		case *ast.StructLit:
			return x
		case *ast.Ident:
			if !strings.HasPrefix(x.Name, "#") {
				return nil
			}
			n = schema.LookupPath(cue.MakePath(cue.Def(x.Name))).Source()
		default:
			return nil
		}
	}
	return nil
}

// siblingFree reports whether a struct schema is a plain list of fields
// none of which refers to another.
func siblingFree(lit *ast.StructLit) bool {
	if lit == nil {
		return false
	}
	labels := map[string]bool{}
	for _, d := range lit.Elts {
		f, ok := d.(*ast.Field)
		if !ok {
			return false // an embedding, a comprehension, a let
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil {
			return false
		}
		labels[name] = true
	}
	free := true
	for _, d := range lit.Elts {
		ast.Walk(d.(*ast.Field).Value, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && labels[id.Name] {
				free = false
			}
			return free
		}, nil)
	}
	return free
}

// independentFields reports whether a struct schema is a plain list of
// optional fields none of which refers to another: then a value is an
// instance of it exactly when each of its fields is.
func independentFields(lit *ast.StructLit) bool {
	if !siblingFree(lit) {
		return false
	}
	for _, d := range lit.Elts {
		if d.(*ast.Field).Constraint != token.OPTION {
			return false
		}
	}
	return true
}

// Check checks v, an instance of a spec whose parts are concrete. A part
// the spec leaves out is the schema's alone.
func (c *InstanceChecker) Check(v cue.Value) error {
	s := c.l.check
	if err := c.guarantees(v.LookupPath(cue.MakePath(cue.Str("guarantees")))); err != nil {
		return err
	}
	rv := v.LookupPath(cue.MakePath(cue.Str("requires")))
	if it, err := rv.List(); err == nil && s.byElement {
		for it.Next() {
			if err := c.requirement(it.Value()); err != nil {
				return err
			}
		}
	} else if err := c.piece("requires", s.requires, rv); err != nil {
		return err
	}
	return c.piece("cost", s.cost, v.LookupPath(cue.MakePath(cue.Str("cost"))))
}

// CheckData is Check on an instance's parts already decoded to Go data
// (cue.Value.Decode): parts maps "guarantees", "requires" and "cost" to
// their data, a part the spec leaves out being absent. A planner that
// reads the parts as data anyway decodes them once instead of twice. The
// pieces and their results are shared with Check.
func (c *InstanceChecker) CheckData(parts map[string]any) error {
	s := c.l.check
	if g, has := parts["guarantees"]; !has || s.guarantee == nil {
		if err := c.pieceData("guarantees", s.guarantees, g, has); err != nil {
			return err
		}
	} else if err := c.fields(s.guarantee, g); err != nil {
		return err
	}
	rq, has := parts["requires"]
	if list, isList := rq.([]any); has && isList && s.byElement {
		for _, e := range list {
			if err := c.requirementData(e); err != nil {
				return err
			}
		}
	} else if err := c.pieceData("requires", s.requires, rq, has); err != nil {
		return err
	}
	cost, has := parts["cost"]
	return c.pieceData("cost", s.cost, cost, has)
}

// pieceData is piece on data; has is false for a part left out.
func (c *InstanceChecker) pieceData(name string, schema cue.Value, x any, has bool) error {
	if !has {
		return c.check(name+"=none", func() error { return schema.Validate(cue.Concrete(true)) })
	}
	return c.data(name, schema, x)
}

func (c *InstanceChecker) guarantees(v cue.Value) error {
	s := c.l.check
	if s.guarantee == nil || !v.Exists() {
		return c.piece("guarantees", s.guarantees, v)
	}
	var x any
	if err := v.Decode(&x); err != nil {
		return err
	}
	return c.fields(s.guarantee, x)
}

// requirement checks one element of requires.
func (c *InstanceChecker) requirement(v cue.Value) error {
	var x any
	if err := v.Decode(&x); err != nil {
		return err
	}
	return c.requirementData(x)
}

// requirementData checks one element of requires, decoded.
func (c *InstanceChecker) requirementData(x any) error {
	s := c.l.check
	m, ok := x.(map[string]any)
	if g, has := m["guarantees"]; ok && has && s.reqDemand != nil {
		if _, ok := g.(map[string]any); ok {
			rest := make(map[string]any, len(m))
			for k, e := range m {
				if k != "guarantees" {
					rest[k] = e
				}
			}
			if err := c.data("requirement", s.requirement, rest); err != nil {
				return err
			}
			return c.fields(s.reqDemand, g)
		}
	}
	return c.data("requirement", s.requirement, x)
}

// fields checks x against a fieldwise schema one field at a time.
func (c *InstanceChecker) fields(f *fieldwise, x any) error {
	m, ok := x.(map[string]any)
	if !ok {
		return c.data(f.name, f.schema, x)
	}
	for _, k := range sortedKeys(m) {
		if err := c.data(f.name+"."+k, f.schema, map[string]any{k: m[k]}); err != nil {
			return err
		}
	}
	return nil
}

// piece checks one concrete piece v of an instance against schema; a
// piece the spec leaves out is the schema's alone.
func (c *InstanceChecker) piece(name string, schema, v cue.Value) error {
	if !v.Exists() {
		return c.check(name+"=none", func() error { return schema.Validate(cue.Concrete(true)) })
	}
	var x any
	if err := v.Decode(&x); err != nil {
		return err
	}
	return c.data(name, schema, x)
}

// data checks the plain data x against schema.
func (c *InstanceChecker) data(name string, schema cue.Value, x any) error {
	var key strings.Builder
	key.WriteString(name)
	key.WriteByte('=')
	writeKey(&key, x)
	return c.check(key.String(), func() error {
		return schema.Unify(c.l.ctx.Encode(x)).Validate(cue.Concrete(true))
	})
}

func (c *InstanceChecker) check(key string, f func() error) error {
	err, ok := c.seen[key]
	if !ok {
		err = f()
		c.seen[key] = err
	}
	return err
}

// writeKey renders decoded CUE data canonically, map keys sorted and
// every scalar tagged with its Go type, so that 2 and 2.0, which CUE
// tells apart, get different keys.
func writeKey(b *strings.Builder, x any) {
	switch x := x.(type) {
	case map[string]any:
		b.WriteByte('{')
		for _, k := range sortedKeys(x) {
			fmt.Fprintf(b, "%q:", k)
			writeKey(b, x[k])
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for _, e := range x {
			writeKey(b, e)
			b.WriteByte(',')
		}
		b.WriteByte(']')
	default:
		fmt.Fprintf(b, "%T:%#v", x, x)
	}
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
