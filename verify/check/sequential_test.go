package check_test

import (
	"math/rand/v2"
	"testing"

	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/check/checktest"
)

func TestSequentialValid(t *testing.T) {
	for name, h := range map[string]check.History{
		// Stale for another client is allowed: no real time between clients.
		"stale read of another client's write": hist(app(1, "a", 0, 10), rd(2, 20, 30), rd(2, 40, 50, "a")),
		"reads of one client grow": hist(app(1, "a", 0, 10), app(1, "b", 11, 20),
			rd(2, 0, 5, "a"), rd(2, 6, 7, "a", "b"), rd(3, 100, 110)),
		"unknown append may land after the client's next ones": hist(outcome(app(1, "a", 0, 10), check.Info),
			app(1, "b", 20, 30), rd(2, 40, 50, "b", "a")),
		"delivery streams are prefixes": hist(app(1, "a", 0, 10), app(2, "b", 0, 10), rd(1, 20, 30, "b", "a"),
			dlv(3, "b", 5), dlv(3, "a", 6)),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := check.Sequential(h)
			wantOK(t, r, err)
		})
	}
}

func TestSequentialViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h     check.History
		words []string
	}{
		{"own write missing", hist(app(1, "a", 0, 10), rd(1, 20, 30), rd(2, 40, 50, "a")),
			[]string{"appended \"a\", then read 0 values without it"}},
		{"reads go back", hist(app(2, "a", 0, 10), rd(1, 20, 30, "a"), rd(1, 40, 50)),
			[]string{"reads went back"}},
		{"appends out of program order", hist(app(1, "a", 0, 10), app(1, "b", 20, 30), rd(2, 40, 50, "b", "a")),
			[]string{"program order", `appended "a" before "b"`}},
		{"own append read before it was made", hist(rd(1, 0, 10, "a"), app(1, "a", 20, 30)),
			[]string{"before it appended it"}},
		{"lost own write", hist(app(1, "a", 0, 10), app(1, "b", 20, 30), rd(2, 40, 50, "b")),
			[]string{"program order", "in no read"}},
		{"delivery stream disagrees", hist(app(1, "a", 0, 10), app(2, "b", 0, 10), rd(1, 20, 30, "a", "b"),
			dlv(3, "b", 5), dlv(3, "a", 6)), []string{"disagree"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := check.Sequential(tc.h)
			wantViolation(t, r, err, tc.words...)
		})
	}
}

func TestSequentialGenerated(t *testing.T) {
	applied := map[string]int{}
	for seed := range uint64(40) {
		h := checktest.Log(small(seed))
		r, err := check.Sequential(h)
		wantOK(t, r, err)
		rng := rand.New(rand.NewPCG(seed, 11))
		// A stale read of another client's write is sequentially
		// consistent; these two are not.
		for name, m := range map[string]checktest.Mutation{"own write missing": checktest.OwnWriteMissing, "reorder own": checktest.ReorderOwn} {
			bad, ok := m(h, rng)
			if !ok {
				continue
			}
			applied[name]++
			r, err := check.Sequential(bad)
			if err != nil || r.OK {
				t.Fatalf("seed %d, %s: want a violation, got %v %v", seed, name, r, err)
			}
		}
	}
	for _, name := range []string{"own write missing", "reorder own"} {
		if applied[name] < 20 {
			t.Errorf("mutation %s applied only %d times in 40", name, applied[name])
		}
	}
}

// naiveSequential searches every interleaving of the clients' programs
// with the whole log as state; only for tiny histories.
func naiveSequential(h check.History) bool {
	chains := map[int][]check.Op{}
	var ids []int
	for _, op := range h.Ops {
		if op.Outcome != check.OK || op.Kind == check.Delivered {
			continue
		}
		if _, ok := chains[op.Client]; !ok {
			ids = append(ids, op.Client)
		}
		chains[op.Client] = append(chains[op.Client], op) // history order is call order here
	}
	heads := make([]int, len(ids))
	var log []string
	var dfs func() bool
	dfs = func() bool {
		done := true
		for i, id := range ids {
			ch := chains[id]
			if heads[i] == len(ch) {
				continue
			}
			done = false
			op := ch[heads[i]]
			switch op.Kind {
			case check.Append:
				log = append(log, op.Value)
				heads[i]++
				if dfs() {
					return true
				}
				heads[i]--
				log = log[:len(log)-1]
			default:
				if equal(op.Values, log) {
					heads[i]++
					if dfs() {
						return true
					}
					heads[i]--
				}
			}
		}
		return done
	}
	return dfs()
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSequentialAgreesWithSearch(t *testing.T) {
	agree := map[bool]int{}
	for seed := range uint64(300) {
		cfg := small(seed)
		cfg.Ops, cfg.Clients, cfg.Keys, cfg.Deliveries = 12, 3, 1, false
		cfg.InfoFraction = 0
		h := checktest.Log(cfg)
		rng := rand.New(rand.NewPCG(seed, 5))
		if seed%4 != 0 {
			h = perturb(h, rng)
			// Keep outcomes known: the search above has no unknowns.
			for i := range h.Ops {
				if h.Ops[i].Outcome == check.Info {
					h.Ops[i].Outcome, h.Ops[i].Return = check.Fail, h.Ops[i].Call
				}
			}
		}
		// Program order is history order by call; perturb may move calls.
		sortByCall(h.Ops)
		want := naiveSequential(h)
		r, err := check.Sequential(h)
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != want {
			b, _ := check.Encode(h)
			t.Fatalf("seed %d: search says sequential=%v, checker %v %+v\n%s", seed, want, r, r.Violations, b)
		}
		agree[want]++
	}
	t.Logf("agreed on %d sequentially consistent and %d not", agree[true], agree[false])
	if agree[true] < 50 || agree[false] < 30 {
		t.Fatalf("too few of one kind to mean much: %v", agree)
	}
}

func sortByCall(ops []check.Op) {
	for i := 1; i < len(ops); i++ {
		for j := i; j > 0 && ops[j].Call < ops[j-1].Call; j-- {
			ops[j], ops[j-1] = ops[j-1], ops[j]
		}
	}
}
