package engine_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/rime-dev/rime/engine"
)

func TestDecodePlanRoundTrips(t *testing.T) {
	p := &engine.Plan{App: "a", Group: "g", Classes: []engine.ClassPlan{{
		Name: "c", Satisfiable: true,
		Stack: []engine.Layer{{Layer: "consensus", Protocol: "raft", Params: map[string]any{"replicas": 3.0}, Implemented: true,
			Provides: []string{"log"}, Requires: []string{"membership"}, Hosts: []string{"server"}}},
		Proof: []engine.Step{{Claim: "x", By: "y", Source: "z"}}, Cost: 2,
	}}}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got, err := engine.DecodePlan("plan.json", b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip changed the plan:\n got %+v\nwant %+v", got, p)
	}
}

func TestDecodePlanErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"app": "a", "classes": [], "bogus": 1}`, `plan.json:1:`},
		{"{\n  \"app\": \"a\",\n  \"classes\": [{\"name\": 3}]}", `plan.json:3:`},
		{`{"app": "a", "classes": [{"name": "c"}]} {}`, "more data after the plan"},
		{`{"classes": []}`, "names no app"},
		{`{"app": "a", "classes": [{"name": "c"}, {"name": "c"}]}`, `class "c" appears twice`},
		{`{"app": "a", "classes": [{"name": "c", "stack": [{"layer": "x"}]}]}`, "names no protocol"},
		{`[`, "plan.json:1:"},
		{``, "not a rime plan"},
	} {
		_, err := engine.DecodePlan("plan.json", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodePlan(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func FuzzDecodePlan(f *testing.F) {
	f.Add([]byte(`{"app": "a", "classes": [{"name": "c", "stack": [{"layer": "x", "protocol": "raft", "params": {"replicas": 3}}]}]}`))
	f.Add([]byte(`{"app": 1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := engine.DecodePlan("f.json", b)
		if err == nil && p.App == "" {
			t.Fatal("a plan without an app was accepted")
		}
	})
}
