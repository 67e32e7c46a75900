package engine_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
)

// Planning the same example twice, each time with a fresh loader,
// catalogue and planner, gives byte-identical JSON.
func TestDeterministicExamples(t *testing.T) {
	paths, err := filepath.Glob("../examples/*/app.cue")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no examples found under ../examples")
	}
	for _, path := range paths {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			var outs [][]byte
			for i := 0; i < 2; i++ {
				l, _, pl := newPlanner(t)
				app, err := l.LoadApp(path)
				if err != nil {
					t.Fatalf("LoadApp(%s): %v", path, err)
				}
				b, err := json.Marshal(pl.Plan(app))
				if err != nil {
					t.Fatalf("json.Marshal: %v", err)
				}
				outs = append(outs, b)
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Errorf("two runs differ:\n%s\n---\n%s", outs[0], outs[1])
			}
			// Planning again with the same planner also gives the same bytes.
			l, _, pl := newPlanner(t)
			app, err := l.LoadApp(path)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(pl.Plan(app))
			b, _ := json.Marshal(pl.Plan(app))
			if !bytes.Equal(a, b) || !bytes.Equal(a, outs[0]) {
				t.Errorf("re-planning with one planner differs")
			}
		})
	}
}
