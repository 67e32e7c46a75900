package check_test

import (
	"strings"
	"testing"

	"github.com/rime-dev/rime/verify/check"
)

// Builders for hand-written histories: one key "k", nodes n1..n3.

func app(client int, v string, call, ret int64) check.Op {
	return check.Op{Client: client, Node: node(client), Kind: check.Append, Key: "k", Value: v, Call: call, Return: ret, Outcome: check.OK}
}

func wr(client int, v string, call, ret int64) check.Op {
	op := app(client, v, call, ret)
	op.Kind = check.Write
	return op
}

func rd(client int, call, ret int64, vs ...string) check.Op {
	return check.Op{Client: client, Node: node(client), Kind: check.SyncRead, Key: "k", Values: vs, Call: call, Return: ret, Outcome: check.OK}
}

func dlv(client int, v string, at int64) check.Op {
	return check.Op{Client: client, Node: node(client), Kind: check.Delivered, Key: "k", Value: v, Call: at, Return: at, Outcome: check.OK}
}

func node(client int) string { return []string{"n1", "n2", "n3"}[client%3] }

func outcome(op check.Op, o check.Outcome) check.Op {
	op.Outcome = o
	if o == check.Info {
		op.Return = 0
	}
	return op
}

func hist(ops ...check.Op) check.History { return check.History{Ops: ops} }

// wantOK fails unless r passed.
func wantOK(t *testing.T, r check.Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Unknown || len(r.Violations) > 0 {
		t.Fatalf("want ok, got %v: %+v", r, r.Violations)
	}
}

// wantViolation fails unless r is a definite violation one of whose
// explanations contains each of the given words.
func wantViolation(t *testing.T, r check.Result, err error, words ...string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || r.Unknown || len(r.Violations) == 0 {
		t.Fatalf("want a violation, got %v: %+v", r, r.Violations)
	}
	for _, v := range r.Violations {
		all := true
		for _, w := range words {
			all = all && strings.Contains(v.Explain, w)
		}
		if all {
			t.Logf("%s: %s", r.Check, v.Explain)
			return
		}
	}
	t.Fatalf("no violation mentions %q: %+v", words, r.Violations)
}
