package spec_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/spec"
)

// FuzzLoadApp: loading any bytes as an app never panics, and whatever
// loads also plans without panicking.
func FuzzLoadApp(f *testing.F) {
	paths, _ := filepath.Glob("../examples/*/app.cue")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		validApp,
		"",
		"app: {",
		"app: 1",
		"app: {}",
		"app: _",
		"app: {name: \"a\", group: \"g\", environment: nodes: {}, data: {}}",
		"app: {name: \"a\", group: \"g\", environment: nodes: n: {count: 100000}, data: d: {consistency: \"linearizable\", available: \"always\", durability: 1000}}",
		"app: {name: \"a\", group: \"g\", environment: {nodes: n: {}, failures: \"byzantine\"}, data: d: {consistency: \"sequential\", available: \"none\", type: \"state-machine\"}, compute: c: {offload: \"vm-fork\", module: \"m.wasm\"}}",
		"package foo\nimport \"strings\"\napp: name: strings.ToUpper(\"x\")",
		"app: {name: \"a\"} & {name: \"b\"}",
		"app: x: app",
		"a: b: c: [1, 2, ...]\napp: a",
	} {
		f.Add([]byte(s))
	}
	l, err := spec.NewLoader()
	if err != nil {
		f.Fatal(err)
	}
	cat, err := l.LoadCatalogue(protocols.SpecFS(), protocols.SpecPrefix)
	if err != nil {
		f.Fatal(err)
	}
	pl := engine.New(l, cat)
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 {
			return // keep per-input work small
		}
		app, err := l.LoadAppSource(spec.Source{Name: "app.cue", Data: src})
		if err != nil {
			return
		}
		if app == nil {
			t.Fatal("nil app and nil error")
		}
		// Planning is exponential in nothing but node and class counts;
		// bound them so one input stays cheap.
		if len(app.Classes)+len(app.Compute) > 6 || len(app.Env.Nodes) > 6 {
			return
		}
		p := pl.Plan(app)
		if len(p.Classes) != len(app.Classes) {
			t.Fatalf("%d class plans for %d classes", len(p.Classes), len(app.Classes))
		}
	})
}

// FuzzLoadProtocol: loading any bytes as a protocol spec never panics.
func FuzzLoadProtocol(f *testing.F) {
	names, _ := fs.Glob(protocols.SpecFS(), "*/spec.cue")
	for _, n := range names {
		b, err := fs.ReadFile(protocols.SpecFS(), n)
		if err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"",
		"name: \"x\"",
		"name: \"x\"\nlayer: \"transport\"\nsummary: \"s\"\nprovides: [\"t\"]\nrequires: []\nparams: p: string\nguarantees: {}\ncost: {rtt: 0, messages: 0, copies: 0}",
		"name: \"x\"\nlayer: \"transport\"\nsummary: \"s\"\nprovides: [\"t\"]\nrequires: []\nparams: p: int & <=eligible\nguarantees: {}\ncost: {rtt: 0, messages: 0, copies: 0}",
		"class: 1",
		"params: {a: [1]}",
		"assumes: hosts: storage: \"durable\" | _|_",
	} {
		f.Add([]byte(s))
	}
	l, err := spec.NewLoader()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 {
			return
		}
		p, err := l.LoadProtocol("protocols/fuzz/spec.cue", src)
		if err == nil && p == nil {
			t.Fatal("nil protocol and nil error")
		}
	})
}
