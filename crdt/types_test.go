package crdt

import (
	"fmt"
	"slices"
	"testing"

	"github.com/rime-dev/rime/crdt/vv"
)

// Unit tests of each type's semantics: what a value is after concurrent
// operations, beyond the convergence the law tests check.

func apply(t *testing.T, s State, r string, ts uint64, op Op) State {
	t.Helper()
	d, err := s.Apply(Stamp{Replica: r, Time: ts}, op)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLogOrder(t *testing.T) {
	a, b := NewLog(), NewLog()
	apply(t, a, "a", 10, LogAppend{[]byte("a1")})
	apply(t, b, "b", 5, LogAppend{[]byte("b1")})
	a.Merge(b)
	// a's clock is now past b1's: a2 comes after everything a has seen,
	// though the caller's clock says 1.
	apply(t, a, "a", 1, LogAppend{[]byte("a2")})
	b.Merge(a)
	var got []string
	for _, e := range b.Entries() {
		got = append(got, string(e.Data))
	}
	if want := []string{"b1", "a1", "a2"}; !slices.Equal(got, want) {
		t.Fatalf("log order %v, want %v", got, want)
	}
}

func TestRegisterLastWriterWins(t *testing.T) {
	a, b := NewRegister(), NewRegister()
	if _, ok := a.Get(); ok {
		t.Fatal("unwritten register has a value")
	}
	apply(t, a, "a", 10, RegisterSet{[]byte("x")})
	apply(t, b, "b", 10, RegisterSet{[]byte("y")}) // same time: replica b wins the tie
	a.Merge(b)
	if v, _ := a.Get(); string(v) != "y" {
		t.Fatalf("tie went to %q", v)
	}
	apply(t, a, "a", 3, RegisterSet{[]byte("z")}) // behind in wall time, after in causality
	b.Merge(a)
	if v, _ := b.Get(); string(v) != "z" {
		t.Fatalf("causally later write lost: %q", v)
	}
}

func TestMapConcurrentWritesAndDeletes(t *testing.T) {
	a, b := NewMap(), NewMap()
	apply(t, a, "a", 1, MapPut{"k", []byte("v1")})
	b.Merge(a)
	// Concurrent: a overwrites, b deletes what it saw. a's write survives.
	apply(t, a, "a", 2, MapPut{"k", []byte("v2")})
	apply(t, b, "b", 3, MapDelete{"k"})
	a2, b2 := a.Clone(), b.Clone()
	a2.Merge(b)
	b2.Merge(a)
	for _, m := range []State{a2, b2} {
		if v, ok := m.(*Map).Get("k"); !ok || string(v) != "v2" {
			t.Fatalf("concurrent write lost to a delete: %q %v", v, ok)
		}
	}
	// Concurrent writes: both kept, the later one read.
	c, d := NewMap(), NewMap()
	apply(t, c, "c", 5, MapPut{"k", []byte("c")})
	apply(t, d, "d", 7, MapPut{"k", []byte("d")})
	c.Merge(d)
	if v, _ := c.Get("k"); string(v) != "d" || len(c.m.keys["k"]) != 2 {
		t.Fatalf("got %q with %d writes", v, len(c.m.keys["k"]))
	}
	// A delete that saw both removes the key, and its record is the only
	// thing left until compaction.
	apply(t, c, "c", 8, MapDelete{"k"})
	if c.Len() != 0 || len(c.m.rm.recs) != 1 {
		t.Fatalf("after delete: %v keys, %d records", c.Keys(), len(c.m.rm.recs))
	}
	c.Compact(c.Context().VV())
	if len(c.m.rm.recs) != 0 {
		t.Fatal("compaction kept the record")
	}
	// Deleting an absent key is no event.
	if d := apply(t, c, "c", 9, MapDelete{"nope"}); !d.Context().IsEmpty() {
		t.Fatalf("delete of an absent key made an event: %v", d.Context())
	}
}

func TestSetAddWins(t *testing.T) {
	a, b := NewSet(), NewSet()
	apply(t, a, "a", 0, SetAdd{"x"})
	b.Merge(a)
	apply(t, a, "a", 0, SetRemove{"x"})
	apply(t, b, "b", 0, SetAdd{"x"}) // concurrent re-add
	a.Merge(b)
	if !a.Contains("x") {
		t.Fatal("a concurrent add lost to a remove")
	}
	apply(t, a, "a", 0, SetRemove{"x"})
	b.Merge(a)
	if b.Contains("x") || a.Contains("x") {
		t.Fatal("an observed remove did not remove")
	}
	// Re-adding replaces the element's dots: metadata stays one dot per
	// element however often it is added.
	for range 100 {
		apply(t, a, "a", 0, SetAdd{"y"})
	}
	if n := len(a.m.keys["y"]); n != 1 {
		t.Fatalf("%d dots for one element", n)
	}
}

func TestCounter(t *testing.T) {
	reps := []*Counter{NewCounter(), NewCounter(), NewCounter()}
	var want int64
	for i := range 30 {
		d := int64(i%7 - 3)
		want += d
		apply(t, reps[i%3], fmt.Sprint("r", i%3), 0, CounterAdd{d})
	}
	for _, r := range reps[1:] {
		reps[0].Merge(r)
	}
	if got := reps[0].Value(); got != want {
		t.Fatalf("counter %d, want %d", got, want)
	}
}

func TestTextConcurrentEdits(t *testing.T) {
	a := NewText()
	apply(t, a, "a", 0, TextInsert{0, "held"})
	b := a.Clone().(*Text)
	apply(t, a, "a", 0, TextInsert{2, "L"}) // heLld
	apply(t, b, "b", 0, TextInsert{4, "!"}) // held!
	apply(t, b, "b", 0, TextDelete{0, 1})   // eld!
	a.Merge(b)
	b.Merge(a)
	if a.String() != "eLld!" || b.String() != "eLld!" {
		t.Fatalf("a %q b %q", a.String(), b.String())
	}
	// Concurrent inserts at one place keep each replica's run together.
	c, d := NewText(), NewText()
	apply(t, c, "c", 0, TextInsert{0, "abc"})
	apply(t, d, "d", 0, TextInsert{0, "xyz"})
	c.Merge(d)
	if s := c.String(); s != "xyzabc" && s != "abcxyz" {
		t.Fatalf("interleaved: %q", s)
	}
	if _, err := c.Apply(Stamp{Replica: "c"}, TextInsert{7, "no"}); err == nil {
		t.Fatal("insert past the end accepted")
	}
	if _, err := c.Apply(Stamp{Replica: "c"}, TextDelete{5, 2}); err == nil {
		t.Fatal("delete past the end accepted")
	}
}

// A delete can arrive before the insert it deletes.
func TestTextDeleteBeforeInsert(t *testing.T) {
	a, b := NewText(), NewText()
	ins := apply(t, a, "a", 0, TextInsert{0, "xy"})
	del := apply(t, a, "a", 0, TextDelete{0, 1})
	b.Merge(del)
	b.Merge(ins)
	if b.String() != "y" || !Equal(a, b) {
		t.Fatalf("b %q, a %q", b.String(), a.String())
	}
}

// deltaBytes is the size of what a peer that saw the first n operations
// lacks once k more have been made, and the size of the k operations'
// data.
func deltaBytes(t *testing.T, typ Type, n, k int) (delta, data int) {
	s := mustNew(t, typ)
	for i := range n {
		op := sizedOp(typ, i, s)
		if _, err := s.Apply(Stamp{Replica: fmt.Sprintf("node-%02d-%s", i%4, "f3a9c1d2e4b5a6978877665544332211"), Time: uint64(1_700_000_000_000 + i)}, op); err != nil {
			t.Fatal(err)
		}
	}
	peer := s.Context().Clone()
	for i := n; i < n+k; i++ {
		op := sizedOp(typ, i, s)
		data += opData(op)
		if _, err := s.Apply(Stamp{Replica: fmt.Sprintf("node-%02d-%s", i%4, "f3a9c1d2e4b5a6978877665544332211"), Time: uint64(1_700_000_000_000 + i)}, op); err != nil {
			t.Fatal(err)
		}
	}
	return len(enc(t, s.DeltaSince(peer))), data
}

// sizedOp is the i-th operation of a workload with 32-byte updates
// (counters and deletes have none: their size is the op's).
func sizedOp(typ Type, i int, s State) Op {
	payload := []byte(fmt.Sprintf("%032d", i))
	switch typ {
	case TypeLog:
		return LogAppend{payload}
	case TypeRegister:
		return RegisterSet{payload}
	case TypeMap:
		if i%5 == 4 {
			return MapDelete{fmt.Sprintf("key-%d", i-1)}
		}
		return MapPut{fmt.Sprintf("key-%d", i), payload}
	case TypeSet:
		if i%5 == 4 {
			return SetRemove{fmt.Sprintf("elem-%d", i-1)}
		}
		return SetAdd{fmt.Sprintf("elem-%d", i)}
	case TypeCounter:
		return CounterAdd{int64(i)}
	case TypeText:
		n := s.(*Text).Len()
		if i%5 == 4 {
			return TextDelete{n / 2, 1}
		}
		return TextInsert{n / 2, fmt.Sprintf("word%d ", i%10)}
	}
	panic(typ)
}

func opData(op Op) int {
	switch o := op.(type) {
	case LogAppend:
		return len(o.Data)
	case RegisterSet:
		return len(o.Value)
	case MapPut:
		return len(o.Key) + len(o.Value)
	case MapDelete:
		return len(o.Key)
	case SetAdd:
		return len(o.Elem)
	case SetRemove:
		return len(o.Elem)
	case CounterAdd:
		return 8
	case TextInsert:
		return len(o.Text)
	case TextDelete:
		return 8
	}
	return 0
}

// What a peer missing k operations receives grows with k, not with the
// history before them.
func TestDeltaSizeFollowsWhatIsMissing(t *testing.T) {
	for _, typ := range Types {
		t.Run(string(typ), func(t *testing.T) {
			const k = 20
			n := 5000
			if typ == TypeText {
				n = 2000 // inserts scan the text: keep the test quick
			}
			small, data := deltaBytes(t, typ, 100, k)
			large, _ := deltaBytes(t, typ, n, k)
			t.Logf("k=%d after 100 ops: %d bytes, after 5000: %d bytes (data %d)", k, small, large, data)
			// The later history changes a few varints' widths and, for a
			// text, the parents' names; allow a little, never 50x.
			if large > small+small/4+16 {
				t.Fatalf("delta for %d missing ops grew from %d to %d bytes with the history", k, small, large)
			}
			double, _ := deltaBytes(t, typ, n, 2*k)
			if typ != TypeRegister && typ != TypeCounter && double < small {
				t.Fatalf("a delta of %d ops is smaller (%d) than one of %d (%d)", 2*k, double, k, small)
			}
			// Besides the replica names, each op costs its data and a few
			// bytes: a text insert's run carries its id, parent and Lamport
			// time, and a delete in the middle of a run splits it in three.
			names := 4 * (2 + len("node-00-f3a9c1d2e4b5a6978877665544332211"))
			perOp := 12
			if typ == TypeText {
				perOp = 24
			}
			if limit := names + data + perOp*k + 32; large > limit {
				t.Fatalf("%d bytes for %d ops of %d data bytes (limit %d)", large, k, data, limit)
			}
		})
	}
}

func TestContextAfterDeltaSince(t *testing.T) {
	a := NewLog()
	for i := range 10 {
		apply(t, a, "a", uint64(i), LogAppend{[]byte{byte(i)}})
	}
	peer := &vv.Dots{}
	peer.AddRange("a", 1, 4)
	peer.AddRange("a", 7, 7)
	d := a.DeltaSince(peer).(*Log)
	if got := d.Context().String(); got != "{a:5-6,8-10}" || d.Len() != 5 {
		t.Fatalf("delta context %s with %d entries", got, d.Len())
	}
}
