package spec

import (
	"fmt"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/diag"
)

// Theorem is one rule from theorems.cue. Whether it fires is decided by
// CUE, by filling rules.s with a situation (see the engine); this is the
// part that does not depend on the situation.
type Theorem struct {
	Name      string `json:"name"`
	Title     string `json:"title"`
	Cite      string `json:"cite"`
	Statement string `json:"statement"`
	Effect    string `json:"effect"`
	Blocks    string `json:"blocks"`
	// Demand is the capability a "demand" theorem adds to the stack.
	Demand string   `json:"demand,omitempty"`
	Pos    diag.Pos `json:"-"`
}

// Theorem effects.
const (
	Forbid = "forbid"
	Demand = "demand"
	Caveat = "caveat"
)

func (l *Loader) decodeTheorems() error {
	it, err := l.Rules().LookupPath(cue.ParsePath("theorems")).Fields()
	if err != nil {
		return fmt.Errorf("theorems: %w", err)
	}
	for it.Next() {
		v := it.Value()
		var t struct {
			Title, Cite, Statement, Effect, Blocks string
			Demand                                 struct{ Capability string }
		}
		// Decode only the situation-independent fields.
		for _, f := range []struct {
			name string
			dst  *string
		}{{"title", &t.Title}, {"cite", &t.Cite}, {"statement", &t.Statement}, {"effect", &t.Effect}, {"blocks", &t.Blocks}} {
			s, err := v.LookupPath(cue.ParsePath(f.name)).String()
			if err != nil {
				return fmt.Errorf("theorems.%s.%s: %w", it.Selector(), f.name, err)
			}
			*f.dst = s
		}
		if d := v.LookupPath(cue.ParsePath("demand.capability")); d.Exists() {
			t.Demand.Capability, _ = d.String()
		}
		l.Theorems = append(l.Theorems, Theorem{
			Name: it.Selector().String(), Title: t.Title, Cite: t.Cite, Statement: t.Statement,
			// The struct's own position is the `[string]: #Theorem`
			// pattern; the title is the first line of the theorem itself.
			Effect: t.Effect, Blocks: t.Blocks, Demand: t.Demand.Capability, Pos: PosOf(v.LookupPath(cue.ParsePath("title"))),
		})
	}
	return nil
}
