package swim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/protocols"
)

// testTransport is the smallest Transport layer: an endpoint handed over
// as is.
type testTransport struct{ ep network.Endpoint }

func (t *testTransport) Provision(*protocols.Env) error { return nil }
func (t *testTransport) Validate() error                { return nil }
func (t *testTransport) Start(context.Context) error    { return nil }
func (t *testTransport) Close() error                   { return t.ep.Close() }
func (t *testTransport) Endpoint() network.Endpoint     { return t.ep }

var _ protocols.Transport = (*testTransport)(nil)

// fastConfig makes a 5-node cluster detect a failure in about a second.
func fastConfig() Config {
	return Config{
		ProbeInterval:     100 * time.Millisecond,
		ProbeTimeout:      50 * time.Millisecond,
		SuspicionMult:     4,
		GossipInterval:    20 * time.Millisecond,
		PushPullInterval:  time.Second,
		ReconnectInterval: 200 * time.Millisecond,
		LeaveTimeout:      time.Second,
		Retention:         time.Hour,
	}
}

func groupSecret() []byte { return bytes.Repeat([]byte{7}, 32) }

func addrOf(i int) string  { return fmt.Sprintf("10.0.0.%d:7946", i) }
func idOf(i int) string    { return fmt.Sprintf("n%d", i) }
func classOf(i int) string { return map[bool]string{true: "phone", false: "cloud"}[i%2 == 1] }

// cluster is up to 9 nodes on one memnet.
type cluster struct {
	t     *testing.T
	net   *memnet.Network
	cfg   Config
	logs  *lockedBuffer
	nodes map[int]*Swim
}

func newCluster(t *testing.T, seed uint64) *cluster {
	c := &cluster{t: t, net: memnet.New(seed), cfg: fastConfig(), logs: &lockedBuffer{}, nodes: map[int]*Swim{}}
	// Registered first, so it runs last: after every node is closed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last log lines:\n%s", c.logs.tail(150))
		}
	})
	return c
}

// start brings up node i with its own endpoint, joining through joins.
func (c *cluster) start(ctx context.Context, i int, joins []string, secret []byte) (*Swim, error) {
	c.t.Helper()
	ep, err := c.net.Listen(addrOf(i))
	if err != nil {
		c.t.Fatal(err)
	}
	tr := &testTransport{ep: ep}
	s := New(c.cfg)
	c.t.Cleanup(func() {
		if err := s.Close(); err != nil {
			c.t.Errorf("%s: close: %v", idOf(i), err)
		}
		tr.Close()
	})
	env := &protocols.Env{
		Node:        protocols.Node{ID: idOf(i), NodeClass: classOf(i), Join: joins},
		App:         "photoshare",
		Group:       "friends",
		Class:       "c",
		GroupSecret: secret,
		Below:       []protocols.Instance{tr},
		Logger:      slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", idOf(i)),
	}
	if err := s.Provision(env); err != nil {
		c.t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		c.t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		return s, err
	}
	c.nodes[i] = s
	return s, nil
}

// startAll starts nodes 1..n, all joining through n1 only, so the
// others learn of each join by gossip and push/pull.
func (c *cluster) startAll(n int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var joins []string
	for i := 1; i <= n; i++ {
		if _, err := c.start(ctx, i, joins, groupSecret()); err != nil {
			c.t.Fatalf("%s: %v", idOf(i), err)
		}
		joins = []string{addrOf(1)}
	}
}

// sees reports whether every observer sees every target in state want
// (or, with want < 0, in any state but alive).
func (c *cluster) sees(observers, targets []int, want protocols.MemberState) error {
	for _, o := range observers {
		view := map[string]protocols.Member{}
		for _, m := range c.nodes[o].Members() {
			view[m.ID] = m
		}
		for _, tg := range targets {
			m, ok := view[idOf(tg)]
			switch {
			case want < 0 && ok && m.State == protocols.MemberAlive:
				return fmt.Errorf("%s still sees %s alive", idOf(o), idOf(tg))
			case want < 0:
			case !ok:
				return fmt.Errorf("%s does not know %s", idOf(o), idOf(tg))
			case m.State != want:
				return fmt.Errorf("%s sees %s %v, want %v", idOf(o), idOf(tg), m.State, want)
			}
		}
	}
	return nil
}

const notAlive protocols.MemberState = -1

func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// waitFor polls cond until it returns nil, and fails with its last error
// after d. It returns how long it took.
// waitFor re-checks cond at every membership event of the given nodes
// (no polling) until it holds, and fails the test after d.
func waitFor(t *testing.T, d time.Duration, cond func() error, nodes ...*Swim) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline.C)}}
	for _, n := range nodes {
		events, cancel := n.Subscribe()
		defer cancel()
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(events)})
	}
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			t.Fatalf("after %v: %v", d, err)
		}
	}
}

// all is every node the cluster started, for waitFor.
func (c *cluster) all() []*Swim {
	var out []*Swim
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

func TestJoinFullView(t *testing.T) {
	c := newCluster(t, 1)
	start := time.Now()
	c.startAll(5)
	took := waitFor(t, 10*time.Second, func() error {
		for i := 1; i <= 5; i++ {
			ms := c.nodes[i].Members()
			if len(ms) != 5 {
				return fmt.Errorf("%s sees %d members: %v", idOf(i), len(ms), ms)
			}
			for j, m := range ms { // sorted by ID: n1..n5
				want := protocols.Member{ID: idOf(j + 1), Addr: addrOf(j + 1), NodeClass: classOf(j + 1), State: protocols.MemberAlive}
				if m != want {
					return fmt.Errorf("%s sees %+v, want %+v", idOf(i), m, want)
				}
			}
		}
		return nil
	}, c.all()...)
	t.Logf("full view on all 5 nodes %v after the last join (%v after the first start)", took, time.Since(start))
	self := c.nodes[3].Self()
	if want := (protocols.Member{ID: "n3", Addr: addrOf(3), NodeClass: "phone", State: protocols.MemberAlive}); self != want {
		t.Errorf("Self = %+v, want %+v", self, want)
	}
}

func TestGracefulLeaveIsLeft(t *testing.T) {
	c := newCluster(t, 2)
	c.startAll(5)
	waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 5), span(1, 5), protocols.MemberAlive) }, c.all()...)
	start := time.Now()
	if err := c.nodes[5].Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start))
	took := waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 4), []int{5}, protocols.MemberLeft) }, c.all()...)
	t.Logf("left seen by all 4 others %v after Close returned", took)
	if st := c.nodes[5].Self().State; st != protocols.MemberLeft {
		t.Errorf("n5 sees itself %v, want left", st)
	}
	if err := c.sees(span(1, 4), span(1, 4), protocols.MemberAlive); err != nil {
		t.Error(err)
	}
}

func TestCrashIsDeadAndRestartRejoins(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll(5)
	waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 5), span(1, 5), protocols.MemberAlive) }, c.all()...)

	c.net.Crash(addrOf(5))
	took := waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 4), []int{5}, protocols.MemberDead) }, c.all()...)
	t.Logf("crash of n5 seen as dead by all 4 others after %v", took)
	if err := c.sees(span(1, 4), span(1, 4), protocols.MemberAlive); err != nil {
		t.Error(err)
	}

	// The crashed instance is gone with its endpoint; a new run of the
	// node listens at the same address and joins through n1.
	c.nodes[5].Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := c.start(ctx, 5, []string{addrOf(1)}, groupSecret()); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 5), span(1, 5), protocols.MemberAlive) }, c.all()...)
	t.Logf("restarted n5 alive everywhere %v after Start returned (%v after Start began)", took, time.Since(start))
}

// A node that comes back at another address (a phone that changed
// networks) gets its identity back once it has been declared dead.
func TestRestartAtNewAddress(t *testing.T) {
	c := newCluster(t, 10)
	c.startAll(4)
	waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 4), span(1, 4), protocols.MemberAlive) }, c.all()...)
	c.net.Crash(addrOf(4))
	waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 3), []int{4}, protocols.MemberDead) }, c.all()...)
	c.nodes[4].Close()

	ep, err := c.net.Listen("10.0.1.4:7946")
	if err != nil {
		t.Fatal(err)
	}
	tr := &testTransport{ep: ep}
	moved := New(c.cfg)
	t.Cleanup(func() { moved.Close(); tr.Close() })
	env := &protocols.Env{
		Node: protocols.Node{ID: idOf(4), NodeClass: "mobile", Join: []string{addrOf(2)}},
		App:  "photoshare", Group: "friends", Class: "c", GroupSecret: groupSecret(),
		Below: []protocols.Instance{tr},
	}
	if err := moved.Provision(env); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := moved.Start(ctx); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 10*time.Second, func() error {
		for i := 1; i <= 3; i++ {
			for _, m := range c.nodes[i].Members() {
				if want := (protocols.Member{ID: idOf(4), Addr: "10.0.1.4:7946", NodeClass: "mobile", State: protocols.MemberAlive}); m.ID == want.ID && m != want {
					return fmt.Errorf("%s sees %+v, want %+v", idOf(i), m, want)
				}
			}
		}
		return nil
	}, c.all()...)
	t.Logf("n4 alive at its new address everywhere %v after Start returned", took)
}

func TestPartitionAndHeal(t *testing.T) {
	c := newCluster(t, 4)
	c.startAll(5)
	waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 5), span(1, 5), protocols.MemberAlive) }, c.all()...)

	left, right := []int{1, 2}, []int{3, 4, 5}
	c.net.Partition([]string{addrOf(1), addrOf(2)}, []string{addrOf(3), addrOf(4), addrOf(5)})
	took := waitFor(t, 15*time.Second, func() error {
		if err := c.sees(left, right, notAlive); err != nil {
			return err
		}
		if err := c.sees(right, left, notAlive); err != nil {
			return err
		}
		if err := c.sees(left, left, protocols.MemberAlive); err != nil {
			return err
		}
		return c.sees(right, right, protocols.MemberAlive)
	}, c.all()...)
	t.Logf("each side of {1,2}|{3,4,5} sees the other down after %v", took)

	c.net.Heal()
	took = waitFor(t, 15*time.Second, func() error { return c.sees(span(1, 5), span(1, 5), protocols.MemberAlive) }, c.all()...)
	t.Logf("all alive everywhere %v after Heal", took)
}

func TestDatagramLoss(t *testing.T) {
	c := newCluster(t, 5)
	c.net.SetLoss(0.10)
	c.startAll(5)
	took := waitFor(t, 15*time.Second, func() error { return c.sees(span(1, 5), span(1, 5), protocols.MemberAlive) }, c.all()...)
	t.Logf("10%% loss: full view after %v", took)

	c.net.Crash(addrOf(5))
	took = waitFor(t, 15*time.Second, func() error {
		if err := c.sees(span(1, 4), []int{5}, protocols.MemberDead); err != nil {
			return err
		}
		return c.sees(span(1, 4), span(1, 4), protocols.MemberAlive)
	}, c.all()...)
	t.Logf("10%% loss: crash seen as dead by all others after %v", took)
	if st := c.net.Stats(); st.Lost == 0 {
		t.Errorf("no datagram was lost: %+v", st)
	}
}

func TestOtherGroupSecretCannotJoin(t *testing.T) {
	c := newCluster(t, 6)
	c.startAll(3)
	waitFor(t, 10*time.Second, func() error { return c.sees(span(1, 3), span(1, 3), protocols.MemberAlive) }, c.all()...)

	other := bytes.Repeat([]byte{8}, 32)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	stranger, err := c.start(ctx, 9, []string{addrOf(1), addrOf(2)}, other)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start with another group's secret = %v, want a join timeout", err)
	}
	t.Logf("stranger: %v", err)
	for i := 1; i <= 3; i++ {
		for _, m := range c.nodes[i].Members() {
			if m.ID == idOf(9) {
				t.Errorf("%s lists the stranger: %+v", idOf(i), m)
			}
		}
	}
	if ms := stranger.Members(); len(ms) != 1 || ms[0].ID != idOf(9) {
		t.Errorf("the stranger learnt the group: %v", ms)
	}
	if !strings.Contains(c.logs.String(), "ecrypt") {
		t.Errorf("no member logged a decryption failure: the stranger's messages never arrived?")
	}
}

func TestSubscribe(t *testing.T) {
	c := newCluster(t, 7)
	c.startAll(1)
	events, cancel := c.nodes[1].Subscribe()
	// Never read: it must hold back no one.
	_, cancelIdle := c.nodes[1].Subscribe()
	defer cancelIdle()

	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	for i := 2; i <= 5; i++ {
		if _, err := c.start(ctx, i, []string{addrOf(1)}, groupSecret()); err != nil {
			t.Fatal(err)
		}
	}
	joined := map[string]protocols.Member{}
	next(t, events, func(ev protocols.MemberEvent) bool {
		if ev.Member.State == protocols.MemberAlive {
			joined[ev.Member.ID] = ev.Member
		}
		return len(joined) == 4
	})
	for i := 2; i <= 5; i++ {
		want := protocols.Member{ID: idOf(i), Addr: addrOf(i), NodeClass: classOf(i), State: protocols.MemberAlive}
		if joined[idOf(i)] != want {
			t.Errorf("join event %+v, want %+v", joined[idOf(i)], want)
		}
	}

	c.nodes[5].Close()
	next(t, events, func(ev protocols.MemberEvent) bool {
		return ev.Member.ID == "n5" && ev.Member.State == protocols.MemberLeft
	})
	c.net.Crash(addrOf(4))
	next(t, events, func(ev protocols.MemberEvent) bool {
		return ev.Member.ID == "n4" && ev.Member.State == protocols.MemberDead
	})

	cancel()
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-events:
		case <-deadline:
			t.Fatal("events not closed after cancel")
		}
	}
}

func TestSubscriptionEndsAtClose(t *testing.T) {
	c := newCluster(t, 8)
	c.startAll(2)
	events, cancel := c.nodes[2].Subscribe()
	defer cancel()
	c.nodes[2].Close()
	// The queued events (at least n2's own departure) come first, then
	// the channel closes.
	var got []protocols.MemberEvent
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		var ev protocols.MemberEvent
		select {
		case ev, open = <-events:
			if open {
				got = append(got, ev)
			}
		case <-deadline:
			t.Fatal("events not closed after Close")
		}
	}
	if len(got) == 0 || got[len(got)-1].Member != (protocols.Member{ID: "n2", Addr: addrOf(2), NodeClass: "cloud", State: protocols.MemberLeft}) {
		t.Errorf("events before the end: %v, want n2 left last", got)
	}
	late, _ := c.nodes[2].Subscribe()
	if _, open := <-late; open {
		t.Error("a subscription after Close delivered an event")
	}
}

// next reads events until match says so, failing after 10 s.
func next(t *testing.T, events <-chan protocols.MemberEvent, match func(protocols.MemberEvent) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("events closed")
			}
			if match(ev) {
				return
			}
		case <-deadline:
			t.Fatal("no matching event within 10s")
		}
	}
}

func TestLifecycle(t *testing.T) {
	s := New(fastConfig())
	if err := s.Start(context.Background()); err == nil {
		t.Error("Start before Provision succeeded")
	}
	if err := s.Validate(); err == nil {
		t.Error("Validate before Provision succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	c := newCluster(t, 9)
	c.startAll(1)
	n := c.nodes[1]
	if err := n.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := n.Start(context.Background()); !errors.Is(err, protocols.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

// Close while Start still waits for a join address to answer ends Start.
func TestCloseDuringJoin(t *testing.T) {
	c := newCluster(t, 11)
	errc := make(chan error, 1)
	var s *Swim
	ready := make(chan struct{})
	go func() {
		ep, err := c.net.Listen(addrOf(1))
		if err != nil {
			errc <- err
			return
		}
		s = New(c.cfg)
		env := &protocols.Env{
			Node: protocols.Node{ID: "n1", NodeClass: "phone", Join: []string{addrOf(2)}}, // nobody there
			App:  "a", Group: "g", Class: "c", GroupSecret: groupSecret(),
			Below: []protocols.Instance{&testTransport{ep: ep}},
		}
		if err := s.Provision(env); err != nil {
			errc <- err
			return
		}
		close(ready)
		errc <- s.Start(context.Background())
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if s.Self().Addr == "" {
			return errors.New("Start has not created the memberlist yet")
		}
		return nil
	}, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, protocols.ErrClosed) {
			t.Errorf("Start = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start still joining after Close")
	}
}

func TestProvisionAndValidateErrors(t *testing.T) {
	ep, err := memnet.New(1).Listen(addrOf(1))
	if err != nil {
		t.Fatal(err)
	}
	good := func() *protocols.Env {
		return &protocols.Env{
			Node:        protocols.Node{ID: "n1", NodeClass: "phone"},
			App:         "a",
			Group:       "g",
			Class:       "c",
			GroupSecret: groupSecret(),
			Below:       []protocols.Instance{&testTransport{ep: ep}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*protocols.Env)
		cfg    func(*Config)
		want   string // in the error
	}{
		{name: "no transport", change: func(e *protocols.Env) { e.Below = nil }, want: `swim: no "transport" layer`},
		{name: "no secret", change: func(e *protocols.Env) { e.GroupSecret = nil }, want: "swim: gossip key"},
		{name: "params", change: func(e *protocols.Env) { e.Params = map[string]any{"probe_interval_ms": 10.0} }, want: `unknown parameter "probe_interval_ms"`},
		{name: "no id", change: func(e *protocols.Env) { e.Node.ID = "" }, want: "env.Node.ID is empty"},
		{name: "host name", change: func(e *protocols.Env) { e.Node.Join = []string{"example.com:7946"} }, want: `"example.com" is not an IP address`},
		{name: "no port", change: func(e *protocols.Env) { e.Node.Join = []string{"10.0.0.2"} }, want: "want ip:port"},
		{name: "long class", change: func(e *protocols.Env) { e.Node.NodeClass = strings.Repeat("x", 600) }, want: "too long"},
		{name: "config", cfg: func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, want: "ProbeTimeout = 100ms: must be below ProbeInterval"},
		{name: "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, cfg := good(), fastConfig()
			if tc.change != nil {
				tc.change(env)
			}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s := New(cfg)
			err := s.Provision(env)
			if err == nil {
				err = s.Validate()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			case err != nil && !strings.HasPrefix(err.Error(), "swim: "):
				t.Errorf("error %q does not name the layer", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"default", func(*Config) {}, ""},
		{"zero probe", func(c *Config) { c.ProbeInterval = 0 }, "ProbeInterval = 0s: must be positive"},
		{"negative gossip", func(c *Config) { c.GossipInterval = -time.Second }, "GossipInterval = -1s"},
		{"zero retention", func(c *Config) { c.Retention = 0 }, "Retention = 0s"},
		{"zero suspicion", func(c *Config) { c.SuspicionMult = 0 }, "SuspicionMult = 0"},
		{"timeout too long", func(c *Config) { c.ProbeTimeout = 2 * c.ProbeInterval }, "ProbeTimeout = 2s"},
	} {
		c := DefaultConfig()
		tc.change(&c)
		err := c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate = %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := WANConfig().Validate(); err != nil {
		t.Errorf("WANConfig: %v", err)
	}
}

func TestRegistered(t *testing.T) {
	m, ok := protocols.Default.Lookup("swim")
	if !ok {
		t.Fatal("swim is not in the default registry")
	}
	if !slices.Equal(m.Provides, []string{"membership"}) {
		t.Errorf("Provides = %v", m.Provides)
	}
	inst := m.New()
	s, ok := inst.(*Swim)
	if !ok {
		t.Fatalf("New() = %T", inst)
	}
	if s.cfg != DefaultConfig() {
		t.Errorf("default module config = %+v", s.cfg)
	}
}

func TestNewModuleCopiesConfig(t *testing.T) {
	c := fastConfig()
	mod := NewModule(c)
	c.ProbeInterval = time.Hour
	if got := mod.New().(*Swim).cfg.ProbeInterval; got != fastConfig().ProbeInterval {
		t.Errorf("the module saw the caller's later change: ProbeInterval = %v", got)
	}
}

func TestMemberlistLogLevels(t *testing.T) {
	var buf lockedBuffer
	l := memberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Printf("[DEBUG] memberlist: chatty")
	l.Printf("[WARN] memberlist: careful")
	l.Printf("[ERR] memberlist: broken")
	l.Printf("no level")
	out := buf.String()
	for _, want := range []string{`level=WARN msg=careful`, `level=ERROR msg=broken`, `level=INFO msg="no level"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "chatty") {
		t.Errorf("debug line logged at info level:\n%s", out)
	}
}

func ExampleNewModule() {
	reg := protocols.NewRegistry()
	c := DefaultConfig()
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	reg.MustRegister(NewModule(c))
	m, _ := reg.Lookup("swim")
	fmt.Println(reg.Names(), m.Provides)
	// Output: [swim] [membership]
}

// lockedBuffer is a log sink written by many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
