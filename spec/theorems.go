package spec

import (
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"github.com/rime-dev/rime/diag"
)

// Theorem is one rule from theorems.cue. Whether it fires is decided by
// CUE, by filling rules.s with a situation (see the engine); this is the
// part that does not depend on the situation.
type Theorem struct {
	Name      string `json:"name"`
	Title     string `json:"title"`
	Cite      string `json:"cite"`
	Statement string `json:"statement"`
	Effect    string `json:"effect"`
	Blocks    string `json:"blocks"`
	// Demand is the capability a "demand" theorem adds to the stack.
	Demand string   `json:"demand,omitempty"`
	Pos    diag.Pos `json:"-"`
	// Reads lists the situation inputs the rule depends on: class fields
	// (consistency, type, ...) and "stack" when it reads the stack's
	// layers. The environment is fixed within one plan, so it is not
	// listed. The planner keys a rule's result by these alone.
	Reads []string `json:"-"`
}

// Theorem effects.
const (
	Forbid = "forbid"
	Demand = "demand"
	Caveat = "caveat"
)

func (l *Loader) decodeTheorems() error {
	derived := situationDeps(l.schema.LookupPath(Path("#Situation")))
	it, err := l.Rules().LookupPath(Path("theorems")).Fields()
	if err != nil {
		return fmt.Errorf("theorems: %w", err)
	}
	for it.Next() {
		v := it.Value()
		var t struct {
			Title, Cite, Statement, Effect, Blocks string
			Demand                                 struct{ Capability string }
		}
		// Decode only the situation-independent fields.
		for _, f := range []struct {
			name string
			dst  *string
		}{{"title", &t.Title}, {"cite", &t.Cite}, {"statement", &t.Statement}, {"effect", &t.Effect}, {"blocks", &t.Blocks}} {
			s, err := v.LookupPath(Path(f.name)).String()
			if err != nil {
				return fmt.Errorf("theorems.%s.%s: %w", it.Selector(), f.name, err)
			}
			*f.dst = s
		}
		if d := v.LookupPath(Path("demand.capability")); d.Exists() {
			t.Demand.Capability, _ = d.String()
		}
		l.Theorems = append(l.Theorems, Theorem{
			Name: it.Selector().String(), Title: t.Title, Cite: t.Cite, Statement: t.Statement,
			// The struct's own position is the `[string]: #Theorem`
			// pattern; the title is the first line of the theorem itself.
			Effect: t.Effect, Blocks: t.Blocks, Demand: t.Demand.Capability, Pos: PosOf(v.LookupPath(Path("title"))),
			Reads: theoremReads(v, derived),
		})
	}
	return nil
}

// situationDeps maps each field of #Situation to the class fields it is
// derived from (model -> consistency; agreement -> consistency, type).
func situationDeps(sit cue.Value) map[string][]string {
	direct := map[string]map[string]bool{}
	it, err := sit.Fields()
	if err != nil {
		return nil
	}
	for it.Next() {
		name := it.Selector().Unquoted()
		direct[name] = map[string]bool{}
		ast.Walk(it.Value().Source(), func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "class" {
					if sel, ok := x.Sel.(*ast.Ident); ok {
						direct[name]["class."+sel.Name] = true
					}
				}
			case *ast.Ident:
				if x.Name != name && x.Name != "class" {
					direct[name][x.Name] = true // another situation field, or not
				}
			}
			return true
		}, nil)
	}
	out := map[string][]string{}
	var resolve func(f string, seen map[string]bool, acc map[string]bool)
	resolve = func(f string, seen map[string]bool, acc map[string]bool) {
		if seen[f] {
			return
		}
		seen[f] = true
		for d := range direct[f] {
			if strings.HasPrefix(d, "class.") {
				acc[strings.TrimPrefix(d, "class.")] = true
			} else if _, ok := direct[d]; ok {
				resolve(d, seen, acc)
			}
		}
	}
	for f := range direct {
		acc := map[string]bool{}
		resolve(f, map[string]bool{}, acc)
		for k := range acc {
			out[f] = append(out[f], k)
		}
		sort.Strings(out[f])
	}
	return out
}

// theoremReads finds what a rule reads of its situation `s`: s.class.X
// directly, derived situation fields (s.model) through derived, s.stack as
// "stack"; s.env is fixed within a plan. It returns nil, meaning "reads
// everything", when a rule reads `s` in any other way or has no single
// source to read.
func theoremReads(v cue.Value, derived map[string][]string) []string {
	reads := map[string]bool{}
	all := false
	// Only `fires` and `reason` depend on the situation; walk each as
	// written (the theorem struct as a whole has several sources).
	for _, f := range []string{"fires", "reason"} {
		fv := v.LookupPath(Path(f))
		srcs := []ast.Node{fv.Source()}
		if srcs[0] == nil {
			// Unified with #Theorem's `bool`/`string`, the field has two
			// conjuncts and no single source: walk each conjunct's.
			srcs = srcs[:0]
			_, args := fv.Expr()
			for _, a := range args {
				srcs = append(srcs, a.Source())
			}
		}
		for _, src := range srcs {
			if src == nil {
				return nil
			}
			walkReads(src, derived, reads, &all)
		}
	}
	if all {
		return nil
	}
	out := make([]string, 0, len(reads))
	for k := range reads {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func walkReads(src ast.Node, derived map[string][]string, reads map[string]bool, all *bool) {
	ast.Walk(src, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.SelectorExpr:
			path, ok := selectorPath(x)
			if !ok || path[0] != "s" {
				return true
			}
			switch {
			case path[1] == "env":
			case path[1] == "stack":
				reads["stack"] = true
			case path[1] == "class" && len(path) > 2:
				reads[path[2]] = true
			default:
				ds, ok := derived[path[1]]
				if !ok {
					*all = true
				}
				for _, d := range ds {
					reads[d] = true
				}
			}
			return false
		case *ast.Ident:
			if x.Name == "s" {
				*all = true
			}
		}
		return true
	}, nil)
}

// selectorPath turns a.b.c into [a b c]; ok is false unless the chain is
// made of plain identifiers.
func selectorPath(x *ast.SelectorExpr) ([]string, bool) {
	var rev []string
	var e ast.Expr = x
	for {
		switch y := e.(type) {
		case *ast.SelectorExpr:
			id, ok := y.Sel.(*ast.Ident)
			if !ok {
				return nil, false
			}
			rev = append(rev, id.Name)
			e = y.X
		case *ast.Ident:
			rev = append(rev, y.Name)
			out := make([]string, len(rev))
			for i, s := range rev {
				out[len(rev)-1-i] = s
			}
			return out, true
		default:
			return nil, false
		}
	}
}
