package crdt

import (
	"maps"
	"slices"

	"github.com/rime-dev/rime/crdt/vv"
)

// orMap is the dot store behind Map and Set (an optimized observed-remove
// map, as in Bieniusa et al.'s OR-Set without tombstones and Almeida,
// Shoker & Baquero's delta-state causal CRDTs):
//
//   - every write of a key is an event with a dot, and the key holds the
//     dots of its live writes (one, or a few after concurrent writes);
//   - a write or a delete of a key removes the dots of the writes the
//     replica had seen; a removed dot stays in the causal context, so a
//     copy of its write arriving late is recognized as dead and dropped,
//     and no tombstone is kept for it;
//   - merging two states keeps a write if both have it, or if one has it
//     and the other has never seen it.
//
// That much is the classic state-based design, and a full-state merge
// needs nothing more. Anti-entropy by context, though, sends a peer only
// the events it has not seen, and a delete that removes a write the peer
// has seen would never reach it: the peer knows the write's dot already.
// So each removal is also an event with a dot of its own and a record of
// the dots it removed (see removals). A peer that has not seen the
// removal's dot gets the record. Records are the only metadata that grows
// with removals, and Compact drops them once every replica has seen them.
type orMap struct {
	ctx   vv.Dots
	keys  map[string][]mapEntry // live writes of each key, sorted by dot
	where map[vv.Dot]string     // the key of each live write
	rm    removals
	// doomed are writes removed before this replica saw them: their dots
	// are not in ctx (see removals) and a copy that arrives is dropped.
	doomed map[vv.Dot]bool
	clock  uint64
}

type mapEntry struct {
	dot   vv.Dot
	ts    uint64
	value []byte
}

func newORMap() orMap {
	return orMap{keys: map[string][]mapEntry{}, where: map[vv.Dot]string{}, rm: newRemovals(), doomed: map[vv.Dot]bool{}}
}

func (m *orMap) liveDots(key string) []vv.Dot {
	es := m.keys[key]
	ds := make([]vv.Dot, len(es))
	for i, e := range es {
		ds[i] = e.dot
	}
	return ds
}

func (m *orMap) add(key string, e mapEntry) {
	es := m.keys[key]
	i, _ := slices.BinarySearchFunc(es, e.dot, func(x mapEntry, d vv.Dot) int { return x.dot.Compare(d) })
	m.keys[key] = slices.Insert(es, i, e)
	m.where[e.dot] = key
	m.clock = max(m.clock, e.ts)
}

func (m *orMap) drop(d vv.Dot) {
	key, ok := m.where[d]
	if !ok {
		return
	}
	delete(m.where, d)
	es := slices.DeleteFunc(m.keys[key], func(x mapEntry) bool { return x.dot == d })
	if len(es) == 0 {
		delete(m.keys, key)
	} else {
		m.keys[key] = es
	}
}

// write makes key's value value (put) or absent (delete, put false),
// removing the writes seen so far, and returns the delta.
func (m *orMap) write(at Stamp, key string, value []byte, put bool) orMap {
	d := newORMap()
	old := m.liveDots(key)
	if !put && len(old) == 0 {
		return d // nothing to delete: no event
	}
	dot := nextDot(&m.ctx, at.Replica)
	ts := tick(&m.clock, at.Time)
	if put {
		d.add(key, mapEntry{dot: dot, ts: ts, value: slices.Clone(value)})
	}
	if len(old) > 0 {
		d.rm.recs[dot] = old
	}
	// Only the new event: a peer learns the removed writes' dots from
	// the writes themselves (with their own records) or as doomed.
	d.ctx.Add(dot)
	d.clock = ts
	m.merge(&d)
	return d
}

func (m *orMap) has(d vv.Dot) bool { _, ok := m.where[d]; return ok }

func (m *orMap) merge(o *orMap) {
	// Removal records first, so that a write removed in o's records is
	// dropped if it is also among o's writes (it is not, in a state
	// Decode accepts; merging must still not depend on that).
	raised := m.rm.join(o.rm.stable)
	for op, ks := range o.rm.recs {
		if !m.rm.learn(op, ks) {
			continue
		}
		for _, x := range ks {
			if m.has(x) {
				m.drop(x)
			} else if !m.ctx.Contains(x) {
				m.doomed[x] = true
			}
		}
	}
	// Writes of o this replica has not seen. One it has seen and does not
	// hold was removed here.
	for k, es := range o.keys {
		for _, e := range es {
			if !m.has(e.dot) && !m.ctx.Contains(e.dot) && !m.doomed[e.dot] {
				m.add(k, e)
			}
		}
	}
	// Writes held here that o has seen removed. Walk whichever is
	// smaller: o's context (a delta's is small) or the writes held here.
	var dead []vv.Dot
	if o.ctx.Len() <= uint64(len(m.where)) {
		for _, r := range o.ctx.Replicas() {
			for _, x := range o.ctx.Ranges(r) {
				for s := x.Lo; s <= x.Hi; s++ {
					if d := (vv.Dot{Replica: r, Seq: s}); m.has(d) && !o.has(d) {
						dead = append(dead, d)
					}
				}
			}
		}
	} else {
		for d := range m.where {
			if o.ctx.Contains(d) && !o.has(d) {
				dead = append(dead, d)
			}
		}
	}
	for _, d := range dead {
		m.drop(d)
	}
	m.ctx.Merge(&o.ctx)
	for x := range m.doomed {
		if m.ctx.Contains(x) {
			delete(m.doomed, x)
		}
	}
	if raised {
		m.rm.compact(nil)
	}
	m.clock = max(m.clock, o.clock)
}

func (m *orMap) deltaSince(peer *vv.Dots) orMap {
	d := newORMap()
	d.ctx = *m.ctx.Missing(peer)
	for k, es := range m.keys {
		for _, e := range es {
			if !peer.Contains(e.dot) {
				d.add(k, e)
			}
		}
	}
	d.rm = m.rm.since(peer)
	return d
}

func (m *orMap) compact(stable vv.VV) { m.rm.compact(stable) }

func (m *orMap) clone() orMap {
	c := orMap{ctx: *m.ctx.Clone(), keys: make(map[string][]mapEntry, len(m.keys)),
		where: maps.Clone(m.where), rm: m.rm.clone(), doomed: maps.Clone(m.doomed), clock: m.clock}
	for k, es := range m.keys {
		c.keys[k] = slices.Clone(es)
	}
	return c
}

// Body: context | if valued, the smallest timestamp (base) | keys, sorted:
// key, live writes by dot: dot, and if valued, timestamp - base and value
// | removal records.
func (m *orMap) encode(t Type, valued bool) []byte {
	e := newEncoder()
	e.dots(&m.ctx)
	var base uint64
	if valued {
		first := true
		for _, es := range m.keys {
			for _, x := range es {
				if first || x.ts < base {
					base, first = x.ts, false
				}
			}
		}
		e.uvarint(base)
	}
	keys := slices.Sorted(maps.Keys(m.keys))
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		es := m.keys[k]
		e.uvarint(uint64(len(es)))
		for _, x := range es {
			e.dot(x.dot)
			if valued {
				e.uvarint(x.ts - base)
				e.bytes(x.value)
			}
		}
	}
	m.rm.encode(e)
	return e.finish(t)
}

func decodeORMapBody(d *decoder, valued bool) orMap {
	m := newORMap()
	m.ctx = *d.dots()
	var base uint64
	if valued {
		base = d.Uvarint()
	}
	nkeys := d.Count(2)
	prevKey := ""
	for i := 0; i < nkeys && d.Err() == nil; i++ {
		k := d.String()
		if d.Err() == nil && i > 0 && k <= prevKey {
			d.Failf("%w: keys not sorted at %q", ErrEncoding, k)
		}
		prevKey = k
		n := d.Count(2)
		if d.Err() == nil && n == 0 {
			d.Failf("%w: key %q without writes", ErrEncoding, k)
		}
		var prev vv.Dot
		for j := 0; j < n && d.Err() == nil; j++ {
			x := mapEntry{dot: d.dot()}
			if valued {
				ts := d.Uvarint()
				x.ts = base + ts
				if d.Err() == nil && x.ts < base {
					d.Failf("%w: timestamp overflows", ErrEncoding)
				}
				x.value = d.Bytes()
			}
			switch {
			case d.Err() != nil:
			case j > 0 && x.dot.Compare(prev) <= 0:
				d.Failf("%w: writes of %q not sorted", ErrEncoding, k)
			case m.has(x.dot):
				d.Failf("%w: write %v twice", ErrEncoding, x.dot)
			case !m.ctx.Contains(x.dot):
				d.Failf("%w: write %v outside the context", ErrEncoding, x.dot)
			default:
				m.add(k, x)
			}
			prev = x.dot
		}
	}
	m.rm = decodeRemovals(d, &m.ctx)
	for _, ks := range m.rm.recs {
		for _, x := range ks {
			switch {
			case d.Err() != nil:
			case m.has(x):
				d.Failf("%w: removed write %v still held", ErrEncoding, x)
			case !m.ctx.Contains(x):
				m.doomed[x] = true
			}
		}
	}
	return m
}

func decodeORMap(d *decoder, valued bool) State {
	m := decodeORMapBody(d, valued)
	if valued {
		return &Map{m: m}
	}
	return &Set{m: m}
}

// Map is a map from string keys to last-writer-wins registers. Concurrent
// writes of a key are both kept until one is overwritten, and Get returns
// the one with the highest (timestamp, replica, seq). A delete removes
// the writes its replica has seen: a concurrent write survives it, as in
// Riak's maps and Automerge, so a concurrent edit is never lost silently.
// Deleted keys leave no tombstone once Compact has run.
type Map struct{ m orMap }

// NewMap is an empty map.
func NewMap() *Map { return &Map{m: newORMap()} }

func (p *Map) Type() Type        { return TypeMap }
func (p *Map) Context() *vv.Dots { return &p.m.ctx }

// Get is key's value. The value is shared with the map: do not modify it.
func (p *Map) Get(key string) ([]byte, bool) {
	es := p.m.keys[key]
	if len(es) == 0 {
		return nil, false
	}
	w := es[0]
	for _, e := range es[1:] {
		if newer(e.ts, e.dot, w.ts, w.dot) {
			w = e
		}
	}
	return w.value, true
}

// Keys are the keys present, sorted.
func (p *Map) Keys() []string { return slices.Sorted(maps.Keys(p.m.keys)) }

// Len is the number of keys present.
func (p *Map) Len() int { return len(p.m.keys) }

func (p *Map) Apply(at Stamp, op Op) (State, error) {
	if err := checkStamp(&p.m.ctx, at, 1); err != nil {
		return nil, err
	}
	switch o := op.(type) {
	case MapPut:
		d := p.m.write(at, o.Key, o.Value, true)
		return &Map{m: d}, nil
	case MapDelete:
		d := p.m.write(at, o.Key, nil, false)
		return &Map{m: d}, nil
	}
	return nil, badOp(TypeMap, op)
}

func (p *Map) Merge(other State) error {
	o, ok := other.(*Map)
	if !ok {
		return mismatch(TypeMap, other)
	}
	p.m.merge(&o.m)
	return nil
}

func (p *Map) DeltaSince(peer *vv.Dots) State { return &Map{m: p.m.deltaSince(peer)} }
func (p *Map) Compact(stable vv.VV)           { p.m.compact(stable) }
func (p *Map) Clone() State                   { return &Map{m: p.m.clone()} }
func (p *Map) MarshalBinary() ([]byte, error) { return p.m.encode(TypeMap, true), nil }

// Set is an observed-remove set of strings in which an add concurrent
// with a remove wins. Each element holds the dots of its live adds (one
// per replica that added it concurrently, at most), and removed elements
// leave nothing behind once Compact has run.
type Set struct{ m orMap }

// NewSet is an empty set.
func NewSet() *Set { return &Set{m: newORMap()} }

func (s *Set) Type() Type        { return TypeSet }
func (s *Set) Context() *vv.Dots { return &s.m.ctx }

// Contains reports whether elem is in the set.
func (s *Set) Contains(elem string) bool { return len(s.m.keys[elem]) > 0 }

// Elems are the elements, sorted.
func (s *Set) Elems() []string { return slices.Sorted(maps.Keys(s.m.keys)) }

// Len is the number of elements.
func (s *Set) Len() int { return len(s.m.keys) }

func (s *Set) Apply(at Stamp, op Op) (State, error) {
	if err := checkStamp(&s.m.ctx, at, 1); err != nil {
		return nil, err
	}
	switch o := op.(type) {
	case SetAdd:
		// A set's adds carry the hybrid timestamp in memory like a map's
		// writes, but nothing reads it and it is not encoded.
		d := s.m.write(at, o.Elem, nil, true)
		return &Set{m: d}, nil
	case SetRemove:
		d := s.m.write(at, o.Elem, nil, false)
		return &Set{m: d}, nil
	}
	return nil, badOp(TypeSet, op)
}

func (s *Set) Merge(other State) error {
	o, ok := other.(*Set)
	if !ok {
		return mismatch(TypeSet, other)
	}
	s.m.merge(&o.m)
	return nil
}

func (s *Set) DeltaSince(peer *vv.Dots) State { return &Set{m: s.m.deltaSince(peer)} }
func (s *Set) Compact(stable vv.VV)           { s.m.compact(stable) }
func (s *Set) Clone() State                   { return &Set{m: s.m.clone()} }
func (s *Set) MarshalBinary() ([]byte, error) { return s.m.encode(TypeSet, false), nil }

var (
	_ State = (*Map)(nil)
	_ State = (*Set)(nil)
)
