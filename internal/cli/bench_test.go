package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchJSON runs `rime bench` briefly on three real nodes and checks
// the result's shape: exactly the three documented fields, operations
// measured, latencies that make sense.
func TestBenchJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	var out, errb bytes.Buffer
	code := Main([]string{"bench", "--app", "../../examples/collabdoc/app.cue", "--class", "document",
		"--nodes", "3", "--clients", "2", "--payload", "24", "--warmup", "200ms", "--duration", "1500ms", "--format", "json"}, &out, &errb)
	if code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	var got map[string]float64
	dec := json.NewDecoder(&out)
	dec.UseNumber()
	var raw map[string]json.Number
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if dec.More() {
		t.Fatalf("stdout holds more than the result:\n%s", out.String())
	}
	got = map[string]float64{}
	for k, v := range raw {
		f, err := v.Float64()
		if err != nil {
			t.Fatalf("%s = %s: not a number", k, v)
		}
		got[k] = f
	}
	if len(got) != 3 {
		t.Errorf("result has fields %v, want exactly ops_per_sec, p50_ms, p99_ms", got)
	}
	if got["ops_per_sec"] <= 0 {
		t.Errorf("ops_per_sec = %v, want > 0", got["ops_per_sec"])
	}
	if p50, p99 := got["p50_ms"], got["p99_ms"]; p50 <= 0 || p99 < p50 {
		t.Errorf("p50_ms %v, p99_ms %v: want 0 < p50 <= p99", p50, p99)
	}
}

// TestBenchRefuses: bad flags exit 2 and a class this build cannot
// deploy exits 3, before any node starts.
func TestBenchRefuses(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
		says string
	}{
		{[]string{"bench", "--class", "document"}, ExitInvalid, "--app"},
		{[]string{"bench", "--app", "../../examples/collabdoc/app.cue", "--class", "document", "--payload", "8"}, ExitInvalid, "--payload 8"},
		{[]string{"bench", "--app", "../../examples/collabdoc/app.cue", "--class", "document", "--clients", "0"}, ExitInvalid, "--clients 0"},
		{[]string{"bench", "--app", "../../examples/collabdoc/app.cue", "--class", "nosuch"}, ExitInvalid, "nosuch"},
		{[]string{"bench", "--app", "../../examples/collabdoc/app.cue", "--class", "cursors"}, ExitUnsatisfiable, "cursors"},
		{[]string{"bench", "--app", "../../examples/collabdoc/app.cue", "--class", "document", "--format", "yaml"}, ExitInvalid, "yaml"},
	} {
		var out, errb bytes.Buffer
		if got := Main(c.args, &out, &errb); got != c.want || !strings.Contains(errb.String(), c.says) {
			t.Errorf("rime %v: exit %d, want %d; stderr should name %q: %s", c.args, got, c.want, c.says, errb.String())
		}
	}
}
