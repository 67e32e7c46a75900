package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rime-dev/rime/internal/loadgen"
	"github.com/rime-dev/rime/internal/localcluster"
	"github.com/rime-dev/rime/protocols"
)

type benchOptions struct {
	app      string
	class    string
	nodes    int
	clients  int
	payload  int
	duration time.Duration
	warmup   time.Duration
	format   string
}

func newBench() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench --app FILE --class NAME",
		Short: "measure a class's channel: submit-to-delivered throughput and latency",
		Long: `bench plans FILE with the protocols this build implements, starts --nodes
nodes in this process on loopback (real TCP with mutual TLS, as rime up
does), deploys the class's stack on them, and drives its channel in a
closed loop: --clients clients, each with its own session, placed on the
nodes in turn, each submitting one update of --payload bytes at a time.

An operation is submit-to-delivered on every replica: it counts as
delivered once the update has arrived in the submitting client's own
session and in the event stream of an observer session on every node
(arrival in the stream is the channel's only acknowledgement). The
measured window of --duration follows a --warmup that is not recorded.

The result is the throughput (operations per second) and the median and
99th-percentile latency. Text output shows progress every second; with
--format json only the result is printed on stdout:

  {"ops_per_sec": 8123, "p50_ms": 1.9, "p99_ms": 4.2}

Exit status: 0 measured, 1 the cluster or a session failed, 2 bad flags
or app, 3 the class cannot be deployed with this build's protocols.`,
		Example: "  rime bench --app examples/collabdoc/app.cue --class document\n" +
			"  rime bench --app examples/collabdoc/app.cue --class document --nodes 3 --clients 16 --payload 16 --duration 10s --format json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(o.format, "text", "json"); err != nil {
				return err
			}
			switch {
			case o.app == "" || o.class == "":
				return &exitError{ExitInvalid, fmt.Errorf("--app and --class are required")}
			case o.nodes < 1:
				return &exitError{ExitInvalid, fmt.Errorf("--nodes %d: want at least 1", o.nodes)}
			case o.clients < 1:
				return &exitError{ExitInvalid, fmt.Errorf("--clients %d: want at least 1", o.clients)}
			case o.payload < loadgen.MinPayload:
				return &exitError{ExitInvalid, fmt.Errorf("--payload %d: want at least %d bytes (each update carries its operation's id)", o.payload, loadgen.MinPayload)}
			case o.duration <= 0 || o.warmup < 0:
				return &exitError{ExitInvalid, fmt.Errorf("--duration %v must be positive and --warmup %v not negative", o.duration, o.warmup)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBench(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&o.app, "app", "", "the app spec (a CUE file, or a directory holding app.cue)")
	cmd.Flags().StringVar(&o.class, "class", "", "the data class whose channel is measured")
	cmd.Flags().IntVar(&o.nodes, "nodes", 3, "how many nodes to start")
	cmd.Flags().IntVar(&o.clients, "clients", 16, "concurrent clients, one session each, spread over the nodes")
	cmd.Flags().IntVar(&o.payload, "payload", 16, fmt.Sprintf("bytes per update (at least %d)", loadgen.MinPayload))
	cmd.Flags().DurationVar(&o.duration, "duration", 10*time.Second, "the measured window")
	cmd.Flags().DurationVar(&o.warmup, "warmup", time.Second, "run this long first without recording")
	cmd.Flags().StringVar(&o.format, "format", "text", "output: text (with progress), or json (the result only)")
	return cmd
}

func runBench(ctx context.Context, o benchOptions, out, errOut io.Writer) error {
	e, err := loadEnv(nil)
	if err != nil {
		return err
	}
	app, err := e.loadApp([]string{appFile(o.app)})
	if err != nil {
		return err
	}
	p, classes, err := deployable(e, app, []string{o.class}, errOut)
	if err != nil {
		return err
	}
	// The workload counts an update delivered when its bytes arrive in
	// every node's stream, which is a total-order channel's contract.
	cp, _ := classPlanOf(p, o.class)
	g, err := cp.DataGuarantees()
	if err != nil {
		return &exitError{ExitUnsatisfiable, fmt.Errorf("rime bench: %w", err)}
	}
	switch g.Consistency {
	case "linearizable", "sequential", "strict-serializable":
	default:
		return &exitError{ExitUnsatisfiable, fmt.Errorf("rime bench: class %s is %s: the benchmark drives total-order channels only (its load counts an update delivered once it is in every node's one stream); for the convergent stacks see go test ./bench -bench 'Convergent|CRDT'", o.class, g.Consistency)}
	}
	// Progress and status go to stdout as text, to stderr with json, so
	// that stdout is exactly the result.
	status := out
	if o.format == "json" {
		status = errOut
	}
	data, err := os.MkdirTemp("", "rime-bench-")
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	defer os.RemoveAll(data)
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cl, err := localcluster.New(localcluster.Config{
		Plan: p, Classes: classes, Group: app.Group, NodeClasses: nodeClasses(app, o.nodes), DataDir: data, Logger: logger,
	})
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	defer cl.Close()
	fmt.Fprintf(status, "rime bench %s/%s: starting %d nodes\n", app.Name, o.class, o.nodes)
	if err := cl.Start(ctx); err != nil {
		return &exitError{ExitFailure, err}
	}
	if err := cl.Ready(ctx, o.class); err != nil {
		return &exitError{ExitFailure, err}
	}
	var chs []protocols.Channel
	for _, n := range cl.Nodes() {
		ch, err := n.Channel(o.class)
		if err != nil {
			return &exitError{ExitFailure, err}
		}
		chs = append(chs, ch)
	}
	clients := make([]protocols.Channel, o.clients)
	for i := range clients {
		clients[i] = chs[i%len(chs)]
	}
	load, err := loadgen.NewChannelLoad(ctx, clients, chs, o.payload)
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	fmt.Fprintf(status, "%d clients, %d-byte updates: warming up %v, then measuring %v\n", o.clients, o.payload, o.warmup, o.duration)
	cfg := loadgen.Config{Clients: o.clients, Warmup: o.warmup, Duration: o.duration, ProgressEvery: time.Second}
	if o.format == "text" {
		cfg.Progress = func(ops uint64, elapsed time.Duration) {
			fmt.Fprintf(status, "[%v] %d ops, %.0f ops/s\n", elapsed.Round(time.Second), ops, float64(ops)/elapsed.Seconds())
		}
	}
	res, err := loadgen.Run(ctx, cfg, load.Op)
	if cerr := load.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return &exitError{ExitFailure, fmt.Errorf("bench: %w", err)}
	}
	sum := res.Summary()
	if o.format == "json" {
		return writeJSON(out, sum)
	}
	fmt.Fprintf(out, "%s/%s on %d nodes, %d clients, %d-byte updates, submit-to-delivered on every replica:\n  %.0f ops/s, p50 %.3f ms, p99 %.3f ms (%d ops in %v)\n",
		app.Name, o.class, o.nodes, o.clients, o.payload, sum.OpsPerSec, sum.P50Ms, sum.P99Ms, res.Ops, res.Window)
	return nil
}
