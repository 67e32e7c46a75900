package bench

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/check/checktest"
)

// The linearizability checker on a log: the history of 16 clients
// appending to one log and reading it whole with sync-reads (30% of the
// operations), some outcomes unknown or failed, as checktest generates it.
// rime's log model (state: how many appends took effect) is timed against
// two models porcupine would be given by hand, measured in the same run:
//
//   - whole log: the state is the log as a string (what the node tests
//     used, and timed out on full histories with reads);
//   - length+hash: the state is the log's length and a rolling hash of it,
//     cheap to compare but still one state per order of the appends.
//
// Target: 2000 operations checked in under a second. The baselines run
// once per size and get baselineTimeout each; a baseline that runs out is shown as ">" its
// timeout, so its ratio is a lower bound.

var checkerSizes = []int{250, 500, 1000, 2000}

const (
	targetOps       = 2000
	targetCheck     = time.Second
	baselineTimeout = 5 * time.Second
)

func logHistory(ops int) check.History {
	cfg := checktest.DefaultConfig()
	cfg.Ops = ops
	return checktest.Log(cfg)
}

// baselineOps turns a history into porcupine operations as a hand-written
// checker would: failed updates out, unknown ones open forever (or out if
// no read saw them), reads as their whole output.
func baselineOps(h check.History) []porcupine.Operation {
	seen := map[string]bool{}
	for _, op := range h.Ops {
		for _, v := range op.Values {
			seen[v] = true
		}
	}
	var ops []porcupine.Operation
	for _, op := range h.Ops {
		switch {
		case op.Kind == check.Delivered || op.Outcome == check.Fail:
		case op.Outcome == check.Info:
			if op.Kind == check.Append && seen[op.Value] {
				ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: op, Call: op.Call, Return: math.MaxInt64})
			}
		default:
			ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: op, Call: op.Call, Return: op.Return})
		}
	}
	return ops
}

var wholeLogModel = porcupine.Model{
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

type lenHash struct {
	n int
	h uint64
}

func rolling(h uint64, v string) uint64 {
	for i := 0; i < len(v); i++ {
		h = h*1099511628211 + uint64(v[i])
	}
	return h*1099511628211 + 0xff
}

var lengthHashModel = porcupine.Model{
	Init: func() any { return lenHash{} },
	Step: func(state, input, _ any) (bool, any) {
		s, op := state.(lenHash), input.(check.Op)
		if op.Kind == check.Append {
			return true, lenHash{s.n + 1, rolling(s.h, op.Value)}
		}
		if len(op.Values) != s.n {
			return false, s
		}
		var h uint64
		for _, v := range op.Values {
			h = rolling(h, v)
		}
		return h == s.h, s
	},
	Hash: func(state any) uint64 { s := state.(lenHash); return s.h ^ uint64(s.n) },
}

// timeBaseline runs porcupine with model; ok is false if it timed out.
func timeBaseline(b *testing.B, model porcupine.Model, ops []porcupine.Operation) (time.Duration, bool) {
	start := time.Now()
	res := porcupine.CheckOperationsTimeout(model, ops, baselineTimeout)
	d := time.Since(start)
	if res == porcupine.Illegal {
		b.Fatal("baseline model rejects a linearizable history")
	}
	return d, res == porcupine.Ok
}

func timeRime(b *testing.B, h check.History) time.Duration {
	start := time.Now()
	r, err := check.Linearizable(h, check.DefaultLinearizableConfig())
	d := time.Since(start)
	if err != nil || !r.OK {
		b.Fatalf("%v %v", r, err)
	}
	return d
}

// BenchmarkLinearizableLog is the target case alone: 2000 operations, 16
// clients, with reads.
func BenchmarkLinearizableLog(b *testing.B) {
	h := logHistory(targetOps)
	for b.Loop() {
		timeRime(b, h)
	}
}

// BenchmarkCheckers times every checker on the target history, for scale.
func BenchmarkCheckers(b *testing.B) {
	cfg := checktest.DefaultConfig()
	cfg.Deliveries = true
	h := checktest.Log(cfg)
	rcfg := cfg
	rcfg.Keys = 8
	reg := checktest.Register(rcfg)
	for _, c := range []struct {
		name string
		run  func() (check.Result, error)
	}{
		{"linearizable-log", func() (check.Result, error) { return check.Linearizable(h, check.DefaultLinearizableConfig()) }},
		{"linearizable-register-8keys", func() (check.Result, error) {
			lc := check.DefaultLinearizableConfig()
			lc.Model = check.RegisterModel
			return check.Linearizable(reg, lc)
		}},
		{"sequential", func() (check.Result, error) { return check.Sequential(h) }},
		{"causal", func() (check.Result, error) { return check.Causal(h) }},
		{"convergence", func() (check.Result, error) { return check.Convergence(h, check.ConvergenceConfig{}) }},
		{"durability", func() (check.Result, error) { return check.Durability(h, check.DurabilityConfig{K: 1}) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if r, err := c.run(); err != nil || !r.OK {
					b.Fatalf("%v %v", r, err)
				}
			}
		})
	}
}

// BenchmarkLinearizableReport prints rime's log model against the two
// baselines at each size, medians of the -benchtime runs. The table goes
// to stdout because the testing package cuts a benchmark's log to ten
// lines.
func BenchmarkLinearizableReport(b *testing.B) {
	type sample struct {
		rime, whole, hash []time.Duration
		wholeOut, hashOut bool // timed out at least once
	}
	samples := map[int]*sample{}
	hs := map[int]check.History{}
	for _, n := range checkerSizes {
		hs[n] = logHistory(n)
		samples[n] = &sample{}
	}
	first := true
	for b.Loop() {
		for _, n := range checkerSizes {
			s, h := samples[n], hs[n]
			s.rime = append(s.rime, timeRime(b, h))
			if !first {
				continue // the baselines run once: they mostly time out
			}
			ops := baselineOps(h)
			d, ok := timeBaseline(b, wholeLogModel, ops)
			s.whole, s.wholeOut = append(s.whole, d), s.wholeOut || !ok
			d, ok = timeBaseline(b, lengthHashModel, ops)
			s.hash, s.hashOut = append(s.hash, d), s.hashOut || !ok
		}
		first = false
	}
	cell := func(ds []time.Duration, out bool) string {
		if out {
			return fmt.Sprintf(">%.0f", ms(baselineTimeout))
		}
		return fmt.Sprintf("%.1f", ms(median(ds)))
	}
	ratio := func(base []time.Duration, out bool, rime time.Duration) string {
		r := float64(median(base)) / float64(rime)
		if out {
			return fmt.Sprintf(">%.0f", float64(baselineTimeout)/float64(rime))
		}
		return fmt.Sprintf("%.1f", r)
	}
	var t strings.Builder
	fmt.Fprintf(&t, "%6s %10s %14s %15s %14s %15s  %-12s %s\n",
		"ops", "rime_ms", "whole_log_ms", "x_vs_whole_log", "len_hash_ms", "x_vs_len_hash", "target", "meets")
	for _, n := range checkerSizes {
		s := samples[n]
		r := median(s.rime)
		target, meets := "-", "-"
		if n == targetOps {
			target = fmt.Sprintf("<%d ms", targetCheck.Milliseconds())
			meets = "no"
			if r < targetCheck {
				meets = "yes"
			}
		}
		fmt.Fprintf(&t, "%6d %10.1f %14s %15s %14s %15s  %-12s %s\n", n, ms(r),
			cell(s.whole, s.wholeOut), ratio(s.whole, s.wholeOut, r),
			cell(s.hash, s.hashOut), ratio(s.hash, s.hashOut, r), target, meets)
	}
	fmt.Fprintf(&t, "(16 clients, 30%% sync-reads, one log; rime: median of %d runs; baselines: one run, stopped at %v)\n",
		len(samples[checkerSizes[0]].rime), baselineTimeout)
	fmt.Print(t.String())
}
