package crdtreplication_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/causal"
	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/crdt/vv"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/causalbroadcast"
	"github.com/rime-dev/rime/protocols/convergentchannel"
	"github.com/rime-dev/rime/protocols/crdtreplication"
	"github.com/rime-dev/rime/protocols/durablestorage"
	"github.com/rime-dev/rime/protocols/tcpmtls"
	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/sim"
)

const class = "notes"

// stackPlan is the plan rime makes for an available convergent class
// (transport, membership, causal broadcast, CRDT replication, storage,
// the convergent channel), written out so these tests do not depend on
// the planner.
func stackPlan(delivery string, copies int) *engine.Plan {
	model := map[string]string{"causal": "causal", "none": "eventual"}[delivery]
	return &engine.Plan{App: "notes", Group: "testers", Classes: []engine.ClassPlan{{
		Name: class, Satisfiable: true,
		Stack: []engine.Layer{
			{Layer: "transport", Protocol: tcpmtls.Name, Implemented: true, Provides: []string{"transport"}},
			{Layer: "membership", Protocol: "swim", Implemented: true, Provides: []string{"membership"}, Requires: []string{"transport"}},
			{Layer: "broadcast", Protocol: causalbroadcast.Name, Implemented: true, Params: map[string]any{"fanout": float64(3)},
				Provides: []string{"broadcast"}, Requires: []string{"membership"}},
			{Layer: "replication", Protocol: crdtreplication.Name, Implemented: true,
				Params:   map[string]any{"type": "log", "delivery": delivery, "copies": float64(copies)},
				Provides: []string{"replica", "local-replica"}, Requires: []string{"broadcast", "store"}},
			{Layer: "storage", Protocol: durablestorage.Name, Implemented: true, Provides: []string{"store"}},
			{Layer: "channel", Protocol: convergentchannel.Name, Implemented: true, Params: map[string]any{"model": model},
				Provides: []string{"channel"}, Requires: []string{"replica"}},
		},
	}}}
}

// traffic counts the bytes every node sends, per destination and
// service, through a transport that wraps the node's endpoint.
type traffic struct {
	mu    sync.Mutex
	bytes map[[3]string]int64 // from, to, service
}

func (tr *traffic) add(from, to, service string, n int) {
	tr.mu.Lock()
	tr.bytes[[3]string{from, to, service}] += int64(n)
	tr.mu.Unlock()
}

// to sums the bytes sent to addr on the given services.
func (tr *traffic) to(addr string, services ...string) int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var n int64
	for k, b := range tr.bytes {
		for _, s := range services {
			if k[1] == addr && k[2] == s {
				n += b
			}
		}
	}
	return n
}

func (tr *traffic) reset() {
	tr.mu.Lock()
	tr.bytes = map[[3]string]int64{}
	tr.mu.Unlock()
}

type countingTransport struct {
	tr *traffic
	ep network.Endpoint
}

func (c *countingTransport) Provision(env *protocols.Env) error {
	c.ep = countingEndpoint{Endpoint: env.Network, tr: c.tr}
	return nil
}
func (c *countingTransport) Validate() error             { return nil }
func (c *countingTransport) Start(context.Context) error { return nil }
func (c *countingTransport) Close() error                { return nil }
func (c *countingTransport) Endpoint() network.Endpoint  { return c.ep }

type countingEndpoint struct {
	network.Endpoint
	tr *traffic
}

func (e countingEndpoint) Send(ctx context.Context, to, service string, p []byte) error {
	e.tr.add(e.Addr(), to, service, len(p))
	return e.Endpoint.Send(ctx, to, service, p)
}

func fastReplication() crdtreplication.Config {
	c := crdtreplication.DefaultConfig()
	c.AntiEntropyInterval, c.AckInterval = 50*time.Millisecond, 100*time.Millisecond
	return c
}

// registry is sim's, with the counting transport and cfg.
func registry(t testing.TB, tr *traffic, cfg crdtreplication.Config) *protocols.Registry {
	fast := sim.FastRegistry()
	reg := protocols.NewRegistry()
	for _, name := range fast.Names() {
		m, _ := fast.Lookup(name)
		switch name {
		case tcpmtls.Name:
			m = protocols.Module{Name: name, Provides: m.Provides, New: func() protocols.Instance { return &countingTransport{tr: tr} }}
		case crdtreplication.Name:
			m = crdtreplication.NewModule(cfg)
		}
		if err := reg.Register(m); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func testLogger(i int) *slog.Logger {
	lvl := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo}
	l, ok := lvl[os.Getenv("RIME_TEST_LOG")]
	if !ok {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})).With("node", i)
}

type cluster struct {
	*sim.Cluster
	t   testing.TB
	tr  *traffic
	ws  []*watcher
	all map[string]bool // every value submitted
	mu  sync.Mutex
	// deps of each submitted value: what its submitter's session had
	// delivered when it submitted (see watcher.submit).
	deps map[causal.MsgID]vv.VV
}

func startCluster(ctx context.Context, t testing.TB, n int, plan *engine.Plan, cfg crdtreplication.Config, seed uint64) *cluster {
	t.Helper()
	classes := make([]string, n)
	for i := range classes {
		classes[i] = "device"
	}
	tr := &traffic{bytes: map[[3]string]int64{}}
	c, err := sim.Start(ctx, sim.Config{Plan: plan, NodeClasses: classes, Registry: registry(t, tr, cfg), Seed: seed,
		DataDir: t.TempDir(), Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{Cluster: c, t: t, tr: tr, all: map[string]bool{}, deps: map[causal.MsgID]vv.VV{}}
	t.Cleanup(func() {
		for _, w := range cl.ws {
			if w != nil {
				w.sess.Disconnect()
			}
		}
		c.Close()
	})
	cl.ws = make([]*watcher, n)
	for i := range n {
		cl.connect(ctx, i)
	}
	cl.waitMembers(ctx, n)
	return cl
}

// connect opens a session on node i and follows it.
func (c *cluster) connect(ctx context.Context, i int) {
	c.t.Helper()
	s, err := c.Channel(i, class).Connect(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	w := &watcher{c: c, i: i, sess: s, have: map[string]bool{}, seen: vv.VV{}, changed: make(chan struct{})}
	c.ws[i] = w
	go w.run()
}

func (c *cluster) waitMembers(ctx context.Context, n int) {
	c.t.Helper()
	for i := range c.N() {
		if c.Node(i) == nil {
			continue
		}
		m, _ := node.Layer[protocols.Membership](c.Node(i), class)
		ev, cancel := m.Subscribe()
		for alive(m) < n {
			select {
			case <-ev:
			case <-ctx.Done():
				cancel()
				c.t.Fatalf("node %d sees %d alive members, want %d", i, alive(m), n)
			}
		}
		cancel()
	}
}

func alive(m protocols.Membership) int {
	k := 0
	for _, x := range m.Members() {
		if x.State == protocols.MemberAlive {
			k++
		}
	}
	return k
}

// watcher is an application component on one node: it keeps the state
// the channel's events build and the order in which values arrived.
type watcher struct {
	c    *cluster
	i    int
	sess protocols.Session

	mu      sync.Mutex
	state   *crdt.Log
	order   []string
	have    map[string]bool
	seen    vv.VV // per writer, the highest value number seen
	changed chan struct{}
	err     error
	n       int    // own submits
	last    uint64 // Seq of the last event handled
}

func (w *watcher) run() {
	for ev := range w.sess.Events() {
		w.mu.Lock()
		var err error
		switch ev.Kind {
		case protocols.Initialize:
			var st crdt.State
			if st, err = crdt.Decode(ev.Data); err == nil {
				w.state = st.(*crdt.Log)
				for _, e := range w.state.Entries() {
					w.see(string(e.Data))
				}
			}
		case protocols.Update:
			var d crdt.State
			if d, err = crdt.Decode(ev.Data); err == nil {
				for _, e := range d.(*crdt.Log).Entries() {
					w.see(string(e.Data))
				}
				err = w.state.Merge(d)
			}
		}
		if err != nil && w.err == nil {
			w.err = err
		}
		w.last = ev.Seq
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
	w.mu.Lock()
	close(w.changed)
	w.changed = nil
	w.mu.Unlock()
}

// waitSeq waits until the watcher has handled the session's events up
// to seq (Sync's answer says they are in Events, not that they were read).
func (w *watcher) waitSeq(ctx context.Context, seq uint64) {
	w.c.t.Helper()
	for {
		w.mu.Lock()
		last, ch := w.last, w.changed
		w.mu.Unlock()
		if last >= seq {
			return
		}
		if ch == nil {
			w.c.t.Fatalf("node %d: session ended (%v) before %d", w.i, w.sess.Err(), seq)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			w.c.t.Fatalf("node %d: never handled event %d (at %d)", w.i, seq, last)
		}
	}
}

func (w *watcher) see(v string) {
	if !w.have[v] {
		w.have[v] = true
		w.order = append(w.order, v)
		id := idOf(v)
		w.seen[id.Replica] = max(w.seen[id.Replica], id.Seq)
	}
}

// submit appends a new unique value at this node, recording what the
// node's component had seen: the value's causal past as the app knows
// it (with its own earlier submits, which the replica orders first).
func (w *watcher) submit(ctx context.Context, size int) string {
	w.c.t.Helper()
	w.mu.Lock()
	w.n++
	v := fmt.Sprintf("n%d-%d-", w.i, w.n)
	v += strings.Repeat("x", max(0, size-len(v)))
	deps := w.seen.Clone()
	deps[fmt.Sprint(w.i)] = uint64(w.n - 1)
	w.mu.Unlock()
	w.c.mu.Lock()
	w.c.all[v] = true
	w.c.deps[idOf(v)] = deps
	w.c.mu.Unlock()
	op, _ := crdt.MarshalOp(crdt.LogAppend{Data: []byte(v)})
	if err := w.sess.Submit(ctx, op); err != nil {
		// Errorf, not Fatalf: submitMany calls this from other goroutines.
		w.c.t.Errorf("node %d: submit: %v", w.i, err)
	}
	return v
}

// submitMany submits count values from parallel goroutines, so that
// the replica's group commit batches them (one disk flush per batch).
// Concurrent submits of one node are not ordered by the test, so their
// recorded deps are only approximate: use it where causality is not
// checked.
func (w *watcher) submitMany(ctx context.Context, count, size, parallel int) {
	var wg sync.WaitGroup
	for p := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := p; k < count; k += parallel {
				w.submit(ctx, size)
			}
		}()
	}
	wg.Wait()
}

// idOf names value "n<i>-<k>-..." as message (i, k).
func idOf(v string) causal.MsgID {
	parts := strings.SplitN(v[1:], "-", 3)
	k, _ := strconv.ParseUint(parts[1], 10, 64)
	return causal.MsgID{Replica: parts[0], Seq: k}
}

// waitHas waits until the watcher's state holds every value in vs.
func (w *watcher) waitHas(ctx context.Context, vs map[string]bool) {
	w.c.t.Helper()
	missing := make([]string, 0, len(vs))
	for v := range vs {
		missing = append(missing, v)
	}
	for {
		w.mu.Lock()
		// Only what was missing last time is looked at again.
		still := missing[:0]
		for _, v := range missing {
			if !w.have[v] {
				still = append(still, v)
			}
		}
		missing = still
		ch, err := w.changed, w.err
		w.mu.Unlock()
		if err != nil {
			w.c.t.Fatalf("node %d: %v", w.i, err)
		}
		if len(missing) == 0 {
			return
		}
		if ch == nil {
			w.c.t.Fatalf("node %d: session ended (%v) with %d values missing", w.i, w.sess.Err(), len(missing))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			w.c.t.Fatalf("node %d: %d of %d values still missing: %v", w.i, len(missing), len(vs), ctx.Err())
		}
	}
}

func (c *cluster) submitted() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for v := range c.all {
		out[v] = true
	}
	return out
}

// final is every live watcher's state for check.Convergence.
func (c *cluster) final(live []int) []check.Replica {
	var out []check.Replica
	for _, i := range live {
		w := c.ws[i]
		w.mu.Lock()
		var vs []string
		for _, e := range w.state.Entries() {
			vs = append(vs, string(e.Data))
		}
		w.mu.Unlock()
		out = append(out, check.Replica{Node: fmt.Sprint(i), State: map[string][]string{class: vs}})
	}
	return out
}

// checkCausal runs causal.CheckCausal over every watcher's order.
func (c *cluster) checkCausal(live []int) {
	c.t.Helper()
	orders := map[string][]causal.MsgID{}
	for _, i := range live {
		w := c.ws[i]
		w.mu.Lock()
		for _, v := range w.order {
			orders[fmt.Sprint(i)] = append(orders[fmt.Sprint(i)], idOf(v))
		}
		w.mu.Unlock()
	}
	c.mu.Lock()
	vs := causal.CheckCausal(orders, c.deps)
	c.mu.Unlock()
	for _, v := range vs[:min(len(vs), 10)] {
		c.t.Error(v)
	}
	if len(vs) > 0 {
		c.t.Fatalf("%d causal violations", len(vs))
	}
}

func (c *cluster) checkConverged(live []int) {
	c.t.Helper()
	res, err := check.Convergence(check.History{Final: c.final(live)}, check.ConvergenceConfig{})
	if err != nil {
		c.t.Fatal(err)
	}
	if !res.OK {
		c.t.Fatalf("not converged: %+v", res)
	}
}
