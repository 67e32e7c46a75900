package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/spec"
	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/nemesis"
	"github.com/rime-dev/rime/verify/sim"
	"github.com/rime-dev/rime/verify/workload"
)

// The checks rime verify knows, by the name --check and reports use.
const (
	CheckLinearizable = "linearizable"
	CheckSequential   = "sequential"
	CheckCausal       = "causal"
	CheckConvergence  = "convergence"
	CheckDurability   = "durability"
	CheckAvailability = "availability"
	// CheckStream is the channel contract itself, checked as events
	// arrive: contiguous Seqs, one update per Seq on every session.
	CheckStream = "stream"
)

// Models are the consistency models --check accepts.
var Models = []string{CheckLinearizable, CheckSequential, CheckCausal, CheckConvergence}

// Config is one class's verification.
type Config struct {
	// App gives the environment (which faults to inject) and node classes.
	App *spec.App
	// Plan is the plan to deploy (with implemented protocols).
	Plan  *engine.Plan
	Class string
	// Nodes is how many nodes run the class; 0 means the stack's replica
	// count, or 3.
	Nodes int
	// Schedules of Duration each, seeds Seed, Seed+1, ...
	Schedules int
	Seed      uint64
	Duration  time.Duration
	// Checks overrides what is checked (--check); empty means what the
	// plan guarantees.
	Checks []string
	// ClientsPerNode, default 2.
	ClientsPerNode int
	// OutDir receives, for each violating schedule, its history as JSON
	// and porcupine's visualization; empty: a temporary directory.
	OutDir string
	// Registry of implementations; nil means sim.FastRegistry().
	Registry *protocols.Registry
	// Progress, if set, is told what is happening.
	Progress func(format string, args ...any)
	// Convergent shapes a convergent class's clients; its zero value
	// means workload.DefaultConvergentConfig of the class's type.
	Convergent workload.ConvergentConfig
}

// ClassReport is what rime verify prints per class (its JSON contract).
type ClassReport struct {
	Name        string      `json:"name"`
	Checked     []string    `json:"checked"`
	Schedules   int         `json:"schedules"`
	OK          bool        `json:"ok"`
	Violations  []Violation `json:"violations"`
	Faults      []string    `json:"faults"`
	NotInjected []string    `json:"not_injected,omitempty"`
	Ops         int         `json:"ops"`
	// Unknown lists checks that could not decide on some schedule (a
	// checker timeout): not a pass.
	Unknown []string `json:"unknown,omitempty"`
	// Notes are what passing checks said they did not check (once each).
	Notes []string `json:"notes,omitempty"`
}

// Violation is one broken promise on one schedule.
type Violation struct {
	Check   string `json:"check"`
	Seed    uint64 `json:"seed"`
	Explain string `json:"explain"`
	// History is the file holding the run's history (check.Decode reads
	// it); HTML porcupine's picture of a linearizability violation.
	History string `json:"history"`
	HTML    string `json:"html,omitempty"`
}

// Guarantees reads a class plan's guarantees, whether planned in this
// process or decoded from JSON.
func Guarantees(cp engine.ClassPlan) (engine.DataGuarantees, error) {
	var g engine.DataGuarantees
	if cp.Guarantees == nil {
		return g, fmt.Errorf("class %s has no guarantees (is it satisfiable?)", cp.Name)
	}
	b, err := json.Marshal(cp.Guarantees)
	if err == nil {
		err = json.Unmarshal(b, &g)
	}
	return g, err
}

// ChecksFor is what a class's guarantees promise, as checks: its
// consistency model, convergence after healing, durability when it
// promises any, and its availability.
func ChecksFor(g engine.DataGuarantees) []string {
	var out []string
	switch g.Consistency {
	case "linearizable", "strict-serializable":
		out = append(out, CheckLinearizable)
	case "sequential":
		out = append(out, CheckSequential)
	case "causal", "read-your-writes", "pram", "monotonic-reads", "monotonic-writes", "writes-follow-reads":
		out = append(out, CheckCausal)
	}
	out = append(out, CheckConvergence)
	if g.Durability > 0 {
		out = append(out, CheckDurability)
	}
	if g.Available != "" {
		out = append(out, CheckAvailability)
	}
	return out
}

// Supported says whether verify can drive class's stack, and if not
// why. Two workloads exist: one reads a total order (Seqs shared by every
// session), which linearizable and sequential classes' channels give;
// the other drives the convergent channel (per-node Seqs, CRDT deltas)
// of available classes, for every convergent type.
func Supported(p *engine.Plan, class string) error {
	cp, ok := classPlan(p, class)
	if !ok {
		return fmt.Errorf("the plan of %s has no class %q", p.App, class)
	}
	g, err := Guarantees(cp)
	if err != nil {
		return err
	}
	if t := ConvergentType(cp); t != "" {
		if !slices.Contains(crdt.Types, t) {
			return fmt.Errorf("class %s: its replica's type %q is not a convergent type", class, t)
		}
		return nil
	}
	if g.Consistency != "linearizable" && g.Consistency != "sequential" && g.Consistency != "strict-serializable" {
		return fmt.Errorf("class %s (%s): its channel is neither a total order nor the convergent channel, and verify has a workload for those two only", class, g.Consistency)
	}
	return nil
}

// Run verifies one class over cfg.Schedules schedules.
func Run(ctx context.Context, cfg Config) (*ClassReport, error) {
	cp, ok := classPlan(cfg.Plan, cfg.Class)
	if !ok {
		return nil, fmt.Errorf("verify: the plan of %s has no class %q", cfg.Plan.App, cfg.Class)
	}
	if classes, skipped := node.Deployable(cfg.Plan, []string{cfg.Class}, cfg.Registry); len(classes) == 0 {
		return nil, fmt.Errorf("verify: %s", skipped[0])
	}
	if err := Supported(cfg.Plan, cfg.Class); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	g, err := Guarantees(cp)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	checks := cfg.Checks
	if len(checks) == 0 {
		checks = ChecksFor(g)
	}
	for _, c := range checks {
		if !slices.Contains(append(slices.Clone(Models), CheckDurability, CheckAvailability), c) {
			return nil, fmt.Errorf("verify: unknown check %q (know %v, durability, availability)", c, Models)
		}
	}
	if cfg.Schedules <= 0 {
		cfg.Schedules = 1
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.ClientsPerNode <= 0 {
		cfg.ClientsPerNode = 2
	}
	if cfg.Registry == nil {
		cfg.Registry = sim.FastRegistry()
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	if cfg.OutDir == "" {
		if cfg.OutDir, err = os.MkdirTemp("", "rime-verify-"); err != nil {
			return nil, err
		}
	}
	// A violating schedule's history goes there; a report must not name
	// a file that was never written.
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	n := cfg.Nodes
	if n == 0 {
		n = replicaCount(cp)
	}
	faults := nemesis.Admitted(cfg.App.Env)
	ctype := ConvergentType(cp)
	lim := nemesis.Limits{MaxDown: (n - 1) / 2, MaxLostDisks: int(g.Durability)}
	if g.Available == "always" {
		lim.MaxDown = n - 1
	}
	rep := &ClassReport{Name: cfg.Class, Checked: append([]string{CheckStream}, checks...), OK: true,
		Faults: faults.List(), NotInjected: faults.NotInjected, Violations: []Violation{}}
	for k := range cfg.Schedules {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		seed := cfg.Seed + uint64(k)
		sched := nemesis.Generate(faults, n, cfg.Duration, seed, lim)
		cfg.Progress("class %s: schedule %d/%d (seed %d, %d faults)", cfg.Class, k+1, cfg.Schedules, seed, len(sched.Events))
		var (
			h      check.History
			stream check.Result
		)
		if ctype != "" {
			h, stream, err = runConvergentSchedule(ctx, cfg, cp, ctype, int(g.Durability), n, sched)
		} else {
			h, stream, err = runSchedule(ctx, cfg, cp, n, sched)
		}
		if err != nil {
			return rep, fmt.Errorf("verify: class %s, seed %d: %w", cfg.Class, seed, err)
		}
		rep.Schedules++
		rep.Ops += len(h.Ops)
		results, err := runChecks(checks, h, g, ctype, cfg.OutDir, fmt.Sprintf("%s-seed%d", cfg.Class, seed))
		if err != nil {
			return rep, fmt.Errorf("verify: class %s, seed %d: %w", cfg.Class, seed, err)
		}
		results = append([]check.Result{stream}, results...)
		rep.record(cfg, h, seed, results)
	}
	return rep, nil
}

// record adds one schedule's results to the report, writing the history
// of a violating schedule to cfg.OutDir.
func (rep *ClassReport) record(cfg Config, h check.History, seed uint64, results []check.Result) {
	var bad []check.Result
	for _, r := range results {
		if r.Unknown && !slices.Contains(rep.Unknown, r.Check) {
			rep.Unknown = append(rep.Unknown, r.Check)
		}
		if note := r.Check + ": " + r.Note; r.OK && r.Note != "" && !slices.Contains(rep.Notes, note) && len(rep.Notes) < 20 {
			rep.Notes = append(rep.Notes, note)
		}
		if !r.OK {
			bad = append(bad, r)
		}
	}
	if len(bad) == 0 {
		return
	}
	rep.OK = false
	path := filepath.Join(cfg.OutDir, fmt.Sprintf("%s-seed%d.history.json", cfg.Class, seed))
	if b, err := check.Encode(h); err == nil {
		os.WriteFile(path, b, 0o644)
	}
	for _, r := range bad {
		explain := r.Note
		if len(r.Violations) > 0 {
			explain = r.Violations[0].Explain
			if more := len(r.Violations) - 1 + r.Omitted; more > 0 {
				explain += fmt.Sprintf(" (and %d more)", more)
			}
		}
		rep.Violations = append(rep.Violations, Violation{Check: r.Check, Seed: seed, Explain: explain, History: path, HTML: r.HTML})
		cfg.Progress("class %s: seed %d: %s violated: %s", cfg.Class, seed, r.Check, explain)
	}
}

func classPlan(p *engine.Plan, name string) (engine.ClassPlan, bool) {
	for _, c := range p.Classes {
		if c.Name == name {
			return c, true
		}
	}
	return engine.ClassPlan{}, false
}

// replicaCount is the stack's "replicas" parameter, or 3.
func replicaCount(cp engine.ClassPlan) int {
	for _, l := range cp.Stack {
		if v, ok := l.Params["replicas"]; ok {
			switch x := v.(type) {
			case float64:
				return int(x)
			case int64:
				return int(x)
			case int:
				return x
			}
		}
	}
	return 3
}

// NodeClassesFor gives n nodes of class's stack their node classes.
func NodeClassesFor(app *spec.App, p *engine.Plan, class string, n int) []string {
	cp, _ := classPlan(p, class)
	return nodeClassesFor(app, cp, n)
}

// nodeClassesFor gives n nodes a node class that may host every layer
// of the stack, preferring the app's order.
func nodeClassesFor(app *spec.App, cp engine.ClassPlan, n int) []string {
	pick := ""
	for _, nc := range app.Env.Nodes {
		ok := true
		for _, l := range cp.Stack {
			if len(l.Hosts) > 0 && !slices.Contains(l.Hosts, nc.Name) {
				ok = false
			}
		}
		if ok {
			pick = nc.Name
			break
		}
	}
	if pick == "" && len(app.Env.Nodes) > 0 {
		pick = app.Env.Nodes[0].Name
	}
	if pick == "" {
		pick = "node"
	}
	out := make([]string, n)
	for i := range out {
		out[i] = pick
	}
	return out
}

// runSchedule deploys the class on a fresh cluster, runs the workload
// under the schedule, heals, lets the system settle, and records the
// final state of every replica.
func runSchedule(ctx context.Context, cfg Config, cp engine.ClassPlan, n int, sched nemesis.Schedule) (check.History, check.Result, error) {
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
	if lg, ok := node.Layer[protocols.Log](c.Node(0), cfg.Class); ok {
		if err := lg.Ready(sctx); err != nil {
			return check.History{}, check.Result{}, fmt.Errorf("the class never became ready: %w", err)
		}
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
				rec.Client(wctx, cid, func() string { return nodeName(c, i) }, func() protocols.Channel { return c.Channel(i, cfg.Class) }, workload.DefaultConfig())
			}()
		}
	}
	err = nemesis.Run(ctx, sched, c, faults.observe)
	// After the last fault (everything healed and restarted), the system
	// has a while to recover under load: what it does then is checked too.
	if err == nil {
		workload.Pause(ctx, 2*time.Second)
	}
	stop()
	wg.Wait()
	faults.end()
	if err != nil {
		return check.History{}, check.Result{}, err
	}

	h := check.History{Ops: rec.Ops(), Partitions: faults.partitions, Crashes: faults.crashes, Lost: faults.lost}
	final, err := finalStates(ctx, rec, cfg.Class, n, func(i int) protocols.Channel { return c.Channel(i, cfg.Class) }, func(i int) string { return nodeName(c, i) })
	if err != nil {
		return check.History{}, check.Result{}, err
	}
	h.Final = final
	return h, streamResult(rec), nil
}

// finalStates reads every live replica's state once the system is
// quiet. Updates whose clients gave up may still commit after the
// workload stopped, between one replica's read and the next, so the
// replicas are read in rounds until a round sees them all alike (or
// five rounds pass: then the last round is what the checks judge).
func finalStates(ctx context.Context, rec *workload.Recorder, class string, n int, channel func(int) protocols.Channel, name func(int) string) ([]check.Replica, error) {
	qctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var final []check.Replica
	for round := range 5 {
		final = final[:0]
		for i := range n {
			ch := channel(i)
			if ch == nil {
				continue
			}
			log, err := rec.SessionLog(qctx, fmt.Sprintf("final state of node %d", i), ch)
			if err != nil {
				return nil, fmt.Errorf("reading node %d's final state: %w", i, err)
			}
			final = append(final, check.Replica{Node: name(i), State: map[string][]string{class: log}})
		}
		if allAlike(final, class) || round == 4 {
			break
		}
		workload.Pause(qctx, time.Second)
	}
	return final, nil
}

// streamResult is the channel contract as the recorder checked it while
// events arrived.
func streamResult(rec *workload.Recorder) check.Result {
	r := check.Result{Check: CheckStream, OK: true}
	for _, v := range rec.StreamViolations() {
		r.OK = false
		r.Violations = append(r.Violations, check.Violation{Explain: v})
	}
	return r
}

func allAlike(rs []check.Replica, class string) bool {
	for _, r := range rs[min(1, len(rs)):] {
		if !slices.Equal(r.State[class], rs[0].State[class]) {
			return false
		}
	}
	return true
}

func nodeName(c *sim.Cluster, i int) string {
	if n := c.Node(i); n != nil {
		return n.ID()
	}
	return fmt.Sprintf("node%d", i)
}

// faultLog turns the nemesis's events into the history's fault windows,
// on the recorder's clock.
type faultLog struct {
	rec        *workload.Recorder
	c          *sim.Cluster
	mu         sync.Mutex
	partitions []check.Partition
	part       int // index of the open partition, or -1
	crashes    []check.Crash
	down       map[int]int64
	names      map[int]string
	lost       []string
}

func (f *faultLog) observe(e nemesis.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.rec.Now()
	closePart := func() {
		if f.part >= 0 {
			f.partitions[f.part].End = now
			f.part = -1
		}
	}
	switch e.Kind {
	case nemesis.Partition, nemesis.Disconnect:
		closePart()
		groups := e.Groups
		if e.Kind == nemesis.Disconnect {
			groups = [][]int{e.Nodes}
		}
		var sides [][]string
		listed := map[int]bool{}
		for _, g := range groups {
			var side []string
			for _, i := range g {
				listed[i] = true
				side = append(side, nodeName(f.c, i))
			}
			sides = append(sides, side)
		}
		var rest []string
		for i := range f.c.N() {
			if !listed[i] {
				rest = append(rest, nodeName(f.c, i))
			}
		}
		if len(rest) > 0 {
			sides = append(sides, rest)
		}
		f.partitions = append(f.partitions, check.Partition{Start: now, Sides: sides})
		f.part = len(f.partitions) - 1
	case nemesis.Heal:
		closePart()
	case nemesis.Crash:
		if f.names == nil {
			f.names = map[int]string{}
		}
		for _, i := range e.Nodes {
			f.down[i] = now
		}
	case nemesis.Restart, nemesis.LoseDisk:
		for _, i := range e.Nodes {
			start, ok := f.down[i]
			if !ok {
				continue
			}
			delete(f.down, i)
			// The crashed node's name is the one it had; a lost disk
			// gives the restarted node a new one.
			old := f.crashName(i)
			f.crashes = append(f.crashes, check.Crash{Node: old, Start: start, End: now})
			if e.Kind == nemesis.LoseDisk {
				f.lost = append(f.lost, old)
			}
		}
	}
	// Remember every node's current name for later crashes.
	if f.names == nil {
		f.names = map[int]string{}
	}
	for i := range f.c.N() {
		if n := f.c.Node(i); n != nil {
			f.names[i] = n.ID()
		}
	}
}

func (f *faultLog) crashName(i int) string {
	if name, ok := f.names[i]; ok {
		return name
	}
	return fmt.Sprintf("node%d", i)
}

// end closes what is still open at the end of the run.
func (f *faultLog) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.rec.Now()
	if f.part >= 0 {
		f.partitions[f.part].End = now
	}
	for i, start := range f.down {
		f.crashes = append(f.crashes, check.Crash{Node: f.crashName(i), Start: start})
	}
}

// runChecks runs the named checks on h, in order; ctype is a convergent
// class's type ("" for a total order).
func runChecks(names []string, h check.History, g engine.DataGuarantees, ctype crdt.Type, outDir, base string) ([]check.Result, error) {
	var out []check.Result
	for _, c := range names {
		if ctype != "" {
			r, ok, err := convergentCheck(c, h, ctype, g, filepath.Join(outDir, base))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c, err)
			}
			if ok {
				out = append(out, r)
				continue
			}
		}
		r, err := runCheck(c, h, g, outDir, base)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// runCheck runs one named check on h.
func runCheck(name string, h check.History, g engine.DataGuarantees, outDir, base string) (check.Result, error) {
	switch name {
	case CheckLinearizable:
		cfg := check.DefaultLinearizableConfig()
		cfg.HTMLDir = filepath.Join(outDir, base)
		return check.Linearizable(h, cfg)
	case CheckSequential:
		return check.Sequential(h)
	case CheckCausal:
		return check.Causal(h)
	case CheckConvergence:
		return check.Convergence(h, check.ConvergenceConfig{})
	case CheckDurability:
		return check.Durability(h, check.DurabilityConfig{K: int(g.Durability)})
	case CheckAvailability:
		p := check.Promise(g.Available)
		if p == "" {
			p = check.None
		}
		return check.Availability(h, check.AvailabilityConfig{Promise: p, Grace: 3 * time.Second})
	}
	return check.Result{}, errors.New("unknown check")
}
