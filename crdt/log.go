package crdt

import (
	"cmp"
	"maps"
	"slices"

	"github.com/rime-dev/rime/crdt/vv"
)

// Log is an append-only log of opaque updates that converges as a set:
// replicas that hold the same updates list them in the same order, by
// timestamp (hybrid: after everything the appender had seen, so causally
// later updates come later), then replica, then seq.
type Log struct {
	ctx     vv.Dots
	entries map[vv.Dot]logEntry
	clock   uint64
}

type logEntry struct {
	ts   uint64
	data []byte
}

// LogEntry is one update of a Log.
type LogEntry struct {
	Dot  vv.Dot
	Time uint64
	Data []byte
}

// NewLog is an empty log.
func NewLog() *Log { return &Log{entries: map[vv.Dot]logEntry{}} }

func (l *Log) Type() Type        { return TypeLog }
func (l *Log) Context() *vv.Dots { return &l.ctx }

// Len is the number of updates.
func (l *Log) Len() int { return len(l.entries) }

// Entries are the updates in the log's order. Data is shared with the
// log: do not modify it.
func (l *Log) Entries() []LogEntry {
	out := make([]LogEntry, 0, len(l.entries))
	for d, e := range l.entries {
		out = append(out, LogEntry{Dot: d, Time: e.ts, Data: e.data})
	}
	slices.SortFunc(out, func(a, b LogEntry) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), a.Dot.Compare(b.Dot))
	})
	return out
}

func (l *Log) Apply(at Stamp, op Op) (State, error) {
	o, ok := op.(LogAppend)
	if !ok {
		return nil, badOp(TypeLog, op)
	}
	if err := checkStamp(&l.ctx, at, 1); err != nil {
		return nil, err
	}
	d := NewLog()
	dot := nextDot(&l.ctx, at.Replica)
	d.entries[dot] = logEntry{ts: tick(&l.clock, at.Time), data: slices.Clone(o.Data)}
	d.ctx.Add(dot)
	d.clock = l.clock
	l.merge(d)
	return d, nil
}

func (l *Log) Merge(other State) error {
	o, ok := other.(*Log)
	if !ok {
		return mismatch(TypeLog, other)
	}
	l.merge(o)
	return nil
}

func (l *Log) merge(o *Log) {
	for d, e := range o.entries {
		if _, ok := l.entries[d]; !ok {
			l.entries[d] = e // data is never modified, so it may be shared
			l.clock = max(l.clock, e.ts)
		}
	}
	l.ctx.Merge(&o.ctx)
}

func (l *Log) DeltaSince(peer *vv.Dots) State {
	d := NewLog()
	d.ctx = *l.ctx.Missing(peer)
	for dot, e := range l.entries {
		if !peer.Contains(dot) {
			d.entries[dot] = e
		}
	}
	return d
}

// Compact does nothing: a log removes nothing, so it keeps no removal
// records. (Truncating a log's prefix is the checkpointed channel's job.)
func (l *Log) Compact(vv.VV) {}

func (l *Log) Clone() State {
	return &Log{ctx: *l.ctx.Clone(), entries: maps.Clone(l.entries), clock: l.clock}
}

// Body: context | groups, one per replica sorted by name: replica, count,
// then per entry by seq: seq gap, timestamp (zigzag difference from the
// previous entry's, from 0 at first), data. A replica's own timestamps
// grow with its seqs, so a run of updates costs a few bytes each besides
// their data.
func (l *Log) MarshalBinary() ([]byte, error) {
	e := newEncoder()
	e.dots(&l.ctx)
	byRep := map[string][]vv.Dot{}
	for d := range l.entries {
		byRep[d.Replica] = append(byRep[d.Replica], d)
	}
	reps := slices.Sorted(maps.Keys(byRep))
	e.uvarint(uint64(len(reps)))
	for _, r := range reps {
		ds := byRep[r]
		slices.SortFunc(ds, vv.Dot.Compare)
		e.replica(r)
		e.uvarint(uint64(len(ds)))
		var prevSeq, prevTS uint64
		for _, d := range ds {
			le := l.entries[d]
			e.uvarint(d.Seq - prevSeq)
			e.zigzag(int64(le.ts - prevTS))
			e.bytes(le.data)
			prevSeq, prevTS = d.Seq, le.ts
		}
	}
	return e.finish(TypeLog), nil
}

func decodeLog(d *decoder) *Log {
	l := NewLog()
	l.ctx = *d.dots()
	groups := d.Count(2)
	for g := 0; g < groups && d.Err() == nil; g++ {
		r := d.replica()
		n := d.Count(3)
		var seq, ts uint64
		for i := 0; i < n && d.Err() == nil; i++ {
			gap := d.Uvarint()
			ts += uint64(d.zigzag())
			data := d.Bytes()
			if d.Err() != nil {
				break
			}
			seq += gap
			dot := vv.Dot{Replica: r, Seq: seq}
			if gap == 0 || seq > vv.MaxSeq {
				d.Failf("%w: log seqs of %q not increasing", ErrEncoding, r)
			} else if _, dup := l.entries[dot]; dup {
				d.Failf("%w: log entry %v twice", ErrEncoding, dot)
			} else if !l.ctx.Contains(dot) {
				d.Failf("%w: log entry %v outside the context", ErrEncoding, dot)
			}
			l.entries[dot] = logEntry{ts: ts, data: data}
			l.clock = max(l.clock, ts)
		}
	}
	// A log removes nothing, so its context is exactly its entries' dots
	// (all in it, none twice: equal counts mean equal sets). A context
	// claiming more would stop peers from ever sending the rest.
	if d.Err() == nil && l.ctx.Len() != uint64(len(l.entries)) {
		d.Failf("%w: log context %v holds %d dots for %d entries", ErrEncoding, &l.ctx, l.ctx.Len(), len(l.entries))
	}
	return l
}

var _ State = (*Log)(nil)
