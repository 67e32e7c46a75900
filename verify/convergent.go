package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/convergentchannel"
	"github.com/rime-dev/rime/protocols/crdtreplication"
	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/nemesis"
	"github.com/rime-dev/rime/verify/sim"
	"github.com/rime-dev/rime/verify/workload"
)

// ConvergentType is the convergent type of class's stack when its
// channel is the convergent channel (its replica's "type" parameter, the
// surface's default "log" if unset), and "" for a total-order stack.
func ConvergentType(cp engine.ClassPlan) crdt.Type {
	conv := false
	t := crdt.TypeLog
	for _, l := range cp.Stack {
		switch l.Protocol {
		case convergentchannel.Name:
			conv = true
		case crdtreplication.Name:
			if s, ok := l.Params["type"].(string); ok && s != "" {
				t = crdt.Type(s)
			}
		}
	}
	if !conv {
		return ""
	}
	return t
}

// runConvergentSchedule is runSchedule for a convergent class:
//
//  1. deploy on a fresh cluster; clients (workload.ConvergentClient)
//     drive every node's channel while the nemesis plays the schedule;
//  2. after the last fault, two seconds of recovery under load;
//  3. the class's durability k: k nodes, drawn from the seed, are lost
//     for good right as the clients stop (they are crashed and never
//     come back; h.Lost names them), so updates acknowledged in the last
//     moments, held by as few nodes as the promise allows, must survive
//     on the others;
//  4. every surviving replica's state, read in rounds until they agree
//     (anti-entropy needs a few of its intervals after a heal) or ten
//     rounds pass, is the history's Final.
func runConvergentSchedule(ctx context.Context, cfg Config, cp engine.ClassPlan, t crdt.Type, k, n int, sched nemesis.Schedule) (check.History, check.Result, error) {
	dir, err := os.MkdirTemp("", "rime-verify-run-")
	if err != nil {
		return check.History{}, check.Result{}, err
	}
	defer os.RemoveAll(dir)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := sim.Start(sctx, sim.Config{Plan: cfg.Plan, Classes: []string{cfg.Class}, NodeClasses: nodeClassesFor(cfg.App, cp, n),
		Registry: cfg.Registry, Seed: sched.Seed, DataDir: dir})
	if err != nil {
		return check.History{}, check.Result{}, err
	}
	defer c.Close()

	wcfg := cfg.Convergent
	if wcfg.Type == "" {
		wcfg = workload.DefaultConvergentConfig(t)
	}
	wcfg.Type = t
	if err := wcfg.Validate(); err != nil {
		return check.History{}, check.Result{}, err
	}
	rec := workload.NewRecorder(cfg.Class)
	faults := &faultLog{rec: rec, c: c, down: map[int]int64{}, part: -1}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	id := 0
	for i := range n {
		for range cfg.ClientsPerNode {
			id++
			cid := id
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec.ConvergentClient(wctx, cid, func() string { return nodeName(c, i) }, func() protocols.Channel { return c.Channel(i, cfg.Class) }, wcfg)
			}()
		}
	}
	err = nemesis.Run(ctx, sched, c, faults.observe)
	if err == nil {
		workload.Pause(ctx, 2*time.Second)
	}
	// Lose k nodes for good, as the clients stop.
	var lost []string
	gone := map[int]bool{}
	if err == nil && k > 0 {
		rng := rand.New(rand.NewPCG(sched.Seed, 0x6c6f7374))
		for _, i := range rng.Perm(n)[:min(k, n-1)] {
			lost = append(lost, nodeName(c, i))
			gone[i] = true
			c.Crash(i)
		}
	}
	stop()
	wg.Wait()
	faults.end()
	if err != nil {
		return check.History{}, check.Result{}, err
	}
	h := check.History{Ops: rec.Ops(), Partitions: faults.partitions, Crashes: faults.crashes, Lost: append(faults.lost, lost...)}
	final, err := convergentFinal(ctx, rec, cfg.Class, wcfg, n, gone, c)
	if err != nil {
		return check.History{}, check.Result{}, err
	}
	h.Final = final
	return h, streamResult(rec), nil
}

// convergentFinal reads every surviving replica's state, in rounds, until
// a round sees them all alike or ten rounds pass (then the last round is
// what the checks judge).
func convergentFinal(ctx context.Context, rec *workload.Recorder, class string, wcfg workload.ConvergentConfig, n int, gone map[int]bool, c *sim.Cluster) ([]check.Replica, error) {
	qctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var final []check.Replica
	for round := range 10 {
		final = final[:0]
		for i := range n {
			ch := c.Channel(i, class)
			if gone[i] || ch == nil {
				continue
			}
			st, err := rec.ConvergentState(qctx, fmt.Sprintf("final state of node %d", i), nodeName(c, i), ch, wcfg)
			if err != nil {
				return nil, fmt.Errorf("reading node %d's final state: %w", i, err)
			}
			final = append(final, check.Replica{Node: nodeName(c, i), State: st})
		}
		if statesAlike(final) || round == 9 {
			break
		}
		workload.Pause(qctx, time.Second)
	}
	return final, nil
}

func statesAlike(rs []check.Replica) bool {
	for _, r := range rs[min(1, len(rs)):] {
		if len(r.State) != len(rs[0].State) {
			return false
		}
		for k, vs := range r.State {
			if !slices.Equal(vs, rs[0].State[k]) {
				return false
			}
		}
	}
	return true
}

// convergentCheck runs one named check on a convergent class's history,
// with the model its type calls for; ok is false for checks that need no
// type-specific treatment (runCheck's defaults serve them).
func convergentCheck(name string, h check.History, t crdt.Type, g engine.DataGuarantees, htmlDir string) (check.Result, bool, error) {
	switch name {
	case CheckLinearizable:
		lc := check.DefaultLinearizableConfig()
		lc.HTMLDir = htmlDir
		switch t {
		case crdt.TypeLog:
		case crdt.TypeRegister, crdt.TypeMap:
			lc.Model = check.RegisterModel
		default:
			return check.Result{Check: name, Unknown: true, Note: fmt.Sprintf("no sequential model of a %s to check linearizability against (log, register and map have one)", t)}, true, nil
		}
		r, err := check.Linearizable(h, lc)
		return r, true, err
	case CheckSequential:
		if t != crdt.TypeLog {
			return check.Result{Check: name, Unknown: true, Note: fmt.Sprintf("sequential consistency is checked on logs only, not on a %s", t)}, true, nil
		}
	case CheckCausal:
		switch t {
		case crdt.TypeLog:
		case crdt.TypeSet, crdt.TypeText:
			r, err := check.CausalWith(h, check.CausalConfig{UnorderedReads: true})
			if err == nil && r.OK {
				r.Note = fmt.Sprintf("a %s's reads are held to causal inclusion only (their order is not causal), and its deliveries are not recorded", t)
			}
			return r, true, err
		default:
			return check.Result{Check: name, OK: true, Note: fmt.Sprintf(
				"not checked: a %s keeps only the last value, so reads cannot show causal order; only logs, sets and texts are checked", t)}, true, nil
		}
	case CheckDurability:
		model := check.Accumulate
		switch t {
		case crdt.TypeRegister, crdt.TypeMap:
			model = check.LastWriter
		case crdt.TypeCounter:
			model = check.Count
		}
		r, err := check.Durability(h, check.DurabilityConfig{K: int(g.Durability), Model: model})
		return r, true, err
	}
	return check.Result{}, false, nil
}
