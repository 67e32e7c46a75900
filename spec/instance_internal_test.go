package spec

import (
	"strings"
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

// A spec is instantiated without its descriptive fields only when leaving
// them out cannot change an instance, and keeps every position.
func TestInstanceFile(t *testing.T) {
	l, err := NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	const head = "name: \"p\"\nlayer: \"channel\"\nsummary: \"s\"\nprovides: [\"channel\"]\n"
	cases := []struct {
		name, src string
		trimmed   bool
	}{
		{"plain", head + "assumes: environment: failures: \"crash-stop\"\nguarantees: durability: class.durability\ncost: {rtt: 1, messages: 1, copies: 1}\n", true},
		{"assumes reads an input", head + "assumes: environment: failures: env.failures\nguarantees: durability: 1\ncost: {rtt: 1, messages: 1, copies: 1}\n", false},
		{"a guarantee reads the summary", head + "guarantees: {}\n_x: summary\ncost: {rtt: 1, messages: 1, copies: 1}\n", false},
	}
	for _, c := range cases {
		p, err := l.LoadProtocol("p/spec.cue", []byte(c.src))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		trimmed := !p.Instance.LookupPath(Path("summary")).Exists()
		if trimmed != c.trimmed {
			t.Errorf("%s: descriptive fields left out = %v, want %v", c.name, trimmed, c.trimmed)
		}
		if !trimmed {
			continue
		}
		if p.Instance.LookupPath(Path("assumes")).Exists() {
			t.Errorf("%s: assumes still evaluated with every instance", c.name)
		}
		w, i := PosOf(p.Written.LookupPath(Path("guarantees.durability"))), PosOf(p.Instance.LookupPath(Path("guarantees.durability")))
		if w != i || !w.IsValid() {
			t.Errorf("%s: guarantees.durability at %v in the instance, %v as written", c.name, i, w)
		}
	}
}

// A spec's env reads are the selector paths from env; any other use of
// env reads it whole.
func TestEnvRefs(t *testing.T) {
	cases := []struct {
		src  string
		want string // paths joined by ",", or "all"
	}{
		{`a: env.count.keepers`, "count.keepers"},
		{`a: env.count.keepers + env.failures`, "count.keepers,failures"},
		{`a: env.count, b: env.count.total`, "count,count.total"},
		{`a: 1`, ""},
		{`a: env`, "all"},
		{`a: env["count"]`, "all"},
		{`a: [for k, v in env {k}]`, "all"},
		{`a: x.env, x: {env: 1}`, "all"},
		{`env: {count: total: >0}`, "all"},
	}
	for _, c := range cases {
		f, err := parser.ParseFile("x.cue", c.src+"\n"+inputs)
		if err != nil {
			t.Fatal(err)
		}
		paths, all := envRefs(f)
		var got []string
		for _, p := range paths {
			got = append(got, strings.Join(p, "."))
		}
		s := strings.Join(got, ",")
		if all {
			s = "all"
		}
		if s != c.want {
			t.Errorf("envRefs(%s) = %q, want %q", c.src, s, c.want)
		}
	}
}
