package raft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/rime-dev/rime/protocols"
)

// TestCompactionKeepsEntriesForLaggingReaders: a compaction leaves the
// RetainCompacted entries before its point readable, so a follower that
// far behind carries on; older ones are gone; snapshots hold neither.
func TestCompactionKeepsEntriesForLaggingReaders(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		keep      uint64
		firstKept uint64 // the oldest entry readable after compacting up to 6
	}{
		{keep: 0, firstKept: 7},
		{keep: 2, firstKept: 5},
		{keep: 100, firstKept: 1},
	} {
		t.Run(fmt.Sprintf("keep=%d", c.keep), func(t *testing.T) {
			s := newLogState(c.keep)
			for i := 1; i <= 8; i++ {
				if seq, err := s.apply(encodeAppend(fmt.Appendf(nil, "u%d", i))); err != nil || seq != uint64(i) {
					t.Fatalf("append %d: seq %d, %v", i, seq, err)
				}
			}
			if _, err := s.apply(encodeCompact(6, []byte("state-6"))); err != nil {
				t.Fatal(err)
			}
			if up, st := s.snapshot(); up != 6 || string(st) != "state-6" {
				t.Fatalf("snapshot = %d %q, want 6 state-6", up, st)
			}
			for seq := uint64(1); seq <= 8; seq++ {
				e, err := s.entry(ctx, seq)
				switch {
				case seq < c.firstKept && !errors.Is(err, protocols.ErrCompacted):
					t.Errorf("entry %d: %v, want ErrCompacted", seq, err)
				case seq >= c.firstKept && (err != nil || string(e.Data) != fmt.Sprintf("u%d", seq)):
					t.Errorf("entry %d = %q, %v; want u%d", seq, e.Data, err, seq)
				}
			}
			// A second compaction moves the kept window along.
			if _, err := s.apply(encodeCompact(8, []byte("state-8"))); err != nil {
				t.Fatal(err)
			}
			if _, err := s.entry(ctx, min(c.firstKept, 6)); c.keep < 8 && !errors.Is(err, protocols.ErrCompacted) {
				t.Errorf("after compacting to 8, entry %d: %v, want ErrCompacted", min(c.firstKept, 6), err)
			}

			// The snapshot holds the entries after the compaction point
			// only, and a replica recovered from it starts there.
			var buf bytes.Buffer
			if err := s.save(&buf); err != nil {
				t.Fatal(err)
			}
			r := newLogState(c.keep)
			if err := r.recover(bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatal(err)
			}
			if _, err := r.entry(ctx, 8); !errors.Is(err, protocols.ErrCompacted) {
				t.Errorf("recovered: entry 8: %v, want ErrCompacted (behind the snapshot)", err)
			}
			if seq, _ := r.apply(encodeAppend([]byte("u9"))); seq != 9 {
				t.Fatalf("recovered: next append got seq %d, want 9", seq)
			}
			if e, err := r.entry(ctx, 9); err != nil || string(e.Data) != "u9" {
				t.Errorf("recovered: entry 9 = %q, %v", e.Data, err)
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := newLogState(0)
	for _, cmd := range [][]byte{encodeAppend([]byte("a")), encodeAppend([]byte("b")), encodeCompact(1, []byte("state-1")), encodeAppend(nil)} {
		if _, err := s.apply(cmd); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := s.save(&buf); err != nil {
		t.Fatal(err)
	}
	r := newLogState(0)
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
	s := newLogState(0)
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
		st := &logState{seq: seq, snapSeq: snapSeq, base: snapSeq, snap: snap, retained: retained, changed: make(chan struct{})}
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
