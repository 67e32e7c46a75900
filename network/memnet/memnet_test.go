package memnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rime-dev/rime/network"
)

func pair(t *testing.T, n *Network) (network.Endpoint, network.Endpoint, network.Port) {
	t.Helper()
	a, err := n.Listen("a:1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Listen("b:1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Open("svc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, p
}

func recv(t *testing.T, p network.Port, within time.Duration) (network.Packet, bool) {
	t.Helper()
	select {
	case pk, ok := <-p.Packets():
		return pk, ok
	case <-time.After(within):
		return network.Packet{}, false
	}
}

func TestDatagramsAndPartitions(t *testing.T) {
	n := New(1)
	a, _, p := pair(t, n)
	ctx := context.Background()
	a.Send(ctx, "b:1", "svc", []byte("hello"))
	if pk, ok := recv(t, p, time.Second); !ok || string(pk.Payload) != "hello" || pk.From != "a:1" {
		t.Fatalf("got %+v %v", pk, ok)
	}
	// A service nobody opened drops the datagram.
	a.Send(ctx, "b:1", "other", []byte("x"))
	if n.Stats().Dropped != 1 {
		t.Fatalf("stats %+v", n.Stats())
	}

	n.Partition([]string{"a:1"}, []string{"b:1"})
	a.Send(ctx, "b:1", "svc", []byte("cut"))
	if n.Stats().Cut != 1 {
		t.Fatalf("partition did not cut: %+v", n.Stats())
	}
	n.Heal()
	n.Block("a:1", "b:1")
	a.Send(ctx, "b:1", "svc", []byte("blocked"))
	if n.Stats().Cut != 2 {
		t.Fatalf("block did not cut: %+v", n.Stats())
	}
	// The other direction still works.
	pa, _ := a.Open("svc")
	bEp := n.nodes["b:1"]
	bEp.Send(ctx, "a:1", "svc", []byte("back"))
	if pk, ok := recv(t, pa, time.Second); !ok || string(pk.Payload) != "back" {
		t.Fatal("reverse direction of an asymmetric block was cut")
	}
	n.Heal()
	a.Send(ctx, "b:1", "svc", []byte("healed"))
	if pk, ok := recv(t, p, time.Second); !ok || string(pk.Payload) != "healed" {
		t.Fatal("heal did not restore the link")
	}
}

func TestLossDuplicationReorder(t *testing.T) {
	n := New(7)
	a, _, p := pair(t, n)
	n.SetLoss(0.3)
	n.SetDuplicate(0.2)
	n.SetReorder(0.2)
	const total = 1000
	for i := range total {
		a.Send(context.Background(), "b:1", "svc", []byte(fmt.Sprint(i)))
	}
	st := n.Stats()
	if st.Lost < 200 || st.Lost > 400 {
		t.Errorf("lost %d of %d at p=0.3", st.Lost, total)
	}
	if st.Duplicated < 80 || st.Reordered < 80 {
		t.Errorf("stats %+v", st)
	}
	want := total - st.Lost + st.Duplicated
	seen, outOfOrder, last := 0, 0, -1
	for seen < int(want) {
		pk, ok := recv(t, p, 2*time.Second)
		if !ok {
			t.Fatalf("received %d of %d", seen, want)
		}
		var i int
		fmt.Sscan(string(pk.Payload), &i)
		if i < last {
			outOfOrder++
		}
		last = i
		seen++
	}
	if outOfOrder == 0 {
		t.Error("reordering injected but nothing arrived out of order")
	}
}

func TestDelay(t *testing.T) {
	n := New(1)
	a, _, p := pair(t, n)
	n.SetDelay(20*time.Millisecond, 5*time.Millisecond)
	start := time.Now()
	a.Send(context.Background(), "b:1", "svc", []byte("late"))
	if _, ok := recv(t, p, time.Second); !ok {
		t.Fatal("delayed datagram never arrived")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("arrived after %v, before the injected delay", d)
	}
}

func TestStreamsBreakOnPartitionAndCrash(t *testing.T) {
	n := New(1)
	a, _, p := pair(t, n)
	ctx := context.Background()
	go func() {
		c, err := p.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c) // echo
	}()
	c, err := a.Dial(ctx, "b:1", "svc")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	n.Partition([]string{"a:1"}, []string{"b:1"})
	if _, err := c.Read(buf); err == nil {
		t.Fatal("stream survived a partition")
	}
	if _, err := a.Dial(ctx, "b:1", "svc"); !errors.Is(err, network.ErrUnreachable) {
		t.Fatalf("dial across a partition: %v", err)
	}
	n.Heal()
	if _, err := a.Dial(ctx, "b:1", "nobody"); !errors.Is(err, network.ErrRefused) {
		t.Fatalf("dial of an unopened service: %v", err)
	}

	// Crash, then restart at the same address.
	if !n.Crash("b:1") {
		t.Fatal("crash found no node")
	}
	if _, ok := <-p.Packets(); ok {
		t.Fatal("a crashed node's port still open")
	}
	if _, err := a.Dial(ctx, "b:1", "svc"); !errors.Is(err, network.ErrUnreachable) {
		t.Fatalf("dial of a crashed node: %v", err)
	}
	b2, err := n.Listen("b:1")
	if err != nil {
		t.Fatalf("restart at the same address: %v", err)
	}
	p2, _ := b2.Open("svc")
	a.Send(ctx, "b:1", "svc", []byte("again"))
	if pk, ok := recv(t, p2, time.Second); !ok || string(pk.Payload) != "again" {
		t.Fatal("restarted node unreachable")
	}
	if _, err := b2.Open("svc"); !errors.Is(err, network.ErrServiceTaken) {
		t.Fatalf("second open: %v", err)
	}
}
