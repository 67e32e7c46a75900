package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rime-dev/rime/spec"
)

// demand is what a layer needs of a capability: dimension -> value, where
// a value is a string, an int64, a bool or a []string.
type demand map[string]any

// key renders d canonically, for memo keys and stable output.
func (d demand) key() string {
	ks := make([]string, 0, len(d))
	for k := range d {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%s=%v;", k, d[k])
	}
	return b.String()
}

// String renders d as {k: v, ...} in key order.
func (d demand) String() string {
	if len(d) == 0 {
		return "{}"
	}
	ks := make([]string, 0, len(d))
	for k := range d {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%s: %s", k, show(d[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func show(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	default:
		return fmt.Sprint(x)
	}
}

// shortfall is one dimension on which a guarantee misses a demand.
type shortfall struct {
	Dim       string
	Want, Got any
}

func (s shortfall) String() string {
	if s.Got == nil {
		return fmt.Sprintf("states no %s (%s needed)", s.Dim, show(s.Want))
	}
	return fmt.Sprintf("%s %s, short of %s", s.Dim, show(s.Got), show(s.Want))
}

// meets compares guarantees against a demand, dimension by dimension,
// using only the kinds declared in spec/cue/models.cue.
func meets(l *spec.Loader, g, d demand) []shortfall {
	var out []shortfall
	ks := make([]string, 0, len(d))
	for k := range d {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, dim := range ks {
		want := d[dim]
		got, ok := g[dim]
		if !ok {
			if dimKind(l, dim) == "flag" && want == false {
				continue // not promising a flag meets a demand for false
			}
			out = append(out, shortfall{Dim: dim, Want: want})
			continue
		}
		if !atLeast(l, dim, got, want) {
			out = append(out, shortfall{Dim: dim, Want: want, Got: got})
		}
	}
	return out
}

func dimKind(l *spec.Loader, dim string) string { return l.Dimensions[dim].Kind }

// atLeast reports whether got is at least as strong as want along dim.
func atLeast(l *spec.Loader, dim string, got, want any) bool {
	d := l.Dimensions[dim]
	switch d.Kind {
	case "lattice":
		gs, _ := got.(string)
		ws, _ := want.(string)
		return l.Lattice.AtLeast(gs, ws)
	case "chain":
		gs, _ := got.(string)
		ws, _ := want.(string)
		gi, wi := d.ChainIndex(gs), d.ChainIndex(ws)
		return gi >= 0 && wi >= 0 && gi >= wi
	case "int":
		gi, _ := got.(int64)
		wi, _ := want.(int64)
		return gi >= wi
	case "flag":
		gb, _ := got.(bool)
		wb, _ := want.(bool)
		return gb || !wb
	case "set":
		gs, _ := got.([]string)
		ws, _ := want.([]string)
		have := map[string]bool{}
		for _, s := range gs {
			have[s] = true
		}
		for _, s := range ws {
			if !have[s] {
				return false
			}
		}
		return true
	case "exact":
		return fmt.Sprint(got) == fmt.Sprint(want)
	}
	return false
}
