package check_test

import (
	"math/rand/v2"
	"testing"

	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/check/checktest"
)

func deps(op check.Op, vs ...string) check.Op {
	op.Deps = vs
	return op
}

func TestCausalValid(t *testing.T) {
	for name, h := range map[string]check.History{
		// Concurrent updates may be seen in different orders.
		"concurrent updates in different orders": hist(app(1, "a", 0, 10), app(2, "b", 0, 10),
			dlv(3, "a", 20), dlv(3, "b", 21), dlv(4, "b", 20), dlv(4, "a", 21)),
		"reply after its cause everywhere": hist(app(1, "q", 0, 10), dlv(2, "q", 12), app(2, "r", 20, 30),
			dlv(3, "q", 25), dlv(3, "r", 35), rd(4, 40, 50, "q", "r")),
		// A delivery at the same instant as the invocation is not counted as
		// seen: b does not depend on a.
		"delivery at the invocation instant": hist(app(1, "a", 0, 10), dlv(2, "a", 20), app(2, "b", 20, 30),
			dlv(3, "b", 31), dlv(3, "a", 32)),
		"unknown write does not order its client's later ones": hist(outcome(app(1, "a", 0, 10), check.Info),
			app(1, "b", 20, 30), dlv(2, "b", 40), dlv(2, "a", 50)),
		"own writes read back": hist(app(1, "a", 0, 10), rd(1, 20, 30, "a")),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := check.Causal(h)
			wantOK(t, r, err)
		})
	}
}

func TestCausalViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h     check.History
		words []string
	}{
		{"reply delivered before its question", hist(app(1, "q", 0, 10), dlv(2, "q", 12), app(2, "r", 20, 30),
			dlv(3, "r", 35), dlv(3, "q", 36)), []string{"causal inversion", `"r" before its cause "q"`, "saw"}},
		{"session order inverted in a read", hist(app(1, "a", 0, 10), app(1, "b", 20, 30), rd(2, 40, 50, "b", "a")),
			[]string{"causal inversion", `"b" before its cause "a"`, "client's"}},
		{"cause missing from a read", hist(app(1, "a", 0, 10), app(1, "b", 20, 30), rd(2, 40, 50, "b")),
			[]string{"causal inversion", `"b" without its cause "a"`}},
		{"declared dependency inverted", hist(app(1, "a", 0, 10), deps(app(2, "b", 0, 10), "a"),
			dlv(3, "b", 20), dlv(3, "a", 21)), []string{"declares it depends on"}},
		{"transitive cause", hist(app(1, "a", 0, 10), dlv(2, "a", 11), app(2, "b", 20, 30), dlv(3, "b", 31),
			app(3, "c", 40, 50), dlv(4, "a", 60), dlv(4, "c", 61), dlv(4, "b", 62)),
			[]string{`"c" before its cause "b"`}},
		{"own write missing", hist(app(1, "a", 0, 10), rd(1, 20, 30)), []string{"causal past missing", "wrote it"}},
		{"seen value missing later", hist(app(1, "a", 0, 10), dlv(2, "a", 15), rd(2, 20, 30)),
			[]string{"causal past missing", "had seen it"}},
		{"cycle", hist(deps(app(1, "a", 0, 10), "b"), deps(app(2, "b", 0, 10), "a")), []string{"causal cycle"}},
		{"value nobody wrote", hist(dlv(1, "x", 5)), []string{"no operation wrote"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := check.Causal(tc.h)
			wantViolation(t, r, err, tc.words...)
		})
	}
}

func TestCausalGenerated(t *testing.T) {
	applied := map[string]int{}
	for seed := range uint64(40) {
		h := checktest.Log(small(seed))
		r, err := check.Causal(h)
		wantOK(t, r, err)
		rng := rand.New(rand.NewPCG(seed, 13))
		for name, m := range map[string]checktest.Mutation{"inversion": checktest.CausalInversion, "own write missing": checktest.OwnWriteMissing} {
			bad, ok := m(h, rng)
			if !ok {
				continue
			}
			applied[name]++
			r, err := check.Causal(bad)
			if err != nil || r.OK {
				t.Fatalf("seed %d, %s: want a violation, got %v %v", seed, name, r, err)
			}
		}
	}
	for _, name := range []string{"inversion", "own write missing"} {
		if applied[name] < 20 {
			t.Errorf("mutation %s applied only %d times in 40", name, applied[name])
		}
	}
}
