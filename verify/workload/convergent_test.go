package workload

import (
	"slices"
	"strings"
	"testing"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/protocols"
)

func apply(t *testing.T, st crdt.State, ops ...crdt.Op) crdt.State {
	t.Helper()
	for _, op := range ops {
		if _, err := st.Apply(crdt.Stamp{Replica: "r1", Time: 1}, op); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// Project gives the checkers every type's state in their form.
func TestProject(t *testing.T) {
	for _, tc := range []struct {
		st   crdt.State
		ops  []crdt.Op
		want map[string][]string
	}{
		{crdt.NewLog(), []crdt.Op{crdt.LogAppend{Data: []byte("a")}, crdt.LogAppend{Data: []byte("b")}}, map[string][]string{"c": {"a", "b"}}},
		{crdt.NewRegister(), []crdt.Op{crdt.RegisterSet{Value: []byte("a")}, crdt.RegisterSet{Value: []byte("b")}}, map[string][]string{"c": {"b"}}},
		{crdt.NewMap(), []crdt.Op{crdt.MapPut{Key: "k1", Value: []byte("a")}, crdt.MapPut{Key: "k2", Value: []byte("b")}}, map[string][]string{"c/k1": {"a"}, "c/k2": {"b"}}},
		{crdt.NewSet(), []crdt.Op{crdt.SetAdd{Elem: "b"}, crdt.SetAdd{Elem: "a"}, crdt.SetAdd{Elem: "x"}, crdt.SetRemove{Elem: "x"}}, map[string][]string{"c": {"a", "b"}}},
		{crdt.NewCounter(), []crdt.Op{crdt.CounterAdd{Delta: 1}, crdt.CounterAdd{Delta: 1}}, map[string][]string{"c": {"2"}}},
		{crdt.NewText(), []crdt.Op{crdt.TextInsert{Pos: 0, Text: "<a>"}, crdt.TextInsert{Pos: 0, Text: "<b>"}, crdt.TextInsert{Pos: 3, Text: "<c>"}}, map[string][]string{"c": {"b", "c", "a"}}},
	} {
		got := Project("c", apply(t, tc.st, tc.ops...))
		for k, vs := range tc.want {
			if !slices.Equal(got[k], vs) {
				t.Errorf("%s: key %s is %q, want %q", tc.st.Type(), k, got[k], vs)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.st.Type(), got, tc.want)
		}
	}
	if b := boundaries("<a><bc>"); !slices.Equal(b, []int{0, 3, 7}) {
		t.Fatalf("boundaries %v", b)
	}
}

// fakeSession replays events, as a broken channel might send them.
type fakeSession struct {
	protocols.Session
	events chan protocols.Event
}

func (f fakeSession) Events() <-chan protocols.Event { return f.events }

func delta(t *testing.T, v string) []byte {
	t.Helper()
	d, err := crdt.NewLog().Apply(crdt.Stamp{Replica: "r-" + v, Time: 1}, crdt.LogAppend{Data: []byte(v)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := d.MarshalBinary()
	return b
}

// The stream contract is checked as events arrive: each broken stream
// below is caught, and a good one is not.
func TestConvergentStreamContract(t *testing.T) {
	cfg := DefaultConvergentConfig(crdt.TypeLog)
	empty, _ := crdt.NewLog().MarshalBinary()
	set, _ := crdt.NewSet().MarshalBinary()
	for name, tc := range map[string]struct {
		events []protocols.Event
		want   string
	}{
		"good":       {[]protocols.Event{{Kind: protocols.Initialize, Data: empty}, {Kind: protocols.Update, Seq: 1, Data: delta(t, "a")}, {Kind: protocols.Update, Seq: 2, Data: delta(t, "b")}}, ""},
		"gap":        {[]protocols.Event{{Kind: protocols.Initialize, Data: empty}, {Kind: protocols.Update, Seq: 2, Data: delta(t, "a")}}, "not contiguous"},
		"no init":    {[]protocols.Event{{Kind: protocols.Update, Seq: 1, Data: delta(t, "a")}}, "before initialize"},
		"garbage":    {[]protocols.Event{{Kind: protocols.Initialize, Data: empty}, {Kind: protocols.Update, Seq: 1, Data: []byte{9, 9}}}, "does not decode"},
		"wrong type": {[]protocols.Event{{Kind: protocols.Initialize, Data: set}}, "the class is a log"},
		"asks":       {[]protocols.Event{{Kind: protocols.Initialize, Data: empty}, {Kind: protocols.RequestCheckpoint}}, "asked for a checkpoint"},
	} {
		r := NewRecorder("c")
		ch := make(chan protocols.Event, len(tc.events))
		for _, ev := range tc.events {
			ch <- ev
		}
		close(ch)
		r.consumeConvergent("client 1", 1, "n1", "n1/proxy", fakeSession{events: ch}, newConvState(crdt.TypeLog), cfg)
		v := strings.Join(r.StreamViolations(), "; ")
		if tc.want == "" && v != "" || tc.want != "" && !strings.Contains(v, tc.want) {
			t.Errorf("%s: violations %q, want %q", name, v, tc.want)
		}
	}
	// Two sessions of one proxy that see different deltas at one Seq.
	r := NewRecorder("c")
	r.observeAt("client 1", "n1/p", 1, delta(t, "a"))
	r.observeAt("client 2", "n1/p", 1, delta(t, "b"))
	if len(r.StreamViolations()) != 1 {
		t.Fatalf("two deltas at one Seq of one proxy passed: %v", r.StreamViolations())
	}
}
