package crdt

import (
	"bytes"
	"testing"
)

// FuzzDecode: any bytes either fail to decode or give a state that
// re-encodes stably and can be merged, deltaed and compacted without a
// panic.
func FuzzDecode(f *testing.F) {
	for i, typ := range Types {
		c := newCluster(f, typ, 3, uint64(i))
		c.run(40)
		for _, r := range c.replicas {
			f.Add(enc(f, r))
			f.Add(enc(f, r.DeltaSince(c.replicas[0].Context())))
		}
	}
	f.Add([]byte{1, 6, 0, 0, 1, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		again := enc(t, s)
		s2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !bytes.Equal(enc(t, s2), again) {
			t.Fatal("encoding is not stable")
		}
		into := mustNew(t, s.Type())
		if err := into.Merge(s); err != nil {
			t.Fatal(err)
		}
		if err := into.Merge(s2); err != nil {
			t.Fatal(err)
		}
		sameState(t, "merging a decoded state twice", merged(t, into, s), into)
		into.DeltaSince(s.Context())
		into.Compact(s.Context().VV())
	})
}

func FuzzUnmarshalOp(f *testing.F) {
	for _, op := range []Op{LogAppend{[]byte("x")}, RegisterSet{}, MapPut{"k", []byte("v")}, MapDelete{"k"},
		SetAdd{"e"}, SetRemove{"e"}, CounterAdd{-5}, TextInsert{3, "héllo"}, TextDelete{1, 2}} {
		b, err := MarshalOp(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := UnmarshalOp(b)
		if err != nil {
			return
		}
		again, err := MarshalOp(op)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", op, err)
		}
		if _, err := UnmarshalOp(again); err != nil {
			t.Fatalf("re-encoded %#v does not decode: %v", op, err)
		}
		// Every op applies to its own type, or is refused with an error.
		for _, typ := range Types {
			s := mustNew(t, typ)
			s.Apply(Stamp{Replica: "r", Time: 1}, op)
		}
	})
}
