package check_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rime-dev/rime/verify/check"
	"github.com/rime-dev/rime/verify/check/checktest"
)

func replica(node string, vs ...string) check.Replica {
	return check.Replica{Node: node, State: map[string][]string{"k": vs}}
}

func TestConvergence(t *testing.T) {
	ordered, unordered := check.ConvergenceConfig{}, check.ConvergenceConfig{Unordered: true}
	same := check.History{Final: []check.Replica{replica("n1", "a", "b"), replica("n2", "a", "b"), replica("n3", "a", "b")}}
	r, err := check.Convergence(same, ordered)
	wantOK(t, r, err)

	missing := check.History{Ops: []check.Op{app(1, "a", 0, 10), app(1, "b", 20, 30), app(2, "c", 20, 30)},
		Final: []check.Replica{replica("n1", "a", "b", "c"), replica("n2", "a", "c"), replica("n3", "a", "b", "c")}}
	r, err = check.Convergence(missing, ordered)
	wantViolation(t, r, err, "n2 differs from n1", `the first 1 values agree; only n1 has ["b"]; only n2 has nothing`)
	if len(r.Violations) != 1 || !slices.Equal(r.Violations[0].Nodes, []string{"n2", "n1"}) || r.Violations[0].Ops[0].Value != "b" {
		t.Fatalf("want only n2 named, with the write of b: %+v", r.Violations)
	}

	order := check.History{Final: []check.Replica{replica("n1", "a", "b"), replica("n2", "b", "a")}}
	r, err = check.Convergence(order, ordered)
	wantViolation(t, r, err, "another order", `at position 0 n1 has "a", n2 has "b"`)
	r, err = check.Convergence(order, unordered)
	wantOK(t, r, err)

	dup := check.History{Final: []check.Replica{replica("n1", "a"), replica("n2", "a", "a")}}
	r, err = check.Convergence(dup, ordered)
	wantViolation(t, r, err, `n2 repeats "a"`)

	r, err = check.Convergence(check.History{}, ordered)
	if err != nil || r.OK || !r.Unknown {
		t.Fatalf("no final states must be unknown, got %v %v", r, err)
	}

	for seed := range uint64(20) {
		h := checktest.Log(small(seed))
		r, err := check.Convergence(h, ordered)
		wantOK(t, r, err)
		bad, ok := checktest.Diverge(h, rand.New(rand.NewPCG(seed, 1)))
		if !ok {
			t.Fatal("Diverge found nothing to drop")
		}
		if r, err := check.Convergence(bad, ordered); err != nil || r.OK || len(r.Violations) != 1 {
			t.Fatalf("seed %d: want one diverging replica, got %v %+v", seed, r, r.Violations)
		}
	}
}

func TestDurability(t *testing.T) {
	ops := []check.Op{app(1, "a", 0, 10), app(2, "b", 0, 10), outcome(app(3, "c", 0, 10), check.Info), outcome(app(3, "d", 20, 30), check.Fail)}
	good := check.History{Ops: ops, Lost: []string{"n3"}, Final: []check.Replica{replica("n1", "a", "b"), replica("n2", "b", "a", "c")}}
	r, err := check.Durability(good, check.DurabilityConfig{K: 1})
	wantOK(t, r, err)

	lost := check.History{Ops: ops, Lost: []string{"n3"}, Final: []check.Replica{replica("n1", "a"), replica("n2", "a", "b")}}
	r, err = check.Durability(lost, check.DurabilityConfig{K: 1})
	wantViolation(t, r, err, `lost write: "b" was acknowledged at 10`, "[n1]")

	// More nodes lost than promised: the promise does not cover the run.
	r, err = check.Durability(lost, check.DurabilityConfig{K: 0})
	if err != nil || !r.OK || r.Note == "" {
		t.Fatalf("want ok with a note, got %v %v", r, err)
	}

	applied := check.History{Ops: ops, Final: []check.Replica{replica("n1", "a", "b", "d")}}
	r, err = check.Durability(applied, check.DurabilityConfig{K: 1})
	wantViolation(t, r, err, `failed write applied: "d"`)

	all := check.History{Ops: ops, Lost: []string{"n1", "n2", "n3"}}
	r, err = check.Durability(all, check.DurabilityConfig{K: 3})
	wantViolation(t, r, err, "no replica survived")

	if _, err := check.Durability(good, check.DurabilityConfig{K: -1}); err == nil {
		t.Fatal("a negative K was accepted")
	}

	// Acknowledged before commit, then dropped by a new leader.
	for seed := range uint64(20) {
		h := checktest.Log(small(seed))
		r, err := check.Durability(h, check.DurabilityConfig{K: 1})
		wantOK(t, r, err)
		bad, ok := checktest.LostWrite(h, rand.New(rand.NewPCG(seed, 2)))
		if !ok {
			continue
		}
		r, err = check.Durability(bad, check.DurabilityConfig{K: 1})
		wantViolation(t, r, err, "lost write")
	}
}

func TestAvailability(t *testing.T) {
	op := func(client int, call int64, o check.Outcome) check.Op {
		return outcome(app(client, "v"+string(rune('a'+client))+string(rune('0'+call/10)), call, call+5), o)
	}
	// n1, n2 | n3 from 100 to 200. Clients 0/3 on n1, 1 on n2, 2 on n3.
	part := []check.Partition{{Start: 100, End: 200, Sides: [][]string{{"n1", "n2"}, {"n3"}}}}
	h := func(ops ...check.Op) check.History { return check.History{Ops: ops, Partitions: part} }
	always := check.AvailabilityConfig{Promise: check.Always}
	majority := check.AvailabilityConfig{Promise: check.Majority}

	minorityDown := h(op(0, 110, check.OK), op(1, 120, check.OK), op(2, 130, check.Fail), op(2, 250, check.OK))
	r, err := check.Availability(minorityDown, majority)
	wantOK(t, r, err)
	r, err = check.Availability(minorityDown, always)
	wantViolation(t, r, err, "1 of 1 operations on the minority side [n3]", `promised "always"`)

	majorityDown := h(op(0, 110, check.Info), op(3, 120, check.OK), op(2, 130, check.Fail))
	r, err = check.Availability(majorityDown, majority)
	wantViolation(t, r, err, "1 of 2 operations on the majority side [n1 n2]")

	// Before the partition, within the grace period, or on a crashed
	// node, a failure breaks no promise.
	exempt := h(op(0, 50, check.Fail), op(0, 105, check.Fail), op(2, 150, check.Fail))
	exempt.Crashes = []check.Crash{{Node: "n3", Start: 140}}
	r, err = check.Availability(exempt, check.AvailabilityConfig{Promise: check.Always, Grace: 10 * time.Nanosecond})
	wantOK(t, r, err)

	// With the replicas given, n1+n2 of five is not a majority.
	r, err = check.Availability(majorityDown, check.AvailabilityConfig{Promise: check.Majority, Replicas: []string{"n1", "n2", "n3", "n4", "n5"}})
	wantOK(t, r, err)

	r, err = check.Availability(check.History{Ops: majorityDown.Ops}, always)
	if err != nil || !r.OK || r.Note == "" {
		t.Fatalf("no partition: want ok with a note, got %v %v", r, err)
	}
	if _, err := check.Availability(majorityDown, check.AvailabilityConfig{Promise: "sometimes"}); err == nil {
		t.Fatal("an unknown promise was accepted")
	}
}
