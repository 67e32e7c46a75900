package raft

import (
	"bytes"
	"reflect"
	"testing"
)

func TestSnapshotRoundTrip(t *testing.T) {
	s := newLogState()
	for _, cmd := range [][]byte{encodeAppend([]byte("a")), encodeAppend([]byte("b")), encodeCompact(1, []byte("state-1")), encodeAppend(nil)} {
		if _, err := s.apply(cmd); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := s.save(&buf); err != nil {
		t.Fatal(err)
	}
	r := newLogState()
	if err := r.recover(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if r.seq != s.seq || r.snapSeq != s.snapSeq || !bytes.Equal(r.snap, s.snap) || len(r.retained) != len(s.retained) {
		t.Fatalf("recovered %+v, saved %+v", r, s)
	}
	if r.recoveries() != 1 {
		t.Fatalf("recoveries = %d, want 1", r.recoveries())
	}
}

// A snapshot from disk or the network may be corrupt: decoding it is an
// error, never a panic or an allocation the bytes do not justify, and
// whatever decodes re-encodes to the same state.
func FuzzDecodeSnapshot(f *testing.F) {
	s := newLogState()
	s.apply(encodeAppend([]byte("x")))
	s.apply(encodeCompact(1, []byte("st")))
	s.apply(encodeAppend([]byte("y")))
	var buf bytes.Buffer
	s.save(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(snapMagic + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add([]byte(snapMagic + "\x02\x00\x00\x02\x01a\x01b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, snapSeq, snap, retained, err := decodeSnapshot(bytes.NewReader(b))
		if err != nil {
			return
		}
		if snapSeq > seq || uint64(len(retained)) != seq-snapSeq {
			t.Fatalf("accepted an inconsistent snapshot: seq %d snapSeq %d retained %d", seq, snapSeq, len(retained))
		}
		st := &logState{seq: seq, snapSeq: snapSeq, snap: snap, retained: retained, changed: make(chan struct{})}
		var out bytes.Buffer
		if err := st.save(&out); err != nil {
			t.Fatal(err)
		}
		seq2, snapSeq2, snap2, retained2, err := decodeSnapshot(&out)
		if err != nil || seq2 != seq || snapSeq2 != snapSeq || !bytes.Equal(snap2, snap) || !reflect.DeepEqual(norm(retained2), norm(retained)) {
			t.Fatalf("re-encoding changed the snapshot: %v", err)
		}
	})
}

// norm makes nil and empty entries compare equal.
func norm(es [][]byte) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e)
	}
	return out
}
