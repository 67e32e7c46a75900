package engine_test

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/spec"
)

// oddSpecs are specs whose inputs or parameter choices make instances
// fail in the ways the planner words differently: a conflict in the
// inputs whatever the parameters, a conflict for one choice only, and a
// guarantee computed out of #Protocol's range.
var oddSpecs = map[string]string{
	"inputconflict": `name: "input-conflict"
layer: "channel"
summary: "fails for durable classes whatever its parameters"
provides: ["channel"]
class: durability: <1
params: n: int & >=1 & <=eligible
guarantees: {consistency: "linearizable", available: "majority", types: ["log", "map"], durability: params.n - 1}
cost: {rtt: 1, messages: params.n, copies: params.n}
`,
	"choiceconflict": `name: "choice-conflict"
layer: "channel"
summary: "one of its modes contradicts itself"
provides: ["channel"]
params: {mode: "fast" | "safe", n: int & >=(class.durability+1) & <=eligible}
guarantees: {
	consistency: "linearizable"
	available:   "majority"
	types: ["log", "map"]
	durability: [if params.mode == "fast" {params.n & 0}, params.n - 1][0]
}
cost: {rtt: 1, messages: params.n, copies: params.n}
`,
	"envreader": `name: "env-reader"
layer: "channel"
summary: "reads facts, one of them missing"
provides: ["channel"]
params: n: int & >=1 & <=env.count.keepers
guarantees: {consistency: "causal", available: "always", types: ["log", "map"], durability: env.count.nosuchfact}
cost: {rtt: 0, messages: params.n, copies: 0}
`,
	"negative": `name: "negative"
layer: "channel"
summary: "guarantees a negative durability for some classes"
provides: ["channel"]
params: n: int & >=1 & <=3
guarantees: {consistency: "causal", available: "always", types: ["log", "map"], durability: class.durability - params.n}
cost: {rtt: 0, messages: params.n, copies: 0}
`,
}

// Reading parameters from a spec's params alone (spec.Protocol.ParamsOnly)
// and filling an instance's env with the facts it reads only
// (spec.Protocol.EnvPaths) are shortcuts: every plan, satisfiable or not,
// must be byte-identical to the plan made from whole instances with every
// fact.
func TestShortcutsKeepPlans(t *testing.T) {
	l, cat, _ := newPlanner(t)
	ps := append([]*spec.Protocol(nil), cat.Protocols...)
	for name, src := range oddSpecs {
		p, err := l.LoadProtocol(name+"/spec.cue", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !p.ParamsOnly.Exists() {
			t.Fatalf("%s: no params-only value, so the shortcut is not tested on it", name)
		}
		ps = append(ps, p)
	}
	with, err := l.NewCatalogue(ps...)
	if err != nil {
		t.Fatal(err)
	}
	var whole []*spec.Protocol
	for _, p := range ps {
		q := *p
		q.ParamsOnly = cue.Value{}
		q.EnvPaths, q.AllEnv = nil, true
		whole = append(whole, &q)
	}
	without, err := l.NewCatalogue(whole...)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(11))
	reasons := 0
	for i := range 30 {
		app := loadSrc(t, l, randomApp(rng))
		a, _ := json.Marshal(engine.New(l, with).Plan(app))
		b, _ := json.Marshal(engine.New(l, without).Plan(app))
		if !bytes.Equal(a, b) {
			t.Fatalf("app %d: plans differ with the shortcut:\n%s\n---\n%s", i, a, b)
		}
		reasons += strings.Count(string(a), "its parameters cannot be satisfied")
	}
	if reasons == 0 {
		t.Error("no plan reports a protocol failing for its inputs: the failure path is not exercised")
	}
}

// The shortcut applies only where no other field and no other parameter
// can change what a parameter admits.
func TestParamsOnlyWhenInputsOnly(t *testing.T) {
	l, cat, _ := newPlanner(t)
	for _, p := range cat.Protocols {
		if len(p.Params) > 0 && !p.ParamsOnly.Exists() {
			t.Errorf("%s: built-in spec has no params-only value", p.Name)
		}
	}
	head := "name: \"x\"\nlayer: \"channel\"\nsummary: \"x\"\nprovides: [\"channel\"]\nguarantees: {}\ncost: {rtt: 0, messages: 0, copies: 0}\n"
	cases := []struct {
		src  string
		want bool
	}{
		{"params: n: int & >=(2*class.durability+1) & <=eligible", true},
		{"params: {m: \"a\" | \"b\", n: int & <=env.count.total}", true},
		{"params: n: int & >=div(eligible, 2)", true},
		{"params: {m: int, n: int & >=m}", false},                 // another parameter
		{"params: n: int & >=params.m\nparams: m: 1", false},      // another parameter
		{"_k: 3\nparams: n: int & <=_k", false},                   // another field
		{"params: n: int & >=1\nif true {params: n: >=3}", false}, // a comprehension
		{"params: {let k = 2\nn: int & >=k}", false},              // a let
		{"params: n: [for x in [1] {x}][0]", false},               // a comprehension's own name
	}
	for _, c := range cases {
		p, err := l.LoadProtocol("x/spec.cue", []byte(head+c.src+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got := p.ParamsOnly.Exists(); got != c.want {
			t.Errorf("%q: params-only %v, want %v", c.src, got, c.want)
		}
	}
}
