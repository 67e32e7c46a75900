package vv

import (
	"slices"
	"sort"
	"strings"
)

// Range is the dots Lo..Hi (inclusive) of one replica, 1 <= Lo <= Hi.
type Range struct{ Lo, Hi uint64 }

// Len is the number of dots in the range.
func (r Range) Len() uint64 { return r.Hi - r.Lo + 1 }

// Dots is a set of dots, kept per replica as sorted, disjoint,
// non-adjacent ranges, so a replica whose events were all seen costs one
// range however many there were. The zero value is an empty set ready to
// use; a nil *Dots may be read as empty.
type Dots struct {
	m map[string][]Range
}

// FromVV is the set of dots v covers.
func FromVV(v VV) *Dots {
	d := &Dots{}
	for r, n := range v {
		if n > 0 {
			d.AddRange(r, 1, n)
		}
	}
	return d
}

// Clone is a deep copy of d.
func (d *Dots) Clone() *Dots {
	c := &Dots{}
	if d == nil || len(d.m) == 0 {
		return c
	}
	c.m = make(map[string][]Range, len(d.m))
	for r, rs := range d.m {
		c.m[r] = slices.Clone(rs)
	}
	return c
}

// IsEmpty reports whether d holds no dot.
func (d *Dots) IsEmpty() bool { return d == nil || len(d.m) == 0 }

// Len is the number of dots in d.
func (d *Dots) Len() uint64 {
	var n uint64
	if d == nil {
		return 0
	}
	for _, rs := range d.m {
		for _, r := range rs {
			n += r.Len()
		}
	}
	return n
}

// Replicas are the replicas d holds dots of, sorted.
func (d *Dots) Replicas() []string {
	if d == nil {
		return nil
	}
	rs := make([]string, 0, len(d.m))
	for r := range d.m {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	return rs
}

// Ranges are replica r's dots in d, sorted. The slice belongs to d: do not
// modify it.
func (d *Dots) Ranges(r string) []Range {
	if d == nil {
		return nil
	}
	return d.m[r]
}

// Contains reports whether dot is in d.
func (d *Dots) Contains(dot Dot) bool {
	if d == nil {
		return false
	}
	rs := d.m[dot.Replica]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Hi >= dot.Seq })
	return i < len(rs) && rs[i].Lo <= dot.Seq
}

// Max is the highest seq of replica r in d (0 if none). A replica's next
// event is Max+1.
func (d *Dots) Max(r string) uint64 {
	if d == nil {
		return 0
	}
	rs := d.m[r]
	if len(rs) == 0 {
		return 0
	}
	return rs[len(rs)-1].Hi
}

// VV is the gap-free prefix of d: for each replica, the n such that 1..n
// are all in d.
func (d *Dots) VV() VV {
	v := VV{}
	if d == nil {
		return v
	}
	for r, rs := range d.m {
		if len(rs) > 0 && rs[0].Lo == 1 {
			v[r] = rs[0].Hi
		}
	}
	return v
}

// Add puts dot in d and reports whether it was new. A dot with Seq 0 is
// not a dot and is ignored.
func (d *Dots) Add(dot Dot) bool {
	if dot.Seq == 0 || d.Contains(dot) {
		return false
	}
	d.AddRange(dot.Replica, dot.Seq, dot.Seq)
	return true
}

// MaxSeq is the largest seq a dot may have. The limit keeps range
// arithmetic (Hi+1) from wrapping; no replica makes 2^62 events.
const MaxSeq = 1 << 62

// AddRange puts replica r's dots lo..hi in d. An empty or invalid range
// (lo == 0, lo > hi or hi > MaxSeq) is ignored.
func (d *Dots) AddRange(r string, lo, hi uint64) {
	if lo == 0 || lo > hi || hi > MaxSeq {
		return
	}
	if d.m == nil {
		d.m = map[string][]Range{}
	}
	d.m[r] = insertRange(d.m[r], Range{lo, hi})
}

// insertRange merges nr into the sorted, disjoint, non-adjacent rs.
func insertRange(rs []Range, nr Range) []Range {
	// The common case: appending after the last range.
	if n := len(rs); n == 0 || nr.Lo > rs[n-1].Hi+1 {
		return append(rs, nr)
	} else if nr.Lo >= rs[n-1].Lo {
		rs[n-1].Hi = max(rs[n-1].Hi, nr.Hi)
		return rs
	}
	// First range that touches or follows nr.
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Hi+1 >= nr.Lo })
	j := i
	for j < len(rs) && rs[j].Lo <= nr.Hi+1 {
		nr.Lo = min(nr.Lo, rs[j].Lo)
		nr.Hi = max(nr.Hi, rs[j].Hi)
		j++
	}
	return slices.Replace(rs, i, j, nr)
}

// Merge adds every dot of o to d.
func (d *Dots) Merge(o *Dots) {
	if o == nil {
		return
	}
	for r, rs := range o.m {
		for _, x := range rs {
			d.AddRange(r, x.Lo, x.Hi)
		}
	}
}

// Missing is the set of dots in d and not in o: what a peer that has seen
// o lacks of d.
func (d *Dots) Missing(o *Dots) *Dots {
	out := &Dots{}
	if d == nil {
		return out
	}
	for r, rs := range d.m {
		var os []Range
		if o != nil {
			os = o.m[r]
		}
		if diff := subtract(rs, os); len(diff) > 0 {
			if out.m == nil {
				out.m = map[string][]Range{}
			}
			out.m[r] = diff
		}
	}
	return out
}

// subtract is a \ b for sorted disjoint range lists.
func subtract(a, b []Range) []Range {
	var out []Range
	j := 0
	for _, x := range a {
		lo := x.Lo
		for j < len(b) && b[j].Hi < lo {
			j++
		}
		k := j
		for k < len(b) && b[k].Lo <= x.Hi {
			if b[k].Lo > lo {
				out = append(out, Range{lo, b[k].Lo - 1})
			}
			if b[k].Hi >= x.Hi {
				lo = x.Hi + 1
				break
			}
			lo = b[k].Hi + 1
			k++
		}
		if lo <= x.Hi && lo != 0 {
			out = append(out, Range{lo, x.Hi})
		}
	}
	return out
}

// Meet is the set of dots in both d and o.
func (d *Dots) Meet(o *Dots) *Dots {
	// a ∩ b = a \ (a \ b)
	return d.Missing(d.Missing(o))
}

// Compare says how d relates to o as sets of events.
func (d *Dots) Compare(o *Dots) Ordering {
	return combine(!o.Missing(d).IsEmpty(), !d.Missing(o).IsEmpty())
}

// Equal reports whether d and o hold the same dots.
func (d *Dots) Equal(o *Dots) bool { return d.Compare(o) == Equal }

// String is "{a:1-3,5 b:1}", replicas sorted.
func (d *Dots) String() string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, r := range d.Replicas() {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(r)
		sb.WriteByte(':')
		for k, x := range d.m[r] {
			if k > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(uitoa(x.Lo))
			if x.Hi != x.Lo {
				sb.WriteByte('-')
				sb.WriteString(uitoa(x.Hi))
			}
		}
	}
	sb.WriteByte('}')
	return sb.String()
}
