package engine

import (
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// Reading a parameter's admissible values off its evaluated constraint.
//
// Once a spec is instantiated for a class, a parameter's constraint is
// usually a value CUE has already reduced to a plain form: an integer
// interval (`uint & >=3 & <=24` for replicas: int & >=(2*class.durability+1)
// & <=eligible), one string (`"map"` for a type bound to class.type) or a
// disjunction of literals ("none" | "causal"). Which values it admits can
// then be read off that form instead of asked of CUE value by value, each
// question being a CUE evaluation. Any other form (a default, `!=`, a
// pattern, a reference still open, an error) is left undecided, and the
// caller asks CUE as before, so the answers are CUE's in every case.

// intInterval returns the integers v admits, lo..hi, when v is a
// conjunction of `int`, `uint`, `number` and bounds by integer literals.
// ok is false when v has any other form.
func intInterval(v cue.Value) (lo, hi int64, ok bool) {
	if _, isDefault := v.Default(); isDefault {
		return 0, 0, false // Final would pick the default
	}
	if v.IsConcrete() {
		n, err := v.Int64()
		return n, n, err == nil
	}
	lo, hi = minInt, maxInt
	var walk func(e ast.Expr) bool
	walk = func(e ast.Expr) bool {
		switch x := e.(type) {
		case *ast.BinaryExpr:
			return x.Op == token.AND && walk(x.X) && walk(x.Y)
		case *ast.Ident:
			switch x.Name {
			case "int", "number":
				return true
			case "uint":
				lo = max(lo, 0)
				return true
			}
		case *ast.UnaryExpr:
			lit, isLit := x.X.(*ast.BasicLit)
			if !isLit || lit.Kind != token.INT {
				return false
			}
			n, err := strconv.ParseInt(strings.ReplaceAll(lit.Value, "_", ""), 0, 64)
			if err != nil {
				return false
			}
			switch x.Op {
			case token.GEQ:
				lo = max(lo, n)
			case token.GTR:
				lo = max(lo, n+1)
			case token.LEQ:
				hi = min(hi, n)
			case token.LSS:
				hi = min(hi, n-1)
			default:
				return false
			}
			return true
		}
		return false
	}
	expr, isExpr := v.Syntax(cue.Final()).(ast.Expr)
	if !isExpr || !walk(expr) {
		return 0, 0, false
	}
	return lo, hi, true
}

const (
	minInt = -1 << 63
	maxInt = 1<<63 - 1
)

// intsIn lists, ascending, the values of v in 0..maxParamValue, at most
// maxIntTries of them: those of its interval when intInterval reads it
// and CUE accepts its first value, else those CUE accepts one by one. A
// value whose form reads as an interval may still fail every value
// through a reference to a failing field; asking CUE once catches that.
// CUE bounds on one parameter make an interval, so the search stops past
// its top.
func (r *run) intsIn(v cue.Value) []int64 {
	var xs []int64
	if lo, hi, ok := intInterval(v); ok {
		for x := max(lo, 0); x <= min(hi, maxParamValue) && len(xs) < maxIntTries; x++ {
			xs = append(xs, x)
		}
		if len(xs) == 0 || v.Unify(r.ctx.Encode(xs[0])).Validate() == nil {
			return xs
		}
		xs = nil
	}
	for x := int64(0); x <= maxParamValue && len(xs) < maxIntTries; x++ {
		if v.Unify(r.ctx.Encode(x)).Validate() == nil {
			xs = append(xs, x)
		} else if len(xs) > 0 {
			break
		}
	}
	return xs
}

// choicesIn returns the values v, a string or bool parameter's
// constraint, admits, when v is one literal or a disjunction of literals
// and CUE accepts the first of them; ok is false otherwise.
func (r *run) choicesIn(v cue.Value) (vals []any, ok bool) {
	if _, isDefault := v.Default(); isDefault {
		return nil, false // Final would pick the default
	}
	if v.IsConcrete() {
		// One value, read without exporting it (which costs as much as
		// asking CUE).
		if s, err := v.String(); err == nil {
			vals = []any{s}
		} else if b, err := v.Bool(); err == nil {
			vals = []any{b}
		}
	}
	var walk func(e ast.Expr) bool
	walk = func(e ast.Expr) bool {
		switch x := e.(type) {
		case *ast.BinaryExpr:
			return x.Op == token.OR && walk(x.X) && walk(x.Y)
		case *ast.BasicLit:
			switch x.Kind {
			case token.STRING:
				s, err := literal.Unquote(x.Value)
				if err != nil {
					return false
				}
				vals = append(vals, s)
				return true
			case token.TRUE, token.FALSE:
				vals = append(vals, x.Kind == token.TRUE)
				return true
			}
		}
		return false
	}
	if vals == nil {
		expr, isExpr := v.Syntax(cue.Final()).(ast.Expr)
		if !isExpr || !walk(expr) || len(vals) == 0 {
			return nil, false
		}
	}
	if v.Unify(r.ctx.Encode(vals[0])).Err() != nil {
		return nil, false
	}
	return vals, true
}

type readChoices struct {
	vals []any
	ok   bool
}
