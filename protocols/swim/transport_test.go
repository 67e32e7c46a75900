package swim

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/memnet"
)

func TestEndpointTransport(t *testing.T) {
	n := memnet.New(1)
	ea, _ := n.Listen("10.0.0.1:7946")
	eb, _ := n.Listen("10.0.0.2:7946")
	a, err := NewEndpointTransport(ea, "swim/c")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	b, err := NewEndpointTransport(eb, "swim/c")
	if err != nil {
		t.Fatal(err)
	}

	ip, port, err := a.FinalAdvertiseAddr("192.0.2.1", 1)
	if err != nil || !ip.Equal(net.ParseIP("10.0.0.1")) || port != 7946 {
		t.Errorf("FinalAdvertiseAddr = %v, %d, %v; want the endpoint's 10.0.0.1, 7946", ip, port, err)
	}

	// Datagrams.
	if _, err := a.WriteToAddress([]byte("ping"), memberlist.Address{Addr: "10.0.0.2:7946", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-b.PacketCh():
		if string(p.Buf) != "ping" || p.From.String() != "10.0.0.1:7946" || p.Timestamp.IsZero() {
			t.Errorf("packet = %q from %v at %v", p.Buf, p.From, p.Timestamp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet")
	}

	// Streams.
	go func() {
		c, err := a.DialAddressTimeout(memberlist.Address{Addr: "10.0.0.2:7946"}, time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		c.Write([]byte("hello"))
		c.Close()
	}()
	select {
	case c := <-b.StreamCh():
		got, _ := io.ReadAll(c)
		if string(got) != "hello" || c.RemoteAddr().String() != "10.0.0.1:7946" {
			t.Errorf("stream read %q from %v", got, c.RemoteAddr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no stream")
	}

	// Errors carry the layer and the Network's sentinel.
	_, err = a.DialTimeout("10.0.0.9:7946", time.Second)
	if !errors.Is(err, network.ErrUnreachable) {
		t.Errorf("dial nowhere = %v, want ErrUnreachable", err)
	}

	// Shutdown releases the service (another run may claim it) and is
	// idempotent.
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	p, err := eb.Open("swim/c")
	if err != nil {
		t.Fatalf("service still held after Shutdown: %v", err)
	}
	p.Close()
	if _, err := b.DialTimeout("10.0.0.1:7946", time.Second); err == nil {
		t.Error("dial after Shutdown succeeded")
	}
}

// A crash closes the endpoint under the transport: its goroutines end
// and Shutdown still returns.
func TestEndpointTransportCrash(t *testing.T) {
	n := memnet.New(1)
	ep, _ := n.Listen("10.0.0.1:7946")
	tr, err := NewEndpointTransport(ep, "swim/c")
	if err != nil {
		t.Fatal(err)
	}
	n.Crash("10.0.0.1:7946")
	if _, err := tr.WriteTo([]byte("x"), "10.0.0.2:7946"); !errors.Is(err, network.ErrClosed) {
		t.Errorf("send after crash = %v, want ErrClosed", err)
	}
	done := make(chan error)
	go func() { done <- tr.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown hangs after a crash")
	}
}

func TestEndpointTransportAddress(t *testing.T) {
	for _, a := range []string{"node-a:7946", "10.0.0.1", "10.0.0.1:http", "10.0.0.1:70000", "0.0.0.0:7946", "[::]:7946"} {
		ep, _ := memnet.New(1).Listen(a)
		if _, err := NewEndpointTransport(ep, "swim/c"); err == nil {
			t.Errorf("endpoint %q accepted", a)
		}
	}
	ep, _ := memnet.New(1).Listen("[fd00::1]:7946")
	tr, err := NewEndpointTransport(ep, "swim/c")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown()
	ip, port, _ := tr.FinalAdvertiseAddr("", 0)
	if !ip.Equal(net.ParseIP("fd00::1")) || port != 7946 {
		t.Errorf("IPv6 endpoint advertised as %v %d", ip, port)
	}
}
