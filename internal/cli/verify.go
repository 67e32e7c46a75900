package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rime-dev/rime/verify"
	"github.com/rime-dev/rime/verify/netns"
)

type verifyOptions struct {
	classes   []string
	schedules int
	seed      uint64
	duration  time.Duration
	check     []string
	format    string
	html      string
	netns     bool
}

func newVerify() *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify FILE...",
		Short: "run each class's stack under the faults its environment admits and check its promises",
		Long: `verify deploys each class of an app (planned with the protocols this build
implements) on nodes in this process, over the in-process network, and runs
a workload from two clients per node: unique writes and linearizable reads
for a total-order class; for an available class (the convergent channel),
operations of its type with unique values (log appends, register and map
writes, set adds and removes, counter increments, text inserts) and local
reads, with each session's deliveries recorded. Meanwhile a nemesis injects
every fault the app's environment admits and no other: partitions when network.partitions is true (majority/minority,
isolated nodes, one-way cuts), crashes, restarts with the disk kept under
crash-recovery and with it lost on volatile storage, message loss,
duplication and reordering, WAN delay and jitter, and churn of
intermittently connected nodes. Each schedule is drawn from a seed, so
--seed S --schedules 1 replays one exactly.

After each schedule the network heals, crashed nodes come back (for an
available class with durability k, k nodes are then lost for good), and
every replica's final state is read. Then each promise of the class's plan is
checked on the recorded history: its consistency model (linearizable with
porcupine, sequential, causal), convergence of the replicas, durability of
acknowledged writes, and availability on the sides of partitions that the
class promised. The channel's own contract (contiguous updates, one update
per position everywhere) is checked as events arrive.

--check MODEL checks the class against a model you name instead (say,
linearizable for a class that promised only eventual) and reports the
counterexample if it does not hold.

For each violating schedule the history is written as JSON (and
porcupine's HTML picture of a linearizability violation) under --html DIR.

Exit status: 0 every promise held, 1 a violation (or a check could not
decide), 2 bad input, 3 nothing deployable.`,
		Example: `  rime verify examples/collabdoc --class document --schedules 3 --duration 10s
  rime verify examples/collabdoc --seed 7 --schedules 1 --format json
  rime verify examples/collabdoc --class document --check sequential`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(o.format, "text", "json"); err != nil {
				return err
			}
			if o.netns {
				if err := netns.Available(); err != nil {
					return &exitError{ExitInvalid, fmt.Errorf("rime verify --netns: %v; run as root on Linux with iproute2, or omit --netns to use the in-process network", err)}
				}
			}
			for _, c := range o.check {
				if !slices.Contains(verify.Models, c) {
					return &exitError{ExitInvalid, fmt.Errorf("--check %s: want one of %s", c, strings.Join(verify.Models, ", "))}
				}
			}
			if o.schedules < 1 || o.duration < time.Second {
				return &exitError{ExitInvalid, fmt.Errorf("--schedules %d --duration %v: want at least 1 schedule of at least 1s", o.schedules, o.duration)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runVerify(ctx, args, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.classes, "class", nil, "verify only this class (repeatable; default: every class this build can deploy)")
	f.IntVar(&o.schedules, "schedules", 1, "fault schedules per class")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the first schedule (the others take the next seeds)")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "length of each schedule's faults")
	f.StringArrayVar(&o.check, "check", nil, "check this model instead of the plan's promises: "+strings.Join(verify.Models, ", "))
	f.StringVar(&o.format, "format", "text", "output: text, or json")
	f.StringVar(&o.html, "html", "", "write each violating schedule's history and porcupine's HTML here (default: a temporary directory)")
	f.BoolVar(&o.netns, "netns", false, "run each node as a `rime node` process in its own network namespace (root; partitions by cutting links)")
	return cmd
}

func runVerify(ctx context.Context, files []string, o verifyOptions, out, errOut io.Writer) error {
	e, err := loadEnv(nil)
	if err != nil {
		return err
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, appFile(f))
	}
	app, err := e.loadApp(paths)
	if err != nil {
		return err
	}
	notes := errOut
	p, classes, err := deployable(e, app, o.classes, notes)
	if err != nil {
		return err
	}
	var supported []string
	for _, c := range classes {
		if err := verify.Supported(p, c); err != nil {
			if len(o.classes) > 0 {
				return &exitError{ExitUnsatisfiable, fmt.Errorf("rime verify: %v", err)}
			}
			fmt.Fprintf(notes, "class %s: not verified: %v\n", c, err)
			continue
		}
		supported = append(supported, c)
	}
	if len(supported) == 0 {
		return &exitError{ExitUnsatisfiable, fmt.Errorf("rime verify: no class of %s can be verified yet", app.Name)}
	}
	classes = supported
	progress := func(format string, args ...any) {
		fmt.Fprintf(errOut, "verify: "+format+"\n", args...)
	}
	var reports []*verify.ClassReport
	ok := true
	for _, class := range classes {
		vc := verify.Config{
			App: app, Plan: p, Class: class, Schedules: o.schedules, Seed: o.seed, Duration: o.duration,
			Checks: o.check, OutDir: o.html, Progress: progress,
		}
		var rep *verify.ClassReport
		if o.netns {
			rep, err = runVerifyNamespaces(ctx, vc, files[0])
		} else {
			rep, err = verify.Run(ctx, vc)
		}
		if err != nil {
			if ctx.Err() != nil {
				return &exitError{ExitFailure, fmt.Errorf("rime verify: interrupted: %w", err)}
			}
			return &exitError{ExitFailure, err}
		}
		reports = append(reports, rep)
		ok = ok && rep.OK
		if o.format == "text" {
			printVerifyReport(out, rep)
		}
	}
	if o.format == "json" {
		b, _ := json.MarshalIndent(map[string]any{"classes": reports}, "", "  ")
		fmt.Fprintln(out, string(b))
	}
	if !ok {
		return &exitError{ExitFailure, nil}
	}
	return nil
}

// runVerifyNamespaces runs the class with each node a `rime node` process
// of this very binary in its own namespace: three nodes, the first of the
// app's node classes that hosts the whole stack.
func runVerifyNamespaces(ctx context.Context, vc verify.Config, appPath string) (*verify.ClassReport, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(appPath)
	if err != nil {
		return nil, err
	}
	kinds := verify.NodeClassesFor(vc.App, vc.Plan, vc.Class, 3)
	return verify.RunNamespaces(ctx, verify.NamespacesConfig{Config: vc, Command: []string{self}, PlanFile: abs, NodeClasses: kinds})
}

func printVerifyReport(out io.Writer, r *verify.ClassReport) {
	status := "ok"
	if !r.OK {
		status = "VIOLATED"
	}
	fmt.Fprintf(out, "class %s: %s after %d schedule(s), %d operations\n", r.Name, status, r.Schedules, r.Ops)
	fmt.Fprintf(out, "  checked: %s\n", strings.Join(r.Checked, ", "))
	fmt.Fprintf(out, "  faults:  %s\n", strings.Join(r.Faults, ", "))
	for _, n := range r.NotInjected {
		fmt.Fprintf(out, "  not injected: %s\n", n)
	}
	if len(r.Unknown) > 0 {
		fmt.Fprintf(out, "  undecided: %s\n", strings.Join(r.Unknown, ", "))
	}
	for _, v := range r.Violations {
		fmt.Fprintf(out, "  %s violated (seed %d): %s\n    history: %s\n", v.Check, v.Seed, v.Explain, v.History)
		if v.HTML != "" {
			fmt.Fprintf(out, "    picture: %s\n", v.HTML)
		}
	}
}
