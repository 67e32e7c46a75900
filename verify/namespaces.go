package verify

import (
	"context"
	"fmt"
	"github.com/rime-dev/rime/engine"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/nemesis"
	"github.com/rime-dev/rime/verify/netns"
	"github.com/rime-dev/rime/verify/workload"
)

// NamespacesConfig is what the multi-process runtime needs beyond
// Config: how to run rime, and the plan file the nodes load.
type NamespacesConfig struct {
	Config
	// Command runs rime (the binary, and leading arguments if any); Env
	// is added to its environment.
	Command []string
	Env     []string
	// PlanFile is given to `rime node --plan` (an app or a plan JSON).
	PlanFile string
	// NodeClasses, one per node.
	NodeClasses []string
}

// RunNamespaces verifies one class with each node a `rime node` process
// in its own network namespace. Its nemesis cuts links: each schedule
// isolates seeded nodes in turn for 1-3 s and heals; the other faults of
// the environment are listed as not injected (the in-process runtime
// injects them). The checks are those of Run, without durability and
// availability, which need crash and partition windows this runtime does
// not yet record.
func RunNamespaces(ctx context.Context, cfg NamespacesConfig) (*ClassReport, error) {
	cp, ok := classPlan(cfg.Plan, cfg.Class)
	if !ok {
		return nil, fmt.Errorf("verify: the plan of %s has no class %q", cfg.Plan.App, cfg.Class)
	}
	g, err := Guarantees(cp)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if t := ConvergentType(cp); t != "" {
		// TODO: a convergent workload over rime node processes (their
		// client API) is not written; RunNamespaces drives total orders.
		return nil, fmt.Errorf("verify: class %s is convergent (%s): --netns verifies total-order classes only so far", cfg.Class, t)
	}
	checks := cfg.Checks
	if len(checks) == 0 {
		for _, c := range ChecksFor(g) {
			if c != CheckDurability && c != CheckAvailability {
				checks = append(checks, c)
			}
		}
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	if cfg.OutDir == "" {
		if cfg.OutDir, err = os.MkdirTemp("", "rime-verify-"); err != nil {
			return nil, err
		}
	}
	faults := nemesis.Admitted(cfg.App.Env)
	rep := &ClassReport{Name: cfg.Class, Checked: append([]string{CheckStream}, checks...), OK: true, Violations: []Violation{}}
	if faults.Partitions {
		rep.Faults = []string{"partition (a node's link cut)"}
	}
	for _, f := range faults.List() {
		if f != "partition" {
			rep.NotInjected = append(rep.NotInjected, f+" (the namespace runtime cuts links only; the in-process runtime injects it)")
		}
	}
	rep.NotInjected = append(rep.NotInjected, faults.NotInjected...)
	for k := range max(cfg.Schedules, 1) {
		seed := cfg.Seed + uint64(k)
		cfg.Progress("class %s: namespace schedule %d/%d (seed %d)", cfg.Class, k+1, max(cfg.Schedules, 1), seed)
		h, stream, err := runNamespaceSchedule(ctx, cfg, seed, faults.Partitions)
		if err != nil {
			return rep, fmt.Errorf("verify: class %s, seed %d: %w", cfg.Class, seed, err)
		}
		rep.Schedules++
		rep.Ops += len(h.Ops)
		results, err := runChecks(checks, h, g, "", cfg.OutDir, fmt.Sprintf("%s-netns-seed%d", cfg.Class, seed))
		if err != nil {
			return rep, err
		}
		results = append([]check.Result{stream}, results...)
		rep.record(cfg.Config, h, seed, results)
	}
	return rep, nil
}

func (cfg NamespacesConfig) classPlan() engine.ClassPlan {
	cp, _ := classPlan(cfg.Plan, cfg.Class)
	return cp
}

func runNamespaceSchedule(ctx context.Context, cfg NamespacesConfig, seed uint64, partitions bool) (check.History, check.Result, error) {
	dir, err := os.MkdirTemp("", "rime-verify-netns-")
	if err != nil {
		return check.History{}, check.Result{}, err
	}
	defer os.RemoveAll(dir)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := netns.Start(sctx, netns.Config{
		Command: cfg.Command, Env: cfg.Env, Prefix: fmt.Sprintf("rv%d", os.Getpid()%10000),
		Subnet: fmt.Sprintf("10.79.%d", os.Getpid()%250), Plan: cfg.PlanFile, Classes: []string{cfg.Class},
		NodeClasses: cfg.NodeClasses, Dir: dir,
	})
	if err != nil {
		return check.History{}, check.Result{}, err
	}
	defer c.Close()
	if err := c.WaitVoters(sctx, 0, cfg.Class, replicaCount(cfg.classPlan())); err != nil {
		return check.History{}, check.Result{}, err
	}

	rec := workload.NewRecorder(cfg.Class)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range c.N() {
		ch := c.Channel(i, cfg.Class)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec.Client(wctx, i+1, func() string { return c.Ready(i).ID }, func() protocols.Channel { return ch }, workload.DefaultConfig())
		}()
	}
	rng := rand.New(rand.NewPCG(seed, 0x6e6574))
	end := time.Now().Add(cfg.Duration)
	var partsLog []check.Partition
	for partitions && time.Now().Before(end) && ctx.Err() == nil {
		workload.Pause(ctx, time.Duration(500+rng.IntN(1500))*time.Millisecond)
		i := rng.IntN(c.N())
		cfg.Progress("class %s: cutting node %d's link", cfg.Class, i)
		p := check.Partition{Start: rec.Now(), Sides: [][]string{{c.Ready(i).ID}}}
		if err := c.Isolate(i); err != nil {
			stop()
			wg.Wait()
			return check.History{}, check.Result{}, err
		}
		workload.Pause(ctx, time.Duration(1000+rng.IntN(2000))*time.Millisecond)
		if err := c.Heal(); err != nil {
			stop()
			wg.Wait()
			return check.History{}, check.Result{}, err
		}
		p.End = rec.Now()
		var rest []string
		for j := range c.N() {
			if j != i {
				rest = append(rest, c.Ready(j).ID)
			}
		}
		p.Sides = append(p.Sides, rest)
		partsLog = append(partsLog, p)
	}
	if !partitions {
		workload.Pause(ctx, cfg.Duration)
	}
	workload.Pause(ctx, 2*time.Second) // recovery under load, checked too
	stop()
	wg.Wait()

	h := check.History{Ops: rec.Ops(), Partitions: partsLog}
	final, err := finalStates(ctx, rec, cfg.Class, c.N(), func(i int) protocols.Channel { return c.Channel(i, cfg.Class) }, func(i int) string { return c.Ready(i).ID })
	if err != nil {
		return check.History{}, check.Result{}, fmt.Errorf("%w\n%s", err, c.Stderr(0))
	}
	h.Final = final
	return h, streamResult(rec), nil
}
