package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/checkpointedchannel"
	"github.com/rime-dev/rime/protocols/durablestorage"
	"github.com/rime-dev/rime/protocols/raft"
	"github.com/rime-dev/rime/protocols/swim"
	"github.com/rime-dev/rime/protocols/tcpmtls"
)

const class = "doc"

// consensusPlan is the plan rime makes for a linearizable, durable,
// majority-available class with the implemented protocols (see
// TestPlanOfTheExample for the planner's own), written out so these
// tests do not depend on the planner.
func consensusPlan() *engine.Plan {
	return &engine.Plan{App: "cluster", Group: "testers", Classes: []engine.ClassPlan{{
		Name: class, Satisfiable: true,
		Stack: []engine.Layer{
			{Layer: "transport", Protocol: tcpmtls.Name, Implemented: true, Provides: []string{"transport"}},
			{Layer: "membership", Protocol: "swim", Implemented: true, Provides: []string{"membership"}, Requires: []string{"transport"}},
			{Layer: "consensus", Protocol: raft.Name, Implemented: true, Params: map[string]any{"replicas": float64(3)},
				Provides: []string{"log"}, Requires: []string{"membership", "store"}, Hosts: []string{"server"}},
			{Layer: "storage", Protocol: durablestorage.Name, Implemented: true, Provides: []string{"store"}},
			{Layer: "channel", Protocol: checkpointedchannel.Name, Implemented: true, Provides: []string{"channel"}, Requires: []string{"log"}},
		},
	}}}
}

// testRegistry has the real protocols with timings for tests: failure
// detection in about a second, checkpoints every 25 updates so that
// compaction and snapshots happen within a short test.
func testRegistry(t *testing.T) *protocols.Registry {
	reg := protocols.NewRegistry()
	sw := swim.DefaultConfig()
	sw.ProbeInterval, sw.ProbeTimeout, sw.GossipInterval = 100*time.Millisecond, 50*time.Millisecond, 30*time.Millisecond
	sw.SuspicionMult, sw.PushPullInterval, sw.ReconnectInterval = 2, time.Second, 300*time.Millisecond
	sw.LeaveTimeout = 200 * time.Millisecond
	rf := raft.DefaultConfig()
	rf.SnapshotEntries, rf.CompactionOverhead = 50, 10
	ch := checkpointedchannel.DefaultConfig()
	ch.CheckpointEvery = 25
	ch.AppendTimeout = 2 * time.Second
	tm, _ := protocols.Default.Lookup(tcpmtls.Name)
	ds, _ := protocols.Default.Lookup(durablestorage.Name)
	for _, m := range []protocols.Module{tm, ds, swim.NewModule(sw), raft.NewModule(rf), checkpointedchannel.NewModule(ch)} {
		if err := reg.Register(m); err != nil {
			t.Fatal(err)
		}
	}
	return reg
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

// cluster is n nodes on one memnet.
type cluster struct {
	t      *testing.T
	net    *memnet.Network
	reg    *protocols.Registry
	plan   *engine.Plan
	dir    string
	secret []byte

	mu    sync.Mutex
	nodes []*node.Node // nil while crashed
	gen   []int        // data dir generation: a lost disk is a new dir
}

func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{t: t, net: memnet.New(uint64(time.Now().UnixNano())), reg: testRegistry(t), plan: consensusPlan(),
		dir: t.TempDir(), secret: []byte("0123456789abcdef0123456789abcdef"), nodes: make([]*node.Node, n), gen: make([]int, n)}
	t.Cleanup(c.closeAll)
	c.start(0, nil)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.start(i, []string{c.addr(0)}) }()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.log(0).Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) addr(i int) string { return fmt.Sprintf("10.0.0.%d:7000", i+1) }

func (c *cluster) dataDir(i int) string {
	return filepath.Join(c.dir, fmt.Sprintf("node%d.%d", i, c.gen[i]))
}

func (c *cluster) start(i int, join []string) {
	c.t.Helper()
	n, err := node.Start(context.Background(), node.Config{
		Plan: c.plan, Group: c.plan.Group, GroupSecret: c.secret, NodeClass: "server",
		DataDir: c.dataDir(i), Network: c.net, Listen: c.addr(i), Join: join, Registry: c.reg,
		Logger: testLogger(i),
	})
	if err != nil {
		c.t.Fatalf("start node %d: %v", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
}

func (c *cluster) node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

func (c *cluster) log(i int) protocols.Log {
	l, ok := node.Layer[protocols.Log](c.node(i), class)
	if !ok {
		c.t.Fatalf("node %d has no log", i)
	}
	return l
}

func (c *cluster) channel(i int) protocols.Channel {
	ch, err := c.node(i).Channel(class)
	if err != nil {
		c.t.Fatal(err)
	}
	return ch
}

// crash cuts node i off the network at once, then stops its layers
// (which can no longer say goodbye to anyone).
func (c *cluster) crash(i int) {
	c.net.Crash(c.addr(i))
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	n.Close()
}

// restart brings node i back, with its disk or with a fresh one (a new
// identity: a new node to the group), joining through the others.
func (c *cluster) restart(i int, keepDisk bool) {
	if !keepDisk {
		os.RemoveAll(c.dataDir(i))
		c.gen[i]++
	}
	var join []string
	for j := range c.nodes {
		if j != i && c.node(j) != nil {
			join = append(join, c.addr(j))
		}
	}
	c.start(i, join)
}

func (c *cluster) closeAll() {
	for i := range c.nodes {
		if n := c.node(i); n != nil {
			n.Close()
		}
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
		for i := range c.nodes {
			n := c.node(i)
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
			for j := range c.nodes {
				if m := c.node(j); m != nil && raft.ReplicaID(m.ID()) == st.LeaderID {
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
	r, ok := node.Layer[*raft.Raft](c.node(i), class)
	if !ok {
		c.t.Fatalf("node %d has no raft layer", i)
	}
	return r
}

// holdsAll connects to node i, syncs (a linearizable read) and checks
// that its replica's log, checkpoint and tail, holds every update in want.
func (c *cluster) holdsAll(ctx context.Context, i int, want []string) {
	c.t.Helper()
	got := c.sessionLog(ctx, i)
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

// sessionLog returns the log as a new session on node i sees it after a
// Sync: the checkpoint's updates, then the tail, checked contiguous.
func (c *cluster) sessionLog(ctx context.Context, i int) []string {
	c.t.Helper()
	// A compaction that overtakes a new session ends it (its stream could
	// not stay contiguous); an application reconnects, and so does this.
	for attempt := 0; ; attempt++ {
		out, err := c.trySessionLog(ctx, i)
		if err == nil {
			return out
		}
		if !errors.Is(err, protocols.ErrCompacted) || attempt == 5 {
			c.t.Fatalf("sync on node %d: %v", i, err)
		}
	}
}

func (c *cluster) trySessionLog(ctx context.Context, i int) ([]string, error) {
	s, err := c.channel(i).Connect(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	defer s.Disconnect()
	r := &replica{moved: make(chan struct{}), own: map[string]chan struct{}{}, ended: make(chan struct{})}
	h := newHistory(c.t)
	go consume(h, 0, s, r)
	seq, err := s.Sync(ctx)
	if err != nil {
		return nil, err
	}
	for {
		r.mu.Lock()
		if r.seq >= seq {
			out := append([]string(nil), r.lines...)
			r.mu.Unlock()
			h.check()
			return out, nil
		}
		moved := r.moved
		r.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return nil, fmt.Errorf("node %d never delivered up to %d: %w", i, seq, ctx.Err())
		}
	}
}

// lateJoiner checks that a session opened now starts from a checkpoint
// (not from the first update) and that its log equals what every other
// session saw, seq by seq.
func (c *cluster) lateJoiner(ctx context.Context, i int, h *history) {
	c.t.Helper()
	s, err := c.channel(i).Connect(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	ev := <-s.Events()
	s.Disconnect()
	if ev.Seq == 0 {
		c.t.Fatalf("a late joiner was initialized at 0: no checkpoint after %d updates", len(h.ackedUpdates()))
	}
	got := c.sessionLog(ctx, i)
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, u := range got {
		if want, ok := h.bySeq[uint64(k+1)]; ok && want != u {
			c.t.Fatalf("late joiner has %q at %d, the clients saw %q", u, k+1, want)
		}
	}
	c.t.Logf("late joiner: checkpoint at %d, then the tail up to %d", ev.Seq, len(got))
}
