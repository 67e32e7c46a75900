package spec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rime-dev/rime/diag"
	"github.com/rime-dev/rime/spec"
)

func newLoader(t testing.TB) *spec.Loader {
	t.Helper()
	l, err := spec.NewLoader()
	if err != nil {
		t.Fatalf("NewLoader: %v", err)
	}
	return l
}

// validApp is a minimal valid app; tests break one thing in it. Line
// numbers below refer to this layout.
const validApp = `app: {
	name: "a"
	group: "g"
	environment: nodes: phone: {count: 3, storage: "durable"}
	data: notes: {consistency: "eventual", available: "always"}
}
`

func TestLoadAppDiagnostics(t *testing.T) {
	l := newLoader(t)
	for _, tc := range []struct {
		name string
		src  string
		code string
		// line and col of the diagnostic in app.cue; col 0 means any.
		line, col int
		summary   string
	}{
		{
			name: "misspelt field",
			src: `app: {
	name: "a"
	group: "g"
	environment: nodes: phone: {count: 3}
	data: notes: {consistncy: "eventual", available: "always"}
}
`,
			code: "spec.invalid", line: 5, col: 16, summary: "consistncy",
		},
		{
			name: "bad enum value",
			src: `app: {
	name: "a"
	group: "g"
	environment: nodes: phone: {count: 3, trust: "friendly"}
	data: notes: {consistency: "eventual", available: "always"}
}
`,
			code: "spec.invalid", line: 4, col: 0, summary: "trust",
		},
		{
			name: "bad model",
			src: `app: {
	name: "a"
	group: "g"
	environment: nodes: phone: {count: 3}
	data: notes: {consistency: "strong", available: "always"}
}
`,
			code: "spec.invalid", line: 5, col: 0, summary: "consistency",
		},
		{
			name: "missing required field",
			src: `app: {
	name: "a"
	group: "g"
	environment: nodes: phone: {count: 3}
	data: notes: {available: "always"}
}
`,
			code: "spec.invalid", line: 5, col: 0, summary: "consistency",
		},
		{
			name: "syntax error",
			src: `app: {
	name: "a"
	group: "g"
	environment: nodes: phone: {count: 3}}
	data: notes: {consistency: "eventual", available: "always"}
}
`,
			code: "spec.syntax", line: 0, col: 0,
		},
		{
			name: "no app field",
			src: `apps: {
	name: "a"
}
`,
			code: "spec.noapp", line: 1, col: 1, summary: "no `app` field",
		},
		{
			name: "count out of range",
			src: `app: {
	name: "a"
	group: "g"
	environment: nodes: phone: {count: 0}
	data: notes: {consistency: "eventual", available: "always"}
}
`,
			code: "spec.invalid", line: 4, col: 0, summary: "count",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, err := l.LoadAppSource(spec.Source{Name: "app.cue", Data: []byte(tc.src)})
			if err == nil {
				t.Fatalf("loaded an invalid app: %+v", app)
			}
			var ds diag.Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("error is %T, want diag.Diagnostics: %v", err, err)
			}
			if len(ds) == 0 {
				t.Fatal("no diagnostics")
			}
			var match *diag.Diagnostic
			for i := range ds {
				d := &ds[i]
				if d.Code == tc.code && strings.Contains(d.Summary, tc.summary) && d.Pos.IsValid() {
					match = d
					break
				}
			}
			// Every diagnostic, not just one of them, must say where.
			for _, d := range ds {
				if !d.Pos.IsValid() {
					t.Errorf("diagnostic without file:line:column: %q", d.Summary)
				}
			}
			if match == nil {
				t.Fatalf("no positioned %s diagnostic mentioning %q among:\n%s", tc.code, tc.summary, ds)
			}
			p := match.Pos
			if p.File != "app.cue" {
				t.Errorf("diagnostic points into %q, want the user's file app.cue: %s", p.File, match)
			}
			if p.Line <= 0 || p.Col <= 0 {
				t.Errorf("diagnostic has no line:column: %s", match)
			}
			if tc.line > 0 && p.Line != tc.line {
				t.Errorf("line = %d, want %d: %s", p.Line, tc.line, match)
			}
			if tc.col > 0 && p.Col != tc.col {
				t.Errorf("column = %d, want %d: %s", p.Col, tc.col, match)
			}
			if !strings.HasPrefix(match.String(), p.String()+": ") {
				t.Errorf("String() does not start with file:line:column: %q", match.String())
			}
		})
	}
}

func TestLoadAppDefaults(t *testing.T) {
	l := newLoader(t)
	app, err := l.LoadAppSource(spec.Source{Name: "app.cue", Data: []byte(validApp)})
	if err != nil {
		t.Fatalf("LoadAppSource: %v", err)
	}
	defaults := map[string]spec.Default{}
	for _, d := range app.Defaults {
		if _, dup := defaults[d.Path]; dup {
			t.Errorf("default %s reported twice", d.Path)
		}
		defaults[d.Path] = d
	}
	for path, value := range map[string]string{
		"environment.nodes.phone.trust":        `"honest-but-curious"`,
		"environment.nodes.phone.connectivity": `"intermittent"`,
		"environment.nodes.phone.mobility":     `"mobile"`,
		"environment.nodes.phone.reachable":    `"nat"`,
		"environment.nodes.phone.power":        `"battery"`,
		"environment.failures":                 `"crash-recovery"`,
		"environment.network.partitions":       `true`,
		"environment.network.latency":          `"wan"`,
		"data.notes.durability":                `0`,
		"data.notes.confidential":              `false`,
		"data.notes.type":                      `"log"`,
	} {
		d, ok := defaults[path]
		if !ok {
			t.Errorf("no default reported for %s; got %v", path, keys(defaults))
			continue
		}
		if d.Value != value {
			t.Errorf("default %s = %s, want %s", path, d.Value, value)
		}
		if !d.Pos.IsValid() || !strings.HasPrefix(d.Pos.File, "spec/cue/") {
			t.Errorf("default %s declared at %v, want a position in spec/cue/", path, d.Pos)
		}
	}
	if d := defaults["environment.nodes.phone.trust"]; d.Why == "" {
		t.Errorf("default trust has no explanation")
	}
	// Fields the app wrote are not defaults.
	for _, path := range []string{"environment.nodes.phone.count", "environment.nodes.phone.storage", "data.notes.consistency", "data.notes.available"} {
		if _, ok := defaults[path]; ok {
			t.Errorf("%s was written by the app but reported as a default", path)
		}
	}
	// The decoded values are the defaults.
	n := app.Env.Nodes[0]
	if n.Trust != "honest-but-curious" || n.Storage != "durable" || n.Count != 3 || app.Env.Failures != "crash-recovery" || !app.Env.Partitions {
		t.Errorf("decoded node/env wrong: %+v, env %+v", n, app.Env)
	}
	if c := app.Classes[0]; c.Type != "log" || c.Durability != 0 || c.Confidential {
		t.Errorf("decoded class wrong: %+v", c.Requirement)
	}
	// Written fields point into the user's file.
	if p := n.FieldPos["storage"]; p.File != "app.cue" || p.Line != 4 {
		t.Errorf("storage position %v, want app.cue:4", p)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
