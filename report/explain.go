package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/spec"
)

// Explain writes the proof of one class in plain words: what it needs,
// why each layer is there, which fact or lower guarantee discharged each
// assumption, which defaults the app relied on, and, for an unsatisfiable
// class, which theorem blocked what and which relaxation would work.
func Explain(w io.Writer, app *spec.App, c engine.ClassPlan) {
	fmt.Fprintf(w, "class %s of app %s\n", c.Name, app.Name)
	for _, cl := range app.Classes {
		if cl.Name == c.Name {
			r := cl.Requirement
			fmt.Fprintf(w, "  needs: consistency %s, durability %d, available %s, confidential %v, type %s  (%s)\n",
				r.Consistency, r.Durability, r.Available, r.Confidential, r.Type, cl.Pos)
		}
	}
	for _, cl := range app.Compute {
		if cl.Name == c.Name {
			fmt.Fprintf(w, "  needs: offload %s, %d clones of %s  (%s)\n", cl.Offload, cl.Clones, cl.Module, cl.Pos)
		}
	}
	if c.Satisfiable {
		var names []string
		for _, l := range c.Stack {
			names = append(names, l.Protocol)
		}
		fmt.Fprintf(w, "\nSATISFIABLE: %s\n  stack, bottom to top: %s  (cost %g)\n", guarantees(c.Guarantees), strings.Join(names, " > "), c.Cost)
		fmt.Fprintf(w, "\nwhy:\n")
		for i, s := range c.Proof {
			indent := strings.Repeat("  ", c.Depth[i]+1)
			fmt.Fprintf(w, "%s- %s\n%s    because %s", indent, s.Claim, indent, s.By)
			if s.Source != "" {
				fmt.Fprintf(w, "  [%s]", s.Source)
			}
			fmt.Fprintln(w)
		}
	} else {
		fmt.Fprintf(w, "\nUNSATISFIABLE\n")
		for _, u := range c.Unmet {
			if u.Theorem != "" {
				fmt.Fprintf(w, "  - %s is blocked by %s: %s\n      %s\n      [%s]\n", u.Requirement, u.Theorem, u.Reason, u.Cite, u.Source)
			} else {
				fmt.Fprintf(w, "  - %s: %s\n", u.Requirement, u.Reason)
			}
		}
		if len(c.Why) > 0 {
			fmt.Fprintf(w, "\nwhat the planner tried:\n")
			for _, l := range c.Why {
				fmt.Fprintf(w, "%s- %s\n", strings.Repeat("  ", l.Depth+1), l.Text)
			}
		}
		fmt.Fprintf(w, "\nnearest requirements that plan:\n")
		if len(c.Relaxations) == 0 {
			fmt.Fprintf(w, "  none: no single weaker requirement plans in this environment\n")
		}
		for _, r := range c.Relaxations {
			fmt.Fprintf(w, "  - %s: %s\n", change(r.Change), strings.Join(r.Stack, " > "))
		}
	}
	if len(app.Defaults) > 0 {
		fmt.Fprintf(w, "\ndefaults the app relies on (say them explicitly to change them):\n")
		for _, d := range app.Defaults {
			if !relevantDefault(d, c.Name) {
				continue
			}
			fmt.Fprintf(w, "  - %s: %s  [%s]\n", d.Path, d.Value, d.Pos)
		}
	}
}

// relevantDefault keeps defaults of the environment and of this class.
func relevantDefault(d spec.Default, class string) bool {
	if strings.HasPrefix(d.Path, "environment.") {
		return true
	}
	return strings.HasPrefix(d.Path, "data."+class+".") || strings.HasPrefix(d.Path, "compute."+class+".")
}
