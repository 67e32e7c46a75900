package localcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/builtin"
	"github.com/rime-dev/rime/spec"
)

// planImplemented plans an example with the protocols this build
// implements, as `rime up` does.
func planImplemented(t *testing.T, file string) (*spec.App, *engine.Plan) {
	t.Helper()
	app, p, err := builtin.PlanImplemented(file)
	if err != nil {
		t.Fatal(err)
	}
	return app, p
}

// lockedBuffer is a decision log the test can read while the hub writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(l.b.Bytes()), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// With an embedded hub the nodes are enrolled in the app's group (one
// creates it, the others are invited and join, every decision logged),
// each class is placed on them through the policy, and the nodes, which
// now admit each other by the hub's member list, run the class.
func TestClusterWithEmbeddedHub(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	app, p := planImplemented(t, "../../examples/collabdoc/app.cue")
	const class = "document"
	log := &lockedBuffer{}
	cl, err := New(Config{
		Plan: p, Classes: []string{class}, Group: app.Group, NodeClasses: []string{"workstation", "workstation", "workstation"},
		DataDir: t.TempDir(), Hub: HubConfig{Replicas: 1, App: app, DecisionLog: log},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range cl.Nodes() {
		ids = append(ids, n.ID())
	}
	slices.Sort(ids)
	g, err := cl.HubClient(1).Group(ctx, app.Group)
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, m := range g.Members {
		members = append(members, m.ID)
		if m.Addr == "" {
			t.Errorf("member %s registered no address", m.ID)
		}
	}
	if !slices.Equal(members, ids) {
		t.Fatalf("group %s members %v, want the nodes %v", app.Group, members, ids)
	}
	if placed := g.Placement[class]; !slices.Equal(placed, ids) {
		t.Fatalf("class %s placed on %v, want %v", class, placed, ids)
	}
	actions := map[string]int{}
	for _, d := range log.lines() {
		in, _ := d["input"].(map[string]any)
		res, _ := d["result"].(map[string]any)
		if allow, _ := res["allow"].(bool); !allow {
			t.Errorf("denied during enrollment: %v", d)
		}
		a, _ := in["action"].(string)
		actions[a]++
	}
	if actions["invite"] != 2 || actions["join"] != 2 || actions["place"] != 3 {
		t.Fatalf("decision log actions %v, want 2 invites, 2 joins, 3 placements", actions)
	}

	// The nodes reach each other: an update submitted on the last node
	// arrives on the first.
	if err := cl.Ready(ctx, class); err != nil {
		t.Fatal(err)
	}
	first, err := cl.Nodes()[0].Channel(class)
	if err != nil {
		t.Fatal(err)
	}
	last, err := cl.Nodes()[2].Channel(class)
	if err != nil {
		t.Fatal(err)
	}
	watch, err := first.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Disconnect()
	s, err := last.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Disconnect()
	if err := s.Submit(ctx, []byte("through the hub's members")); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev, ok := <-watch.Events():
			if !ok {
				t.Fatalf("the first node's session ended: %v", watch.Err())
			}
			if ev.Kind == protocols.Update && string(ev.Data) == "through the hub's members" {
				return
			}
		case <-ctx.Done():
			t.Fatal("the update never reached the first node")
		}
	}
}
