package diag

import (
	"fmt"
	"sort"
	"strings"
)

// Severity says whether a diagnostic stops the command.
type Severity int

const (
	Error Severity = iota
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Pos is a position in a source file. The zero Pos means "no position".
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"column"`
}

// IsValid reports whether p names a place in a file.
func (p Pos) IsValid() bool { return p.File != "" && p.Line > 0 }

// String renders p as file:line:column, the form editors jump to.
func (p Pos) String() string {
	if !p.IsValid() {
		return ""
	}
	if p.Col > 0 {
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Diagnostic is one problem found in the user's input.
type Diagnostic struct {
	Severity Severity `json:"-"`
	// Code is stable across releases, e.g. "spec.invalid".
	Code    string `json:"code"`
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
	// Pos is where the problem is; Related are other places involved
	// (the other side of a conflict).
	Pos     Pos   `json:"pos"`
	Related []Pos `json:"related,omitempty"`
}

// String renders the diagnostic as `file:line:col: summary`, followed by
// indented related positions and detail, like `cue vet`.
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.Pos.IsValid() {
		b.WriteString(d.Pos.String())
		b.WriteString(": ")
	}
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Summary)
	for _, r := range d.Related {
		if r.IsValid() && r != d.Pos {
			b.WriteString("\n    ")
			b.WriteString(r.String())
		}
	}
	if d.Detail != "" {
		for _, l := range strings.Split(d.Detail, "\n") {
			b.WriteString("\n    ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Diagnostics is a list of problems. A nil or empty list is no error.
type Diagnostics []Diagnostic

// Add appends an error diagnostic.
func (ds *Diagnostics) Add(code string, pos Pos, summary string, args ...any) {
	*ds = append(*ds, Diagnostic{Severity: Error, Code: code, Pos: pos, Summary: fmt.Sprintf(summary, args...)})
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Err returns ds as an error if it holds any error, and nil otherwise.
func (ds Diagnostics) Err() error {
	if ds.HasErrors() {
		return ds
	}
	return nil
}

// Error renders every diagnostic, one per paragraph, in position order.
func (ds Diagnostics) Error() string {
	s := make([]string, len(ds))
	for i, d := range ds.Sorted() {
		s[i] = d.String()
	}
	return strings.Join(s, "\n")
}

// Sorted returns the diagnostics ordered by file, line, column, summary,
// so that output is stable whatever order they were found in.
func (ds Diagnostics) Sorted() Diagnostics {
	out := append(Diagnostics(nil), ds...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return out[i].Summary < out[j].Summary
	})
	return out
}
