package crdt

import (
	"errors"
	"fmt"
	"slices"

	"github.com/rime-dev/rime/crdt/internal/wire"
	"github.com/rime-dev/rime/crdt/vv"
)

// The encoding of a state, version 1:
//
//	version byte (1) | type byte | uvarint n | n replica names (strings) | body
//
// Replica IDs are long (node IDs derived from keys), so the body names
// replicas by their index in the table, in order of first use: an event
// costs its replica's name once per message, not once per event. The
// body is type-specific (see each type's encode) and written in a sorted
// order, so equal states encode to equal bytes.

const version = 1

var typeCodes = map[Type]byte{TypeLog: 1, TypeRegister: 2, TypeMap: 3, TypeSet: 4, TypeCounter: 5, TypeText: 6}

type encoder struct {
	body  []byte
	idx   map[string]uint64
	names []string
}

func newEncoder() *encoder { return &encoder{idx: map[string]uint64{}} }

func (e *encoder) uvarint(x uint64) { e.body = wire.AppendUvarint(e.body, x) }
func (e *encoder) bytes(p []byte)   { e.body = wire.AppendBytes(e.body, p) }
func (e *encoder) str(s string)     { e.body = wire.AppendString(e.body, s) }
func (e *encoder) bool(b bool) {
	if b {
		e.body = append(e.body, 1)
	} else {
		e.body = append(e.body, 0)
	}
}

// zigzag writes a signed difference.
func (e *encoder) zigzag(x int64) { e.uvarint(uint64(x<<1) ^ uint64(x>>63)) }

func (e *encoder) replica(r string) {
	i, ok := e.idx[r]
	if !ok {
		i = uint64(len(e.names))
		e.idx[r] = i
		e.names = append(e.names, r)
	}
	e.uvarint(i)
}

func (e *encoder) dot(d vv.Dot) {
	e.replica(d.Replica)
	e.uvarint(d.Seq)
}

func (e *encoder) dots(d *vv.Dots) {
	rs := d.Replicas()
	e.uvarint(uint64(len(rs)))
	for _, r := range rs {
		e.replica(r)
		e.body = vv.AppendRanges(e.body, d.Ranges(r))
	}
}

// dotList writes dots sorted (the caller's slice is not reordered).
func (e *encoder) dotList(ds []vv.Dot) {
	ds = slices.Clone(ds)
	slices.SortFunc(ds, vv.Dot.Compare)
	e.uvarint(uint64(len(ds)))
	for _, d := range ds {
		e.dot(d)
	}
}

// kills writes removal records sorted by their op's dot.
func (e *encoder) kills(k map[vv.Dot][]vv.Dot) {
	ops := make([]vv.Dot, 0, len(k))
	for d := range k {
		ops = append(ops, d)
	}
	slices.SortFunc(ops, vv.Dot.Compare)
	e.uvarint(uint64(len(ops)))
	for _, d := range ops {
		e.dot(d)
		e.dotList(k[d])
	}
}

func (e *encoder) finish(t Type) []byte {
	out := make([]byte, 0, 2+len(e.body)+8*len(e.names))
	out = append(out, version, typeCodes[t])
	out = wire.AppendUvarint(out, uint64(len(e.names)))
	for _, n := range e.names {
		out = wire.AppendString(out, n)
	}
	return append(out, e.body...)
}

type decoder struct {
	*wire.Reader
	names []string
}

func (d *decoder) bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Failf("%w: flag is neither 0 nor 1", ErrEncoding)
	return false
}

func (d *decoder) zigzag() int64 {
	u := d.Uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) replica() string {
	i := d.Uvarint()
	if d.Err() != nil {
		return ""
	}
	if i >= uint64(len(d.names)) {
		d.Failf("%w: replica index %d of %d", ErrEncoding, i, len(d.names))
		return ""
	}
	return d.names[i]
}

func (d *decoder) seq() uint64 {
	s := d.Uvarint()
	if d.Err() == nil && (s == 0 || s > vv.MaxSeq) {
		d.Failf("%w: seq %d", ErrEncoding, s)
	}
	return s
}

func (d *decoder) dot() vv.Dot {
	r := d.replica()
	return vv.Dot{Replica: r, Seq: d.seq()}
}

func (d *decoder) dots() *vv.Dots {
	n := d.Count(2)
	out := &vv.Dots{}
	for range n {
		r := d.replica()
		rs := vv.ReadRanges(d.Reader)
		if d.Err() != nil {
			break
		}
		if len(rs) == 0 || len(out.Ranges(r)) > 0 {
			d.Failf("%w: replica %q empty or repeated in a context", ErrEncoding, r)
			break
		}
		out.SetRanges(r, rs)
	}
	return out
}

func (d *decoder) dotList() []vv.Dot {
	n := d.Count(2)
	ds := make([]vv.Dot, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		x := d.dot()
		if i > 0 && x.Compare(ds[i-1]) <= 0 {
			d.Failf("%w: dot list not sorted at %v", ErrEncoding, x)
		}
		ds = append(ds, x)
	}
	return ds
}

// kills reads removal records; every op and every removed dot must be in
// ctx, which is read before them.
func (d *decoder) kills(ctx *vv.Dots) map[vv.Dot][]vv.Dot {
	n := d.Count(3)
	k := make(map[vv.Dot][]vv.Dot, n)
	var prev vv.Dot
	for i := 0; i < n && d.Err() == nil; i++ {
		op := d.dot()
		if i > 0 && op.Compare(prev) <= 0 {
			d.Failf("%w: removal records not sorted at %v", ErrEncoding, op)
		}
		prev = op
		k[op] = d.dotList()
		if d.Err() == nil && !ctx.Contains(op) {
			d.Failf("%w: removal %v outside the context", ErrEncoding, op)
		}
	}
	return k
}

// Decode reads a state written by MarshalBinary. It checks the state's
// invariants (every event it holds is in its context, no event twice), so
// a State it returns is safe to merge.
func Decode(b []byte) (State, error) {
	d := &decoder{Reader: wire.NewReader(b)}
	ver, code := d.Byte(), d.Byte()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncoding, err)
	}
	if ver != version {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrEncoding, ver, version)
	}
	var t Type
	for tt, c := range typeCodes {
		if c == code {
			t = tt
		}
	}
	if t == "" {
		return nil, fmt.Errorf("%w: unknown type code %d", ErrEncoding, code)
	}
	n := d.Count(1)
	d.names = make([]string, 0, n)
	seen := map[string]bool{}
	for range n {
		s := d.String()
		if d.Err() == nil && seen[s] {
			d.Failf("%w: replica %q twice in the table", ErrEncoding, s)
		}
		seen[s] = true
		d.names = append(d.names, s)
	}
	var s State
	switch t {
	case TypeLog:
		s = decodeLog(d)
	case TypeRegister:
		s = decodeRegister(d)
	case TypeMap:
		s = decodeORMap(d, true)
	case TypeSet:
		s = decodeORMap(d, false)
	case TypeCounter:
		s = decodeCounter(d)
	case TypeText:
		s = decodeText(d)
	}
	d.End()
	if err := d.Err(); err != nil {
		if errors.Is(err, ErrEncoding) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrEncoding, t, err)
	}
	return s, nil
}
