package crdtreplication

import (
	"bytes"
	"testing"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/crdt/vv"
)

func TestFrameRoundTrip(t *testing.T) {
	ctx := &vv.Dots{}
	ctx.AddRange("a", 1, 5)
	ctx.Add(vv.Dot{Replica: "b", Seq: 7})
	l := crdt.NewLog()
	d, _ := l.Apply(crdt.Stamp{Replica: "a", Time: 1}, crdt.LogAppend{Data: []byte("x")})
	delta, _ := d.MarshalBinary()
	for _, f := range []frame{
		{kind: kindPull, ctx: ctx},
		{kind: kindAck, ctx: ctx},
		{kind: kindState, flags: fReply, bvec: vv.VV{"a.1": 3}, ctx: ctx, delta: delta},
		{kind: kindState, flags: fAck, bvec: vv.VV{}, ctx: &vv.Dots{}},
	} {
		g, err := decodeFrame(encodeFrame(f))
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		if g.kind != f.kind || g.flags != f.flags || !g.ctx.Equal(f.ctx) || !bytes.Equal(g.delta, f.delta) || (f.bvec != nil && !g.bvec.Equal(f.bvec)) {
			t.Fatalf("round trip: %+v became %+v", f, g)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {2, kindPull}, {1, 9}, {1, kindState}, {1, kindState, 0x80}, {1, kindState, 0, 5}} {
		if _, err := decodeFrame(bad); err == nil {
			t.Errorf("decodeFrame(%v) accepted", bad)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	ctx := &vv.Dots{}
	ctx.AddRange("a", 1, 3)
	f.Add(encodeFrame(frame{kind: kindPull, ctx: ctx}))
	f.Add(encodeFrame(frame{kind: kindState, flags: fReply | fAck, bvec: vv.VV{"x": 2}, ctx: ctx, delta: []byte{1, 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			return
		}
		g, err := decodeFrame(encodeFrame(fr))
		if err != nil || g.kind != fr.kind || g.flags != fr.flags || !g.ctx.Equal(fr.ctx) || !bytes.Equal(g.delta, fr.delta) {
			t.Fatalf("accepted %x but does not round-trip: %v", b, err)
		}
	})
}

// A torn or corrupt tail of the write-ahead log is cut off; the intact
// records before it come back.
func TestWALTornTail(t *testing.T) {
	dir := t.TempDir()
	w, recs, err := openWAL(dir)
	if err != nil || len(recs) != 0 {
		t.Fatal(recs, err)
	}
	for _, r := range []string{"one", "two", "three"} {
		if err := w.append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	size := w.size
	w.f.Write([]byte{9, 0, 0}) // a record cut short by a crash
	w.close()
	w, recs, err = openWAL(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || string(recs[2]) != "three" || w.size != size {
		t.Fatalf("recovered %q, size %d want %d", recs, w.size, size)
	}
	w.close()
}

func FuzzDecodeSnapshot(f *testing.F) {
	b, _ := encodeSnapshot(snapshot{rid: "n", bvec: vv.VV{"a": 1}, state: crdt.NewLog()})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeSnapshot(b, crdt.TypeLog)
		decodeRecord(b)
	})
}
