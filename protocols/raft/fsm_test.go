package raft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
