package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/examples/collabdoc"
	"github.com/rime-dev/rime/examples/teamchat"
	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/internal/localcluster"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	_ "github.com/rime-dev/rime/protocols/builtin"
	"github.com/rime-dev/rime/spec"
)

// exampleApps are the example applications `rime up` can run against the
// nodes it starts, by app name: each gets one channel per node.
var exampleApps = map[string]struct {
	class string // the class the app cannot run without
	run   func(ctx context.Context, nodes []*node.Node, out io.Writer) error
}{
	"collabdoc": {collabdoc.Class, func(ctx context.Context, nodes []*node.Node, out io.Writer) error {
		ns := make([]collabdoc.Node, len(nodes))
		for i, n := range nodes {
			ns[i] = n
		}
		return collabdoc.Run(ctx, ns, 50*time.Millisecond, out)
	}},
	"teamchat": {teamchat.Messages, func(ctx context.Context, nodes []*node.Node, out io.Writer) error {
		ns := make([]teamchat.Node, len(nodes))
		for i, n := range nodes {
			ns[i] = n
		}
		return teamchat.Run(ctx, ns, 200*time.Millisecond, out)
	}},
}

type upOptions struct {
	nodes    int
	classes  []string
	data     string
	duration time.Duration
	format   string
	noApp    bool
	hub      int
	policy   string
}

func newUp() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up DIR",
		Short: "plan an app and run it on nodes in this process, on loopback",
		Long: `up is rime's embedded default: it plans DIR/app.cue with the protocols this
build implements, starts N nodes in this process on loopback (real TCP with
mutual TLS between them), deploys each class's stack on them, runs the
example application if DIR is one of rime's examples, and shows a live
status line: members, each class's leader and term, its committed
updates and their rate. Ctrl-C stops everything cleanly.

Classes whose stack needs a protocol this build does not implement yet
are listed and left out; --class picks classes explicitly.

Nodes take the app's node classes, the always-connected ones first (they
host consensus replicas), each up to its count, in the order app.cue
declares them.

A hub is embedded too (--hub replicas, 1 by default; 0 for none): the
nodes register with it, the first creates the app's group and invites
the others, and every node's TLS admits exactly the members the hub
knows. Its trust decisions go through the OPA policy (--policy DIR, or
the embedded default) and into DATA/decisions.log, which 'rime audit'
reads.`,
		Example: "  rime up examples/collabdoc\n  rime up examples/collabdoc --nodes 5 --duration 30s\n  rime up examples/collabdoc --format json --duration 10s",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(o.format, "text", "json"); err != nil {
				return err
			}
			if o.nodes < 1 {
				return &exitError{ExitInvalid, fmt.Errorf("--nodes %d: want at least 1", o.nodes)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if o.duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, o.duration)
				defer cancel()
			}
			return runUp(ctx, args[0], o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().IntVar(&o.nodes, "nodes", 3, "how many nodes to start")
	cmd.Flags().StringArrayVar(&o.classes, "class", nil, "deploy only this class (repeatable; default: every class this build can deploy)")
	cmd.Flags().StringVar(&o.data, "data", "", "keep the nodes' data here (default: a temporary directory, removed at exit)")
	cmd.Flags().DurationVar(&o.duration, "duration", 0, "stop after this long (default: run until Ctrl-C)")
	cmd.Flags().StringVar(&o.format, "format", "text", "status output: text, or json (one object per line)")
	cmd.Flags().BoolVar(&o.noApp, "no-app", false, "do not run the example application")
	cmd.Flags().IntVar(&o.hub, "hub", 1, "hub replicas to embed (0: none; the nodes then admit each other by a list of their keys)")
	cmd.Flags().StringVar(&o.policy, "policy", "", "directory of Rego policies for the hub (default: the embedded policies/trust.rego)")
	return cmd
}

func appFile(arg string) string {
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		return filepath.Join(arg, "app.cue")
	}
	return arg
}

// deployable plans app with the implemented catalogue and picks the
// classes to deploy, saying why each other class is left out.
func deployable(e *env, app *spec.App, want []string, out io.Writer) (*engine.Plan, []string, error) {
	full := e.planner.Plan(app)
	if err := e.onlyImplemented(); err != nil {
		return nil, nil, err
	}
	p := e.planner.Plan(app)
	missing := func(name string) string {
		for _, c := range full.Classes {
			if c.Name != name {
				continue
			}
			if !c.Satisfiable {
				return "unsatisfiable (see rime explain)"
			}
			var ms []string
			for _, l := range c.Stack {
				if !l.Implemented {
					ms = append(ms, l.Protocol)
				}
			}
			return "needs " + strings.Join(ms, ", ") + ", not implemented yet"
		}
		return "not in the app"
	}
	var classes []string
	for _, c := range p.Classes {
		picked := len(want) == 0 || slices.Contains(want, c.Name)
		switch {
		case picked && c.Satisfiable:
			classes = append(classes, c.Name)
		case len(want) == 0:
			fmt.Fprintf(out, "class %s: not deployed: %s\n", c.Name, missing(c.Name))
		case picked:
			return nil, nil, &exitError{ExitUnsatisfiable, fmt.Errorf("class %s cannot be deployed: %s", c.Name, missing(c.Name))}
		}
	}
	for _, w := range want {
		if !slices.Contains(classes, w) {
			if _, ok := classPlanOf(p, w); !ok {
				return nil, nil, &exitError{ExitInvalid, fmt.Errorf("--class %s: the app has no such class", w)}
			}
		}
	}
	if len(classes) == 0 {
		return nil, nil, &exitError{ExitUnsatisfiable, fmt.Errorf("%s: no class can be deployed with the protocols this build implements", app.Name)}
	}
	return p, classes, nil
}

func classPlanOf(p *engine.Plan, name string) (engine.ClassPlan, bool) {
	for _, c := range p.Classes {
		if c.Name == name {
			return c, true
		}
	}
	return engine.ClassPlan{}, false
}

// nodeClasses gives n nodes their node classes: the always-connected
// classes first (the infrastructure: consensus replicas are placed on
// them, so a few nodes must include them), then the others, each in
// declaration order up to its count, then round again if n exceeds them
// all.
func nodeClasses(app *spec.App, n int) []string {
	ordered := slices.Clone(app.Env.Nodes)
	slices.SortStableFunc(ordered, func(a, b spec.NodeClass) int {
		return cmpBool(b.Connectivity == "always", a.Connectivity == "always")
	})
	var out []string
	for len(out) < n {
		for _, nc := range ordered {
			for i := 0; i < max(nc.Count, 1) && len(out) < n; i++ {
				out = append(out, nc.Name)
			}
		}
	}
	return out
}

// cmpBool orders true before false when used as cmp(b, a).
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func runUp(ctx context.Context, dir string, o upOptions, out, errOut io.Writer) error {
	e, err := loadEnv(nil)
	if err != nil {
		return err
	}
	app, err := e.loadApp([]string{appFile(dir)})
	if err != nil {
		return err
	}
	p, classes, err := deployable(e, app, o.classes, out)
	if err != nil {
		return err
	}
	data := o.data
	if data == "" {
		if data, err = os.MkdirTemp("", "rime-up-"); err != nil {
			return err
		}
		defer os.RemoveAll(data)
	}
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	kinds := nodeClasses(app, o.nodes)
	if o.hub < 0 {
		return &exitError{ExitInvalid, fmt.Errorf("--hub %d: want 0 or more replicas", o.hub)}
	}
	hc := localcluster.HubConfig{Replicas: o.hub, App: app, PolicyDir: o.policy}
	if o.hub > 0 {
		decisions, err := os.OpenFile(filepath.Join(data, "decisions.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return &exitError{ExitFailure, err}
		}
		defer decisions.Close()
		hc.DecisionLog = decisions
	}
	// Identities first (in New), so each node admits exactly its peers.
	cl, err := localcluster.New(localcluster.Config{
		Plan: p, Classes: classes, Group: app.Group, NodeClasses: kinds, DataDir: data, Logger: logger, Hub: hc,
		Started: func(i int, n *node.Node) {
			fmt.Fprintf(out, "node %d/%d up: %s (%s) at %s\n", i+1, o.nodes, n.ID(), kinds[i], n.Addr())
		},
	})
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "rime up %s: %d nodes, %d hub replicas, classes %s, data in %s\n", app.Name, o.nodes, o.hub, strings.Join(classes, ", "), data)
	defer func() {
		fmt.Fprintln(out, "stopping nodes")
		cl.Close()
	}()
	if err := cl.Start(ctx); err != nil {
		return &exitError{ExitFailure, err}
	}
	if addrs := cl.HubAddrs(); len(addrs) > 0 {
		fmt.Fprintf(out, "hub at %s: group %s has the %d nodes; decisions in %s\n", strings.Join(addrs, ","), app.Group, o.nodes, filepath.Join(data, "decisions.log"))
	}
	nodes := cl.Nodes()
	for _, c := range classes {
		lg, ok := node.Layer[protocols.Log](nodes[0], c)
		if !ok {
			continue
		}
		fmt.Fprintf(out, "class %s: waiting for its replicas and a leader\n", c)
		if err := lg.Ready(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return &exitError{ExitFailure, err}
		}
	}
	fmt.Fprintln(out, "ready; Ctrl-C stops")

	appDone := make(chan error, 1)
	if ex, ok := exampleApps[app.Name]; ok && !o.noApp && slices.Contains(classes, ex.class) {
		fmt.Fprintf(out, "running the %s example on every node\n", app.Name)
		go func() { appDone <- ex.run(ctx, nodes, out) }()
	}
	return statusLoop(ctx, cl, classes, o.format, out, appDone)
}

// statusLoop prints one status line a second until ctx ends or the app
// fails.
func statusLoop(ctx context.Context, cl *localcluster.Cluster, classes []string, format string, out io.Writer, appDone <-chan error) error {
	nodes := cl.Nodes()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	began := time.Now()
	last := map[string]float64{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-appDone:
			if err != nil {
				return &exitError{ExitFailure, err}
			}
		case <-t.C:
		}
		line := map[string]any{"t": time.Since(began).Round(time.Second).String()}
		var parts []string
		for _, c := range classes {
			rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			st, _ := nodes[0].Report(rctx, c)
			cancel()
			if st == nil {
				st = map[string]any{}
			}
			members := st["members"]
			seq := toFloat(st["seq"])
			st["per_sec"] = seq - last[c]
			last[c] = seq
			line[c] = st
			if _, ok := st["replica_visible"]; ok {
				// An available class has no leader: each node keeps a
				// replica; show this node's.
				st["per_sec"] = toFloat(st["replica_visible"]) - last[c+"/replica"]
				last[c+"/replica"] = toFloat(st["replica_visible"])
				parts = append(parts, fmt.Sprintf("%s: members %v, replica %v updates visible, %v pending, %v/s", c, members, st["replica_visible"], st["replica_pending"], st["per_sec"]))
			} else {
				parts = append(parts, fmt.Sprintf("%s: members %v, leader %v (term %v), %v updates, %v/s", c, members, short(st["leader"]), st["term"], st["seq"], st["per_sec"]))
			}
		}
		if rs := cl.HubReplicas(); len(rs) > 0 {
			hs := hubLine(rs)
			line["hub"] = hs
			parts = append(parts, fmt.Sprintf("hub: leader %s (term %d), %d replicas, %d nodes, %d groups", short(hs.Leader), hs.Term, len(hs.Replicas), hs.Nodes, hs.Groups))
		}
		if format == "json" {
			b, _ := json.Marshal(line)
			fmt.Fprintln(out, string(b))
		} else {
			sort.Strings(parts)
			fmt.Fprintf(out, "[%s] %s\n", line["t"], strings.Join(parts, " | "))
		}
	}
}

// hubLine is the status of the hub as its leader (or else the first
// replica) sees it.
func hubLine(rs []*hub.Replica) hub.Status {
	st := rs[0].Status()
	for _, r := range rs {
		if s := r.Status(); s.IsLeader {
			return s
		}
	}
	return st
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case uint64:
		return float64(n)
	case int:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 9 {
		return s[:9]
	}
	return s
}
