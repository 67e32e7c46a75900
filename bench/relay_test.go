package bench

// The hub-relay transport against the direct paths it stands in for, in
// one run: datagram round-trip latency and stream throughput between two
// members, through the relay of three in-process hub replicas (memnet,
// the members attached to different replicas, so each frame crosses two
// replicas), directly over memnet, and directly over tlsnet on loopback
// TCP. Printed as ratios relay/direct; nothing is asserted. Run with
//
//	go test ./bench/ -run '^$' -bench RelayReport -benchtime 1x
//
// Datagrams: relayPings sequential pings, each echoed by the peer; the
// median and 99th percentile round trip. Streams: relayBytes written in
// 64 KiB chunks on one stream and acknowledged by the reader once all
// arrived; MB/s. memnet delays nothing here, so the memnet column is the
// cost of the software path alone, and the ratio is what the relay
// (three hops through hub goroutines, QUIC, TLS and the seal) adds.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/tlsnet"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/hubrelay"
)

const (
	relayPings = 300
	relayBytes = 32 << 20
	relayChunk = 64 << 10
)

// relayPath is one way for two nodes to talk: each one's endpoint and
// the address the other reaches it at.
type relayPath struct {
	name   string
	a, b   network.Endpoint
	toB    string
	closer func()
}

func relayPaths(b *testing.B) []relayPath {
	b.Helper()
	quietDragonboat()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startHub(b, hub.Builtin{})
	var ids [2]*identity.Identity
	var eps [2]network.Endpoint
	var relayers [2]protocols.Relayer
	var clients []*hub.Client
	for i := range 2 {
		ep, err := c.net.Listen(fmt.Sprintf("10.7.0.%d:1", i+1))
		if err != nil {
			b.Fatal(err)
		}
		id, _ := identity.Generate()
		// Different first replicas: frames cross between replicas.
		hubs := append(slices.Clone(c.addrs[i:]), c.addrs[:i]...)
		cl, err := hub.NewClient(hub.ClientConfig{Identity: id, Endpoint: ep, Hubs: hubs, Timeout: 30 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if err := cl.Register(ctx, hub.RegisterArgs{Class: "laptop", Reachability: "nat"}); err != nil {
			b.Fatal(err)
		}
		rc, _ := hub.NewClient(hub.ClientConfig{Identity: id, Endpoint: ep, Hubs: hubs, Timeout: 30 * time.Second})
		ids[i], eps[i], relayers[i] = id, ep, rc.Relayer()
		clients = append(clients, cl, rc)
	}
	if err := clients[0].CreateGroup(ctx, "team"); err != nil {
		b.Fatal(err)
	}
	if _, err := clients[0].Invite(ctx, "team", ids[1].Public()); err != nil {
		b.Fatal(err)
	}
	if _, err := clients[2].Accept(ctx, "team"); err != nil {
		b.Fatal(err)
	}
	// Every replica applied the join before the relay is used: a read
	// through each returns only once it has.
	for _, a := range c.addrs {
		cl, _ := hub.NewClient(hub.ClientConfig{Identity: ids[0], Endpoint: eps[0], Hubs: []string{a}})
		if g, err := cl.Group(ctx, "team"); err != nil || len(g.Members) != 2 {
			b.Fatalf("group at %s: %+v %v", a, g, err)
		}
		cl.Close()
	}
	var trs [2]*hubrelay.Transport
	for i := range 2 {
		trs[i] = hubrelay.New(hubrelay.DefaultConfig())
		env := &protocols.Env{
			Node: protocols.Node{ID: ids[i].ID(), NodeClass: "laptop", Key: ids[i].Key}, App: "bench", Group: "team",
			Class: "bench", GroupSecret: bytes.Repeat([]byte{3}, 32), Relayer: relayers[i],
		}
		if err := trs[i].Provision(env); err != nil {
			b.Fatal(err)
		}
		if err := trs[i].Start(ctx); err != nil {
			b.Fatal(err)
		}
	}
	rb, _ := hubrelay.Addr(ids[1].ID())

	// Direct tlsnet on loopback, with the same identities.
	var tls [2]network.Endpoint
	for i := range 2 {
		n, err := tlsnet.New(tlsnet.Config{Identity: ids[i]})
		if err != nil {
			b.Fatal(err)
		}
		if tls[i], err = n.Listen("127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
	}
	return []relayPath{
		{name: "relay", a: trs[0].Endpoint(), b: trs[1].Endpoint(), toB: rb, closer: func() {
			trs[0].Close()
			trs[1].Close()
			for _, cl := range clients {
				cl.Close()
			}
			eps[0].Close()
			eps[1].Close()
			c.close()
		}},
		{name: "memnet", a: eps[0], b: eps[1], toB: eps[1].Addr()},
		{name: "tlsnet", a: tls[0], b: tls[1], toB: tls[1].Addr(), closer: func() { tls[0].Close(); tls[1].Close() }},
	}
}

// pings returns the sorted round trips of relayPings datagrams a -> b -> a.
func pings(b *testing.B, p relayPath) []time.Duration {
	b.Helper()
	pa, err := p.a.Open("bench/ping")
	if err != nil {
		b.Fatal(err)
	}
	defer pa.Close()
	pb, err := p.b.Open("bench/ping")
	if err != nil {
		b.Fatal(err)
	}
	defer pb.Close()
	ctx := context.Background()
	go func() {
		for pk := range pb.Packets() {
			p.b.Send(ctx, pk.From, "bench/ping", pk.Payload)
		}
	}()
	var rtts []time.Duration
	msg := make([]byte, 64)
	for i := 0; len(rtts) < relayPings; i++ {
		if i > 3*relayPings {
			b.Fatalf("%s: only %d of %d pings answered", p.name, len(rtts), relayPings)
		}
		start := time.Now()
		if err := p.a.Send(ctx, p.toB, "bench/ping", msg); err != nil {
			b.Fatal(err)
		}
		t := time.NewTimer(time.Second)
		select {
		case <-pa.Packets():
			rtts = append(rtts, time.Since(start))
		case <-t.C: // lost: send another
		}
		t.Stop()
	}
	slices.Sort(rtts)
	return rtts
}

// throughput streams relayBytes from a to b and returns MB/s.
func throughput(b *testing.B, p relayPath) float64 {
	b.Helper()
	pb, err := p.b.Open("bench/sink")
	if err != nil {
		b.Fatal(err)
	}
	defer pb.Close()
	go func() {
		c, err := pb.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := io.CopyN(io.Discard, c, relayBytes); err == nil {
			c.Write([]byte{1})
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := p.a.Dial(ctx, p.toB, "bench/sink")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	chunk := make([]byte, relayChunk)
	start := time.Now()
	go func() {
		for sent := 0; sent < relayBytes; sent += relayChunk {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		b.Fatalf("%s: stream: %v", p.name, err)
	}
	return float64(relayBytes) / 1e6 / time.Since(start).Seconds()
}

func BenchmarkRelayReport(b *testing.B) {
	for b.Loop() {
		paths := relayPaths(b)
		type row struct {
			p50, p99 time.Duration
			mbs      float64
		}
		rows := map[string]row{}
		for _, p := range paths {
			rtts := pings(b, p)
			rows[p.name] = row{p50: rtts[len(rtts)/2], p99: rtts[len(rtts)*99/100], mbs: throughput(b, p)}
		}
		for _, p := range paths {
			if p.closer != nil {
				p.closer()
			}
		}
		var t strings.Builder
		fmt.Fprintf(&t, "%-8s %12s %12s %10s\n", "path", "rtt_p50", "rtt_p99", "MB/s")
		for _, p := range paths {
			r := rows[p.name]
			fmt.Fprintf(&t, "%-8s %12v %12v %10.1f\n", p.name, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.mbs)
		}
		relay := rows["relay"]
		for _, base := range []string{"memnet", "tlsnet"} {
			r := rows[base]
			fmt.Fprintf(&t, "relay/%s: rtt p50 x%.1f, p99 x%.1f, throughput x%.2f\n", base,
				float64(relay.p50)/float64(r.p50), float64(relay.p99)/float64(r.p99), relay.mbs/r.mbs)
			b.ReportMetric(float64(relay.p50)/float64(r.p50), "rtt_relay/"+base)
			b.ReportMetric(relay.mbs/r.mbs, "tput_relay/"+base)
		}
		fmt.Fprintf(&t, "(%d pings of 64 B, %d MiB in one stream; relay through 3 hub replicas on memnet, members on different replicas)\n", relayPings, relayBytes>>20)
		fmt.Print(t.String())
	}
}
