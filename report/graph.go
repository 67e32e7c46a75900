package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/rime-dev/rime/engine"
)

// DOT writes a Graphviz digraph: one cluster per class, its layers bottom
// to top with edges upward, labelled with the class's guarantees.
func DOT(w io.Writer, p *engine.Plan) {
	fmt.Fprintf(w, "digraph %q {\n  rankdir=BT;\n  node [shape=box, fontname=\"Helvetica\"];\n", p.App)
	for i, c := range allClasses(p) {
		fmt.Fprintf(w, "  subgraph cluster_%d {\n    label=%q;\n", i, title(c))
		if !c.Satisfiable {
			fmt.Fprintf(w, "    c%d_unsat [label=%q, color=red];\n", i, unsatLabel(c))
		}
		for j, l := range c.Stack {
			style := ""
			if !l.Implemented {
				style = ", style=dashed"
			}
			fmt.Fprintf(w, "    c%d_l%d [label=%q%s];\n", i, j, l.Layer+"\\n"+l.Protocol+paramLine(l), style)
			if j > 0 {
				fmt.Fprintf(w, "    c%d_l%d -> c%d_l%d;\n", i, j-1, i, j)
			}
		}
		fmt.Fprintf(w, "  }\n")
	}
	fmt.Fprintf(w, "}\n")
}

// Mermaid writes a Mermaid flowchart with one subgraph per class.
func Mermaid(w io.Writer, p *engine.Plan) {
	fmt.Fprintf(w, "flowchart BT\n")
	for i, c := range allClasses(p) {
		fmt.Fprintf(w, "  subgraph c%d[\"%s\"]\n", i, mermaidEscape(title(c)))
		if !c.Satisfiable {
			fmt.Fprintf(w, "    c%d_unsat[\"%s\"]\n", i, mermaidEscape(unsatLabel(c)))
		}
		for j, l := range c.Stack {
			open, closing := "[", "]"
			if !l.Implemented {
				open, closing = "[/", "/]"
			}
			fmt.Fprintf(w, "    c%d_l%d%s\"%s<br/>%s%s\"%s\n", i, j, open, l.Layer, l.Protocol, mermaidEscape(strings.ReplaceAll(paramLine(l), "\\n", "<br/>")), closing)
			if j > 0 {
				fmt.Fprintf(w, "    c%d_l%d --> c%d_l%d\n", i, j-1, i, j)
			}
		}
		fmt.Fprintf(w, "  end\n")
	}
}

func allClasses(p *engine.Plan) []engine.ClassPlan {
	return append(append([]engine.ClassPlan(nil), p.Classes...), p.Compute...)
}

func title(c engine.ClassPlan) string {
	if !c.Satisfiable {
		return c.Name + ": unsatisfiable"
	}
	return c.Name + ": " + guarantees(c.Guarantees)
}

func unsatLabel(c engine.ClassPlan) string {
	var parts []string
	for _, u := range c.Unmet {
		if u.Theorem != "" {
			parts = append(parts, u.Requirement+" blocked by "+u.Theorem)
		} else {
			parts = append(parts, u.Requirement+": missing "+u.Capability)
		}
	}
	return strings.Join(parts, "; ")
}

func paramLine(l engine.Layer) string {
	if s := params(l.Params); s != "" {
		return "\\n" + s
	}
	return ""
}

func mermaidEscape(s string) string { return strings.ReplaceAll(s, "\"", "#quot;") }
