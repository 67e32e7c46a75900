package check_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/check/checktest"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    check.History
		want string
	}{
		{"unknown kind", hist(check.Op{Kind: "cas", Outcome: check.OK}), `unknown kind "cas"`},
		{"unknown outcome", hist(check.Op{Kind: check.Read, Outcome: "maybe"}), `unknown outcome "maybe"`},
		{"returns before call", hist(app(1, "a", 10, 5)), "returns at 5, before its call at 10"},
		{"duplicate value", hist(app(1, "a", 0, 1), app(2, "a", 0, 1)), "already written by op 0"},
		{"write without value", hist(app(1, "", 0, 1)), "without a value"},
		{"dep on nothing", hist(deps(app(1, "a", 0, 1), "zz")), `dep "zz" is written by no op`},
		{"failed delivery", hist(outcome(dlv(1, "a", 3), check.Fail)), "only recorded when it happened"},
		{"lost node with a final state", check.History{Lost: []string{"n1"}, Final: []check.Replica{replica("n1")}}, "is lost"},
		{"node on two sides", check.History{Partitions: []check.Partition{{Sides: [][]string{{"n1"}, {"n1"}}}}}, "on two sides"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
	if err := hist(outcome(app(1, "a", 10, 0), check.Info)).Validate(); err != nil {
		t.Fatalf("an unknown outcome that never returned is valid: %v", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	h := checktest.Log(small(3))
	h.Lost = []string{"n9"}
	h.Partitions = []check.Partition{{Start: 1, End: 2, Sides: [][]string{{"n0"}, {"n1", "n2"}}}}
	h.Crashes = []check.Crash{{Node: "n1", Start: 5}}
	b, err := check.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := check.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatal("history changed in a JSON round trip")
	}
	for _, bad := range []string{`{"ops":[{"kind":"read","outcome":"ok","extra":1}]}`, `{"ops":[]} {}`, `[`, `{"ops":[{"kind":"nope"}]}`} {
		if _, err := check.Decode([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := check.Encode(checktest.Log(checktest.Config{Seed: 1, Clients: 2, Ops: 6, Keys: 1, Nodes: 2, ReadFraction: 0.5, Latency: 10, Deliveries: true}))
	f.Add(b)
	f.Add([]byte(`{"ops":[{"client":1,"kind":"append","value":"a","call":0,"return":1,"outcome":"ok"},{"client":2,"kind":"sync-read","values":["a"],"call":2,"return":3,"outcome":"ok"}],"final":[{"node":"n1","state":{"":["a"]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := check.Decode(data)
		if err != nil {
			return
		}
		b, err := check.Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		again, err := check.Decode(b)
		if err != nil {
			t.Fatalf("re-decoding what was encoded: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(h)) {
			t.Fatal("round trip changed the history")
		}
		// Every checker takes any valid history without panicking.
		lc := check.DefaultLinearizableConfig()
		lc.Timeout = time.Second
		check.Linearizable(h, lc)
		lc.Model = check.RegisterModel
		check.Linearizable(h, lc)
		check.Sequential(h)
		check.Causal(h)
		check.Convergence(h, check.ConvergenceConfig{})
		check.Durability(h, check.DurabilityConfig{K: 1})
		check.Availability(h, check.AvailabilityConfig{Promise: check.Majority})
	})
}

// normalize maps empty slices and maps to nil, which JSON does not tell
// apart once omitempty drops them.
func normalize(h check.History) check.History {
	h = checktest.Clone(h)
	for i := range h.Ops {
		if len(h.Ops[i].Values) == 0 {
			h.Ops[i].Values = nil
		}
		if len(h.Ops[i].Deps) == 0 {
			h.Ops[i].Deps = nil
		}
	}
	if len(h.Ops) == 0 {
		h.Ops = nil
	}
	for i := range h.Final {
		for k, v := range h.Final[i].State {
			if len(v) == 0 {
				h.Final[i].State[k] = nil
			}
		}
	}
	return h
}
