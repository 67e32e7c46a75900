package hubrelay_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/hubrelay"
)

// testHub is a hub of replicas on one memnet, with member nodes that
// reach the replicas but, partitioned, not each other.
type testHub struct {
	t    *testing.T
	net  *memnet.Network
	dir  string
	logs *lockedBuffer

	mu       sync.Mutex
	replicas map[string]*hub.Replica // by address
	nodes    int
}

func newTestHub(t *testing.T, n int) *testHub {
	t.Helper()
	h := &testHub{t: t, net: memnet.New(11), dir: t.TempDir(), logs: &lockedBuffer{}, replicas: map[string]*hub.Replica{}}
	// Registered first, so it runs last.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last log lines:\n%s", h.logs.tail(200))
		}
	})
	var ids []*identity.Identity
	var boot, addrs []string
	for i := range n {
		id, err := identity.Generate()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		boot = append(boot, id.ID())
		addrs = append(addrs, fmt.Sprintf("10.1.0.%d:7000", i+1))
	}
	for i, id := range ids {
		ep, err := h.net.Listen(addrs[i])
		if err != nil {
			t.Fatal(err)
		}
		cfg := hub.DefaultConfig()
		cfg.Identity, cfg.Endpoint = id, ep
		cfg.DataDir = filepath.Join(h.dir, id.ID())
		cfg.Bootstrap = boot
		cfg.Join = slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == addrs[i] })
		r, err := hub.Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.replicas[addrs[i]] = r
		t.Cleanup(func() {
			r.Close()
			ep.Close()
		})
	}
	return h
}

func (h *testHub) live() []*hub.Replica {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*hub.Replica
	for _, r := range h.replicas {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *hub.Replica) int { return strings.Compare(a.Addr(), b.Addr()) })
	return out
}

func (h *testHub) addrs() []string {
	var out []string
	for _, r := range h.live() {
		out = append(out, r.Addr())
	}
	return out
}

// crash cuts the replica at addr off as a power cut would, then stops it.
func (h *testHub) crash(addr string) {
	h.mu.Lock()
	r := h.replicas[addr]
	delete(h.replicas, addr)
	h.mu.Unlock()
	h.net.Crash(addr)
	r.Close()
}

// waitFor waits until cond holds, re-checking it whenever a live replica
// changes or one of the wakers' channels closes (each waker returns the
// channel of its next change: a Notifier's Changed, say). No polling.
func (h *testHub) waitFor(ctx context.Context, what string, cond func() bool, wakers ...func() <-chan struct{}) {
	h.t.Helper()
	for {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
		for _, r := range h.live() {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.Changed())})
		}
		for _, w := range wakers {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w())})
		}
		if cond() {
			return
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			h.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// ready waits for a leader that knows every replica's address.
func (h *testHub) ready(ctx context.Context) {
	h.t.Helper()
	n := len(h.live())
	h.waitFor(ctx, "a hub leader with every replica registered", func() bool {
		for _, r := range h.live() {
			if st := r.Status(); st.IsLeader && len(st.Replicas) == n && st.Nodes >= n {
				return true
			}
		}
		return false
	})
}

// member is a node of the group: an identity, an endpoint on memnet (to
// reach the hub only), a hub client and its relayer.
type member struct {
	name    string
	id      *identity.Identity
	ep      network.Endpoint
	client  *hub.Client
	relayer protocols.Relayer
	addr    string // its hub-relay address
}

// newMember registers a node behind NAT. hubs orders the replicas its
// client tries (it attaches to the first that answers).
func (h *testHub) newMember(ctx context.Context, name string, hubs []string) *member {
	h.t.Helper()
	id, err := identity.Generate()
	if err != nil {
		h.t.Fatal(err)
	}
	return h.newMemberWith(ctx, name, hubs, id)
}

// newMemberWith is newMember with the node's key.
func (h *testHub) newMemberWith(ctx context.Context, name string, hubs []string, id *identity.Identity) *member {
	h.t.Helper()
	h.mu.Lock()
	h.nodes++
	addr := fmt.Sprintf("10.2.0.%d:1", h.nodes)
	h.mu.Unlock()
	ep, err := h.net.Listen(addr)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := hub.NewClient(hub.ClientConfig{Identity: id, Endpoint: ep, Hubs: hubs, Timeout: 20 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	// The relay's own client has made no call yet, so it attaches at
	// hubs[0] if that replica is up: tests know where each member is.
	rc, err := hub.NewClient(hub.ClientConfig{Identity: id, Endpoint: ep, Hubs: hubs, Timeout: 20 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close(); rc.Close(); ep.Close() })
	if err := c.Register(ctx, hub.RegisterArgs{Class: "laptop", Reachability: "nat", Addr: addr}); err != nil {
		h.t.Fatalf("register %s: %v", name, err)
	}
	ra, err := hubrelay.Addr(id.ID())
	if err != nil {
		h.t.Fatal(err)
	}
	return &member{name: name, id: id, ep: ep, client: c, relayer: rc.Relayer(), addr: ra}
}

// group makes the first member create group and invites the others, and
// waits until every replica knows them all (the relay checks membership
// in each replica's own state).
func (h *testHub) group(ctx context.Context, group string, ms ...*member) {
	h.t.Helper()
	if err := ms[0].client.CreateGroup(ctx, group); err != nil {
		h.t.Fatal(err)
	}
	for _, m := range ms[1:] {
		if _, err := ms[0].client.Invite(ctx, group, m.id.Public()); err != nil {
			h.t.Fatal(err)
		}
		if _, err := m.client.Accept(ctx, group); err != nil {
			h.t.Fatal(err)
		}
	}
	h.everywhere(ctx, ms[0], group, len(ms))
}

// everywhere waits until every live replica has applied a group of
// members: a read through a replica returns only once the replica has
// applied everything committed before it (ReadIndex).
func (h *testHub) everywhere(ctx context.Context, m *member, group string, members int) {
	h.t.Helper()
	for _, a := range h.addrs() {
		c, err := hub.NewClient(hub.ClientConfig{Identity: m.id, Endpoint: m.ep, Hubs: []string{a}})
		if err != nil {
			h.t.Fatal(err)
		}
		g, err := c.Group(ctx, group)
		c.Close()
		if err != nil || len(g.Members) != members {
			h.t.Fatalf("group %s at replica %s: %d members, %v; want %d", group, a, len(g.Members), err, members)
		}
	}
}

// partition cuts the members' direct links, as NATs do: they reach the
// hub's replicas, never each other.
func (h *testHub) partition(ms ...*member) {
	var groups [][]string
	for _, m := range ms {
		groups = append(groups, []string{m.ep.Addr()})
	}
	h.net.Partition(groups...)
}

func secret() []byte { return bytes.Repeat([]byte{7}, 32) }

// testConfig keeps failure handling quick on memnet.
func testConfig() hubrelay.Config {
	c := hubrelay.DefaultConfig()
	c.HandshakeTimeout = 5 * time.Second
	c.IdleTimeout = 20 * time.Second
	c.KeepAlive = 2 * time.Second
	c.ReattachMax = 200 * time.Millisecond
	return c
}

// env is the environment a node gives a layer of class.
func (h *testHub) env(m *member, class string, relayer protocols.Relayer, below ...protocols.Instance) *protocols.Env {
	return &protocols.Env{
		Node:        protocols.Node{ID: m.id.ID(), NodeClass: "laptop", Key: m.id.Key},
		App:         "teamchat",
		Group:       "team",
		Class:       class,
		GroupSecret: secret(),
		Below:       below,
		Relayer:     relayer,
		Logger:      slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", m.name, "class", class),
	}
}

// transport starts m's hub-relay transport for class.
func (h *testHub) transport(ctx context.Context, m *member, class string, relayer protocols.Relayer) *hubrelay.Transport {
	h.t.Helper()
	tr := hubrelay.New(testConfig())
	start(ctx, h.t, tr, h.env(m, class, relayer))
	return tr
}

// start provisions, validates and starts a layer, closing it at cleanup.
func start(ctx context.Context, t *testing.T, l protocols.Instance, env *protocols.Env) {
	t.Helper()
	if err := l.Provision(env); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lossyRelayer drops a fraction of the frames its links send, with a
// seeded generator: loss injected in the relay path only.
type lossyRelayer struct {
	protocols.Relayer
	mu   sync.Mutex
	rng  *rand.Rand
	loss float64
	lost int
}

func newLossy(r protocols.Relayer, loss float64, seed uint64) *lossyRelayer {
	return &lossyRelayer{Relayer: r, rng: rand.New(rand.NewPCG(seed, seed)), loss: loss}
}

func (l *lossyRelayer) Relay(ctx context.Context, group string) (protocols.RelayLink, error) {
	link, err := l.Relayer.Relay(ctx, group)
	if err != nil {
		return nil, err
	}
	return &lossyLink{RelayLink: link, r: l}, nil
}

func (l *lossyRelayer) lose() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rng.Float64() < l.loss {
		l.lost++
		return true
	}
	return false
}

func (l *lossyRelayer) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

type lossyLink struct {
	protocols.RelayLink
	r *lossyRelayer
}

func (l *lossyLink) Send(to string, payload []byte) error {
	if l.r.lose() {
		return nil
	}
	return l.RelayLink.Send(to, payload)
}

// lockedBuffer collects log lines from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(l.b.String(), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
