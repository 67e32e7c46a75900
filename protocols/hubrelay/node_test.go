package hubrelay_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	eb "github.com/rime-dev/rime/protocols/epidemicbroadcast"
	"github.com/rime-dev/rime/protocols/hubrelay"
	"github.com/rime-dev/rime/protocols/swim"
)

// relayPlan is the stack rime plans for teamchat's eventual classes on
// laptops behind NAT (compare `rime plan examples/teamchat`), cut at the
// broadcast layer: hub-relay, swim, epidemic broadcast.
func relayPlan() *engine.Plan {
	return &engine.Plan{App: "teamchat", Group: "team", Classes: []engine.ClassPlan{{
		Name: "messages", Satisfiable: true,
		Stack: []engine.Layer{
			{Layer: "transport", Protocol: hubrelay.Name, Implemented: true, Params: map[string]any{"relays": float64(1)}, Provides: []string{"transport"}},
			{Layer: "membership", Protocol: swim.Name, Implemented: true, Provides: []string{"membership"}, Requires: []string{"transport"}},
			{Layer: "broadcast", Protocol: eb.Name, Implemented: true, Params: map[string]any{"fanout": float64(2)},
				Provides: []string{"broadcast"}, Requires: []string{"transport", "membership"}},
		},
	}}}
}

// Two nodes started by package node from a plan, given the relayer in
// node.Config: the stack comes up over the relay, and the nodes, cut off
// from each other, see each other and deliver each other's broadcasts.
func TestNodeOverRelay(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	addrs := h.addrs()
	reg := protocols.NewRegistry()
	reg.MustRegister(hubrelay.NewModule(testConfig()))
	reg.MustRegister(swim.NewModule(swimConfig()))
	reg.MustRegister(eb.NewModule(broadcastConfig()))

	var ms [2]*member
	var dirs [2]string
	for i, name := range []string{"alice", "bob"} {
		// The node keeps its key in DataDir/identity: made first, so that
		// the hub knows the node before it starts.
		dirs[i] = t.TempDir()
		id, err := identity.LoadOrCreate(filepath.Join(dirs[i], "identity"))
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = h.newMemberWith(ctx, name, rotate(addrs, i), id)
	}
	h.group(ctx, "team", ms[0], ms[1])
	// Each node's own endpoint and its hub client's, apart from the other's.
	h.net.Partition([]string{ms[0].ep.Addr(), "10.3.0.1:1"}, []string{ms[1].ep.Addr(), "10.3.0.2:1"})

	var sn [2]*stackNode
	for i, m := range ms {
		var join []string
		if i > 0 {
			join = []string{ms[0].addr}
		}
		n, err := node.Start(ctx, node.Config{
			Plan: relayPlan(), Group: "team", GroupSecret: secret(), NodeClass: "laptop", DataDir: dirs[i],
			Network: h.net, Listen: fmt.Sprintf("10.3.0.%d:1", i+1), Join: join, Registry: reg, Relayer: m.relayer,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if n.ID() != m.id.ID() {
			t.Fatalf("node %s started as %s, not with its key", m.name, n.ID())
		}
		tr, _ := node.Layer[*hubrelay.Transport](n, "messages")
		sw, _ := node.Layer[protocols.Membership](n, "messages")
		b, _ := node.Layer[protocols.Broadcast](n, "messages")
		sn[i] = h.watch(&stackNode{member: m, tr: tr, sw: sw, b: b})
	}
	h.alive(ctx, sn[0], sn[1])
	h.broadcastBoth(ctx, sn[0], sn[1], "via node")
}
