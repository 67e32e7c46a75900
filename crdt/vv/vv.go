package vv

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Dot names one event: the Seq-th event of replica Replica, counting from 1.
type Dot struct {
	Replica string
	Seq     uint64
}

func (d Dot) String() string { return d.Replica + ":" + strconv.FormatUint(d.Seq, 10) }

// Compare orders dots by replica, then by seq.
func (d Dot) Compare(o Dot) int {
	if c := strings.Compare(d.Replica, o.Replica); c != 0 {
		return c
	}
	switch {
	case d.Seq < o.Seq:
		return -1
	case d.Seq > o.Seq:
		return 1
	}
	return 0
}

// ParseDot reads "replica:seq".
func ParseDot(s string) (Dot, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return Dot{}, fmt.Errorf("vv: dot %q is not replica:seq", s)
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil || n == 0 {
		return Dot{}, fmt.Errorf("vv: dot %q: seq must be a positive integer", s)
	}
	return Dot{Replica: s[:i], Seq: n}, nil
}

// Ordering is how two version vectors or dot sets relate.
type Ordering int

const (
	// Equal: both have seen the same events.
	Equal Ordering = iota
	// Before: the first has seen a strict subset of the second's events.
	Before
	// After: the first has seen a strict superset.
	After
	// Concurrent: each has seen an event the other has not.
	Concurrent
)

func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	case Concurrent:
		return "concurrent"
	}
	return "unknown"
}

// combine folds per-replica comparisons: lt says the first lacks something
// the second has, gt the reverse.
func combine(lt, gt bool) Ordering {
	switch {
	case lt && gt:
		return Concurrent
	case lt:
		return Before
	case gt:
		return After
	}
	return Equal
}

// VV is a version vector: for each replica, the number of its events seen,
// all of them, in order. A missing replica counts as 0. The nil VV is
// empty and may be read but not written.
type VV map[string]uint64

// Get is v[r], for symmetry with Dots.Max.
func (v VV) Get(r string) uint64 { return v[r] }

// Covers reports whether v has seen d.
func (v VV) Covers(d Dot) bool { return d.Seq >= 1 && d.Seq <= v[d.Replica] }

// Clone is a copy of v (never nil).
func (v VV) Clone() VV {
	c := make(VV, len(v))
	for r, n := range v {
		if n > 0 {
			c[r] = n
		}
	}
	return c
}

// Merge raises v to the pointwise maximum of v and o.
func (v VV) Merge(o VV) {
	for r, n := range o {
		if n > v[r] {
			v[r] = n
		}
	}
}

// Meet is the pointwise minimum of v and o: the events both have seen.
// The meet of every replica's VV is what every replica has seen, the
// causally stable events.
func (v VV) Meet(o VV) VV {
	m := VV{}
	for r, n := range v {
		if k := o[r]; k > 0 {
			m[r] = min(n, k)
		}
	}
	return m
}

// Compare says how v relates to o as vector clocks.
func (v VV) Compare(o VV) Ordering {
	var lt, gt bool
	for r, n := range v {
		if n > o[r] {
			gt = true
		}
	}
	for r, n := range o {
		if n > v[r] {
			lt = true
		}
	}
	return combine(lt, gt)
}

// Equal reports whether v and o have seen the same events.
func (v VV) Equal(o VV) bool { return v.Compare(o) == Equal }

// Replicas are v's replicas with a non-zero count, sorted.
func (v VV) Replicas() []string {
	rs := make([]string, 0, len(v))
	for r, n := range v {
		if n > 0 {
			rs = append(rs, r)
		}
	}
	slices.Sort(rs)
	return rs
}

// Missing is the set of events v has seen and o has not.
func (v VV) Missing(o VV) *Dots {
	d := &Dots{}
	for r, n := range v {
		if k := o[r]; n > k {
			d.AddRange(r, k+1, n)
		}
	}
	return d
}

// String is "{a:3 b:1}", replicas sorted.
func (v VV) String() string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, r := range v.Replicas() {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(Dot{r, v[r]}.String())
	}
	sb.WriteByte('}')
	return sb.String()
}
