// Package nemesis decides which faults an app's environment admits and
// draws reproducible schedules of them: the adversary of `rime verify`.
//
// It is pure: Admitted reads the environment, Generate turns admitted
// faults, a node count, a duration and a seed into a Schedule, and the
// same inputs always give the same schedule. Run plays a schedule
// against a Target (the in-process network and its nodes, or network
// namespaces), which is the only part that touches the world.
package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rime-dev/rime/spec"
)

// Faults are the faults an environment admits. rime verify injects all
// of them and no other: a fault the app said cannot happen would only
// find violations of promises that were never made.
type Faults struct {
	// Partitions: network.partitions. Majority/minority splits, isolated
	// nodes and one-way (asymmetric) cuts.
	Partitions bool `json:"partitions"`
	// Crash: a node stops (every failure model admits it).
	Crash bool `json:"crash"`
	// Restart: crash-recovery; a crashed node comes back with its disk.
	Restart bool `json:"restart"`
	// LoseDisk: some node class keeps its data on volatile storage, so a
	// node may come back with an empty disk (a new identity).
	LoseDisk bool `json:"lose_disk"`
	// Loss, Duplicate, Reorder: an asynchronous network's message faults,
	// admitted everywhere but "local" latency.
	Loss      bool `json:"loss"`
	Duplicate bool `json:"duplicate"`
	Reorder   bool `json:"reorder"`
	// WAN: latency "wan": delay with jitter.
	WAN bool `json:"wan"`
	// Churn: node classes that are intermittently connected come and go.
	Churn bool `json:"churn"`
	// NotInjected lists faults the environment admits that this nemesis
	// cannot produce (Byzantine behaviour), so a report can say so.
	NotInjected []string `json:"not_injected,omitempty"`
}

// Admitted reads the faults env admits.
func Admitted(env spec.Environment) Faults {
	f := Faults{
		Partitions: env.Partitions,
		Crash:      true,
		Restart:    env.Failures != "crash-stop",
		Loss:       env.Latency != "local",
		Duplicate:  env.Latency != "local",
		Reorder:    env.Latency != "local",
		WAN:        env.Latency == "wan",
	}
	for _, n := range env.Nodes {
		if n.Storage == "volatile" {
			f.LoseDisk = true
		}
		if n.Connectivity == "intermittent" {
			f.Churn = true
		}
	}
	if env.Failures == "byzantine" {
		f.NotInjected = append(f.NotInjected, "byzantine nodes (arbitrary behaviour is not simulated)")
	}
	return f
}

// List names the admitted faults, for reports.
func (f Faults) List() []string {
	var out []string
	for _, x := range []struct {
		on   bool
		name string
	}{{f.Partitions, "partition"}, {f.Crash, "crash"}, {f.Restart, "restart"}, {f.LoseDisk, "lose-disk"},
		{f.Loss, "loss"}, {f.Duplicate, "duplicate"}, {f.Reorder, "reorder"}, {f.WAN, "wan-latency"}, {f.Churn, "churn"}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	return out
}

// Kind is one step of a schedule.
type Kind string

const (
	Partition  Kind = "partition"  // Groups cannot reach each other
	OneWay     Kind = "one-way"    // Nodes[0] cannot reach Nodes[1]
	Heal       Kind = "heal"       // every link restored
	Crash      Kind = "crash"      // Nodes stop
	Restart    Kind = "restart"    // Nodes come back with their disks
	LoseDisk   Kind = "lose-disk"  // Nodes come back with empty disks
	Loss       Kind = "loss"       // drop Rate of messages
	Duplicate  Kind = "duplicate"  // duplicate Rate of messages
	Reorder    Kind = "reorder"    // reorder Rate of messages
	Delay      Kind = "delay"      // Delay ± Jitter on every message
	Calm       Kind = "calm"       // message faults off (loss, dup, reorder, delay)
	Disconnect Kind = "disconnect" // churn: Nodes leave the network for a while
)

// Event is one fault at an offset from the schedule's start.
type Event struct {
	At     time.Duration `json:"at"`
	Kind   Kind          `json:"kind"`
	Nodes  []int         `json:"nodes,omitempty"`
	Groups [][]int       `json:"groups,omitempty"`
	Rate   float64       `json:"rate,omitempty"`
	Delay  time.Duration `json:"delay,omitempty"`
	Jitter time.Duration `json:"jitter,omitempty"`
}

func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6s %s", e.At.Round(time.Millisecond), e.Kind)
	switch {
	case len(e.Groups) > 0:
		fmt.Fprintf(&b, " %v", e.Groups)
	case len(e.Nodes) > 0:
		fmt.Fprintf(&b, " %v", e.Nodes)
	}
	if e.Rate > 0 {
		fmt.Fprintf(&b, " %.0f%%", 100*e.Rate)
	}
	if e.Delay > 0 {
		fmt.Fprintf(&b, " %v±%v", e.Delay, e.Jitter)
	}
	return b.String()
}

// Limits keep a schedule within what the checked promises cover.
type Limits struct {
	// MaxDown is how many nodes may be crashed at once (a majority
	// stack's promises are about a live majority: (n-1)/2).
	MaxDown int
	// MaxLostDisks is how many disks may be lost in the whole run: the
	// class's durability, beyond which losing data is no violation.
	MaxLostDisks int
}

// Schedule is a seeded run of faults, ending healed: every crashed node
// restarted, every link restored, message faults off, so the system can
// be checked after it quiesces.
type Schedule struct {
	Seed   uint64        `json:"seed"`
	Nodes  int           `json:"nodes"`
	Length time.Duration `json:"length"`
	Events []Event       `json:"events"`
}

// Generate draws a schedule of the admitted faults for n nodes over
// length, from seed. Faults come in episodes of 0.5-2 s separated by
// calm, so the system both suffers them and has time to recover.
func Generate(f Faults, n int, length time.Duration, seed uint64, lim Limits) Schedule {
	rng := rand.New(rand.NewPCG(seed, 0x6e656d65736973))
	s := Schedule{Seed: seed, Nodes: n, Length: length}
	down := map[int]bool{}
	lost := 0
	at := time.Duration(0)
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	type choice struct {
		ok  bool
		run func()
	}
	others := func() []int {
		var out []int
		for i := range n {
			if !down[i] {
				out = append(out, i)
			}
		}
		return out
	}
	add := func(e Event) { e.At = at; s.Events = append(s.Events, e) }
	for {
		at += dur(200*time.Millisecond, 800*time.Millisecond)
		if at >= length {
			break
		}
		choices := []choice{
			{f.Partitions && n > 1, func() {
				perm := rng.Perm(n)
				switch rng.IntN(3) {
				case 0: // majority / minority
					k := n/2 + 1
					add(Event{Kind: Partition, Groups: [][]int{sorted(perm[:k]), sorted(perm[k:])}})
				case 1: // one node isolated
					add(Event{Kind: Partition, Groups: [][]int{{perm[0]}, sorted(perm[1:])}})
				default: // one way
					add(Event{Kind: OneWay, Nodes: []int{perm[0], perm[1]}})
				}
				at += dur(500*time.Millisecond, 2*time.Second)
				add(Event{Kind: Heal})
			}},
			{f.Crash && len(down) < lim.MaxDown, func() {
				live := others()
				i := live[rng.IntN(len(live))]
				down[i] = true
				add(Event{Kind: Crash, Nodes: []int{i}})
				if !f.Restart {
					return // crash-stop: it stays down until the end
				}
				at += dur(300*time.Millisecond, 1500*time.Millisecond)
				kind := Restart
				if f.LoseDisk && lost < lim.MaxLostDisks && rng.IntN(3) == 0 {
					kind = LoseDisk
					lost++
				}
				add(Event{Kind: kind, Nodes: []int{i}})
				delete(down, i)
			}},
			{f.Loss || f.Duplicate || f.Reorder, func() {
				var ks []Kind
				if f.Loss {
					ks = append(ks, Loss)
				}
				if f.Duplicate {
					ks = append(ks, Duplicate)
				}
				if f.Reorder {
					ks = append(ks, Reorder)
				}
				add(Event{Kind: ks[rng.IntN(len(ks))], Rate: 0.05 + 0.25*rng.Float64()})
				at += dur(500*time.Millisecond, 2*time.Second)
				add(Event{Kind: Calm})
			}},
			{f.WAN, func() {
				add(Event{Kind: Delay, Delay: dur(20*time.Millisecond, 80*time.Millisecond), Jitter: dur(0, 30*time.Millisecond)})
				at += dur(500*time.Millisecond, 2*time.Second)
				add(Event{Kind: Calm})
			}},
			{f.Churn && len(down) < lim.MaxDown, func() {
				live := others()
				i := live[rng.IntN(len(live))]
				add(Event{Kind: Disconnect, Nodes: []int{i}})
				at += dur(300*time.Millisecond, 1500*time.Millisecond)
				add(Event{Kind: Heal})
			}},
		}
		var ok []choice
		for _, c := range choices {
			if c.ok {
				ok = append(ok, c)
			}
		}
		if len(ok) == 0 {
			break
		}
		ok[rng.IntN(len(ok))].run()
	}
	// End healed, with every node back, so the checks see the system
	// recover.
	at = max(at, length)
	var back []int
	for i := range down {
		back = append(back, i)
	}
	sort.Ints(back)
	add(Event{Kind: Heal})
	add(Event{Kind: Calm})
	if len(back) > 0 && f.Restart {
		add(Event{Kind: Restart, Nodes: back})
	}
	s.Length = at
	return s
}

func sorted(xs []int) []int {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

// Target is what a schedule is played against. Node indexes are the
// schedule's.
type Target interface {
	// Partition cuts every link between nodes of different groups; the
	// nodes no group lists form one more group.
	Partition(groups [][]int)
	OneWay(from, to int)
	Heal()
	SetLoss(p float64)
	SetDuplicate(p float64)
	SetReorder(p float64)
	SetDelay(base, jitter time.Duration)
	Crash(i int)
	Restart(ctx context.Context, i int, keepDisk bool) error
}

// Run plays s against t in real time from now, calling observe (if not
// nil) as each event is applied. It returns early with ctx's error.
func Run(ctx context.Context, s Schedule, t Target, observe func(Event)) error {
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for _, e := range s.Events {
		if wait := time.Until(start.Add(e.At)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		if err := Apply(ctx, t, e); err != nil {
			return fmt.Errorf("nemesis: %s: %w", e, err)
		}
		if observe != nil {
			observe(e)
		}
	}
	return nil
}

// Apply applies one event.
func Apply(ctx context.Context, t Target, e Event) error {
	switch e.Kind {
	case Partition:
		t.Partition(e.Groups)
	case OneWay:
		t.OneWay(e.Nodes[0], e.Nodes[1])
	case Heal:
		t.Heal()
	case Crash:
		for _, i := range e.Nodes {
			t.Crash(i)
		}
	case Restart, LoseDisk:
		for _, i := range e.Nodes {
			if err := t.Restart(ctx, i, e.Kind == Restart); err != nil {
				return err
			}
		}
	case Loss:
		t.SetLoss(e.Rate)
	case Duplicate:
		t.SetDuplicate(e.Rate)
	case Reorder:
		t.SetReorder(e.Rate)
	case Delay:
		t.SetDelay(e.Delay, e.Jitter)
	case Calm:
		t.SetLoss(0)
		t.SetDuplicate(0)
		t.SetReorder(0)
		t.SetDelay(0, 0)
	case Disconnect:
		// A disconnected node is a partition of one.
		t.Partition([][]int{{e.Nodes[0]}})
	default:
		return fmt.Errorf("unknown event kind %q", e.Kind)
	}
	return nil
}
