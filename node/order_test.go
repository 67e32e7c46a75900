package node

import (
	"slices"
	"testing"

	"github.com/rime-dev/rime/engine"
)

// The plan lists a confidential class's layers by kind, "security" above
// replication and storage; the node places the encryption layer as low
// as its requirements allow, so the replica, which keeps and sends the
// class's data, finds it below itself.
func TestEncryptionIsPlacedBelowWhatKeepsData(t *testing.T) {
	cp := engine.ClassPlan{Name: "messages", Stack: []engine.Layer{
		{Protocol: "hub-relay", Provides: []string{"transport"}},
		{Protocol: "swim", Provides: []string{"membership"}, Requires: []string{"transport"}},
		{Protocol: "causal-broadcast", Provides: []string{"broadcast"}, Requires: []string{"membership"}},
		{Protocol: "crdt-replication", Provides: []string{"local-replica"}, Requires: []string{"broadcast", "store"}},
		{Protocol: "durable-storage", Provides: []string{"store"}},
		{Protocol: "e2e-encryption", Provides: []string{"encryption"}, Requires: []string{"membership"}},
		{Protocol: "convergent-channel", Provides: []string{"channel"}, Requires: []string{"local-replica"}},
	}}
	order, err := dependencyOrder(cp)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range order {
		got = append(got, l.Protocol)
	}
	want := []string{"hub-relay", "swim", "e2e-encryption", "causal-broadcast", "durable-storage", "crdt-replication", "convergent-channel"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	// A stack without encryption keeps the plan's order where it can.
	cp.Stack = slices.Delete(cp.Stack, 5, 6)
	order, _ = dependencyOrder(cp)
	got = got[:0]
	for _, l := range order {
		got = append(got, l.Protocol)
	}
	want = []string{"hub-relay", "swim", "causal-broadcast", "durable-storage", "crdt-replication", "convergent-channel"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}
