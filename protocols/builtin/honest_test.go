package builtin_test

import (
	"slices"
	"testing"

	"github.com/rime-dev/rime/protocols"
	_ "github.com/rime-dev/rime/protocols/builtin"
	"github.com/rime-dev/rime/spec"
)

// A spec that says implemented must have a registered module providing
// what the spec provides, and every registered module must have a spec
// that says so: the catalogue the planner reads and the registry the node
// deploys from never disagree.
func TestCatalogueAndRegistryAgree(t *testing.T) {
	l, err := spec.NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	ps, err := l.LoadProtocols(protocols.SpecFS(), protocols.SpecPrefix)
	if err != nil {
		t.Fatal(err)
	}
	specs := map[string]*spec.Protocol{}
	for _, p := range ps {
		specs[p.Name] = p
		m, registered := protocols.Default.Lookup(p.Name)
		switch {
		case p.Implemented && !registered:
			t.Errorf("%s: its spec says implemented, but no module is registered", p.Name)
		case !p.Implemented && registered:
			t.Errorf("%s: a module is registered, but its spec says implemented: false", p.Name)
		case registered:
			for _, c := range p.Provides {
				if !slices.Contains(m.Provides, c) {
					t.Errorf("%s: the spec provides %q, the module only %v", p.Name, c, m.Provides)
				}
			}
		}
	}
	for _, name := range protocols.Default.Names() {
		if specs[name] == nil {
			t.Errorf("module %s is registered but has no spec.cue", name)
		}
	}
}
