package builtin

import (
	"fmt"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/spec"
)

// PlanImplemented plans the app in file (an app.cue) with the built-in
// protocols this build implements: the plan `rime up` deploys and
// `rime plan --implemented` prints. Tests and benchmarks that deploy an
// example start here.
func PlanImplemented(file string) (*spec.App, *engine.Plan, error) {
	l, err := spec.NewLoader()
	if err != nil {
		return nil, nil, err
	}
	ps, err := l.LoadProtocols(protocols.SpecFS(), protocols.SpecPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("built-in catalogue: %w", err)
	}
	cat, err := l.NewCatalogue(ps...)
	if err == nil {
		cat, err = l.Implemented(cat)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("built-in catalogue: %w", err)
	}
	app, err := l.LoadApp(file)
	if err != nil {
		return nil, nil, err
	}
	return app, engine.New(l, cat).Plan(app), nil
}
