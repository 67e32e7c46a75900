package check_test

import (
	"testing"
	"time"

	"github.com/rime-dev/rime/verify/check"
)

func rm(client int, v string, call, ret int64) check.Op {
	op := app(client, v, call, ret)
	op.Kind = check.Remove
	return op
}

func final(node string, state map[string][]string) check.Replica {
	return check.Replica{Node: node, State: state}
}

// An update its node accepted is served, even when a partition keeps it
// from being acknowledged; one it never accepted breaks "always".
func TestAvailabilityCountsAcceptedUpdates(t *testing.T) {
	part := []check.Partition{{Start: 100, End: 1000, Sides: [][]string{{"n1"}, {"n2", "n3"}}}}
	pending := outcome(app(1, "a", 200, 0), check.Info) // client 1 is on n2
	cfg := check.AvailabilityConfig{Promise: check.Always}
	r, err := check.Availability(check.History{Ops: []check.Op{pending}, Partitions: part}, cfg)
	wantViolation(t, r, err, "unavailable", "did not succeed")
	pending.Accepted = 210
	r, err = check.Availability(check.History{Ops: []check.Op{pending}, Partitions: part}, cfg)
	wantOK(t, r, err)
	grace := check.AvailabilityConfig{Promise: check.Always, Grace: time.Duration(500)}
	pending.Accepted = 0
	r, err = check.Availability(check.History{Ops: []check.Op{pending}, Partitions: part}, grace)
	wantOK(t, r, err)
}

// A set's removes: an acknowledged remove must take the value out
// everywhere; a value whose remove may have happened need not survive.
func TestDurabilityWithRemoves(t *testing.T) {
	cfg := check.DurabilityConfig{K: 1}
	ops := []check.Op{app(1, "a", 0, 10), rm(2, "a", 20, 30), app(1, "b", 40, 50)}
	gone := check.History{Ops: ops, Final: []check.Replica{replica("n1", "b"), replica("n2", "b")}}
	r, err := check.Durability(gone, cfg)
	wantOK(t, r, err)
	back := check.History{Ops: ops, Final: []check.Replica{replica("n1", "b"), replica("n2", "a", "b")}}
	r, err = check.Durability(back, cfg)
	wantViolation(t, r, err, "removal lost", `"a"`, "n2")
	unsure := []check.Op{app(1, "a", 0, 10), outcome(rm(2, "a", 20, 30), check.Info), app(1, "b", 40, 50)}
	r, err = check.Durability(check.History{Ops: unsure, Final: []check.Replica{replica("n1", "a", "b"), replica("n2", "b")}}, cfg)
	wantOK(t, r, err)
	lost := check.History{Ops: ops, Final: []check.Replica{replica("n1"), replica("n2", "b")}}
	r, err = check.Durability(lost, cfg)
	wantViolation(t, r, err, "lost write", `"b"`, "n1")

	if err := (check.History{Ops: []check.Op{rm(1, "z", 0, 1)}}).Validate(); err == nil {
		t.Fatal("a remove of a value nobody wrote validated")
	}
	read := rd(1, 0, 1)
	read.Accepted = 1
	if err := (check.History{Ops: []check.Op{read}}).Validate(); err == nil {
		t.Fatal("an accepted read validated")
	}
}

// A last-writer-wins key: a key with an acknowledged write must hold a
// value, one some write that did not fail wrote.
func TestDurabilityLastWriter(t *testing.T) {
	cfg := check.DurabilityConfig{K: 1, Model: check.LastWriter}
	ops := []check.Op{wr(1, "x", 0, 10), wr(2, "y", 5, 15), outcome(wr(3, "z", 20, 30), check.Fail)}
	for _, ok := range [][]string{{"x"}, {"y"}} {
		r, err := check.Durability(check.History{Ops: ops, Final: []check.Replica{replica("n1", ok...), replica("n2", ok...)}}, cfg)
		wantOK(t, r, err)
	}
	r, err := check.Durability(check.History{Ops: ops, Final: []check.Replica{replica("n1", "x"), replica("n2")}}, cfg)
	wantViolation(t, r, err, "lost write", "n2 holds no value")
	r, err = check.Durability(check.History{Ops: ops, Final: []check.Replica{replica("n1", "z")}}, cfg)
	wantViolation(t, r, err, "failed write applied", `"z"`)
	r, err = check.Durability(check.History{Ops: ops, Final: []check.Replica{replica("n1", "w")}}, cfg)
	wantViolation(t, r, err, "no update of that key wrote")
}

// A counter of increments by one counts every acknowledged one and no
// more than may have taken effect.
func TestDurabilityCount(t *testing.T) {
	cfg := check.DurabilityConfig{K: 1, Model: check.Count}
	ops := []check.Op{app(1, "a", 0, 10), app(2, "b", 0, 10), app(1, "c", 20, 30), outcome(app(2, "d", 20, 30), check.Info), outcome(app(3, "e", 0, 5), check.Fail)}
	for _, n := range []string{"3", "4"} {
		r, err := check.Durability(check.History{Ops: ops, Final: []check.Replica{final("n1", map[string][]string{"k": {n}})}}, cfg)
		wantOK(t, r, err)
	}
	r, err := check.Durability(check.History{Ops: ops, Final: []check.Replica{final("n1", map[string][]string{"k": {"2"}})}}, cfg)
	wantViolation(t, r, err, "lost increments", "counts 2", "3 increments")
	r, err = check.Durability(check.History{Ops: ops, Final: []check.Replica{final("n1", map[string][]string{"k": {"5"}})}}, cfg)
	wantViolation(t, r, err, "phantom increments")
	r, err = check.Durability(check.History{Ops: ops, Final: []check.Replica{final("n1", map[string][]string{"k": {"x"}})}}, cfg)
	wantViolation(t, r, err, "not one count")
}

// Reads of a set list members sorted: their order is no evidence, but
// what they include still is; a removed member need not be included.
func TestCausalUnorderedReads(t *testing.T) {
	read := func(client int, at int64, vs ...string) check.Op {
		op := rd(client, at, at, vs...)
		op.Kind = check.Read
		return op
	}
	// "a" was written after its client saw "z": a sorted read lists the
	// effect before its cause.
	ops := []check.Op{app(1, "z", 0, 10), read(2, 20, "z"), app(2, "a", 30, 40), read(3, 50, "a", "z")}
	r, err := check.Causal(check.History{Ops: ops})
	wantViolation(t, r, err, "causal inversion", `"a" before its cause "z"`)
	r, err = check.CausalWith(check.History{Ops: ops}, check.CausalConfig{UnorderedReads: true})
	wantOK(t, r, err)
	missing := append(ops[:3:3], read(2, 50, "a"))
	r, err = check.CausalWith(check.History{Ops: missing}, check.CausalConfig{UnorderedReads: true})
	wantViolation(t, r, err, "causal past missing", `"z"`)
	removed := append(missing, rm(3, "z", 45, 48))
	r, err = check.CausalWith(check.History{Ops: removed}, check.CausalConfig{UnorderedReads: true})
	wantOK(t, r, err)
}
