package crdt

import (
	"slices"

	"github.com/rime-dev/rime/crdt/vv"
)

// Register is a last-writer-wins register: the write with the highest
// (timestamp, replica, seq) wins. Timestamps are hybrid (see Stamp), so
// a write always wins over every write its replica had seen.
type Register struct {
	ctx   vv.Dots
	set   bool
	dot   vv.Dot
	ts    uint64
	value []byte
	clock uint64
}

// NewRegister is an unwritten register.
func NewRegister() *Register { return &Register{} }

func (g *Register) Type() Type        { return TypeRegister }
func (g *Register) Context() *vv.Dots { return &g.ctx }

// Get is the register's value and whether it was ever written. The value
// is shared with the register: do not modify it.
func (g *Register) Get() ([]byte, bool) { return g.value, g.set }

func (g *Register) Apply(at Stamp, op Op) (State, error) {
	o, ok := op.(RegisterSet)
	if !ok {
		return nil, badOp(TypeRegister, op)
	}
	if err := checkStamp(&g.ctx, at, 1); err != nil {
		return nil, err
	}
	d := &Register{set: true, dot: nextDot(&g.ctx, at.Replica), ts: tick(&g.clock, at.Time), value: slices.Clone(o.Value)}
	d.ctx.Add(d.dot)
	d.clock = d.ts
	g.merge(d)
	return d, nil
}

func (g *Register) Merge(other State) error {
	o, ok := other.(*Register)
	if !ok {
		return mismatch(TypeRegister, other)
	}
	g.merge(o)
	return nil
}

func (g *Register) merge(o *Register) {
	if o.set && (!g.set || newer(o.ts, o.dot, g.ts, g.dot)) {
		g.set, g.dot, g.ts, g.value = true, o.dot, o.ts, o.value
	}
	g.clock = max(g.clock, o.clock, o.ts)
	g.ctx.Merge(&o.ctx)
}

// DeltaSince sends the value only if the peer has not seen the write that
// made it: a peer that has seen it holds it or a newer one.
func (g *Register) DeltaSince(peer *vv.Dots) State {
	d := &Register{ctx: *g.ctx.Missing(peer)}
	if g.set && !peer.Contains(g.dot) {
		d.set, d.dot, d.ts, d.value, d.clock = true, g.dot, g.ts, g.value, g.ts
	}
	return d
}

// Compact does nothing: a register keeps no removal records.
func (g *Register) Compact(vv.VV) {}

func (g *Register) Clone() State {
	c := *g
	c.ctx = *g.ctx.Clone()
	return &c
}

// Body: context | set flag | if set: dot, timestamp, value.
func (g *Register) MarshalBinary() ([]byte, error) {
	e := newEncoder()
	e.dots(&g.ctx)
	e.bool(g.set)
	if g.set {
		e.dot(g.dot)
		e.uvarint(g.ts)
		e.bytes(g.value)
	}
	return e.finish(TypeRegister), nil
}

func decodeRegister(d *decoder) *Register {
	g := &Register{}
	g.ctx = *d.dots()
	if g.set = d.bool(); g.set {
		g.dot = d.dot()
		g.ts = d.Uvarint()
		g.value = d.Bytes()
		g.clock = g.ts
		if d.Err() == nil && !g.ctx.Contains(g.dot) {
			d.Failf("%w: register write %v outside the context", ErrEncoding, g.dot)
		}
	}
	return g
}

var _ State = (*Register)(nil)
