package hubrelay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/hubrelay"
)

// rotate is addrs starting at its i-th element: a client tries its hubs
// in order, so members given different rotations attach to different
// replicas and their frames cross between replicas.
func rotate(addrs []string, i int) []string {
	return append(slices.Clone(addrs[i:]), addrs[:i]...)
}

func recvPacket(ctx context.Context, t *testing.T, p network.Port) network.Packet {
	t.Helper()
	select {
	case pk, ok := <-p.Packets():
		if !ok {
			t.Fatal("port closed")
		}
		return pk
	case <-ctx.Done():
		t.Fatalf("no datagram: %v", ctx.Err())
	}
	return network.Packet{}
}

// echo serves one stream on p: everything read is written back.
func echo(p network.Port) {
	c, err := p.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	io.Copy(c, c)
}

// Two members behind NAT, attached to different replicas, exchange
// datagrams and a stream through the relay, addressed by ID or by the
// address the other's datagrams come from.
func TestDatagramsAndStreams(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	alice := h.newMember(ctx, "alice", addrs)
	bob := h.newMember(ctx, "bob", rotate(addrs, 1))
	h.group(ctx, "team", alice, bob)
	h.partition(alice, bob)
	if _, err := alice.ep.Dial(ctx, bob.ep.Addr(), "x"); !errors.Is(err, network.ErrUnreachable) {
		t.Fatalf("direct dial across the NATs: %v, want ErrUnreachable", err)
	}

	ta := h.transport(ctx, alice, "messages", alice.relayer)
	tb := h.transport(ctx, bob, "messages", bob.relayer)
	ea, eb := ta.Endpoint(), tb.Endpoint()
	if ea.Addr() != alice.addr {
		t.Fatalf("Addr %q, want %q", ea.Addr(), alice.addr)
	}
	pa, err := ea.Open("svc")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := eb.Open("svc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.Open("svc"); !errors.Is(err, network.ErrServiceTaken) {
		t.Fatalf("second Open: %v, want ErrServiceTaken", err)
	}

	if err := ea.Send(ctx, bob.id.ID(), "svc", []byte("ping")); err != nil {
		t.Fatal(err)
	}
	pk := recvPacket(ctx, t, pb)
	if pk.From != alice.addr || string(pk.Payload) != "ping" {
		t.Fatalf("bob got %q from %s, want ping from %s", pk.Payload, pk.From, alice.addr)
	}
	if err := eb.Send(ctx, pk.From, "svc", []byte("pong")); err != nil {
		t.Fatal(err)
	}
	if pk := recvPacket(ctx, t, pa); pk.From != bob.addr || string(pk.Payload) != "pong" {
		t.Fatalf("alice got %q from %s, want pong from %s", pk.Payload, pk.From, bob.addr)
	}
	// To itself, without the trip.
	if err := ea.Send(ctx, ea.Addr(), "svc", []byte("me")); err != nil {
		t.Fatal(err)
	}
	if pk := recvPacket(ctx, t, pa); pk.From != alice.addr || string(pk.Payload) != "me" {
		t.Fatalf("alice to herself: %q from %s", pk.Payload, pk.From)
	}

	go echo(pb)
	c, err := ea.Dial(ctx, bob.addr, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteAddr().String() != bob.addr || c.LocalAddr().String() != alice.addr {
		t.Fatalf("stream addresses %s -> %s", c.LocalAddr(), c.RemoteAddr())
	}
	msg := bytes.Repeat([]byte("hello, bob "), 1000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v (equal: %v)", err, bytes.Equal(got, msg))
	}
	c.Close()

	if _, err := ea.Dial(ctx, bob.addr, "nobody"); !errors.Is(err, network.ErrRefused) {
		t.Fatalf("dial to a service nobody opened: %v, want ErrRefused", err)
	}
	if st := ta.Stats(); !st.Attached || st.Attaches != 1 || st.DatagramsSent != 2 || st.PacketsSent == 0 {
		t.Fatalf("alice's stats %+v", st)
	}
}

// A node runs one transport per data class over one relayer: each class
// gets its own datagrams and streams, even on a service of the same name.
func TestClassesShareTheRelay(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	alice := h.newMember(ctx, "alice", addrs)
	bob := h.newMember(ctx, "bob", rotate(addrs, 2))
	h.group(ctx, "team", alice, bob)
	h.partition(alice, bob)

	classes := []string{"messages", "typing"}
	var ports [2][2]network.Port // [class][alice, bob]
	var eps [2][2]network.Endpoint
	for i, class := range classes {
		for j, m := range []*member{alice, bob} {
			tr := h.transport(ctx, m, class, m.relayer)
			eps[i][j] = tr.Endpoint()
			p, err := eps[i][j].Open("svc")
			if err != nil {
				t.Fatal(err)
			}
			ports[i][j] = p
		}
	}
	for i, class := range classes {
		if err := eps[i][0].Send(ctx, bob.addr, "svc", []byte(class)); err != nil {
			t.Fatal(err)
		}
	}
	for i, class := range classes {
		if pk := recvPacket(ctx, t, ports[i][1]); string(pk.Payload) != class {
			t.Fatalf("bob's %s transport got %q", class, pk.Payload)
		}
	}
	// Streams too: each class's connection is its own.
	for i := range classes {
		go echo(ports[i][1])
	}
	for i, class := range classes {
		c, err := eps[i][0].Dial(ctx, bob.addr, "svc")
		if err != nil {
			t.Fatalf("%s: %v", class, err)
		}
		c.Write([]byte(class))
		got := make([]byte, len(class))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != class {
			t.Fatalf("%s: echo %q %v", class, got, err)
		}
		c.Close()
	}
	// Nothing crossed over.
	for i := range classes {
		select {
		case pk := <-ports[i][1].Packets():
			t.Fatalf("%s: a stray datagram %q", classes[i], pk.Payload)
		default:
		}
	}
}

func TestAddr(t *testing.T) {
	const id = "nabcdefghijklmnop"
	a, err := hubrelay.Addr(id)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || port != "1" || net.ParseIP(host) == nil {
		t.Fatalf("Addr(%s) = %q: not [ipv6]:1 (%v)", id, a, err)
	}
	for _, s := range []string{a, id, "[fd72:696d:6500:0:0:0:0:0]:1"} {
		got, err := hubrelay.NodeID(s)
		if err != nil {
			t.Fatalf("NodeID(%q): %v", s, err)
		}
		if s != "[fd72:696d:6500:0:0:0:0:0]:1" && got != id {
			t.Fatalf("NodeID(%q) = %q, want %q", s, got, id)
		}
	}
	for _, bad := range []string{"", "n1", "nABCDEFGHIJKLMNOP", "10.0.0.1:7000", "[fd72:696d:6501::1]:1", "[" + a[1:len(a)-3] + "]:2", "[::ffff:10.0.0.1]:1"} {
		if got, err := hubrelay.NodeID(bad); err == nil {
			t.Errorf("NodeID(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := hubrelay.Addr("n1"); err == nil {
		t.Error("Addr of a short ID: no error")
	}
}

// A replica that goes silent without closing the attachment (a power
// cut leaves TCP connections open for minutes) is left: the node's
// heartbeat through the relay stops coming back, and it reattaches.
func TestSilentAttachmentIsLeft(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	alice := h.newMember(ctx, "alice", addrs)
	bob := h.newMember(ctx, "bob", rotate(addrs, 1))
	h.group(ctx, "team", alice, bob)
	h.partition(alice, bob)
	stalling := &stallRelayer{Relayer: alice.relayer, stall: make(chan struct{})}
	cfg := testConfig()
	cfg.Heartbeat, cfg.HeartbeatTimeout = 20*time.Millisecond, 100*time.Millisecond
	ta := hubrelay.New(cfg)
	start(ctx, t, ta, h.env(alice, "messages", stalling))
	tb := h.transport(ctx, bob, "messages", bob.relayer)
	pa, _ := ta.Endpoint().Open("svc")
	pb, _ := tb.Endpoint().Open("svc")

	close(stalling.stall)
	h.waitFor(ctx, "alice leaving the silent attachment", func() bool {
		st := ta.Stats()
		return st.Attached && st.Attaches >= 2
	}, ta.Changed)
	if err := ta.Endpoint().Send(ctx, bob.addr, "svc", []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if pk := recvPacket(ctx, t, pb); string(pk.Payload) != "ping" {
		t.Fatalf("bob got %q", pk.Payload)
	}
	if err := tb.Endpoint().Send(ctx, alice.addr, "svc", []byte("pong")); err != nil {
		t.Fatal(err)
	}
	if pk := recvPacket(ctx, t, pa); string(pk.Payload) != "pong" {
		t.Fatalf("alice got %q", pk.Payload)
	}
}

// stallRelayer's first link goes silent once stall is closed: it sends
// nothing and delivers nothing, without ending.
type stallRelayer struct {
	protocols.Relayer
	stall chan struct{}
	mu    sync.Mutex
	links int
}

func (s *stallRelayer) Relay(ctx context.Context, group string) (protocols.RelayLink, error) {
	l, err := s.Relayer.Relay(ctx, group)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links++; s.links == 1 {
		return &stallLink{RelayLink: l, stall: s.stall}, nil
	}
	return l, nil
}

type stallLink struct {
	protocols.RelayLink
	stall chan struct{}
}

func (l *stallLink) Send(to string, payload []byte) error {
	select {
	case <-l.stall:
		return nil
	default:
		return l.RelayLink.Send(to, payload)
	}
}

func (l *stallLink) Recv(ctx context.Context) (string, []byte, error) {
	for {
		from, p, err := l.RelayLink.Recv(ctx)
		if err != nil {
			return "", nil, err
		}
		select {
		case <-l.stall:
		default:
			return from, p, nil
		}
	}
}

// A hub that lies about who sent a frame gains nothing: the datagram's
// sealed sender does not match and it is refused, and no stream comes up
// (alice answers the handshake to the node the hub named; were her answer
// to reach bob, she would still refuse his key as carol's: see
// TestVerifyPeer).
func TestLyingHubCannotImpersonate(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	alice := h.newMember(ctx, "alice", addrs)
	bob := h.newMember(ctx, "bob", rotate(addrs, 1))
	carol := h.newMember(ctx, "carol", rotate(addrs, 2))
	h.group(ctx, "team", alice, bob, carol)
	h.partition(alice, bob, carol)
	// Everything alice receives is said to come from carol.
	liar := &relabelRelayer{Relayer: alice.relayer, as: carol.id.ID(), changes: newNotifier()}
	ta := hubrelay.New(testConfig())
	start(ctx, t, ta, h.env(alice, "messages", liar))
	cfg := testConfig()
	cfg.HandshakeTimeout = time.Second
	tb := hubrelay.New(cfg)
	start(ctx, t, tb, h.env(bob, "messages", bob.relayer))
	pa, _ := ta.Endpoint().Open("svc")
	go echo(pa)

	if err := tb.Endpoint().Send(ctx, alice.addr, "svc", []byte("from bob")); err != nil {
		t.Fatal(err)
	}
	// alice handles a frame fully before she asks for the next one.
	h.waitFor(ctx, "alice refusing the relabeled datagram", func() bool {
		return ta.Stats().Refused >= 1
	}, liar.changes.next)
	select {
	case pk := <-pa.Packets():
		t.Fatalf("alice took %q from %s", pk.Payload, pk.From)
	default:
	}
	if c, err := tb.Endpoint().Dial(ctx, alice.addr, "svc"); !errors.Is(err, network.ErrUnreachable) {
		t.Fatalf("bob's stream to alice, whom the hub tells he is carol: %v %v; want ErrUnreachable", c, err)
	}
}

// relabelRelayer's links say every frame comes from as, and announce
// each Recv call.
type relabelRelayer struct {
	protocols.Relayer
	as      string
	changes *notifier
}

func (r *relabelRelayer) Relay(ctx context.Context, group string) (protocols.RelayLink, error) {
	l, err := r.Relayer.Relay(ctx, group)
	if err != nil {
		return nil, err
	}
	return &relabelLink{RelayLink: l, r: r}, nil
}

type relabelLink struct {
	protocols.RelayLink
	r *relabelRelayer
}

func (l *relabelLink) Recv(ctx context.Context) (string, []byte, error) {
	l.r.changes.notify()
	_, p, err := l.RelayLink.Recv(ctx)
	return l.r.as, p, err
}
