package crdt

import (
	"maps"
	"slices"

	"github.com/rime-dev/rime/crdt/vv"
)

// Counter is a PN-counter: each replica keeps the sum of its own
// increments and of its own decrements, and the value is the difference
// of the totals. A replica's entry carries the seq of its latest
// operation, which covers all its earlier ones, so merging keeps the
// entry with the higher seq and anti-entropy sends one entry per replica
// the peer is behind on, however many operations that replica made.
type Counter struct {
	ctx vv.Dots
	per map[string]counterEntry
}

type counterEntry struct {
	seq uint64
	// Sums of increments and decrements; they wrap around like the
	// int64 they stand for.
	inc, dec uint64
}

// NewCounter is a counter at 0.
func NewCounter() *Counter { return &Counter{per: map[string]counterEntry{}} }

func (c *Counter) Type() Type        { return TypeCounter }
func (c *Counter) Context() *vv.Dots { return &c.ctx }

// Value is the counter's value.
func (c *Counter) Value() int64 {
	var v uint64
	for _, e := range c.per {
		v += e.inc - e.dec
	}
	return int64(v)
}

func (c *Counter) Apply(at Stamp, op Op) (State, error) {
	o, ok := op.(CounterAdd)
	if !ok {
		return nil, badOp(TypeCounter, op)
	}
	if err := checkStamp(&c.ctx, at, 1); err != nil {
		return nil, err
	}
	e := c.per[at.Replica]
	e.seq = nextDot(&c.ctx, at.Replica).Seq
	if o.Delta >= 0 {
		e.inc += uint64(o.Delta)
	} else {
		e.dec += uint64(-o.Delta) // -MinInt64 wraps to itself: still right mod 2^64
	}
	d := NewCounter()
	d.per[at.Replica] = e
	d.ctx.Add(vv.Dot{Replica: at.Replica, Seq: e.seq})
	c.merge(d)
	return d, nil
}

func (c *Counter) Merge(other State) error {
	o, ok := other.(*Counter)
	if !ok {
		return mismatch(TypeCounter, other)
	}
	c.merge(o)
	return nil
}

func (c *Counter) merge(o *Counter) {
	for r, e := range o.per {
		if e.seq > c.per[r].seq {
			c.per[r] = e
			// The entry sums every operation of r up to its seq.
			c.ctx.AddRange(r, 1, e.seq)
		}
	}
	c.ctx.Merge(&o.ctx)
}

func (c *Counter) DeltaSince(peer *vv.Dots) State {
	d := NewCounter()
	d.ctx = *c.ctx.Missing(peer)
	for r, e := range c.per {
		if !peer.Contains(vv.Dot{Replica: r, Seq: e.seq}) {
			d.per[r] = e
		}
	}
	return d
}

// Compact does nothing: a counter keeps no removal records.
func (c *Counter) Compact(vv.VV) {}

func (c *Counter) Clone() State { return &Counter{ctx: *c.ctx.Clone(), per: maps.Clone(c.per)} }

// Body: context | entries by replica name: replica, seq, increments,
// decrements.
func (c *Counter) MarshalBinary() ([]byte, error) {
	e := newEncoder()
	e.dots(&c.ctx)
	reps := slices.Sorted(maps.Keys(c.per))
	e.uvarint(uint64(len(reps)))
	for _, r := range reps {
		x := c.per[r]
		e.replica(r)
		e.uvarint(x.seq)
		e.uvarint(x.inc)
		e.uvarint(x.dec)
	}
	return e.finish(TypeCounter), nil
}

func decodeCounter(d *decoder) *Counter {
	c := NewCounter()
	c.ctx = *d.dots()
	n := d.Count(4)
	prev := ""
	for i := 0; i < n && d.Err() == nil; i++ {
		r := d.replica()
		x := counterEntry{seq: d.seq(), inc: d.Uvarint(), dec: d.Uvarint()}
		switch {
		case d.Err() != nil:
		case i > 0 && r <= prev:
			d.Failf("%w: counter replicas not sorted at %q", ErrEncoding, r)
		case !c.ctx.Contains(vv.Dot{Replica: r, Seq: x.seq}):
			d.Failf("%w: counter entry %s:%d outside the context", ErrEncoding, r, x.seq)
		}
		prev = r
		c.per[r] = x
	}
	return c
}

var _ State = (*Counter)(nil)
