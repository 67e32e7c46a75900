package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/rime-dev/rime/engine"
)

// Text writes a compact summary of a plan: per class, its stack bottom to
// top with parameters, its guarantees, or why it has none.
func Text(w io.Writer, p *engine.Plan) {
	fmt.Fprintf(w, "app %s\n", p.App)
	for _, c := range p.Classes {
		writeClass(w, "class", c)
	}
	for _, c := range p.Compute {
		writeClass(w, "compute", c)
	}
}

func writeClass(w io.Writer, kind string, c engine.ClassPlan) {
	if !c.Satisfiable {
		fmt.Fprintf(w, "\n%s %s: UNSATISFIABLE\n", kind, c.Name)
		for _, u := range c.Unmet {
			by := u.Theorem
			if by == "" && u.Capability != "" {
				by = "missing capability " + u.Capability
			}
			fmt.Fprintf(w, "  %s: %s (%s)\n", u.Requirement, u.Reason, by)
		}
		for _, r := range c.Relaxations {
			fmt.Fprintf(w, "  would plan with %s: %s\n", change(r.Change), strings.Join(r.Stack, " > "))
		}
		if len(c.Relaxations) == 0 {
			fmt.Fprintf(w, "  no single weaker requirement plans\n")
		}
		return
	}
	fmt.Fprintf(w, "\n%s %s: %s\n", kind, c.Name, guarantees(c.Guarantees))
	for i := len(c.Stack) - 1; i >= 0; i-- {
		l := c.Stack[i]
		impl := ""
		if !l.Implemented {
			impl = "  (not implemented)"
		}
		fmt.Fprintf(w, "  %-12s %-22s %s%s\n", l.Layer, l.Protocol, params(l.Params), impl)
	}
}

func guarantees(g any) string {
	switch x := g.(type) {
	case engine.DataGuarantees:
		conf := ""
		if x.Confidential {
			conf = ", confidential"
		}
		return fmt.Sprintf("%s, durability %d, available %s%s", x.Consistency, x.Durability, x.Available, conf)
	case engine.ComputeGuarantees:
		return fmt.Sprintf("%s, up to %d clones", x.Offload, x.Clones)
	}
	return ""
}

func params(p map[string]any) string { return joinSorted(p, "%s=%v", " ") }

func change(m map[string]any) string { return joinSorted(m, "%s: %v", ", ") }

// joinSorted renders a map's entries in key order, so output is stable.
func joinSorted(m map[string]any, format, sep string) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf(format, k, m[k])
	}
	return strings.Join(parts, sep)
}
