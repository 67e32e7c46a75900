package spec

import (
	"testing"

	"cuelang.org/go/cue"
)

// Path reads a path exactly as cue.ParsePath does.
func TestPath(t *testing.T) {
	for _, s := range []string{
		"a", "a.b", "network.partitions", "#App", "#Protocol.requires", "c000.consistency",
		`"read-your-writes"`, `data."c-1".type`, "a.#b", "true", "a.for", "_", "__x", "a.b[0]", "", "1a", "a..b", "#",
	} {
		checkPath(t, s)
	}
}

func FuzzPath(f *testing.F) {
	for _, s := range []string{"a.b", "#App.x", `"q".r`, "a.#b", "x_1.y"} {
		f.Add(s)
	}
	f.Fuzz(checkPath)
}

func checkPath(t *testing.T, s string) {
	want := cue.ParsePath(s)
	got := Path(s)
	if (want.Err() == nil) != (got.Err() == nil) {
		t.Fatalf("Path(%q).Err() = %v, ParsePath: %v", s, got.Err(), want.Err())
	}
	if want.Err() == nil && got.String() != want.String() {
		t.Fatalf("Path(%q) = %s, ParsePath = %s", s, got, want)
	}
}
