package engine_test

import (
	"strings"
	"testing"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/spec"
)

// The planner evaluates a spec as written and checks what an instance
// computes against #Protocol afterwards. A guarantee computed out of the
// schema's range must still disqualify the instance, with the reason CUE
// gives for the spec closed against #Protocol.
func TestInstanceCheckedAgainstSchema(t *testing.T) {
	cases := []struct {
		name string
		// durability is the spec's durability guarantee; params its
		// params; cost its cost, if it states one.
		durability, params, cost string
		// class is the app's class; want the reason's start, or "" when
		// the class must plan on the protocol.
		class, want string
		// wantIn is what the reason says; by default that the durability
		// is out of range.
		wantIn string
	}{
		{
			name:       "out of range whatever the parameters",
			durability: "class.durability*2 - 1", class: `{consistency: "causal", available: "majority", durability: 0}`,
			want: "odd-channel: its parameters cannot be satisfied: ",
		},
		{
			name:       "in range",
			durability: "class.durability*2 - 1", class: `{consistency: "causal", available: "majority", durability: 1}`,
		},
		{
			name:       "out of range for every parameter value",
			durability: "class.durability - params.n", params: "params: n: int & >=1 & <=eligible",
			class: `{consistency: "causal", available: "majority", durability: 0}`,
			want:  "odd-channel: with {n: ",
		},
		{
			name:       "no cost",
			durability: "class.durability", cost: "-",
			class:  `{consistency: "causal", available: "majority", durability: 0}`,
			want:   "odd-channel: with {}: ",
			wantIn: "cost.rtt: incomplete value",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := spec.NewLoader()
			if err != nil {
				t.Fatal(err)
			}
			// Without params and requires: the schema supplies them.
			src := `name: "odd-channel"
layer: "channel"
summary: "a channel whose durability is computed"
provides: ["channel"]
` + c.params + `
guarantees: {consistency: "linearizable", available: "always", types: ["log"], durability: ` + c.durability + `}
`
			if c.cost == "" {
				src += "cost: {rtt: 0, messages: 0, copies: 0}\n"
			}
			if c.wantIn == "" {
				c.wantIn = "guarantees.durability: invalid value -"
			}
			p, err := l.LoadProtocol("odd/spec.cue", []byte(src))
			if err != nil {
				t.Fatalf("LoadProtocol: %v", err)
			}
			cat, err := l.NewCatalogue(p)
			if err != nil {
				t.Fatal(err)
			}
			app := loadSrc(t, l, theoremApp(3, "", false, "crash-recovery", c.class))
			cp := engine.New(l, cat).Plan(app).Classes[0]
			if c.want == "" {
				if !cp.Satisfiable {
					t.Fatalf("class does not plan:\n%s", dumpPlan(cp))
				}
				return
			}
			if cp.Satisfiable {
				t.Fatalf("an instance guaranteeing a negative durability was used:\n%s", dumpPlan(cp))
			}
			var lines []string
			for _, w := range cp.Why {
				lines = append(lines, w.Text)
				if strings.HasPrefix(w.Text, c.want) && strings.Contains(w.Text, c.wantIn) {
					return
				}
			}
			t.Errorf("no reason starts with %q and says %q:\n%s", c.want, c.wantIn, strings.Join(lines, "\n"))
		})
	}
}
