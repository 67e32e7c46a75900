package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// TestGolden pins the plan JSON and the explain text of every example.
// After a deliberate change, `make golden` rewrites them; review the diff.
func TestGolden(t *testing.T) {
	examples, err := filepath.Glob("../../examples/*/app.cue")
	if err != nil || len(examples) < 5 {
		t.Fatalf("expected the five examples, found %v (%v)", examples, err)
	}
	for _, app := range examples {
		name := filepath.Base(filepath.Dir(app))
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				suffix   string
				args     []string
				wantCode int
			}{
				{".plan.json", []string{"plan", "--format", "json", app}, -1},
				{".explain.txt", []string{"explain", app}, ExitOK},
			} {
				var out, errb bytes.Buffer
				code := Main(c.args, &out, &errb)
				if c.wantCode >= 0 && code != c.wantCode {
					t.Fatalf("%v: exit %d, stderr %s", c.args, code, errb.String())
				}
				golden := filepath.Join("testdata", "golden", name+c.suffix)
				if *update {
					if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run `make golden` to create it)", err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Errorf("%v differs from %s; run `make golden` and review the diff if the change is deliberate", c.args, golden)
				}
			}
		})
	}
}

// TestExitCodes checks the documented exit codes of plan and check.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cue")
	os.WriteFile(bad, []byte(`app: {name: "x", group: "g", environment: nodes: n: {}, data: d: {consistncy: "causal", available: "always"}}`), 0o644)
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"plan", "../../examples/photoshare/app.cue"}, ExitOK},
		{[]string{"plan", "../../examples/ledger/app.cue"}, ExitUnsatisfiable},
		{[]string{"plan", bad}, ExitInvalid},
		{[]string{"check", bad}, ExitInvalid},
		{[]string{"check", "../../examples/teamchat/app.cue"}, ExitOK},
		{[]string{"plan", "--format", "yaml", "../../examples/teamchat/app.cue"}, ExitInvalid},
		{[]string{"explain", "--class", "nosuch", "../../examples/teamchat/app.cue"}, ExitInvalid},
		{[]string{"catalogue"}, ExitOK},
	} {
		var out, errb bytes.Buffer
		if got := Main(c.args, &out, &errb); got != c.want {
			t.Errorf("rime %v: exit %d, want %d; stderr: %s", c.args, got, c.want, errb.String())
		}
	}
	var out, errb bytes.Buffer
	Main([]string{"check", bad}, &out, &errb)
	if !bytes.Contains(errb.Bytes(), []byte("bad.cue:1:")) || !bytes.Contains(errb.Bytes(), []byte("consistncy")) {
		t.Errorf("check of a misspelt field should name file:line:col and the field, got:\n%s", errb.String())
	}
}
