// Package checktest generates histories for testing and benchmarking the
// checkers of verify/check, as net/http/httptest serves net/http's tests.
//
// Log and Register simulate clients of a correct linearizable system:
// every operation takes effect at one point inside its interval (or, for
// an operation whose outcome the client never learned, possibly later or
// never), so every history they return is linearizable, sequentially
// consistent, causal and convergent by construction. The mutations break
// a generated history in one named way that no correct system can
// produce, for tests that a checker notices.
//
// Generation is deterministic in Config.Seed.
package checktest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/rime-dev/rime/verify/check"
)

// Config shapes a generated history.
type Config struct {
	// Seed makes the history reproducible.
	Seed uint64
	// Clients run concurrently, each one operation at a time.
	Clients int
	// Ops is how many operations the clients invoke in all (deliveries
	// not counted).
	Ops int
	// Keys is how many independent keys the operations spread over.
	Keys int
	// Nodes the clients are spread over; each holds a replica.
	Nodes int
	// ReadFraction of operations are sync-reads; the rest are updates.
	ReadFraction float64
	// InfoFraction of updates never learn their outcome; half of those
	// take effect anyway. FailFraction of updates fail without effect.
	InfoFraction, FailFraction float64
	// Latency is the longest an operation takes, in ns; each takes a
	// uniform time in [1, Latency], and clients think for up to Latency/4
	// between operations.
	Latency int64
	// Deliveries adds, for every client, a stream of the updates of every
	// key in log order, as a channel session would receive them.
	Deliveries bool
}

// DefaultConfig is the benchmark's shape: 16 clients, 2000 operations on
// one log, 30% reads, some unknown and failed outcomes, on 5 nodes.
func DefaultConfig() Config {
	return Config{Seed: 1, Clients: 16, Ops: 2000, Keys: 1, Nodes: 5, ReadFraction: 0.3,
		InfoFraction: 0.02, FailFraction: 0.02, Latency: 1_000_000}
}

// event is one operation being simulated: the point where it takes
// effect (if it does) decides what reads return.
type event struct {
	op      check.Op
	at      int64 // when it takes effect
	applied bool
}

// simulate invokes cfg.Ops operations and returns them with the points
// where they take effect, in order of those points.
func simulate(cfg Config, update check.Kind) []*event {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	clock := make([]int64, cfg.Clients)
	count := make([]int, cfg.Clients)
	var evs []*event
	for range cfg.Ops {
		// The client with the earliest clock goes next, so the clients
		// run concurrently rather than one after another.
		c := 0
		for i := range clock {
			if clock[i] < clock[c] {
				c = i
			}
		}
		call := clock[c] + rng.Int64N(cfg.Latency/4+1)
		ret := call + 1 + rng.Int64N(cfg.Latency)
		op := check.Op{Client: c, Node: fmt.Sprintf("n%d", c%cfg.Nodes), Key: fmt.Sprintf("k%d", rng.IntN(cfg.Keys)),
			Call: call, Return: ret, Outcome: check.OK}
		ev := &event{at: call + rng.Int64N(ret-call+1), applied: true}
		if rng.Float64() < cfg.ReadFraction {
			op.Kind = check.SyncRead
		} else {
			count[c]++
			op.Kind, op.Value = update, fmt.Sprintf("c%d-%d", c, count[c])
			switch r := rng.Float64(); {
			case r < cfg.FailFraction:
				op.Outcome, ev.applied = check.Fail, false
			case r < cfg.FailFraction+cfg.InfoFraction:
				// Unknown outcome: the client gives up at ret; the update
				// may still take effect a while later, or never.
				op.Outcome = check.Info
				ev.at = call + rng.Int64N(3*(ret-call)+1)
				ev.applied = rng.IntN(2) == 0
			}
		}
		ev.op = op
		evs = append(evs, ev)
		clock[c] = ret
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	return evs
}

// Log returns a linearizable history of appends and sync-reads on
// cfg.Keys logs, with each node's final state (every log, whole).
func Log(cfg Config) check.History {
	evs := simulate(cfg, check.Append)
	logs := map[string][]string{}
	var deliveries []check.Op
	for _, ev := range evs {
		switch {
		case ev.op.Kind == check.SyncRead:
			ev.op.Values = slices.Clone(logs[ev.op.Key])
		case ev.applied:
			logs[ev.op.Key] = append(logs[ev.op.Key], ev.op.Value)
		}
	}
	if cfg.Deliveries {
		deliveries = deliver(cfg, evs)
	}
	return finish(cfg, evs, deliveries, logs)
}

// Register returns a linearizable history of writes and sync-reads on
// cfg.Keys registers, with each node's final state (every register's
// value).
func Register(cfg Config) check.History {
	evs := simulate(cfg, check.Write)
	regs := map[string][]string{}
	for _, ev := range evs {
		switch {
		case ev.op.Kind == check.SyncRead:
			ev.op.Values = slices.Clone(regs[ev.op.Key])
		case ev.applied:
			regs[ev.op.Key] = []string{ev.op.Value}
		}
	}
	return finish(cfg, evs, nil, regs)
}

// deliver gives every client every applied update in log order, each no
// earlier than it took effect and after the one before it.
func deliver(cfg Config, evs []*event) []check.Op {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xde1))
	var out []check.Op
	for c := range cfg.Clients {
		var last int64
		for _, ev := range evs {
			if ev.op.Kind == check.SyncRead || !ev.applied {
				continue
			}
			last = max(last, ev.at) + rng.Int64N(cfg.Latency/2+1)
			out = append(out, check.Op{Client: c, Node: fmt.Sprintf("n%d", c%cfg.Nodes), Kind: check.Delivered,
				Key: ev.op.Key, Value: ev.op.Value, Call: last, Return: last, Outcome: check.OK})
		}
	}
	return out
}

func finish(cfg Config, evs []*event, deliveries []check.Op, state map[string][]string) check.History {
	var h check.History
	for _, ev := range evs {
		h.Ops = append(h.Ops, ev.op)
	}
	sort.SliceStable(h.Ops, func(i, j int) bool { return h.Ops[i].Call < h.Ops[j].Call })
	h.Ops = append(h.Ops, deliveries...)
	for n := range cfg.Nodes {
		st := map[string][]string{}
		for k, v := range state {
			st[k] = slices.Clone(v)
		}
		h.Final = append(h.Final, check.Replica{Node: fmt.Sprintf("n%d", n), State: st})
	}
	return h
}
