package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/checkpointedchannel"
	"github.com/rime-dev/rime/protocols/durablestorage"
	"github.com/rime-dev/rime/protocols/raft"
	"github.com/rime-dev/rime/protocols/swim"
	"github.com/rime-dev/rime/protocols/tcpmtls"
	"github.com/rime-dev/rime/spec"
	"github.com/rime-dev/rime/verify"
	"github.com/rime-dev/rime/verify/sim"
)

// consensusPlan is what rime plans for a linearizable, durable class
// available on the majority side (see the collabdoc example's document).
func consensusPlan() *engine.Plan {
	return &engine.Plan{App: "verified", Group: "testers", Classes: []engine.ClassPlan{{
		Name: "doc", Satisfiable: true,
		Guarantees: engine.DataGuarantees{Consistency: "linearizable", Durability: 1, Available: "majority"},
		Stack: []engine.Layer{
			{Layer: "transport", Protocol: tcpmtls.Name, Implemented: true, Provides: []string{"transport"}},
			{Layer: "membership", Protocol: swim.Name, Implemented: true, Provides: []string{"membership"}, Requires: []string{"transport"}},
			{Layer: "consensus", Protocol: raft.Name, Implemented: true, Params: map[string]any{"replicas": float64(3)},
				Provides: []string{"log"}, Requires: []string{"membership", "store"}, Hosts: []string{"server"}},
			{Layer: "storage", Protocol: durablestorage.Name, Implemented: true, Provides: []string{"store"}},
			{Layer: "channel", Protocol: checkpointedchannel.Name, Implemented: true, Provides: []string{"channel"}, Requires: []string{"log"}},
		},
	}}}
}

// app: servers with durable disks, partitions and crash-recovery.
func app() *spec.App {
	return &spec.App{Name: "verified", Group: "testers", Env: spec.Environment{
		Partitions: true, Latency: "lan", Failures: "crash-recovery",
		Nodes: []spec.NodeClass{{Name: "server", Count: 3, Storage: "durable", Connectivity: "always"}},
	}}
}

// The seed's schedule has partitions and crashes, so a stale read has
// every chance to show (and with any seed, a follower behind the leader
// serves one now and then).
const seed = 3

func run(t *testing.T, reg *protocols.Registry) *verify.ClassReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := verify.Run(ctx, verify.Config{App: app(), Plan: consensusPlan(), Class: "doc", Schedules: 1, Seed: seed,
		Duration: 6 * time.Second, OutDir: t.TempDir(), Registry: reg, Progress: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d operations; checked %v; faults %v", rep.Ops, rep.Checked, rep.Faults)
	return rep
}

// The consensus stack keeps every promise under the environment's faults.
func TestConsensusStackKeepsItsPromises(t *testing.T) {
	rep := run(t, nil)
	if !rep.OK {
		t.Fatalf("violations: %+v", rep.Violations)
	}
	if rep.Ops < 100 {
		t.Fatalf("only %d operations: the workload did not run", rep.Ops)
	}
}

// staleReads is a deliberately broken log: reads are served from the
// replica's own state, without Raft's ReadIndex, so a follower behind the
// leader (or cut off from it) answers with an old prefix.
type staleReads struct{ *raft.Raft }

func (s staleReads) ReadIndex(context.Context) (uint64, error) { return s.Raft.Applied(), nil }

// verify catches the broken log: its reads are not linearizable.
func TestVerifyCatchesReadsWithoutReadIndex(t *testing.T) {
	m := raft.NewModule(sim.FastRaftConfig())
	broken := protocols.Module{Name: m.Name, Provides: m.Provides, New: func() protocols.Instance {
		return staleReads{m.New().(*raft.Raft)}
	}}
	rep := run(t, sim.FastRegistry(broken))
	if rep.OK {
		t.Fatal("verify passed a log that serves reads without a read index")
	}
	for _, v := range rep.Violations {
		t.Logf("caught: %s: %s", v.Check, v.Explain)
		if v.Check == verify.CheckLinearizable {
			return
		}
	}
	t.Fatalf("no linearizability violation among %+v", rep.Violations)
}
