package hubrelay_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/protocols"
	eb "github.com/rime-dev/rime/protocols/epidemicbroadcast"
	"github.com/rime-dev/rime/protocols/hubrelay"
	"github.com/rime-dev/rime/protocols/swim"
)

// stackNode is a member running transport, membership and broadcast of
// one class over the relay, as a teamchat laptop does.
type stackNode struct {
	*member
	tr *hubrelay.Transport
	sw protocols.Membership
	b  protocols.Broadcast

	// changes is told of every membership event and delivery.
	changes *notifier
	mu      sync.Mutex
	got     map[string]bool // payloads delivered
}

// swimConfig detects a failure within a couple of seconds through the
// relay.
func swimConfig() swim.Config {
	return swim.Config{
		ProbeInterval:     200 * time.Millisecond,
		ProbeTimeout:      100 * time.Millisecond,
		SuspicionMult:     4,
		GossipInterval:    50 * time.Millisecond,
		PushPullInterval:  time.Second,
		ReconnectInterval: 300 * time.Millisecond,
		LeaveTimeout:      time.Second,
		Retention:         time.Hour,
	}
}

func broadcastConfig() eb.Config {
	c := eb.DefaultConfig()
	c.TickInterval = 10 * time.Millisecond
	c.DigestTicks = 2
	return c
}

// stack starts m's layers over relayer, joining through joins.
func (h *testHub) stack(ctx context.Context, m *member, relayer protocols.Relayer, joins ...string) *stackNode {
	h.t.Helper()
	tr := h.transport(ctx, m, "messages", relayer)
	sw := swim.New(swimConfig())
	env := h.env(m, "messages", relayer, tr)
	env.Node.Join = joins
	start(ctx, h.t, sw, env)
	b := eb.New(broadcastConfig())
	env = h.env(m, "messages", relayer, tr, sw)
	env.Params = map[string]any{"fanout": float64(2)}
	start(ctx, h.t, b, env)
	return h.watch(&stackNode{member: m, tr: tr, sw: sw, b: b})
}

// watch follows n's membership events and deliveries until cleanup.
func (h *testHub) watch(n *stackNode) *stackNode {
	n.changes, n.got = newNotifier(), map[string]bool{}
	events, cancel := n.sw.Subscribe()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range events {
			n.changes.notify()
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case d, ok := <-n.b.Deliveries():
				if !ok {
					return
				}
				n.mu.Lock()
				n.got[string(d.Payload)] = true
				n.mu.Unlock()
				n.changes.notify()
			case <-done:
				return
			}
		}
	}()
	// Runs before the layers are closed (their cleanups were registered
	// earlier).
	h.t.Cleanup(func() { close(done); cancel(); wg.Wait() })
	return n
}

// sees: does n see peer in state?
func (n *stackNode) sees(peer *member, state protocols.MemberState) bool {
	for _, m := range n.sw.Members() {
		if m.ID == peer.id.ID() {
			return m.State == state && m.Addr == peer.addr
		}
	}
	return false
}

func (n *stackNode) delivered(payload string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got[payload]
}

// alive waits until each node sees the other alive.
func (h *testHub) alive(ctx context.Context, a, b *stackNode) {
	h.t.Helper()
	h.waitFor(ctx, a.name+" and "+b.name+" alive to each other", func() bool {
		return a.sees(b.member, protocols.MemberAlive) && b.sees(a.member, protocols.MemberAlive)
	}, a.changes.next, b.changes.next)
}

// broadcastBoth broadcasts one message from each node and waits until
// both have both.
func (h *testHub) broadcastBoth(ctx context.Context, a, b *stackNode, label string) {
	h.t.Helper()
	pa, pb := label+" from "+a.name, label+" from "+b.name
	if err := a.b.Broadcast(ctx, []byte(pa)); err != nil {
		h.t.Fatal(err)
	}
	if err := b.b.Broadcast(ctx, []byte(pb)); err != nil {
		h.t.Fatal(err)
	}
	h.waitFor(ctx, label+": each broadcast delivered on both nodes", func() bool {
		return a.delivered(pa) && a.delivered(pb) && b.delivered(pa) && b.delivered(pb)
	}, a.changes.next, b.changes.next)
}

// Swim membership and epidemic broadcast run over the relay between two
// members whose direct link is cut: each sees the other alive and
// delivers the other's broadcasts.
func TestSwimAndBroadcastOverRelay(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	alice := h.newMember(ctx, "alice", addrs)
	bob := h.newMember(ctx, "bob", rotate(addrs, 1))
	h.group(ctx, "team", alice, bob)
	h.partition(alice, bob)

	a := h.stack(ctx, alice, alice.relayer)
	b := h.stack(ctx, bob, bob.relayer, alice.addr)
	h.alive(ctx, a, b)
	h.broadcastBoth(ctx, a, b, "hello")
	for _, n := range []*stackNode{a, b} {
		if st := n.tr.Stats(); st.DatagramsReceived == 0 || st.PacketsReceived == 0 {
			t.Errorf("%s: %+v: both datagrams (probes, broadcasts) and streams (push/pull) should have crossed the relay", n.name, st)
		}
	}
}

// A stream carries 1 MiB intact while the relay path loses 5% of the
// frames both ways.
func TestStreamUnderLoss(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	alice := h.newMember(ctx, "alice", addrs)
	bob := h.newMember(ctx, "bob", rotate(addrs, 1))
	h.group(ctx, "team", alice, bob)
	h.partition(alice, bob)
	la, lb := newLossy(alice.relayer, 0.05, 1), newLossy(bob.relayer, 0.05, 2)
	ta := h.transport(ctx, alice, "messages", la)
	tb := h.transport(ctx, bob, "messages", lb)

	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{9}).Read(data)
	want := sha256.Sum256(data)
	p, err := tb.Endpoint().Open("bulk")
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() {
		c, err := p.Accept()
		if err != nil {
			result <- err
			return
		}
		defer c.Close()
		got := make([]byte, len(data))
		if _, err := io.ReadFull(c, got); err != nil {
			result <- fmt.Errorf("bob read: %w", err)
			return
		}
		if sha256.Sum256(got) != want {
			result <- errors.New("bob read 1 MiB that differs from what alice sent")
			return
		}
		_, err = c.Write([]byte{1})
		result <- err
	}()
	c, err := ta.Endpoint().Dial(ctx, bob.addr, "bulk")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if la.count() == 0 || lb.count() == 0 {
		t.Fatalf("frames lost: alice %d, bob %d: the loss was not injected", la.count(), lb.count())
	}
	t.Logf("1 MiB intact; frames dropped: alice %d of %d, bob %d of %d", la.count(), ta.Stats().PacketsSent, lb.count(), tb.Stats().PacketsSent)
}

// Stopping the replica a member is attached to: it reattaches to another
// and traffic continues, a stream opened before included.
func TestReattachAfterReplicaCrash(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	alice := h.newMember(ctx, "alice", addrs) // attaches at addrs[0]
	bob := h.newMember(ctx, "bob", rotate(addrs, 1))
	h.group(ctx, "team", alice, bob)
	h.partition(alice, bob)
	a := h.stack(ctx, alice, alice.relayer)
	b := h.stack(ctx, bob, bob.relayer, alice.addr)
	h.alive(ctx, a, b)

	p, err := b.tr.Endpoint().Open("echo")
	if err != nil {
		t.Fatal(err)
	}
	go echo(p)
	c, err := a.tr.Endpoint().Dial(ctx, bob.addr, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(msg string) {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q %v", msg, got, err)
		}
	}
	roundTrip("before the crash")

	h.crash(addrs[0])
	h.waitFor(ctx, "alice reattached", func() bool {
		st := a.tr.Stats()
		return st.Attached && st.Attaches >= 2
	}, a.tr.Changed)
	if st := b.tr.Stats(); st.Attaches != 1 {
		t.Errorf("bob, attached elsewhere, reattached: %+v", st)
	}
	roundTrip("after the crash")
	h.broadcastBoth(ctx, a, b, "after the crash")
	h.alive(ctx, a, b)
}

// A member removed from the group is cut off: the hub ends its
// attachment and refuses the next, its frames stop being delivered, and
// the remaining member's failure detector sees it go.
func TestRemovedMemberIsCutOff(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	alice := h.newMember(ctx, "alice", addrs)
	bob := h.newMember(ctx, "bob", rotate(addrs, 1))
	h.group(ctx, "team", alice, bob)
	h.partition(alice, bob)
	a := h.stack(ctx, alice, alice.relayer)
	b := h.stack(ctx, bob, bob.relayer, alice.addr)
	h.alive(ctx, a, b)
	h.broadcastBoth(ctx, a, b, "before")
	pa, err := a.tr.Endpoint().Open("probe")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := alice.client.Remove(ctx, "team", bob.id.ID()); err != nil {
		t.Fatal(err)
	}
	h.everywhere(ctx, alice, "team", 1)
	// Bob keeps talking (swim probes, and this datagram); his next frame
	// ends his attachment, and every attach after is refused.
	if err := b.tr.Endpoint().Send(ctx, alice.addr, "probe", []byte("from a removed member")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(ctx, "bob's attach refused", func() bool {
		st := b.tr.Stats()
		return !st.Attached && errors.Is(st.LastError, hub.ErrNotMember)
	}, b.tr.Changed)
	h.waitFor(ctx, "alice seeing bob dead", func() bool {
		return a.sees(bob, protocols.MemberDead)
	}, a.changes.next)
	if err := b.b.Broadcast(ctx, []byte("after removal")); err != nil {
		t.Fatal(err)
	}
	// The hub ended bob's attachment at his first frame after the
	// removal without delivering it, and reads none after: nothing of
	// his reached alice since.
	select {
	case pk := <-pa.Packets():
		t.Fatalf("alice got %q from %s after bob's removal", pk.Payload, pk.From)
	default:
	}
	if a.delivered("after removal") {
		t.Fatal("alice delivered a broadcast bob made after his removal")
	}
}

// notifier is a broadcast of "something changed".
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) next() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}
