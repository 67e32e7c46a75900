package tlsnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
)

// noLeaks fails the test if goroutines started during it are still
// running once its cleanups (which close the endpoints) have run. Call
// it first, so its cleanup runs last.
func noLeaks(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines before the test, %d after:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(time.Millisecond) // polling with a deadline, in a test only
		}
	})
}

// logBuffer collects an endpoint's log so tests can check what it says,
// and wait for what it will say.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed != nil {
		close(l.changed)
	}
	l.changed = make(chan struct{})
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// next is a channel closed at the next write.
func (l *logBuffer) next() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// waitFor re-checks cond at every write to log (what cond reads) until it
// holds, and fails the test after 5 s.
func waitFor(t *testing.T, what string, log *logBuffer, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		next := log.next()
		if cond() {
			return
		}
		select {
		case <-next:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type node struct {
	id  *identity.Identity
	ep  network.Endpoint
	log *logBuffer
}

// start makes a node with a fresh identity listening on loopback.
func start(t *testing.T, authorize func(string, ed25519.PublicKey) error) node {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	n, err := New(Config{
		Identity:    id,
		Authorize:   authorize,
		DialTimeout: 5 * time.Second,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return node{id: id, ep: ep, log: logs}
}

func open(t *testing.T, ep network.Endpoint, service string) network.Port {
	t.Helper()
	p, err := ep.Open(service)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func recv(t *testing.T, p network.Port) network.Packet {
	t.Helper()
	select {
	case pk, ok := <-p.Packets():
		if !ok {
			t.Fatal("port closed while waiting for a datagram")
		}
		return pk
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram within 10s")
	}
	return network.Packet{}
}

func empty(t *testing.T, p network.Port) {
	t.Helper()
	select {
	case pk := <-p.Packets():
		t.Fatalf("unexpected datagram %q from %s", pk.Payload, pk.From)
	default:
	}
}

func TestDatagramRoundTrip(t *testing.T) {
	noLeaks(t)
	ctx := context.Background()
	a, b := start(t, nil), start(t, nil)
	if !strings.HasPrefix(a.ep.Addr(), "127.0.0.1:") || strings.HasSuffix(a.ep.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the real loopback port", a.ep.Addr())
	}
	pongs := open(t, a.ep, "pong")
	pings := open(t, b.ep, "ping")
	gossip := open(t, b.ep, "gossip")

	for i := range 3 {
		if err := a.ep.Send(ctx, b.ep.Addr(), "ping", fmt.Appendf(nil, "ping %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Frames on one carrier arrive in order, so once the gossip datagram
	// is in, the one to a service nobody opened was read and dropped.
	if err := a.ep.Send(ctx, b.ep.Addr(), "nobody", []byte("lost")); err != nil {
		t.Fatal(err)
	}
	if err := a.ep.Send(ctx, b.ep.Addr(), "gossip", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		pk := recv(t, pings)
		if want := fmt.Sprintf("ping %d", i); string(pk.Payload) != want || pk.From != a.ep.Addr() {
			t.Fatalf("got %q from %s, want %q from %s", pk.Payload, pk.From, want, a.ep.Addr())
		}
		// Answer where the datagram says it came from: the sender's
		// listen address, not its ephemeral port.
		if err := b.ep.Send(ctx, pk.From, "pong", pk.Payload); err != nil {
			t.Fatal(err)
		}
	}
	if pk := recv(t, gossip); len(pk.Payload) != 0 || pk.From != a.ep.Addr() {
		t.Fatalf("gossip: got %q from %s", pk.Payload, pk.From)
	}
	for i := range 3 {
		if pk := recv(t, pongs); string(pk.Payload) != fmt.Sprintf("ping %d", i) || pk.From != b.ep.Addr() {
			t.Fatalf("pong: got %q from %s", pk.Payload, pk.From)
		}
	}
	empty(t, pings)
	empty(t, gossip)

	// The largest datagram goes through; one byte more is refused at once.
	big := make([]byte, network.MaxDatagram)
	rand.Read(big)
	if err := a.ep.Send(ctx, b.ep.Addr(), "gossip", big); err != nil {
		t.Fatal(err)
	}
	if pk := recv(t, gossip); !bytes.Equal(pk.Payload, big) {
		t.Fatalf("max-size datagram: got %d bytes", len(pk.Payload))
	}
	err := a.ep.Send(ctx, b.ep.Addr(), "gossip", make([]byte, network.MaxDatagram+1))
	if !errors.Is(err, network.ErrTooLarge) || !strings.Contains(err.Error(), b.ep.Addr()) {
		t.Fatalf("oversized datagram: %v", err)
	}
}

func TestStreamRoundTrip(t *testing.T) {
	noLeaks(t)
	var seen sync.Map // peer IDs b's Authorize was asked about
	a := start(t, nil)
	b := start(t, func(id string, pub ed25519.PublicKey) error {
		if identity.IDOf(pub) != id {
			return fmt.Errorf("ID %s does not match its key", id)
		}
		seen.Store(id, true)
		return nil
	})
	bulk := open(t, b.ep, "bulk")

	const size = 8 << 20
	fromA, fromB := make([]byte, size), make([]byte, size)
	rand.Read(fromA)
	rand.Read(fromB)

	// b echoes nothing: it writes its own data while reading a's, so both
	// directions are full at once.
	type result struct {
		sum    [32]byte
		remote string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		c, err := bulk.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		werr := make(chan error, 1)
		go func() { _, err := c.Write(fromB); werr <- err }()
		got, err := io.ReadAll(io.LimitReader(c, size))
		if err == nil {
			err = <-werr
		}
		done <- result{sum: sha256.Sum256(got), remote: c.RemoteAddr().String(), err: err}
	}()

	c, err := a.ep.Dial(context.Background(), b.ep.Addr(), "bulk")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	werr := make(chan error, 1)
	go func() { _, err := c.Write(fromA); werr <- err }()
	got, err := io.ReadAll(io.LimitReader(c, size))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fromB) {
		t.Fatal("a read something else than b wrote")
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.sum != sha256.Sum256(fromA) {
		t.Fatal("b read something else than a wrote")
	}
	if r.remote != a.ep.Addr() {
		t.Errorf("accepted stream's RemoteAddr %s, want a's listen address %s", r.remote, a.ep.Addr())
	}
	if _, ok := seen.Load(a.id.ID()); !ok {
		t.Errorf("b's Authorize was not asked about a (%s)", a.id.ID())
	}
}

func TestRefused(t *testing.T) {
	noLeaks(t)
	a, b := start(t, nil), start(t, nil)
	ctx := context.Background()
	_, err := a.ep.Dial(ctx, b.ep.Addr(), "nobody")
	if !errors.Is(err, network.ErrRefused) || !strings.Contains(err.Error(), b.ep.Addr()+"/nobody") {
		t.Fatalf("dial to a service nobody opened: %v", err)
	}
	// A closed port refuses too, and its name is free again.
	p := open(t, b.ep, "svc")
	p.Close()
	if _, err := a.ep.Dial(ctx, b.ep.Addr(), "svc"); !errors.Is(err, network.ErrRefused) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	open(t, b.ep, "svc")
}

func TestAuthorizeRejects(t *testing.T) {
	noLeaks(t)
	ctx := context.Background()
	stranger := start(t, nil)
	strict := start(t, func(id string, _ ed25519.PublicKey) error {
		if id == stranger.id.ID() {
			return errors.New("not a member of group friends")
		}
		return nil
	})
	p := open(t, strict.ep, "svc")
	refusals := func() int { return strings.Count(strict.log.String(), "refused a peer's key") }

	t.Run("the acceptor refuses the dialler", func(t *testing.T) {
		_, err := stranger.ep.Dial(ctx, strict.ep.Addr(), "svc")
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), stranger.id.ID()) {
			t.Fatalf("dial from a refused key: %v", err)
		}
		waitFor(t, "the refusal in the acceptor's log", strict.log, func() bool { return refusals() >= 1 })
		for _, want := range []string{"not a member of group friends", stranger.id.ID()} {
			if !strings.Contains(strict.log.String(), want) {
				t.Errorf("acceptor's log does not say %q:\n%s", want, strict.log.String())
			}
		}

		// A datagram from the refused key is never read: its carrier is
		// refused at the handshake, before any frame.
		if err := stranger.ep.Send(ctx, strict.ep.Addr(), "svc", []byte("let me in")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the carrier's refusal", strict.log, func() bool { return refusals() >= 2 })
		waitFor(t, "the sender to log the loss", stranger.log, func() bool {
			return strings.Contains(stranger.log.String(), "datagrams lost")
		})
		empty(t, p)
	})

	t.Run("the dialler refuses the acceptor", func(t *testing.T) {
		_, err := strict.ep.Dial(ctx, stranger.ep.Addr(), "svc")
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("dial to a refused key: %v", err)
		}
		for _, want := range []string{"not a member of group friends", stranger.id.ID(), stranger.ep.Addr()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
}

func TestUnreachable(t *testing.T) {
	noLeaks(t)
	a := start(t, nil)
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	_, err = a.ep.Dial(context.Background(), dead, "svc")
	if !errors.Is(err, network.ErrUnreachable) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("dial to %s: %v", dead, err)
	}
	// Send does not wait for the network: the loss shows only in the log.
	if err := a.ep.Send(context.Background(), dead, "svc", []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the loss in the log", a.log, func() bool { return strings.Contains(a.log.String(), "datagrams lost") })

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.ep.Dial(ctx, dead, "svc"); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with a cancelled context: %v", err)
	}
}

// A listener that accepts TCP but never answers the handshake: the dial
// gives up after DialTimeout and calls the node unreachable.
func TestDialTimeout(t *testing.T) {
	noLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Identity: id, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if _, err := ep.Dial(context.Background(), ln.Addr().String(), "svc"); !errors.Is(err, network.ErrUnreachable) {
		t.Fatalf("dial to a silent listener: %v", err)
	}
}

func TestClose(t *testing.T) {
	noLeaks(t)
	ctx := context.Background()
	a, b := start(t, nil), start(t, nil)
	p := open(t, b.ep, "svc")
	if _, err := b.ep.Open("svc"); !errors.Is(err, network.ErrServiceTaken) {
		t.Fatalf("second Open: %v", err)
	}

	// A live stream and a live carrier, both broken by b's Close.
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := p.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := a.ep.Dial(ctx, b.ep.Addr(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted
	if err := a.ep.Send(ctx, b.ep.Addr(), "svc", []byte("x")); err != nil {
		t.Fatal(err)
	}
	recv(t, p)
	acceptErr := make(chan error, 1)
	go func() { _, err := p.Accept(); acceptErr <- err }()

	if err := b.ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.ep.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := <-acceptErr; !errors.Is(err, network.ErrClosed) {
		t.Fatalf("Accept blocked across Close: %v", err)
	}
	if _, ok := <-p.Packets(); ok {
		t.Fatal("Packets still open after Close")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("stream survived the remote's Close")
	}
	if err := b.ep.Send(ctx, a.ep.Addr(), "svc", nil); !errors.Is(err, network.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if _, err := b.ep.Dial(ctx, a.ep.Addr(), "svc"); !errors.Is(err, network.ErrClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
	if _, err := b.ep.Open("other"); !errors.Is(err, network.ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
	if _, err := a.ep.Dial(ctx, b.ep.Addr(), "svc"); !errors.Is(err, network.ErrUnreachable) {
		t.Fatalf("Dial to a closed endpoint: %v", err)
	}
}

func TestConcurrentSenders(t *testing.T) {
	noLeaks(t)
	const senders, each = 50, 20
	ctx := context.Background()
	rx := start(t, nil)
	p := open(t, rx.ep, "svc")

	t.Run("50 nodes", func(t *testing.T) {
		nodes := make([]node, senders)
		for i := range nodes {
			nodes[i] = start(t, nil)
		}
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() {
				for j := range each {
					if err := n.ep.Send(ctx, rx.ep.Addr(), "svc", fmt.Appendf(nil, "%d", j)); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		got := map[string]int{}
		for range senders * each {
			pk := recv(t, p)
			// Each carrier keeps its sender's order.
			if want := fmt.Sprint(got[pk.From]); string(pk.Payload) != want {
				t.Fatalf("from %s: got %q, want %q", pk.From, pk.Payload, want)
			}
			got[pk.From]++
		}
		for _, n := range nodes {
			if got[n.ep.Addr()] != each {
				t.Errorf("%s: %d datagrams arrived, want %d", n.ep.Addr(), got[n.ep.Addr()], each)
			}
		}
	})

	t.Run("50 goroutines on one node", func(t *testing.T) {
		tx := start(t, nil)
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				for range each {
					if err := tx.ep.Send(ctx, rx.ep.Addr(), "svc", []byte("x")); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		for range senders * each {
			if pk := recv(t, p); pk.From != tx.ep.Addr() {
				t.Fatalf("datagram from %s", pk.From)
			}
		}
		empty(t, p)
	})
}

func TestConfig(t *testing.T) {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no identity", Config{}, "Identity is nil"},
		{"short key", Config{Identity: &identity.Identity{Key: ed25519.PrivateKey{1}}}, "has 1 bytes"},
		{"negative timeout", Config{Identity: id, DialTimeout: -time.Second}, "DialTimeout -1s"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v, want it to say %q", c.name, err, c.want)
		}
		if _, err := New(c.cfg); err == nil {
			t.Errorf("%s: New accepted the config", c.name)
		}
	}
	cfg := Config{Identity: id}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DialTimeout != 0 || cfg.Logger != nil {
		t.Error("New changed the caller's Config")
	}
}
