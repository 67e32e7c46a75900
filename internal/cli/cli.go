package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rime-dev/rime/diag"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/spec"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK            = 0
	ExitFailure       = 1
	ExitInvalid       = 2
	ExitUnsatisfiable = 3
)

// exitError carries an exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

// Main runs rime with args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "rime:", err)
	return ExitFailure
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "rime",
		Short: "compose distributed protocols from declared requirements",
		Long: `rime reads what an application's data needs (consistency, durability,
availability under partition, confidentiality) and the world it runs in
(phones, laptops, cloud nodes; mobile, intermittent, behind NAT; trusted or
not), both written in CUE, and finds the protocol stack that provably meets
them, or the theorem that says no stack can and the nearest requirement
that works.

Start with an example:
  rime plan examples/photoshare/app.cue
  rime explain examples/ledger/app.cue --class balances`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newCheck(), newPlan(), newExplain(), newCatalogue(), newUp(), newNode(), newBench(), newAudit(), newPolicy(), newVerify(), newHub())
	return root
}

// env is what every planning command loads: the loader, the catalogue
// (built-ins plus any --catalogue directories) and the planner.
type env struct {
	loader  *spec.Loader
	cat     *spec.Catalogue
	planner *engine.Planner
}

func loadEnv(extra []string) (*env, error) {
	l, err := spec.NewLoader()
	if err != nil {
		return nil, &exitError{ExitFailure, err}
	}
	ps, err := l.LoadProtocols(protocols.SpecFS(), protocols.SpecPrefix)
	if err != nil {
		return nil, &exitError{ExitFailure, fmt.Errorf("built-in catalogue: %w", err)}
	}
	for _, dir := range extra {
		more, err := l.LoadProtocols(os.DirFS(dir), dir)
		if err != nil {
			return nil, &exitError{ExitInvalid, err}
		}
		ps = append(ps, more...)
	}
	cat, err := l.NewCatalogue(ps...)
	if err != nil {
		return nil, &exitError{ExitInvalid, err}
	}
	return &env{loader: l, cat: cat, planner: engine.New(l, cat)}, nil
}

// onlyImplemented restricts the catalogue to what this build can deploy.
func (e *env) onlyImplemented() error {
	cat, err := e.loader.Implemented(e.cat)
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	e.cat, e.planner = cat, engine.New(e.loader, cat)
	return nil
}

// loadApp loads app files, turning diagnostics into exit code 2.
func (e *env) loadApp(files []string) (*spec.App, error) {
	app, err := e.loader.LoadApp(files...)
	if err != nil {
		var ds diag.Diagnostics
		if errors.As(err, &ds) {
			return nil, &exitError{ExitInvalid, ds}
		}
		return nil, &exitError{ExitFailure, err}
	}
	return app, nil
}

// planFiles loads the catalogue and the app files and plans the app,
// with only the implemented protocols when implemented is set.
func planFiles(catalogues, files []string, implemented bool) (*spec.App, *engine.Plan, error) {
	e, err := loadEnv(catalogues)
	if err != nil {
		return nil, nil, err
	}
	if implemented {
		if err := e.onlyImplemented(); err != nil {
			return nil, nil, err
		}
	}
	app, err := e.loadApp(files)
	if err != nil {
		return nil, nil, err
	}
	return app, e.planner.Plan(app), nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func checkFormat(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return &exitError{ExitInvalid, fmt.Errorf("unknown --format %q: use one of %v", format, allowed)}
}
