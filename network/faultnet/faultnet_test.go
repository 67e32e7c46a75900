package faultnet

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/memnet"
)

func pair(t *testing.T, f Faults) (a, b network.Endpoint, n *Network) {
	t.Helper()
	n = Wrap(memnet.New(1), 42)
	if err := n.Set(f); err != nil {
		t.Fatal(err)
	}
	var err error
	if a, err = n.Listen("a:1"); err != nil {
		t.Fatal(err)
	}
	if b, err = n.Listen("b:1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, n
}

// count sends n datagrams from a to b and counts, once they have all
// had their chance (a final datagram sent with the faults lifted is the
// marker), how many arrived.
func count(t *testing.T, a, b network.Endpoint, fn *Network, sent int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := b.Open("s")
	if err != nil {
		t.Fatal(err)
	}
	for range sent {
		if err := a.Send(ctx, "b:1", "s", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	fn.Set(Faults{})
	a.Send(ctx, "b:1", "s", []byte("end"))
	got := 0
	for {
		select {
		case pk := <-p.Packets():
			if string(pk.Payload) == "end" {
				return got
			}
			got++
		case <-ctx.Done():
			t.Fatalf("the marker never arrived (%d datagrams did)", got)
		}
	}
}

func TestLossDropsAboutItsShare(t *testing.T) {
	a, b, n := pair(t, Faults{Loss: 0.5})
	if got := count(t, a, b, n, 400); got < 120 || got > 280 {
		t.Fatalf("%d of 400 datagrams arrived with loss 0.5", got)
	}
}

func TestDuplicateSendsTwice(t *testing.T) {
	a, b, n := pair(t, Faults{Duplicate: 1})
	if got := count(t, a, b, n, 50); got != 100 {
		t.Fatalf("%d datagrams arrived for 50 sent with duplicate 1, want 100", got)
	}
}

func TestNoFaultsChangeNothing(t *testing.T) {
	a, b, n := pair(t, Faults{})
	if got := count(t, a, b, n, 50); got != 50 {
		t.Fatalf("%d of 50 datagrams arrived with no faults", got)
	}
}

// A delayed, jittered stream arrives whole, in order, and not before its
// delay.
func TestStreamDelayKeepsOrder(t *testing.T) {
	const delay = 30 * time.Millisecond
	a, b, _ := pair(t, Faults{Delay: delay, Jitter: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := b.Open("st")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		c, err := p.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		all, _ := io.ReadAll(c)
		got <- all
	}()
	c, err := a.Dial(ctx, "b:1", "st")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var want []byte
	for i := range 200 {
		chunk := []byte{byte(i), byte(i >> 8)}
		want = append(want, chunk...)
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < delay {
		t.Fatalf("the stream was written out %v after the first write, before its %v delay", took, delay)
	}
	select {
	case all := <-got:
		if string(all) != string(want) {
			t.Fatalf("stream arrived as %d bytes, want the %d written, in order", len(all), len(want))
		}
	case <-ctx.Done():
		t.Fatal("the stream never arrived")
	}
}

func TestFaultsValidate(t *testing.T) {
	for _, f := range []Faults{{Loss: -0.1}, {Loss: 1.5}, {Duplicate: 2}, {Delay: -1}, {Jitter: 2 * time.Minute}} {
		if f.Validate() == nil {
			t.Errorf("%+v: accepted", f)
		}
	}
}

func TestFaultsJSONRoundTrip(t *testing.T) {
	f := Faults{Loss: 0.05, Duplicate: 0.01, Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var got Faults
	if err := json.Unmarshal(b, &got); err != nil || got != f {
		t.Fatalf("%s read back as %+v, %v", b, got, err)
	}
	for _, bad := range []string{`{"loss":2}`, `{"delay":"soon"}`, `{"lost":0.1}`} {
		if json.Unmarshal([]byte(bad), &got) == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
