package causalbroadcast_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/causal"
	"github.com/rime-dev/rime/crdt/vv"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/causalbroadcast"
	"github.com/rime-dev/rime/protocols/tcpmtls"
	"github.com/rime-dev/rime/verify/sim"
)

const class = "chat"

// plan is transport, membership and causal broadcast, written out so
// the tests do not depend on the planner.
func plan() *engine.Plan {
	return &engine.Plan{App: "bcast", Group: "testers", Classes: []engine.ClassPlan{{
		Name: class, Satisfiable: true,
		Stack: []engine.Layer{
			{Layer: "transport", Protocol: tcpmtls.Name, Implemented: true, Provides: []string{"transport"}},
			{Layer: "membership", Protocol: "swim", Implemented: true, Provides: []string{"membership"}, Requires: []string{"transport"}},
			{Layer: "broadcast", Protocol: causalbroadcast.Name, Implemented: true, Params: map[string]any{"fanout": float64(3)},
				Provides: []string{"broadcast"}, Requires: []string{"membership"}},
		},
	}}}
}

// registry is sim's with anti-entropy every 50ms.
func registry(t *testing.T, cfg causalbroadcast.Config) *protocols.Registry {
	fast := sim.FastRegistry()
	reg := protocols.NewRegistry()
	for _, name := range fast.Names() {
		m, _ := fast.Lookup(name)
		if name == causalbroadcast.Name {
			m = causalbroadcast.NewModule(cfg)
		}
		if err := reg.Register(m); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func fastConfig() causalbroadcast.Config {
	c := causalbroadcast.DefaultConfig()
	c.AntiEntropyInterval = 50 * time.Millisecond
	return c
}

// recorder collects every node's delivery order and lets a test wait
// until every node has delivered a number of messages.
type recorder struct {
	mu      sync.Mutex
	orders  map[int][]protocols.Delivery
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{orders: map[int][]protocols.Delivery{}, changed: make(chan struct{})}
}

func (r *recorder) follow(i int, b protocols.Broadcast) {
	go func() {
		for d := range b.Deliveries() {
			r.mu.Lock()
			r.orders[i] = append(r.orders[i], d)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
	}()
}

// waitFor waits until cond holds over the orders.
func (r *recorder) waitFor(ctx context.Context, t *testing.T, what string, cond func(map[int][]protocols.Delivery) bool) {
	t.Helper()
	for {
		r.mu.Lock()
		ok := cond(r.orders)
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			r.mu.Lock()
			defer r.mu.Unlock()
			counts := map[int]int{}
			for i, o := range r.orders {
				counts[i] = len(o)
			}
			t.Fatalf("waiting for %s: %v (deliveries per node: %v)", what, ctx.Err(), counts)
		}
	}
}

func allHave(n, want int) func(map[int][]protocols.Delivery) bool {
	return func(o map[int][]protocols.Delivery) bool {
		for i := range n {
			if len(o[i]) < want {
				return false
			}
		}
		return true
	}
}

func hasPayload(i int, p string) func(map[int][]protocols.Delivery) bool {
	return func(o map[int][]protocols.Delivery) bool {
		for _, d := range o[i] {
			if string(d.Payload) == p {
				return true
			}
		}
		return false
	}
}

// check runs causal.CheckCausal over every node's order. A message's
// causal past is what its sender had delivered before it: a sender
// delivers its own message the moment it broadcasts it, so that is the
// prefix of the sender's own order before the message.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	deps := map[causal.MsgID]vv.VV{}
	orders := map[string][]causal.MsgID{}
	for i, o := range r.orders {
		seen := vv.VV{}
		for _, d := range o {
			id := causal.MsgID{Replica: d.From, Seq: d.Seq}
			if senderNode(d) == i {
				deps[id] = seen.Clone()
			}
			seen[d.From] = max(seen[d.From], d.Seq)
			orders[fmt.Sprint(i)] = append(orders[fmt.Sprint(i)], id)
		}
	}
	if vs := causal.CheckCausal(orders, deps); len(vs) > 0 {
		for _, v := range vs[:min(len(vs), 10)] {
			t.Error(v)
		}
		t.Fatalf("%d causal violations", len(vs))
	}
}

// senderNode is the node that broadcast d, from its payload "n<i>-<k>".
func senderNode(d protocols.Delivery) int {
	var node, k int
	fmt.Sscanf(string(d.Payload), "n%d-%d", &node, &k)
	return node
}

type cluster struct {
	*sim.Cluster
	bs  []protocols.Broadcast
	rec *recorder
}

func start(ctx context.Context, t *testing.T, n int, cfg causalbroadcast.Config, seed uint64) *cluster {
	t.Helper()
	classes := make([]string, n)
	for i := range classes {
		classes[i] = "peer"
	}
	c, err := sim.Start(ctx, sim.Config{Plan: plan(), NodeClasses: classes, Registry: registry(t, cfg), Seed: seed, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl := &cluster{Cluster: c, rec: newRecorder()}
	for i := range n {
		b, ok := node.Layer[protocols.Broadcast](c.Node(i), class)
		if !ok {
			t.Fatal("no broadcast layer")
		}
		cl.bs = append(cl.bs, b)
		cl.rec.follow(i, b)
	}
	cl.waitMembers(ctx, t, n)
	return cl
}

// waitMembers waits until every node's membership sees n alive members.
func (c *cluster) waitMembers(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for i := range c.N() {
		m, _ := node.Layer[protocols.Membership](c.Node(i), class)
		ev, cancel := m.Subscribe()
		for alive(m) < n {
			select {
			case <-ev:
			case <-ctx.Done():
				cancel()
				t.Fatalf("node %d sees %d alive members, want %d", i, alive(m), n)
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

func (c *cluster) send(ctx context.Context, t *testing.T, i, k int) string {
	t.Helper()
	p := fmt.Sprintf("n%d-%d", i, k)
	if err := c.bs[i].Broadcast(ctx, []byte(p)); err != nil {
		t.Fatal(err)
	}
	return p
}

// A chain of replies across nodes, under duplication, reordering and
// loss, with concurrent chatter: every node delivers everything, and no
// node delivers a reply before what it answers.
func TestCausalOrderUnderFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 5
	c := start(ctx, t, n, fastConfig(), 1)
	c.SetDuplicate(0.2)
	c.SetReorder(0.3)
	c.SetLoss(0.05)
	total := 0
	for round := range 8 {
		for i := range n {
			// Node i answers the previous node's latest message once it
			// has it, so the chain is causal across all nodes.
			if round > 0 || i > 0 {
				prev := (i + n - 1) % n
				pk := round
				if i == 0 {
					pk = round - 1
				}
				c.rec.waitFor(ctx, t, "the message to answer", hasPayload(i, fmt.Sprintf("n%d-%d", prev, pk)))
			}
			c.send(ctx, t, i, round)
			total++
		}
	}
	c.rec.waitFor(ctx, t, "every message everywhere", allHave(n, total))
	c.rec.check(t)
}

// Both sides of a partition broadcast; after it heals, anti-entropy
// brings every message everywhere, in causal order.
func TestPartitionHeals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 5
	c := start(ctx, t, n, fastConfig(), 2)
	c.Partition([][]int{{0, 1}, {2, 3, 4}})
	total := 0
	for k := range 20 {
		for _, i := range []int{0, 3} {
			c.send(ctx, t, i, k)
			total++
		}
	}
	// Each side delivers its own side's messages during the partition.
	c.rec.waitFor(ctx, t, "node 1 has node 0's messages", hasPayload(1, "n0-19"))
	c.rec.waitFor(ctx, t, "node 4 has node 3's messages", hasPayload(4, "n3-19"))
	c.Heal()
	c.send(ctx, t, 1, 0) // after the heal: depends on all of side A
	total++
	c.rec.waitFor(ctx, t, "every message everywhere", allHave(n, total))
	c.rec.check(t)
}
