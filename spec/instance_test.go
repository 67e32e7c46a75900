package spec_test

import (
	"testing"
)

// An InstanceChecker judges each instance's computed parts against
// #Protocol, and remembers verdicts only for identical parts: 2 and 2.0
// are different values to CUE.
func TestInstanceChecker(t *testing.T) {
	l := newLoader(t)
	c := l.NewInstanceChecker()
	cases := []struct {
		name, src string
		ok        bool
	}{
		{"valid", `guarantees: durability: 2, requires: [{capability: "log"}], cost: {rtt: 1, messages: 2, copies: 3}`, true},
		{"the same again", `guarantees: durability: 2, requires: [{capability: "log"}], cost: {rtt: 1, messages: 2, copies: 3}`, true},
		{"a float durability", `guarantees: durability: 2.0, requires: [{capability: "log"}], cost: {rtt: 1, messages: 2, copies: 3}`, false},
		{"a negative durability", `guarantees: durability: -1, requires: [], cost: {rtt: 1, messages: 2, copies: 3}`, false},
		{"one bad guarantee among good ones", `guarantees: {consistency: "causal", durability: -1, types: ["log"]}, cost: {rtt: 1, messages: 2, copies: 3}`, false},
		{"an unknown model", `guarantees: {consistency: "strong"}, cost: {rtt: 1, messages: 2, copies: 3}`, false},
		{"a good requirement and a bad one", `requires: [{capability: "log"}, {capability: "log", guarantees: order: "sideways"}], cost: {rtt: 1, messages: 2, copies: 3}`, false},
		{"an unknown guarantee", `guarantees: speed: 1, cost: {rtt: 1, messages: 2, copies: 3}`, false},
		{"a bad capability name", `requires: [{capability: "Log"}], cost: {rtt: 1, messages: 2, copies: 3}`, false},
		{"requires and guarantees left out", `cost: {rtt: 0, messages: 0, copies: 0}`, true},
		{"cost left out", `guarantees: durability: 2`, false},
		{"a negative cost", `cost: {rtt: -1, messages: 0, copies: 0}`, false},
	}
	for _, tc := range cases {
		v := l.Context().CompileString(tc.src)
		if err := v.Err(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err := c.Check(v)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check(%s) = %v, want ok=%v", tc.name, tc.src, err, tc.ok)
		}
	}
}
