package spec

import (
	"fmt"
	"slices"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// ruleBatchSource writes the CUE that RuleBatch evaluates. Each theorem
// is evaluated as what decides it: its situation, `fires` and `reason`,
// each the conjunction of what #Theorem and the theorem itself write,
// copied from theorems.cue as written. The rest of a theorem (title, cite,
// statement, effect, blocks) does not depend on the situation and the
// loader decodes it once; evaluating it, and #Theorem's disjunctions, with
// every situation was most of a rule's cost. A theorem whose `s`, `fires`
// or `reason` refers to another of its fields is evaluated whole.
//
// With src nil, every theorem is evaluated whole.
func ruleBatchSource(src []byte, names []string) (string, error) {
	f, err := parser.ParseFile("theorems.cue", src)
	if err != nil {
		return "", err
	}
	text := func(n ast.Node) string { return string(src[n.Pos().Offset():n.End().Offset()]) }
	var b strings.Builder
	for _, d := range f.Decls {
		if imp, ok := d.(*ast.ImportDecl); ok {
			b.WriteString(text(imp) + "\n")
		}
	}
	b.WriteString("batchEnv: _\nbatchIn: [string]: {theorem: string, s: _}\n")
	b.WriteString("batchOut: {for k, x in batchIn {(k): batchRules[x.theorem] & {s: x.s & {env: batchEnv}}}}\n")
	b.WriteString("batchRules: {\n")
	schema := decisive(structOf(f.Decls, "#Theorem"))
	situation := situationText(f, text)
	written := map[string]*ast.StructLit{}
	seen := map[string]bool{}
	for _, th := range theoremStructs(f) {
		if seen[th.name] {
			th.lit = nil
		}
		seen[th.name] = true
		written[th.name] = th.lit
	}
	for _, name := range names {
		own := decisive(written[name])
		fmt.Fprintf(&b, "\t%q: ", name)
		if schema == nil || own == nil {
			fmt.Fprintf(&b, "rules.theorems[%q]\n", name)
			continue
		}
		b.WriteString("{\n")
		for _, field := range []string{"s", "fires", "reason"} {
			var parts []string
			for _, x := range append(schema[field], own[field]...) {
				if id, ok := x.(*ast.Ident); ok && field == "s" && situation != nil && id.Name == "#Situation" {
					// Open: see situationText.
					parts = append(parts, *situation)
					continue
				}
				parts = append(parts, "("+text(x)+")")
			}
			// #Theorem and the theorem may both say s: #Situation.
			parts = slices.Compact(parts)
			if len(parts) == 0 {
				parts = []string{"_"}
			}
			fmt.Fprintf(&b, "\t\t%s: %s\n", field, strings.Join(parts, " & "))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// situationText returns #Situation's struct as written, to be evaluated
// as a plain struct rather than as the definition, or nil if it is not
// written as plain fields once. The planner fills a situation only with
// the fields #Situation declares (class, env, stack), so closing it
// changes nothing for it; what closing costs is that `model:
// models[class.consistency]`, referred to from within a definition, is
// evaluated again for every situation instead of shared, which was most
// of a rule's remaining cost.
func situationText(f *ast.File, text func(ast.Node) string) *string {
	lit := structOf(f.Decls, "#Situation")
	if !plainFields(lit) {
		return nil
	}
	t := "(" + text(lit) + ")"
	return &t
}

// decisive returns the values a theorem struct gives s, fires and reason,
// or nil if one of them refers to another field of the struct (so that
// they cannot be evaluated apart from it) or the struct is not plain
// fields.
func decisive(lit *ast.StructLit) map[string][]ast.Expr {
	if lit == nil {
		return nil
	}
	labels := map[string]bool{}
	out := map[string][]ast.Expr{}
	for _, d := range lit.Elts {
		f, ok := d.(*ast.Field)
		if !ok {
			return nil
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil {
			return nil
		}
		labels[name] = true
		if name == "s" || name == "fires" || name == "reason" {
			out[name] = append(out[name], f.Value)
		}
	}
	for _, xs := range out {
		for _, x := range xs {
			ok := true
			ast.Walk(x, func(n ast.Node) bool {
				if id, isID := n.(*ast.Ident); isID && id.Name != "s" && labels[id.Name] {
					ok = false
				}
				return ok
			}, nil)
			if !ok {
				return nil
			}
		}
	}
	return out
}

type theoremStruct struct {
	name string
	lit  *ast.StructLit
}

// theoremStructs finds each `rules: theorems: NAME: {...}` as written.
// A theorem written twice is the unification of both, which only the
// whole rule evaluates: it is left out.
func theoremStructs(f *ast.File) []theoremStruct {
	var out []theoremStruct
	for _, rules := range fieldsNamed(f.Decls, "rules") {
		for _, ths := range fieldsNamed(rules.Elts, "theorems") {
			for _, d := range ths.Elts {
				fd, ok := d.(*ast.Field)
				if !ok {
					continue
				}
				name, _, err := ast.LabelName(fd.Label)
				if lit, isLit := fd.Value.(*ast.StructLit); err == nil && isLit {
					out = append(out, theoremStruct{name, lit})
				} else if err == nil {
					out = append(out, theoremStruct{name, nil})
				}
			}
		}
	}
	return out
}

// fieldsNamed returns the struct values of the fields called name.
func fieldsNamed(decls []ast.Decl, name string) []*ast.StructLit {
	var out []*ast.StructLit
	for _, d := range decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if n, _, err := ast.LabelName(fd.Label); err != nil || n != name {
			continue
		}
		if lit, ok := fd.Value.(*ast.StructLit); ok {
			out = append(out, lit)
		}
	}
	return out
}

func structOf(decls []ast.Decl, name string) *ast.StructLit {
	if lits := fieldsNamed(decls, name); len(lits) == 1 {
		return lits[0]
	}
	return nil
}

// compileRuleBatch compiles RuleBatch's value from theorems.cue.
func (l *Loader) compileRuleBatch() error {
	src, err := schemaFS.ReadFile("cue/theorems.cue")
	if err != nil {
		return err
	}
	// Only theorems.cue may write rules: a theorem another file adds to
	// would not be what ruleBatchSource copies.
	if l.othersWrite("theorems.cue", "rules") {
		src = nil
	}
	names := make([]string, len(l.Theorems))
	for i, th := range l.Theorems {
		names[i] = th.Name
	}
	text, err := ruleBatchSource(src, names)
	if err != nil {
		return fmt.Errorf("rule batch: %w", err)
	}
	f, err := parser.ParseFile(schemaDir+"theorems-batch.cue", text)
	if err != nil {
		return fmt.Errorf("rule batch: %w", err)
	}
	l.ruleBatch = l.ctx.BuildFile(f, cue.Scope(l.schema))
	if err := l.ruleBatch.Err(); err != nil {
		return fmt.Errorf("rule batch: %w", err)
	}
	return nil
}

// goalBatchSource writes the CUE that GoalBatch evaluates: each goal as
// goals.cue writes it, except that its class is not closed against
// #DataClass or #Compute again. The planner fills a goal only with a
// class the loader closed against its definition, or with a weakening of
// one along the lattice, the availability chain or durability, which stay
// within it; re-checking the definition's disjunctions with every goal
// was most of a goal's cost (the theorems' #Situation types its class
// loosely for the same reason). A goal that is not plain fields, or is
// written twice, is evaluated whole; so is every goal if another schema
// file writes goals. With src nil, every goal is evaluated whole.
func goalBatchSource(src []byte, kinds []string) (string, error) {
	f, err := parser.ParseFile("goals.cue", src)
	if err != nil {
		return "", err
	}
	text := func(n ast.Node) string { return string(src[n.Pos().Offset():n.End().Offset()]) }
	written := map[string]*ast.StructLit{}
	seen := map[string]bool{}
	for _, goals := range fieldsNamed(f.Decls, "goals") {
		for _, d := range goals.Elts {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			name, _, err := ast.LabelName(fd.Label)
			if err != nil {
				continue
			}
			lit, _ := fd.Value.(*ast.StructLit)
			if seen[name] {
				lit = nil
			}
			seen[name] = true
			written[name] = lit
		}
	}
	var b strings.Builder
	for _, d := range f.Decls {
		if imp, ok := d.(*ast.ImportDecl); ok {
			b.WriteString(text(imp) + "\n")
		}
	}
	b.WriteString("batchIn: [string]: {kind: string, class: _}\n")
	b.WriteString("batchOut: {for k, x in batchIn {(k): batchGoals[x.kind] & {class: x.class}}}\n")
	b.WriteString("batchGoals: {\n")
	for _, kind := range kinds {
		fmt.Fprintf(&b, "\t%q: ", kind)
		lit := written[kind]
		if !plainFields(lit) {
			fmt.Fprintf(&b, "goals[%q]\n", kind)
			continue
		}
		b.WriteString("{\n")
		for _, d := range lit.Elts {
			fd := d.(*ast.Field)
			if name, _, _ := ast.LabelName(fd.Label); name == "class" {
				b.WriteString("\t\tclass: _\n")
				continue
			}
			fmt.Fprintf(&b, "\t\t%s\n", text(fd))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// plainFields reports whether a struct is written as regular fields with
// plain labels only.
func plainFields(lit *ast.StructLit) bool {
	if lit == nil {
		return false
	}
	for _, d := range lit.Elts {
		f, ok := d.(*ast.Field)
		if !ok || f.Constraint != token.ILLEGAL {
			return false
		}
		if _, isIdent, err := ast.LabelName(f.Label); err != nil || !isIdent {
			return false
		}
	}
	return true
}

// compileGoalBatch compiles GoalBatch's value from goals.cue.
func (l *Loader) compileGoalBatch() error {
	src, err := schemaFS.ReadFile("cue/goals.cue")
	if err != nil {
		return err
	}
	if l.othersWrite("goals.cue", "goals") {
		src = nil
	}
	text, err := goalBatchSource(src, []string{"data", "compute"})
	if err != nil {
		return fmt.Errorf("goal batch: %w", err)
	}
	f, err := parser.ParseFile(schemaDir+"goals-batch.cue", text)
	if err != nil {
		return fmt.Errorf("goal batch: %w", err)
	}
	l.goalBatch = l.ctx.BuildFile(f, cue.Scope(l.schema))
	if err := l.goalBatch.Err(); err != nil {
		return fmt.Errorf("goal batch: %w", err)
	}
	return nil
}

// othersWrite reports whether a schema file other than file writes a
// top-level field called name.
func (l *Loader) othersWrite(file, name string) bool {
	for n, src := range SchemaFiles() {
		if n == schemaDir+file {
			continue
		}
		f, err := parser.ParseFile(n, src)
		if err != nil || len(fieldsNamed(f.Decls, name)) > 0 {
			return true
		}
	}
	return false
}
