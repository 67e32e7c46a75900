package spec_test

import (
	"fmt"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/spec"
)

// RuleBatch decides every theorem exactly as the theorem as written does,
// on every situation, in environments where the rules fire and where they
// do not.
func TestRuleBatchAgreesWithRules(t *testing.T) {
	l := newLoader(t)
	envs := []string{
		`nodes: {a: {count: 3, storage: "durable", connectivity: "always"}}, network: partitions: false, failures: "crash-stop"`,
		`nodes: {a: {count: 2, trust: "byzantine"}, b: {count: 1, trust: "honest-but-curious"}}, failures: "byzantine"`,
	}
	for _, env := range envs {
		app, err := l.LoadAppSource(spec.Source{Name: "app.cue", Data: []byte(
			`app: {name: "a", group: "g", environment: {` + env + `}, data: d: {consistency: "causal", available: "none"}}`)})
		if err != nil {
			t.Fatal(err)
		}
		items := map[string]any{}
		var keys []string
		for _, th := range l.Theorems {
			for _, c := range []string{"linearizable", "sequential", "causal", "pram", "eventual"} {
				for _, a := range []string{"always", "majority", "none"} {
					for _, ty := range []string{"log", "state-machine"} {
						for _, d := range []int64{0, 2} {
							for _, layers := range [][]string{{}, {"transport", "consensus"}} {
								s := map[string]any{
									"class": map[string]any{"consistency": c, "available": a, "type": ty, "durability": d, "confidential": d == 0},
									"stack": map[string]any{"layers": layers},
								}
								key := fmt.Sprintf("%s|%s|%s|%s|%d|%s", th.Name, c, a, ty, d, strings.Join(layers, ","))
								items[key] = map[string]any{"theorem": th.Name, "s": s}
								keys = append(keys, key)
							}
						}
					}
				}
			}
		}
		batch := l.RuleBatch().Unify(l.Context().Encode(map[string]any{"batchEnv": app.FactsData, "batchIn": items}))
		for _, key := range keys {
			item := items[key].(map[string]any)
			s := item["s"].(map[string]any)
			whole := l.Rules().LookupPath(cue.MakePath(cue.Str("theorems"), cue.Str(item["theorem"].(string)))).
				FillPath(cue.MakePath(cue.Str("s")), map[string]any{"class": s["class"], "stack": s["stack"], "env": app.FactsData})
			got := batch.LookupPath(cue.MakePath(cue.Str("batchOut"), cue.Str(key)))
			for _, f := range []string{"fires", "reason"} {
				w := fmt.Sprint(whole.LookupPath(cue.MakePath(cue.Str(f))))
				g := fmt.Sprint(got.LookupPath(cue.MakePath(cue.Str(f))))
				if w != g {
					t.Errorf("%s: %s = %s in the batch, %s as written", key, f, g, w)
				}
			}
		}
	}
}

// A theorem whose decision refers to another of its fields is evaluated
// whole; the others as their situation, fires and reason.
func TestRuleBatchSourceFallsBack(t *testing.T) {
	src := `package rime
#Theorem: {s: #Situation, title: string, fires: bool, reason: string}
rules: theorems: {
	A: {s: #Situation, title: "A", fires: s.x, reason: "a"}
	B: {s: #Situation, title: "B", fires: s.x, reason: title}
}
`
	out, err := spec.RuleBatchSourceForTest([]byte(src), []string{"A", "B", "C"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"A": {`, `fires: (bool) & (s.x)`, `"B": rules.theorems["B"]`, `"C": rules.theorems["C"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("batch source lacks %q:\n%s", want, out)
		}
	}
}

// GoalBatch gives every class the goal goals.cue gives it.
func TestGoalBatchAgreesWithGoals(t *testing.T) {
	l := newLoader(t)
	items := map[string]any{}
	classes := map[string]map[string]any{}
	for _, c := range []string{"linearizable", "causal", "eventual"} {
		for _, a := range []string{"always", "majority", "none"} {
			for _, ty := range []string{"log", "set", "state-machine"} {
				for _, d := range []int64{0, 3} {
					key := fmt.Sprintf("%s|%s|%s|%d", c, a, ty, d)
					classes[key] = map[string]any{"consistency": c, "available": a, "type": ty, "durability": d, "confidential": d > 0}
					items[key] = map[string]any{"kind": "data", "class": classes[key]}
				}
			}
		}
	}
	classes["compute"] = map[string]any{"offload": "vm-fork", "clones": int64(4), "module": "m.wasm"}
	items["compute"] = map[string]any{"kind": "compute", "class": classes["compute"]}
	batch := l.GoalBatch().Unify(l.Context().Encode(map[string]any{"batchIn": items}))
	for key, it := range items {
		kind := it.(map[string]any)["kind"].(string)
		whole := l.Schema().LookupPath(cue.MakePath(cue.Str("goals"), cue.Str(kind))).FillPath(cue.MakePath(cue.Str("class")), classes[key])
		got := batch.LookupPath(cue.MakePath(cue.Str("batchOut"), cue.Str(key)))
		for _, f := range []string{"capability", "guarantees"} {
			w := fmt.Sprint(whole.LookupPath(cue.MakePath(cue.Str(f))))
			g := fmt.Sprint(got.LookupPath(cue.MakePath(cue.Str(f))))
			if w != g {
				t.Errorf("%s: %s = %s in the batch, %s as written", key, f, g, w)
			}
		}
	}
}
