package spec_test

import (
	"reflect"
	"testing"

	"github.com/rime-dev/rime/spec"
)

// TestTheoremReads pins what each rule reads of its situation: the
// planner caches a rule's verdict under exactly these inputs, so a rule
// that reads more than this list says would get stale verdicts. Derived
// situation fields count as the class fields they come from (model ->
// consistency; agreement -> consistency, type).
func TestTheoremReads(t *testing.T) {
	l, err := spec.NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"CAP":                         {"available", "consistency"},
		"HATUnavailable":              {"available", "consistency"},
		"HATSticky":                   {"available", "consistency"},
		"CALM":                        {"available", "type"},
		"DLS":                         {"consistency", "type"},
		"DurableCopies":               {"durability"},
		"QuorumVoters":                {"consistency", "durability", "type"},
		"ConfidentialNeedsEncryption": {"confidential"},
		"FLP":                         {"stack"},
	}
	if len(l.Theorems) != len(want) {
		t.Errorf("%d theorems, %d expectations: add the new theorem here", len(l.Theorems), len(want))
	}
	for _, th := range l.Theorems {
		if got := th.Reads; !reflect.DeepEqual(got, want[th.Name]) {
			t.Errorf("%s reads %v, want %v", th.Name, got, want[th.Name])
		}
	}
}
