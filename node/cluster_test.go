package node_test

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/checkpointedchannel"
	"github.com/rime-dev/rime/protocols/durablestorage"
	"github.com/rime-dev/rime/protocols/raft"
	"github.com/rime-dev/rime/protocols/swim"
	"github.com/rime-dev/rime/protocols/tcpmtls"
	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/sim"
	"github.com/rime-dev/rime/verify/workload"
)

const class = "doc"

// consensusPlan is the plan rime makes for a linearizable, durable,
// majority-available class with the implemented protocols (compare
// `rime plan --implemented examples/collabdoc`), written out so these
// tests do not depend on the planner.
func consensusPlan() *engine.Plan {
	return &engine.Plan{App: "cluster", Group: "testers", Classes: []engine.ClassPlan{{
		Name: class, Satisfiable: true,
		Stack: []engine.Layer{
			{Layer: "transport", Protocol: tcpmtls.Name, Implemented: true, Provides: []string{"transport"}},
			{Layer: "membership", Protocol: swim.Name, Implemented: true, Provides: []string{"membership"}, Requires: []string{"transport"}},
			{Layer: "consensus", Protocol: raft.Name, Implemented: true, Params: map[string]any{"replicas": float64(3)},
				Provides: []string{"log"}, Requires: []string{"membership", "store"}, Hosts: []string{"server"}},
			{Layer: "storage", Protocol: durablestorage.Name, Implemented: true, Provides: []string{"store"}},
			{Layer: "channel", Protocol: checkpointedchannel.Name, Implemented: true, Provides: []string{"channel"}, Requires: []string{"log"}},
		},
	}}}
}

// testLogger is silent unless RIME_TEST_LOG is set (to "debug" or
// "info"), for looking into a failing scenario.
func testLogger(i int) *slog.Logger {
	lvl := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo}
	l, ok := lvl[os.Getenv("RIME_TEST_LOG")]
	if !ok {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})).With("node", i)
}

// cluster is n server nodes on one memnet (verify/sim), with the real
// protocols at test timings.
type cluster struct {
	*sim.Cluster
	t *testing.T
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kinds := make([]string, n)
	for i := range kinds {
		kinds[i] = "server"
	}
	sc, err := sim.Start(ctx, sim.Config{Plan: consensusPlan(), NodeClasses: kinds, Seed: uint64(time.Now().UnixNano()),
		DataDir: t.TempDir(), Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	c := &cluster{Cluster: sc, t: t}
	if err := c.log(0).Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) log(i int) protocols.Log {
	l, ok := node.Layer[protocols.Log](c.Node(i), class)
	if !ok {
		c.t.Fatalf("node %d has no log", i)
	}
	return l
}

func (c *cluster) restart(ctx context.Context, i int, keepDisk bool) {
	c.t.Helper()
	if err := c.Restart(ctx, i, keepDisk); err != nil {
		c.t.Fatal(err)
	}
}

// leader returns the index of the node whose replica leads, waiting for
// one that every live node agrees on.
func (c *cluster) leader(ctx context.Context) int {
	c.t.Helper()
	for {
		votes := map[int]int{}
		live := 0
		var changed []<-chan struct{}
		for i := range c.N() {
			n := c.Node(i)
			if n == nil {
				continue
			}
			live++
			r, ok := node.Layer[*raft.Raft](n, class)
			if !ok {
				continue
			}
			changed = append(changed, r.Changed())
			st, err := r.Status(ctx)
			if err != nil || st.LeaderID == 0 {
				continue
			}
			for j := range c.N() {
				if m := c.Node(j); m != nil && raft.ReplicaID(m.ID()) == st.LeaderID {
					votes[j]++
				}
			}
		}
		for j, v := range votes {
			if v == live {
				return j
			}
		}
		if ctx.Err() != nil {
			c.t.Fatalf("no leader all live nodes agree on: %v", votes)
		}
		waitAny(ctx, changed)
	}
}

// waitAny waits until one of chs closes or ctx ends.
func waitAny(ctx context.Context, chs []<-chan struct{}) {
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
	for _, ch := range chs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	reflect.Select(cases)
}

func (c *cluster) raftOf(i int) *raft.Raft {
	r, ok := node.Layer[*raft.Raft](c.Node(i), class)
	if !ok {
		c.t.Fatalf("node %d has no raft layer", i)
	}
	return r
}

// run starts two clients on each node, recording into a new history, and
// returns the test's context and finish, which stops the clients and
// waits for them (and may be called more than once).
func (c *cluster) run(timeout time.Duration) (context.Context, *workload.Recorder, func()) {
	rec := workload.NewRecorder(class)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	// The deadline outlives finish: checks after the workload use it.
	c.t.Cleanup(cancel)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range c.N() {
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec.Client(wctx, 100*i+k+1, func() string { return c.Addr(i) }, func() protocols.Channel { return c.Channel(i, class) }, workload.DefaultConfig())
			}()
		}
	}
	var once sync.Once
	return ctx, rec, func() {
		once.Do(func() {
			stop()
			wg.Wait()
		})
	}
}

// checkHistory fails the test on a breach of the stream contract or a
// history that is not linearizable (appends and reads together).
func checkHistory(t *testing.T, rec *workload.Recorder) {
	t.Helper()
	for _, v := range rec.StreamViolations() {
		t.Error(v)
	}
	ops := rec.Ops()
	cfg := check.DefaultLinearizableConfig()
	cfg.Timeout = 30 * time.Second
	start := time.Now()
	res, err := check.Linearizable(check.History{Ops: ops}, cfg)
	if err != nil {
		t.Fatalf("the history does not validate: %v", err)
	}
	t.Logf("linearizability of %d operations: ok=%v unknown=%v in %v", len(ops), res.OK, res.Unknown, time.Since(start))
	if !res.OK {
		for _, v := range res.Violations {
			t.Errorf("violation: %s (ops %v)", v.Explain, v.Ops)
		}
		t.Fatalf("history of %d operations is not linearizable: %s", len(ops), res.Note)
	}
	t.Logf("history: %d operations, %d acknowledged updates, %d refused sessions", len(ops), len(rec.Acked()), rec.Refused())
}

// holdsAll checks that node i's log, as a new session sees it after a
// Sync (checkpoint then tail), holds every update in want.
func (c *cluster) holdsAll(ctx context.Context, rec *workload.Recorder, i int, want []string) {
	c.t.Helper()
	got, err := rec.SessionLog(ctx, "holdsAll", c.Channel(i, class))
	if err != nil {
		c.t.Fatalf("sync on node %d: %v", i, err)
	}
	have := map[string]bool{}
	for _, u := range got {
		have[u] = true
	}
	for _, u := range want {
		if !have[u] {
			c.t.Fatalf("node %d lost acknowledged update %q (%d updates held)", i, u, len(got))
		}
	}
}

// lateJoiner checks that a session opened now starts from a checkpoint
// (not from the first update); the recorder checks, Seq by Seq, that its
// log is what every other session saw.
func (c *cluster) lateJoiner(ctx context.Context, rec *workload.Recorder, i int) {
	c.t.Helper()
	s, err := c.Channel(i, class).Connect(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	ev := <-s.Events()
	s.Disconnect()
	if ev.Seq == 0 {
		c.t.Fatalf("a late joiner was initialized at 0: no checkpoint after %d updates", len(rec.Acked()))
	}
	got, err := rec.SessionLog(ctx, "late joiner", c.Channel(i, class))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, v := range rec.StreamViolations() {
		c.t.Error(v)
	}
	c.t.Logf("late joiner: checkpoint at %d, then the tail up to %d", ev.Seq, len(got))
}

// progress waits until the history holds more acknowledged updates than
// before, proving the cluster still takes writes.
func progress(t *testing.T, ctx context.Context, rec *workload.Recorder, what string) {
	t.Helper()
	before, _ := rec.AckCount()
	for {
		n, next := rec.AckCount()
		if n >= before+10 {
			return
		}
		select {
		case <-next:
		case <-ctx.Done():
			t.Fatalf("%s: no progress (%d acknowledged updates before)", what, before)
		}
	}
}
