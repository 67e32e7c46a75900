package spec

import (
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/parser"
)

// A struct schema is checked field by field only when no field depends on
// another and none is required.
func TestIndependentFields(t *testing.T) {
	l, err := NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	if l.check.guarantee == nil || !l.check.byElement || l.check.reqDemand == nil {
		t.Fatalf("#Guarantees and requires are no longer checked piece by piece (%+v): planning gets slower; see newInstanceSchema", l.check)
	}
	cases := []struct {
		src  string
		want bool
	}{
		{`x: {a?: int, b?: string | bool}`, true},
		{`x: {a?: int, b?: >a}`, false},
		{`x: {a!: int, b?: string}`, false},
		{`x: {a?: int, b: string}`, false},
		{`x: {a?: int, if true {b?: int}}`, false},
		{`x: #D, #D: {a?: int}`, true},
		{`x: string`, false},
	}
	for _, c := range cases {
		f, err := parser.ParseFile("x.cue", c.src)
		if err != nil {
			t.Fatal(err)
		}
		v := l.ctx.BuildFile(f)
		x := v.LookupPath(cue.ParsePath("x"))
		if got := independentFields(structLit(v, x.Source())); got != c.want {
			t.Errorf("independentFields(%s) = %v, want %v", c.src, got, c.want)
		}
	}
}
