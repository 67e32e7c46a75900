package cli

import (
	"errors"
	"fmt"

	"github.com/rime-dev/rime/diag"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/report"
	"github.com/spf13/cobra"
)

func newCheck() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "check FILE...",
		Short: "validate app specs against rime's schema",
		Long: `check reads app specs (CUE files, or directories of them) and reports every
problem with its file:line:column, as cue vet does: misspelt fields, values
outside their enums, required fields left out. It exits 0 if the app is
valid and 2 if not. It does not plan; see 'rime plan'.`,
		Example: "  rime check examples/photoshare/app.cue\n  rime check --format json app.cue",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			e, err := loadEnv(nil)
			if err != nil {
				return err
			}
			app, err := e.loader.LoadApp(args...)
			if format == "json" {
				out := struct {
					Valid       bool             `json:"valid"`
					Diagnostics diag.Diagnostics `json:"diagnostics"`
				}{Valid: err == nil, Diagnostics: diag.Diagnostics{}}
				var ds diag.Diagnostics
				if errors.As(err, &ds) {
					out.Diagnostics = ds.Sorted()
				} else if err != nil {
					return &exitError{ExitFailure, err}
				}
				if werr := writeJSON(cmd.OutOrStdout(), out); werr != nil {
					return werr
				}
				if err != nil {
					return &exitError{code: ExitInvalid}
				}
				return nil
			}
			if err != nil {
				_, err = e.loadApp(args)
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: app %s (group %s): %d node classes, %d data classes, %d computations\n",
				app.Name, app.Group, len(app.Env.Nodes), len(app.Classes), len(app.Compute))
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func newPlan() *cobra.Command {
	var format string
	var implemented bool
	var catalogues []string
	cmd := &cobra.Command{
		Use:   "plan FILE...",
		Short: "find the protocol stack that meets each data class's requirements",
		Long: `plan matches each data class (and each computation) of an app against the
protocol catalogue and prints the cheapest stack that provably meets it,
with the proof. A class no stack can meet is reported with the theorem
that forbids it (or the capability nothing provides) and the nearest
weaker requirements that would plan.

Formats: text (a summary), json (the plan contract in DESIGN.md), dot and
mermaid (each class's stack with its guarantees, for diagrams).

Exit status: 0 every class satisfiable, 3 some class unsatisfiable,
2 the spec is invalid.`,
		Example: "  rime plan examples/photoshare/app.cue\n  rime plan --format json examples/ledger/app.cue\n  rime plan --format dot app.cue | dot -Tsvg > stack.svg",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json", "dot", "mermaid"); err != nil {
				return err
			}
			_, p, err := planFiles(catalogues, args, implemented)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch format {
			case "json":
				if err := writeJSON(out, p); err != nil {
					return err
				}
			case "dot":
				report.DOT(out, p)
			case "mermaid":
				report.Mermaid(out, p)
			default:
				report.Text(out, p)
			}
			if !p.Satisfiable() {
				return &exitError{code: ExitUnsatisfiable}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, dot or mermaid")
	cmd.Flags().StringArrayVar(&catalogues, "catalogue", nil, "also plan with the protocol specs in DIR/*/spec.cue (repeatable)")
	cmd.Flags().BoolVar(&implemented, "implemented", false, "plan with implemented protocols only: the stacks `rime up` and `rime node` can deploy")
	return cmd
}

func newExplain() *cobra.Command {
	var class string
	var catalogues []string
	cmd := &cobra.Command{
		Use:   "explain FILE... [--class NAME]",
		Short: "explain a class's plan in plain words",
		Long: `explain prints the proof behind a class's plan: why each layer is in the
stack, which fact of the environment or guarantee of a lower layer
discharged each assumption, why each parameter has its value, which
defaults the app relied on, and for an unsatisfiable class which theorem
blocked which requirement and which relaxation would work. Without
--class it explains every class.`,
		Example: "  rime explain examples/photoshare/app.cue --class photos\n  rime explain examples/ledger/app.cue --class balances",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, p, err := planFiles(catalogues, args, false)
			if err != nil {
				return err
			}
			found := false
			for i, c := range append(append([]engine.ClassPlan(nil), p.Classes...), p.Compute...) {
				if class != "" && c.Name != class {
					continue
				}
				if found || i > 0 && class == "" {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				found = true
				report.Explain(cmd.OutOrStdout(), app, c)
			}
			if !found {
				var names []string
				for _, c := range p.Classes {
					names = append(names, c.Name)
				}
				for _, c := range p.Compute {
					names = append(names, c.Name)
				}
				return &exitError{ExitInvalid, fmt.Errorf("no class %q in app %s; its classes are %v", class, app.Name, names)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&class, "class", "", "the data class or computation to explain (default: all)")
	cmd.Flags().StringArrayVar(&catalogues, "catalogue", nil, "also plan with the protocol specs in DIR/*/spec.cue (repeatable)")
	return cmd
}

func newCatalogue() *cobra.Command {
	var format string
	var catalogues []string
	cmd := &cobra.Command{
		Use:   "catalogue",
		Short: "list the protocols the planner can use",
		Long: `catalogue lists every protocol spec the planner knows, grouped by layer,
with what it provides, whether its implementation exists yet, and where
its spec is. --format json gives the full decoded specs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			e, err := loadEnv(catalogues)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"protocols": e.cat.Protocols})
			}
			report.Catalogue(cmd.OutOrStdout(), e.loader, e.cat)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().StringArrayVar(&catalogues, "catalogue", nil, "also list the protocol specs in DIR/*/spec.cue (repeatable)")
	return cmd
}
