package bench

// BenchmarkE2ESealing: the cost of end-to-end encryption on the
// convergent stack. Three nodes (two members given keys, one node given
// none, as an honest-but-curious relay) run the class once with the
// e2e-encryption layer and once without, in the same run; node 0 writes
// updates of 100 bytes from 8 goroutines and the clock stops when every
// member's channel shows them all. It reports the time per update of
// each (plain_us, sealed_us) and their ratio (sealed_x_plain), and the
// bytes sent on the replication and broadcast services per update
// (plain_B, sealed_B, bytes_x_plain: the header, nonce and tag, and the
// sealed log's framing). It prints and never asserts. Run it with
//
//	go test ./bench/ -run '^$' -bench E2ESealing -benchtime 1x

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/e2eencryption"
)

// e2ePlan is convergentPlan, with the encryption layer if sealed.
func e2ePlan(sealed bool) *engine.Plan {
	p := convergentPlan()
	if sealed {
		cp := &p.Classes[0]
		cp.Stack = append(cp.Stack[:len(cp.Stack)-1:len(cp.Stack)-1],
			engine.Layer{Layer: "security", Protocol: e2eencryption.Name, Implemented: true, Provides: []string{"encryption"}, Requires: []string{"membership"}},
			p.Classes[0].Stack[len(p.Classes[0].Stack)-1])
	}
	return p
}

// e2eRun writes updates at node 0 and returns the time until both
// members show them, and the bytes sent on the class's services.
func e2eRun(ctx context.Context, b *testing.B, sealed bool, updates int) (time.Duration, int64) {
	s := &sentBytes{by: map[[2]string]int64{}}
	reg := convergentRegistry(b, s)
	net := memnet.New(5)
	dir := b.TempDir()
	key := e2eencryption.NewStaticKeys()
	if err := key.Add(1, bytes.Repeat([]byte{9}, 32)); err != nil {
		b.Fatal(err)
	}
	var nodes []*node.Node
	for i := range 3 {
		cfg := node.Config{Plan: e2ePlan(sealed), Group: "bench", GroupSecret: []byte("bench-e2e-group-secret-012345678"), NodeClass: "device",
			DataDir: filepath.Join(dir, fmt.Sprint(i)), Network: net, Listen: fmt.Sprintf("10.9.0.%d:7000", i+1), Registry: reg}
		if i > 0 {
			cfg.Join = []string{"10.9.0.1:7000"}
		}
		if i < 2 {
			cfg.Keys = key
		}
		n, err := node.Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		m, _ := node.Layer[protocols.Membership](n, convClass)
		ev, cancel := m.Subscribe()
		for aliveCount(m) < len(nodes) {
			select {
			case <-ev:
			case <-ctx.Done():
				b.Fatal("membership did not form")
			}
		}
		cancel()
	}
	var fs []*follower
	for _, n := range nodes[:2] {
		ch, err := n.Channel(convClass)
		if err != nil {
			b.Fatal(err)
		}
		f := follow(ctx, b, ch)
		defer f.sess.Disconnect()
		f.waitLen(ctx, b, 0)
		fs = append(fs, f)
	}
	s.reset()
	start := time.Now()
	fs[0].submitMany(ctx, b, updates)
	for _, f := range fs {
		f.waitLen(ctx, b, updates)
	}
	took := time.Since(start)
	var sent int64
	for i := range nodes {
		sent += s.to(fmt.Sprintf("10.9.0.%d:7000", i+1), "crdt/"+convClass, "causal/"+convClass)
	}
	return took, sent
}

func BenchmarkE2ESealing(b *testing.B) {
	const updates = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for b.Loop() {
		plain, plainB := e2eRun(ctx, b, false, updates)
		sealed, sealedB := e2eRun(ctx, b, true, updates)
		pu := float64(plain.Microseconds()) / updates
		su := float64(sealed.Microseconds()) / updates
		b.ReportMetric(pu, "plain_us")
		b.ReportMetric(su, "sealed_us")
		b.ReportMetric(su/pu, "sealed_x_plain")
		b.ReportMetric(float64(plainB)/updates, "plain_B")
		b.ReportMetric(float64(sealedB)/updates, "sealed_B")
		b.ReportMetric(float64(sealedB)/float64(plainB), "bytes_x_plain")
	}
}
