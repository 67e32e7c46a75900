package epidemicbroadcast_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/protocols"
	eb "github.com/rime-dev/rime/protocols/epidemicbroadcast"
	"github.com/rime-dev/rime/protocols/swim"
)

// testTransport hands an endpoint over as is.
type testTransport struct{ ep network.Endpoint }

func (t *testTransport) Provision(*protocols.Env) error { return nil }
func (t *testTransport) Validate() error                { return nil }
func (t *testTransport) Start(context.Context) error    { return nil }
func (t *testTransport) Close() error                   { return nil }
func (t *testTransport) Endpoint() network.Endpoint     { return t.ep }

// staticView is a membership whose view never changes: every node of the
// cluster, alive. It keeps the driver tests about broadcast; one test
// runs over swim instead.
type staticView struct {
	self protocols.Member
	all  []protocols.Member
}

func (v *staticView) Provision(*protocols.Env) error { return nil }
func (v *staticView) Validate() error                { return nil }
func (v *staticView) Start(context.Context) error    { return nil }
func (v *staticView) Close() error                   { return nil }
func (v *staticView) Self() protocols.Member         { return v.self }
func (v *staticView) Members() []protocols.Member    { return slices.Clone(v.all) }
func (v *staticView) Subscribe() (<-chan protocols.MemberEvent, func()) {
	return make(chan protocols.MemberEvent), func() {}
}

func addrOf(i int) string { return fmt.Sprintf("10.0.0.%d:7000", i) }
func idOf(i int) string   { return fmt.Sprintf("n%02d", i) }
func secret() []byte      { return bytes.Repeat([]byte{7}, 32) }

// fastConfig ticks every 5 ms so that anti-entropy rounds are quick.
func fastConfig() eb.Config {
	c := eb.DefaultConfig()
	c.TickInterval = 5 * time.Millisecond
	c.DigestTicks = 1
	return c
}

// recorder counts each node's deliveries of each payload and wakes
// waiters at every one, so tests wait on events, never on the clock.
type recorder struct {
	mu     sync.Mutex
	got    map[string]map[string]int // node -> payload -> deliveries
	change chan struct{}
}

func newRecorder() *recorder {
	return &recorder{got: map[string]map[string]int{}, change: make(chan struct{})}
}

func (r *recorder) add(node string, d protocols.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got[node] == nil {
		r.got[node] = map[string]int{}
	}
	r.got[node][string(d.Payload)]++
	close(r.change)
	r.change = make(chan struct{})
}

// reset forgets what node delivered (it restarted with empty state).
func (r *recorder) reset(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.got, node)
}

// check returns nil when every node of nodes delivered every payload at
// least once, and fails the test at once if any delivered one twice.
func (r *recorder) check(t *testing.T, nodes, payloads []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, m := range r.got {
		for p, k := range m {
			if k > 1 {
				t.Fatalf("%s delivered %q %d times", n, p, k)
			}
		}
	}
	for _, n := range nodes {
		for _, p := range payloads {
			if r.got[n][p] == 0 {
				return fmt.Errorf("%s has not delivered %q", n, p)
			}
		}
	}
	return nil
}

// wait blocks until check passes, failing the test when ctx ends first.
func (r *recorder) wait(ctx context.Context, t *testing.T, nodes, payloads []string) {
	t.Helper()
	for {
		r.mu.Lock()
		ch := r.change
		r.mu.Unlock()
		err := r.check(t, nodes, payloads)
		if err == nil {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%v: %v", ctx.Err(), err)
		}
	}
}

func (r *recorder) count(node, payload string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[node][payload]
}

// cluster is n broadcast nodes on one memnet with a static view.
type cluster struct {
	t     *testing.T
	net   *memnet.Network
	cfg   eb.Config
	n     int
	rec   *recorder
	nodes map[int]*eb.Broadcaster
	wg    sync.WaitGroup
}

func newCluster(t *testing.T, n int, seed uint64) *cluster {
	c := &cluster{t: t, net: memnet.New(seed), cfg: fastConfig(), n: n, rec: newRecorder(), nodes: map[int]*eb.Broadcaster{}}
	for i := 1; i <= n; i++ {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, b := range c.nodes {
			b.Close()
		}
		c.wg.Wait() // the readers end when Deliveries closes
	})
	return c
}

func (c *cluster) view(i int) *staticView {
	v := &staticView{}
	for j := 1; j <= c.n; j++ {
		m := protocols.Member{ID: idOf(j), Addr: addrOf(j), NodeClass: "phone", State: protocols.MemberAlive}
		v.all = append(v.all, m)
		if j == i {
			v.self = m
		}
	}
	return v
}

// start brings node i up (again), on a fresh endpoint at its address.
func (c *cluster) start(i int) *eb.Broadcaster {
	c.t.Helper()
	ep, err := c.net.Listen(addrOf(i))
	if err != nil {
		c.t.Fatal(err)
	}
	b := startNode(c.t, c.cfg, idOf(i), secret(), &testTransport{ep}, c.view(i), nil)
	c.nodes[i] = b
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for d := range b.Deliveries() {
			c.rec.add(idOf(i), d)
		}
	}()
	return b
}

// crash kills node i as a power cut would: its endpoint vanishes and the
// instance, with all its state, is gone.
func (c *cluster) crash(i int) {
	c.net.Crash(addrOf(i))
	c.nodes[i].Close()
	delete(c.nodes, i)
}

func startNode(t *testing.T, cfg eb.Config, id string, secret []byte, below ...protocols.Instance) *eb.Broadcaster {
	t.Helper()
	b := eb.New(cfg)
	env := &protocols.Env{
		Node:        protocols.Node{ID: id, NodeClass: "phone"},
		App:         "chat",
		Group:       "friends",
		Class:       "messages",
		GroupSecret: secret,
		Params:      map[string]any{"fanout": float64(3)}, // as the planner chooses it
	}
	for _, l := range below {
		if l != nil {
			env.Below = append(env.Below, l)
		}
	}
	if err := b.Provision(env); err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *cluster) broadcast(i int, payload string) {
	c.t.Helper()
	if err := c.nodes[i].Broadcast(context.Background(), []byte(payload)); err != nil {
		c.t.Fatal(err)
	}
}

func ids(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, idOf(i))
	}
	return out
}

func addrs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, addrOf(i))
	}
	return out
}

// deadline bounds how long a test may wait for a condition; reaching it
// is a failure, never the expected path.
func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEveryNodeDeliversOnceUnderLossDuplicationReorder(t *testing.T) {
	const n = 24
	c := newCluster(t, n, 1)
	c.net.SetLoss(0.2)
	c.net.SetDuplicate(0.2)
	c.net.SetReorder(0.3)
	var payloads []string
	for r := range 3 {
		for i := 1; i <= n; i += 3 {
			p := fmt.Sprintf("m%d-%d", i, r)
			c.broadcast(i, p)
			payloads = append(payloads, p)
		}
	}
	ctx := deadline(t)
	c.rec.wait(ctx, t, ids(1, n), payloads)
	// Let anti-entropy and the faults go on until every node has had one
	// more broadcast from every other: a late copy of anything would have
	// been delivered again by then (check fails the test if so).
	var markers []string
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf("marker%d", i)
		c.broadcast(i, p)
		markers = append(markers, p)
	}
	c.rec.wait(ctx, t, ids(1, n), markers)
	if err := c.rec.check(t, ids(1, n), append(payloads, markers...)); err != nil {
		t.Fatal(err)
	}
	st := c.net.Stats()
	if st.Lost == 0 || st.Duplicated == 0 || st.Reordered == 0 {
		t.Fatalf("the faults did not happen: %+v", st)
	}
	var dups uint64
	for _, b := range c.nodes {
		dups += b.Stats().Duplicates
	}
	if dups == 0 {
		t.Fatal("no node saw a duplicate: the exactly-once check proved nothing")
	}
	t.Logf("network: %+v; %d duplicates dropped by the nodes", st, dups)
}

func TestPartitionThenHealReachesEveryone(t *testing.T) {
	const n = 20
	c := newCluster(t, n, 2)
	c.net.Partition(addrs(1, 10), addrs(11, n))
	var left, right []string
	for i := 1; i <= 10; i++ {
		p, q := fmt.Sprintf("left%d", i), fmt.Sprintf("right%d", i)
		c.broadcast(i, p)
		c.broadcast(10+i, q)
		left, right = append(left, p), append(right, q)
	}
	ctx := deadline(t)
	c.rec.wait(ctx, t, ids(1, 10), left)
	c.rec.wait(ctx, t, ids(11, n), right)
	for _, id := range ids(1, 10) {
		if c.rec.count(id, right[0]) != 0 {
			t.Fatalf("%s delivered a message from across the partition", id)
		}
	}
	c.net.Heal()
	c.rec.wait(ctx, t, ids(1, n), append(slices.Clone(left), right...))
}

func TestCrashedNodeCatchesUpOnRestart(t *testing.T) {
	const n = 20
	c := newCluster(t, n, 3)
	c.net.SetLoss(0.1)
	var before, during []string
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf("before%d", i)
		c.broadcast(i, p)
		before = append(before, p)
	}
	ctx := deadline(t)
	c.rec.wait(ctx, t, ids(1, n), before)
	const victim = 7
	c.crash(victim)
	others := slices.DeleteFunc(ids(1, n), func(id string) bool { return id == idOf(victim) })
	for i := 1; i <= n; i++ {
		if i == victim {
			continue
		}
		p := fmt.Sprintf("during%d", i)
		c.broadcast(i, p)
		during = append(during, p)
	}
	c.rec.wait(ctx, t, others, during)
	// Back with empty state: a new incarnation, which delivers once all
	// that is still retained (everything here), and whose own broadcasts
	// reach everyone although its sequence numbers start again at 1.
	c.rec.reset(idOf(victim))
	c.start(victim)
	c.broadcast(victim, "back")
	c.rec.wait(ctx, t, []string{idOf(victim)}, append(append(slices.Clone(before), during...), "back"))
	c.rec.wait(ctx, t, ids(1, n), []string{"back"})
}

// A node without the group's secret is not heard. Its datagram is sent
// before a member's, on the same path with no faults, so by the time the
// member's message is delivered the outsider's has been handled.
func TestOutsiderCannotInject(t *testing.T) {
	c := newCluster(t, 3, 4)
	ep, err := c.net.Listen("10.9.9.9:7000")
	if err != nil {
		t.Fatal(err)
	}
	view := c.view(0)
	view.self = protocols.Member{ID: "outsider", Addr: "10.9.9.9:7000", State: protocols.MemberAlive}
	cfg := c.cfg
	cfg.Fanout = 8 // to everyone
	out := startNode(t, cfg, "outsider", bytes.Repeat([]byte{8}, 32), &testTransport{ep}, view)
	defer out.Close()
	if err := out.Broadcast(context.Background(), []byte("injected")); err != nil {
		t.Fatal(err)
	}
	<-out.Deliveries() // the driver sends before it delivers
	c.broadcast(1, "genuine")
	c.rec.wait(deadline(t), t, ids(1, 3), []string{"genuine"})
	for _, id := range ids(1, 3) {
		if c.rec.count(id, "injected") != 0 {
			t.Fatalf("%s delivered the outsider's message", id)
		}
	}
}

// Over the real membership layer: swim on the same memnet gives the peers.
func TestOverSwim(t *testing.T) {
	const n = 5
	net := memnet.New(5)
	rec := newRecorder()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // registered first, so it runs after the nodes close
	var nodes []*eb.Broadcaster
	scfg := swim.DefaultConfig()
	scfg.ProbeInterval, scfg.ProbeTimeout = 100*time.Millisecond, 50*time.Millisecond
	scfg.GossipInterval, scfg.PushPullInterval = 20*time.Millisecond, time.Second
	scfg.ReconnectInterval, scfg.LeaveTimeout = 200*time.Millisecond, time.Second
	for i := 1; i <= n; i++ {
		ep, err := net.Listen(addrOf(i))
		if err != nil {
			t.Fatal(err)
		}
		tr := &testTransport{ep}
		sw := swim.New(scfg)
		env := &protocols.Env{Node: protocols.Node{ID: idOf(i), NodeClass: "phone", Join: []string{addrOf(1)}},
			App: "chat", Group: "friends", Class: "messages", GroupSecret: secret(), Below: []protocols.Instance{tr}}
		if err := sw.Provision(env); err != nil {
			t.Fatal(err)
		}
		if err := sw.Start(deadline(t)); err != nil {
			t.Fatal(err)
		}
		b := startNode(t, fastConfig(), idOf(i), secret(), tr, sw)
		t.Cleanup(func() { b.Close(); sw.Close() })
		nodes = append(nodes, b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range b.Deliveries() {
				rec.add(idOf(i), d)
			}
		}()
	}
	var payloads []string
	for i, b := range nodes {
		p := fmt.Sprintf("hello from %d", i+1)
		if err := b.Broadcast(context.Background(), []byte(p)); err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	rec.wait(deadline(t), t, ids(1, n), payloads)
}

func TestLifecycle(t *testing.T) {
	net := memnet.New(6)
	ep, _ := net.Listen(addrOf(1))
	b := eb.New(fastConfig())
	if err := b.Broadcast(context.Background(), []byte("x")); err == nil {
		t.Fatal("broadcast before start")
	}
	if err := b.Validate(); err == nil {
		t.Fatal("validate before provision")
	}
	b = startNode(t, fastConfig(), idOf(1), secret(), &testTransport{ep}, &staticView{})
	if err := b.Start(context.Background()); err == nil {
		t.Fatal("started twice")
	}
	// Own broadcasts are delivered here too, and Broadcast returns before
	// the delivery is read.
	if err := b.Broadcast(context.Background(), []byte("self")); err != nil {
		t.Fatal(err)
	}
	if d := <-b.Deliveries(); string(d.Payload) != "self" || d.From != idOf(1) {
		t.Fatalf("delivered %+v", d)
	}
	if err := b.Broadcast(context.Background(), make([]byte, fastConfig().MaxPayload+1)); err == nil {
		t.Fatal("took a payload above MaxPayload")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, ok := <-b.Deliveries(); ok {
		t.Fatal("Deliveries still open after Close")
	}
	if err := b.Broadcast(context.Background(), []byte("x")); !errors.Is(err, protocols.ErrClosed) {
		t.Fatalf("broadcast after close: %v", err)
	}
	// The service is released: another instance can claim it.
	b2 := startNode(t, fastConfig(), idOf(1), secret(), &testTransport{ep}, &staticView{})
	b2.Close()
}

// The spec's params: fanout 3..8 (spec.cue) are accepted, the rest not.
func TestFanoutParameter(t *testing.T) {
	net := memnet.New(7)
	ep, _ := net.Listen(addrOf(1))
	for _, c := range []struct {
		params map[string]any
		ok     bool
	}{
		{map[string]any{"fanout": float64(3)}, true},
		{map[string]any{"fanout": float64(8)}, true},
		{map[string]any{}, true},
		{map[string]any{"fanout": float64(0)}, false},
		{map[string]any{"fanout": 2.5}, false},
		{map[string]any{"fanout": float64(3), "ttl": float64(3)}, false},
	} {
		b := eb.New(eb.DefaultConfig())
		env := &protocols.Env{Node: protocols.Node{ID: "n1"}, App: "a", Group: "g", Class: "c", GroupSecret: secret(),
			Params: c.params, Below: []protocols.Instance{&testTransport{ep}, &staticView{}}}
		err := b.Provision(env)
		if err == nil {
			err = b.Validate()
		}
		if (err == nil) != c.ok {
			t.Errorf("params %v: err %v, want ok=%v", c.params, err, c.ok)
		}
	}
	b := eb.New(eb.DefaultConfig())
	err := b.Provision(&protocols.Env{Node: protocols.Node{ID: "n1"}, Class: "c", GroupSecret: secret(), Below: []protocols.Instance{&testTransport{ep}}})
	if err == nil {
		t.Fatal("provisioned without a membership layer below")
	}
}

func TestRegistered(t *testing.T) {
	m, ok := protocols.Default.Lookup(eb.Name)
	if !ok || !slices.Contains(m.Provides, "broadcast") {
		t.Fatalf("module %q: registered %v, provides %v", eb.Name, ok, m.Provides)
	}
	if _, ok := m.New().(protocols.Broadcast); !ok {
		t.Fatal("the module's instances are not a Broadcast")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := eb.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*eb.Config){
		"Fanout":        func(c *eb.Config) { c.Fanout = 0 },
		"TickInterval":  func(c *eb.Config) { c.TickInterval = 0 },
		"Window":        func(c *eb.Config) { c.Window = 100 },
		"MaxBatchBytes": func(c *eb.Config) { c.MaxBatchBytes = c.MaxPayload },
		"MaxRetained":   func(c *eb.Config) { c.MaxRetained = 0 },
	} {
		c := eb.DefaultConfig()
		mut(&c)
		err := c.Validate()
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(name)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
