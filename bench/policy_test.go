package bench

// Policy benchmarks: what one trust decision costs. Every join, invite,
// placement, relay, offload and read of a group goes through the default
// Rego policy (policies/trust.rego) in the embedded OPA, so its cost per
// decision bounds how many trust decisions a hub can make.
//
// Measured, on the same mix of inputs (every action x trust x membership x
// confidentiality x encryption, 288 inputs, cycled):
//   - rime: policy.Engine.Decide with the query prepared once, no log;
//   - rime+log: the same, appending each decision to a JSON-lines decision
//     log (written to io.Discard, so this is the encoding cost, not disk);
//   - raw OPA: the same prepared query evaluated directly through
//     rego.PreparedEvalQuery.Eval with rego.EvalInput, the baseline of what
//     the library costs without rime's facade;
//   - unprepared: rego.New(...).Eval per decision, which parses and compiles
//     the policy every time: what preparing once saves;
//   - OPA floor: a prepared query of a policy that allows everything, so
//     that the default policy's rules cost (rime Decide - floor) and the
//     rest is OPA's fixed cost per evaluation.
//
// BenchmarkPolicyDecide reports ns/decision for one goroutine;
// BenchmarkPolicyDecisionsPerSecond measures decisions/sec with every core
// deciding at once (the hub answers requests concurrently).
// BenchmarkPolicyReport prints all of them side by side with ratios against
// raw OPA measured in the same run; it runs a fixed number of decisions per
// iteration, so it means something under `make bench`'s -benchtime 3x.
//
//	go test ./bench/ -run '^$' -bench Policy -benchtime 3x
//
// The hub-operations benchmark of issue 5 (register, join, placement lookup
// with and without policy) is not here yet: it needs the hub.

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/rime-dev/rime/policies"
	"github.com/rime-dev/rime/policy"
)

// policyInputs is every combination of action, trust, membership,
// invitation, confidentiality and encryption: a mix of allows and denials
// that exercises every rule.
func policyInputs() []policy.Input {
	var ins []policy.Input
	for _, a := range policy.Actions {
		for _, tr := range policy.Trusts {
			for flags := range 4 {
				for d := range 4 {
					ins = append(ins, policy.Input{
						Action: a, Group: "friends",
						Node: policy.Node{ID: fmt.Sprintf("n-%s-%d", tr, flags), Class: "c", Trust: tr,
							Member: flags&1 != 0, Invited: flags&2 != 0},
						Data: policy.Data{Class: "photos", Confidential: d&1 != 0, Encrypted: d&2 != 0},
					})
				}
			}
		}
	}
	return ins
}

// asMap is an input as a generic JSON value, the form rego.EvalInput takes.
func asMap(in policy.Input) map[string]any {
	return map[string]any{
		"action": string(in.Action), "group": in.Group,
		"node": map[string]any{"id": in.Node.ID, "class": in.Node.Class, "trust": string(in.Node.Trust),
			"member": in.Node.Member, "invited": in.Node.Invited},
		"data": map[string]any{"class": in.Data.Class, "confidential": in.Data.Confidential, "encrypted": in.Data.Encrypted},
	}
}

// defaultModules returns rego options loading the default policy (tests
// left out), as policy.New loads it.
func defaultModules(tb testing.TB) []func(*rego.Rego) {
	var opts []func(*rego.Rego)
	err := fs.WalkDir(policies.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		b, err := fs.ReadFile(policies.FS(), p)
		if err != nil {
			return err
		}
		opts = append(opts, rego.Module(p, string(b)))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return append(opts, rego.Query(policy.DefaultQuery), rego.SetRegoVersion(ast.RegoV1))
}

// decider is one way of making a decision; it returns allow.
type decider func(ctx context.Context, in policy.Input, m map[string]any) (bool, error)

type variant struct {
	name string
	// perIter is how many decisions the report makes per iteration.
	perIter int
	decide  decider
}

func policyVariants(tb testing.TB) []variant {
	ctx := context.Background()
	rime, err := policy.New(ctx, policy.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	logged, err := policy.New(ctx, policy.Config{DecisionLog: io.Discard})
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := rego.New(defaultModules(tb)...).PrepareForEval(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	rawDecide := func(ctx context.Context, _ policy.Input, m map[string]any) (bool, error) {
		rs, err := raw.Eval(ctx, rego.EvalInput(m))
		if err != nil {
			return false, err
		}
		return rs[0].Expressions[0].Value.(map[string]any)["allow"].(bool), nil
	}
	trivial, err := rego.New(rego.Module("trivial.rego", "package rime.trust\n\ndecision := {\"allow\": true, \"reasons\": []}\n"),
		rego.Query(policy.DefaultQuery), rego.SetRegoVersion(ast.RegoV1)).PrepareForEval(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	mods := defaultModules(tb)
	return []variant{
		{"raw OPA (baseline)", 2000, rawDecide},
		{"rime Decide", 2000, func(ctx context.Context, in policy.Input, _ map[string]any) (bool, error) {
			d, err := rime.Decide(ctx, in)
			return d.Allow, err
		}},
		{"rime Decide + log", 2000, func(ctx context.Context, in policy.Input, _ map[string]any) (bool, error) {
			d, err := logged.Decide(ctx, in)
			return d.Allow, err
		}},
		{"unprepared OPA", 20, func(ctx context.Context, _ policy.Input, m map[string]any) (bool, error) {
			rs, err := rego.New(append(mods, rego.Input(m))...).Eval(ctx)
			if err != nil {
				return false, err
			}
			return rs[0].Expressions[0].Value.(map[string]any)["allow"].(bool), nil
		}},
		{"OPA floor (trivial)", 2000, func(ctx context.Context, _ policy.Input, m map[string]any) (bool, error) {
			_, err := trivial.Eval(ctx, rego.EvalInput(m))
			return false, err
		}},
	}
}

// BenchmarkPolicyDecide: ns/op is the cost of one decision with the
// prepared query (no decision log), on one goroutine.
func BenchmarkPolicyDecide(b *testing.B) {
	ctx := context.Background()
	e, err := policy.New(ctx, policy.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ins := policyInputs()
	i := 0
	for b.Loop() {
		if _, err := e.Decide(ctx, ins[i%len(ins)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
}

// BenchmarkPolicyDecisionsPerSecond measures decisions per second, not the
// latency of one: GOMAXPROCS goroutines share one Engine (as the hub's
// request handlers will) and decide as fast as they can, each decision
// logged (to io.Discard). The decisions/s metric is the throughput.
func BenchmarkPolicyDecisionsPerSecond(b *testing.B) {
	e, err := policy.New(context.Background(), policy.Config{DecisionLog: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	ins := policyInputs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			if _, err := e.Decide(ctx, ins[i%len(ins)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/secs, "decisions/s")
	b.ReportMetric(secs*1e9/float64(b.N), "ns/decision")
}

// BenchmarkPolicyReport makes a fixed number of decisions per variant per
// iteration and prints a table: ns per decision, decisions per second on
// one goroutine, and the ratio to raw OPA, each the median of the
// iterations; then the parallel throughput of rime Decide + log. It checks
// every variant gives the same answers, so that the comparison is fair.
func BenchmarkPolicyReport(b *testing.B) {
	ctx := context.Background()
	vs := policyVariants(b)
	ins := policyInputs()
	maps := make([]map[string]any, len(ins))
	for i, in := range ins {
		maps[i] = asMap(in)
	}
	// Same answers from every variant, on every input.
	for i, in := range ins {
		var first bool
		for k, v := range vs {
			if v.perIter < len(ins) && i%(len(ins)/v.perIter) != 0 {
				continue // the unprepared variant is too slow for all 288
			}
			if v.name == "OPA floor (trivial)" {
				continue // answers allow to everything, by design
			}
			got, err := v.decide(ctx, in, maps[i])
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				first = got
			} else if got != first {
				b.Fatalf("%s answers %v on %+v, %s answers %v", v.name, got, in, vs[0].name, first)
			}
		}
	}
	perDecision := make([][]time.Duration, len(vs))
	var throughput []float64
	for b.Loop() {
		for k, v := range vs {
			start := time.Now()
			for i := range v.perIter {
				j := i % len(ins)
				if _, err := v.decide(ctx, ins[j], maps[j]); err != nil {
					b.Fatal(err)
				}
			}
			perDecision[k] = append(perDecision[k], time.Since(start)/time.Duration(v.perIter))
		}
		throughput = append(throughput, parallelThroughput(b, vs[2].decide, ins, maps))
	}
	base := median(perDecision[0])
	var t strings.Builder
	fmt.Fprintf(&t, "%-20s %12s %14s %10s\n", "policy decision", "ns/decision", "decisions/s", "vs raw OPA")
	for k, v := range vs {
		d := median(perDecision[k])
		fmt.Fprintf(&t, "%-20s %12d %14.0f %10.2f\n", v.name, d.Nanoseconds(), float64(time.Second)/float64(d), float64(d)/float64(base))
	}
	slices.Sort(throughput)
	fmt.Fprintf(&t, "%-20s %12s %14.0f   (%d goroutines, one Engine)\n", "rime Decide + log", "parallel", throughput[len(throughput)/2], runtime.GOMAXPROCS(0))
	fmt.Fprintf(&t, "(median of %d runs; %d inputs cycled; %d decisions per run, %d unprepared)\n",
		len(perDecision[0]), len(ins), vs[0].perIter, vs[3].perIter)
	fmt.Print(t.String())
}

// parallelThroughput runs decide on GOMAXPROCS goroutines for a fixed
// number of decisions each and returns decisions per second.
func parallelThroughput(b *testing.B, decide decider, ins []policy.Input, maps []map[string]any) float64 {
	const each = 2000
	n := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range n {
		wg.Go(func() {
			for i := range each {
				j := (g*each + i) % len(ins)
				if _, err := decide(context.Background(), ins[j], maps[j]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n*each) / time.Since(start).Seconds()
}
