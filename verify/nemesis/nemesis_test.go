package nemesis

import (
	"reflect"
	"testing"
	"time"

	"github.com/rime-dev/rime/spec"
)

func TestAdmitted(t *testing.T) {
	env := spec.Environment{Partitions: false, Latency: "lan", Failures: "crash-stop",
		Nodes: []spec.NodeClass{{Name: "s", Storage: "durable", Connectivity: "always"}}}
	f := Admitted(env)
	if f.Partitions || f.Restart || f.LoseDisk || f.WAN || f.Churn || !f.Crash || !f.Loss {
		t.Fatalf("lan, crash-stop, no partitions, durable, always connected: got %+v", f)
	}
	env = spec.Environment{Partitions: true, Latency: "wan", Failures: "byzantine",
		Nodes: []spec.NodeClass{{Name: "p", Storage: "volatile", Connectivity: "intermittent"}}}
	f = Admitted(env)
	if !f.Partitions || !f.Restart || !f.LoseDisk || !f.WAN || !f.Churn || len(f.NotInjected) != 1 {
		t.Fatalf("wan, byzantine, partitions, volatile, intermittent: got %+v", f)
	}
}

// Schedules are reproducible from their seed, use only admitted faults,
// stay within the limits, and end healed with every node back.
func TestGenerate(t *testing.T) {
	all := Faults{Partitions: true, Crash: true, Restart: true, LoseDisk: true, Loss: true, Duplicate: true, Reorder: true, WAN: true, Churn: true}
	lim := Limits{MaxDown: 1, MaxLostDisks: 1}
	kinds := map[Kind]bool{}
	for seed := range uint64(50) {
		a := Generate(all, 5, 20*time.Second, seed, lim)
		b := Generate(all, 5, 20*time.Second, seed, lim)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two different schedules", seed)
		}
		down, lost := map[int]bool{}, 0
		var last time.Duration
		for _, e := range a.Events {
			kinds[e.Kind] = true
			if e.At < last {
				t.Fatalf("seed %d: events out of order at %v", seed, e)
			}
			last = e.At
			switch e.Kind {
			case Crash:
				for _, i := range e.Nodes {
					down[i] = true
				}
				if len(down) > lim.MaxDown {
					t.Fatalf("seed %d: %d nodes down at once at %v", seed, len(down), e)
				}
			case Restart, LoseDisk:
				for _, i := range e.Nodes {
					if !down[i] {
						t.Fatalf("seed %d: restart of node %d, which is up, at %v", seed, i, e)
					}
					delete(down, i)
				}
				if e.Kind == LoseDisk {
					lost++
				}
			}
		}
		if len(down) > 0 || lost > lim.MaxLostDisks {
			t.Fatalf("seed %d: ends with %v down, %d disks lost", seed, down, lost)
		}
		n := len(a.Events)
		if n < 2 || a.Events[n-1].Kind == Crash {
			t.Fatalf("seed %d: does not end healed: %v", seed, a.Events[max(0, n-3):])
		}
	}
	for _, k := range []Kind{Partition, OneWay, Heal, Crash, Restart, LoseDisk, Loss, Duplicate, Reorder, Delay, Calm, Disconnect} {
		if !kinds[k] {
			t.Errorf("50 schedules never drew %s", k)
		}
	}
	none := Generate(Faults{Crash: true}, 3, 10*time.Second, 1, Limits{MaxDown: 1})
	for _, e := range none.Events {
		if e.Kind != Crash && e.Kind != Heal && e.Kind != Calm {
			t.Fatalf("crash-stop only, but drew %v", e)
		}
	}
}
