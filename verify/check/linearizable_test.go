package check_test

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/check/checktest"
)

func linearizable(h check.History, model check.Model) (check.Result, error) {
	cfg := check.DefaultLinearizableConfig()
	cfg.Model = model
	return check.Linearizable(h, cfg)
}

func TestLinearizableLogValid(t *testing.T) {
	for name, h := range map[string]check.History{
		"sequential": hist(app(1, "a", 0, 10), app(2, "b", 20, 30), rd(3, 40, 50, "a", "b")),
		"concurrent appends in either order": hist(app(1, "a", 0, 10), app(2, "b", 5, 15),
			rd(3, 20, 30, "b", "a")),
		"read concurrent with an append sees it or not": hist(app(1, "a", 0, 100),
			rd(2, 10, 20), rd(3, 30, 40, "a"), rd(2, 50, 60, "a")),
		"unknown append never seen": hist(outcome(app(1, "a", 0, 10), check.Info), rd(2, 20, 30)),
		"unknown append seen long after": hist(outcome(app(1, "a", 0, 10), check.Info), app(2, "b", 20, 30),
			rd(3, 40, 50, "b"), rd(3, 60, 70, "b", "a")),
		"failed append not seen": hist(outcome(app(1, "a", 0, 10), check.Fail), rd(2, 20, 30)),
		"read after append":      hist(app(1, "a", 0, 10), rd(2, 20, 30, "a")),
		"keys are independent": hist(app(1, "a", 0, 10), func() check.Op { o := app(2, "b", 20, 30); o.Key = "j"; return o }(),
			rd(3, 40, 50, "a")),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := linearizable(h, check.LogModel)
			wantOK(t, r, err)
		})
	}
}

func TestLinearizableLogViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h     check.History
		words []string
	}{
		{"stale read", hist(app(1, "a", 0, 10), rd(2, 20, 30)), []string{"stale read", `"a"`}},
		{"reads go back", hist(app(1, "a", 0, 10), app(1, "b", 11, 15), rd(2, 20, 30, "a", "b"), rd(3, 40, 50, "a")),
			[]string{"stale read"}},
		{"lost acknowledged write", hist(app(1, "a", 0, 10), app(2, "b", 20, 30), rd(3, 5, 40, "b")),
			[]string{"lost write", `"a"`, `"b"`}},
		// A write acknowledged before it was committed, then ordered
		// behind a write invoked after the acknowledgement.
		{"acknowledged before commit", hist(app(1, "a", 0, 10), app(2, "b", 20, 30), rd(3, 40, 50, "b", "a")),
			[]string{"order against real time", `"a"`, `"b"`}},
		{"read from the future", hist(rd(1, 0, 10, "a"), app(2, "a", 20, 30)), []string{"read from the future"}},
		{"reads disagree", hist(app(1, "a", 0, 10), app(2, "b", 0, 10), rd(3, 20, 30, "a", "b"), rd(4, 20, 30, "b", "a")),
			[]string{"reads disagree"}},
		{"value nobody wrote", hist(rd(1, 0, 10, "x")), []string{"no operation wrote"}},
		{"failed write read", hist(outcome(app(1, "a", 0, 10), check.Fail), rd(2, 20, 30, "a")), []string{"failed"}},
		{"value read twice", hist(app(1, "a", 0, 10), rd(2, 20, 30, "a", "a")), []string{"twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := linearizable(tc.h, check.LogModel)
			wantViolation(t, r, err, tc.words...)
		})
	}
}

func TestLinearizableSyncReadsOnly(t *testing.T) {
	stale := rd(2, 20, 30)
	stale.Kind = check.Read
	h := hist(app(1, "a", 0, 10), stale)
	r, err := linearizable(h, check.LogModel)
	wantViolation(t, r, err, "stale read")
	cfg := check.DefaultLinearizableConfig()
	cfg.SyncReadsOnly = true
	r, err = check.Linearizable(h, cfg)
	wantOK(t, r, err)
}

func TestLinearizableRegister(t *testing.T) {
	r, err := linearizable(hist(wr(1, "a", 0, 10), rd(2, 20, 30, "a"), wr(1, "b", 40, 50), rd(3, 60, 70, "b"),
		wr(2, "c", 80, 200), rd(1, 90, 100, "b"), rd(3, 110, 120, "c")), check.RegisterModel)
	wantOK(t, r, err)
	for _, tc := range []struct {
		name  string
		h     check.History
		words []string
	}{
		{"stale read", hist(wr(1, "a", 0, 10), wr(2, "b", 20, 30), rd(3, 40, 50, "a")), []string{"stale read", `"b"`}},
		{"stale initial read", hist(wr(1, "a", 0, 10), rd(2, 20, 30)), []string{"stale read", "initial"}},
		{"read from the future", hist(rd(1, 0, 10, "a"), wr(2, "a", 20, 30)), []string{"future"}},
		{"value nobody wrote", hist(rd(1, 0, 10, "x")), []string{"no operation wrote"}},
		// No direct check names this one: only porcupine sees that "a"
		// and "b" cannot both be read after each other.
		{"flip-flop", hist(wr(1, "a", 0, 100), wr(2, "b", 0, 100), rd(3, 10, 20, "a"), rd(3, 30, 40, "b"), rd(3, 50, 60, "a")),
			[]string{"porcupine found no order"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := linearizable(tc.h, check.RegisterModel)
			wantViolation(t, r, err, tc.words...)
		})
	}
	_, err = linearizable(hist(wr(1, "a", 0, 10), rd(2, 20, 30, "a", "a")), check.RegisterModel)
	if err == nil {
		t.Fatal("a register read of two values was accepted")
	}
}

func TestLinearizableTimeoutIsUnknown(t *testing.T) {
	// A single register under 16 clients is porcupine's hard case: it
	// takes seconds, so a millisecond always runs out.
	h := checktest.Register(checktest.DefaultConfig())
	cfg := check.DefaultLinearizableConfig()
	cfg.Model, cfg.Timeout = check.RegisterModel, time.Millisecond
	r, err := check.Linearizable(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || !r.Unknown || !strings.Contains(r.Note, "timed out") {
		t.Fatalf("want unknown after a timeout, got %v", r)
	}
}

func TestLinearizableVisualization(t *testing.T) {
	dir := t.TempDir() + "/html"
	cfg := check.DefaultLinearizableConfig()
	cfg.HTMLDir = dir
	r, err := check.Linearizable(hist(app(1, "a", 0, 10), rd(2, 20, 30)), cfg)
	wantViolation(t, r, err, "stale read")
	b, err := os.ReadFile(r.HTML)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<html") || !strings.Contains(string(b), "append a") {
		t.Fatalf("%s is not porcupine's visualization of this history", r.HTML)
	}
}

func TestLinearizableConfig(t *testing.T) {
	if err := check.DefaultLinearizableConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := check.DefaultLinearizableConfig()
	cfg.Model, cfg.Timeout = "queue", -1
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `"queue"`) || !strings.Contains(err.Error(), "-1") {
		t.Fatalf("want both fields named, got %v", err)
	}
	if _, err := check.Linearizable(hist(app(1, "a", 10, 0)), check.DefaultLinearizableConfig()); err == nil {
		t.Fatal("an invalid history was checked")
	}
}

// small is a generated shape small enough for hundreds of runs.
func small(seed uint64) checktest.Config {
	return checktest.Config{Seed: seed, Clients: 6, Ops: 120, Keys: 2, Nodes: 3, ReadFraction: 0.35,
		InfoFraction: 0.05, FailFraction: 0.05, Latency: 1000, Deliveries: true}
}

func TestLinearizableGenerated(t *testing.T) {
	mutations := map[string]checktest.Mutation{
		"stale read": checktest.StaleRead, "lost write": checktest.LostWrite, "reorder": checktest.Reorder,
	}
	applied := map[string]int{}
	for seed := range uint64(40) {
		h := checktest.Log(small(seed))
		r, err := linearizable(h, check.LogModel)
		wantOK(t, r, err)
		rh := checktest.Register(small(seed))
		r, err = linearizable(rh, check.RegisterModel)
		wantOK(t, r, err)
		rng := rand.New(rand.NewPCG(seed, 9))
		for name, m := range mutations {
			bad, ok := m(h, rng)
			if !ok {
				continue
			}
			applied[name]++
			r, err := linearizable(bad, check.LogModel)
			if err != nil || r.OK || r.Unknown {
				t.Fatalf("seed %d, %s: want a violation, got %v %v", seed, name, r, err)
			}
		}
		if bad, ok := checktest.StaleRead(rh, rng); ok {
			applied["register stale read"]++
			r, err := linearizable(bad, check.RegisterModel)
			if err != nil || r.OK || r.Unknown {
				t.Fatalf("seed %d, register stale read: want a violation, got %v %v", seed, r, err)
			}
		}
	}
	for _, name := range []string{"stale read", "lost write", "reorder", "register stale read"} {
		if applied[name] < 20 {
			t.Errorf("mutation %s applied only %d times in 40", name, applied[name])
		}
	}
}

// naiveLog is the obvious model, state = the whole log, too slow for
// big histories but plainly right; the log model must agree with it.
var naiveLog = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		m := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range ops {
			k := op.Input.(check.Op).Key
			if _, ok := m[k]; !ok {
				keys = append(keys, k)
			}
			m[k] = append(m[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, m[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, _ any) (bool, any) {
		op := input.(check.Op)
		if op.Kind == check.Append {
			return true, state.(string) + op.Value + "\n"
		}
		s := strings.Join(op.Values, "\n")
		if len(op.Values) > 0 {
			s += "\n"
		}
		return s == state.(string), state
	},
}

func naiveLinearizable(h check.History) bool {
	var ops []porcupine.Operation
	for _, op := range h.Ops {
		switch {
		case op.Outcome == check.Fail || op.Kind == check.Delivered:
		case op.Outcome == check.Info && op.Kind == check.Append:
			ops = append(ops, porcupine.Operation{Input: op, Call: op.Call, Return: math.MaxInt64})
		case op.Outcome == check.OK:
			ops = append(ops, porcupine.Operation{Input: op, Call: op.Call, Return: op.Return})
		}
	}
	return porcupine.CheckOperations(naiveLog, ops)
}

// perturb changes a history at random in ways that may or may not break
// linearizability.
func perturb(h check.History, rng *rand.Rand) check.History {
	h = checktest.Clone(h)
	for range 1 + rng.IntN(3) {
		i := rng.IntN(len(h.Ops))
		op := &h.Ops[i]
		switch rng.IntN(4) {
		case 0:
			if len(op.Values) > 0 {
				op.Values = op.Values[:rng.IntN(len(op.Values))]
			}
		case 1:
			if n := len(op.Values); n >= 2 {
				j := rng.IntN(n - 1)
				op.Values[j], op.Values[j+1] = op.Values[j+1], op.Values[j]
			}
		case 2:
			d := op.Return - op.Call
			op.Call = max(0, op.Call+rng.Int64N(400)-200)
			op.Return = op.Call + d
		case 3:
			if op.Kind == check.Append && op.Outcome == check.OK {
				op.Outcome = []check.Outcome{check.Fail, check.Info}[rng.IntN(2)]
			}
		}
	}
	return h
}

func TestLogModelAgreesWithNaiveModel(t *testing.T) {
	agree := map[bool]int{}
	for seed := range uint64(300) {
		cfg := small(seed)
		cfg.Ops, cfg.Clients, cfg.Deliveries = 24, 4, false
		h := checktest.Log(cfg)
		rng := rand.New(rand.NewPCG(seed, 3))
		if seed%4 != 0 {
			h = perturb(h, rng)
		}
		want := naiveLinearizable(h)
		r, err := linearizable(h, check.LogModel)
		if err != nil {
			t.Fatal(err)
		}
		if r.Unknown || r.OK != want {
			b, _ := check.Encode(h)
			t.Fatalf("seed %d: naive model says linearizable=%v, log model %v\n%s", seed, want, r, b)
		}
		agree[want]++
	}
	t.Logf("agreed on %d linearizable and %d not", agree[true], agree[false])
	if agree[true] < 50 || agree[false] < 50 {
		t.Fatalf("too few of one kind to mean much: %v", agree)
	}
}
