package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/faultnet"
	"github.com/rime-dev/rime/network/tlsnet"
	"github.com/rime-dev/rime/node"
)

type nodeOptions struct {
	data      string
	listen    string
	join      []string
	plan      string
	nodeClass string
	classes   []string
	secret    string
	admit     []string
	hubs      []string
	reachable string
	faults    bool
	api       string
	format    string
	logLevel  string
}

func newNode() *cobra.Command {
	var o nodeOptions
	cmd := &cobra.Command{
		Use:   "node --data DIR --plan FILE [--listen ADDR] [--join ADDR]",
		Short: "run one node of an app: one per process or machine",
		Long: `node runs one rime node: the stacks of the plan's classes, over real TCP with
mutual TLS bound to the node's key, and the local HTTP/JSON API that
applications use (see the client package), on a loopback address.

--plan is a plan written by 'rime plan --format json', or an app.cue (or its
directory), planned here with the protocols this build implements. Every
node of a group must run the same plan.

The first node of a group starts without --join: it bootstraps each class's
shard and, if the group secret file does not exist yet, creates it. Copy
that file to every other node (--secret) and start them with --join set to
any running node's address. The secret keys the group's gossip encryption;
it is not a password for the API.

Who may connect: with --hub, the group's members as the hub knows them,
with the keys it knows (checked again every membership round, so a removed
member is refused within one). The node registers with the hub and
accepts its invitation to the plan's group; the group's first node (no
--join) creates the group if it does not exist. A node not yet invited is
refused with the command a member runs to invite it ('rime node invite').

Without a hub, --admit lists the node IDs this node accepts ('rime node id
--data DIR' prints a node's ID, creating its key if needed), or 'any' to
accept every peer that completes mutual TLS (the default, with a warning).

When ready it prints one line (JSON with --format json) with the node's ID,
its address for --join, and the API's URL; it stops cleanly on Ctrl-C or
SIGTERM, leaving the group so the others need not wait for a timeout.`,
		Example: `  rime node --data /var/lib/rime --plan examples/collabdoc --node-class workstation --listen 0.0.0.0:7946
  rime node --data ./n2 --plan plan.json --node-class laptop --join 10.0.0.1:7946 --secret ./group.secret
  rime node --data ./n3 --plan plan.json --node-class phone --hub 10.0.0.9:7400 --join 10.0.0.1:7946 --secret ./group.secret
  rime node invite --data /var/lib/rime --hub 10.0.0.9:7400 --group editors --key 3f2a...
  rime node id --data ./n2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(o.format, "text", "json"); err != nil {
				return err
			}
			if o.data == "" || o.plan == "" {
				return &exitError{ExitInvalid, errors.New("rime node: --data and --plan are required (see rime node --help)")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runNode(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "the node's data directory: its key, its logs and replicas (created if missing)")
	f.StringVar(&o.plan, "plan", "", "plan JSON from 'rime plan --format json', or an app.cue or its directory")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address for the other nodes (host:port; port 0 picks one)")
	f.StringArrayVar(&o.join, "join", nil, "address of a running node of the group (repeatable); none for the group's first node")
	f.StringVar(&o.nodeClass, "node-class", "", "this node's class in the app (e.g. laptop); decides which replicas it may hold")
	f.StringArrayVar(&o.classes, "class", nil, "host only this data class (repeatable; default: every class this build can deploy)")
	f.StringVar(&o.secret, "secret", "", "the group secret file (default DIR/group.secret; created by the first node)")
	f.StringSliceVar(&o.admit, "admit", nil, "node IDs allowed to connect (comma separated or repeated), or 'any'; not with --hub")
	f.StringArrayVar(&o.hubs, "hub", nil, "address of a hub replica (repeatable): enroll in the plan's group there, and admit its members")
	f.StringVar(&o.reachable, "reachable", "public", "whether other nodes can dial this one, as registered with the hub: public or nat")
	f.BoolVar(&o.faults, "faults", false, "serve POST /v1/faults on the API to inject loss, duplication and delay on this node's outgoing traffic (for rime verify --netns; never in production)")
	f.StringVar(&o.api, "api", "127.0.0.1:0", "loopback address of the application API (empty: no API)")
	f.StringVar(&o.format, "format", "text", "output: text, or json (one object per line)")
	f.StringVar(&o.logLevel, "log", "warn", "log level on stderr: debug, info, warn or error")

	id := &cobra.Command{
		Use:   "id --data DIR",
		Short: "print a node's ID, creating its key in DIR if there is none",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.data == "" {
				return &exitError{ExitInvalid, errors.New("rime node id: --data is required")}
			}
			ident, err := identity.LoadOrCreate(identityDir(o.data))
			if err != nil {
				return err
			}
			if o.format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"id": ident.ID(), "key": hex.EncodeToString(ident.Public())})
			}
			fmt.Fprintln(cmd.OutOrStdout(), ident.ID())
			return nil
		},
	}
	id.Flags().StringVar(&o.data, "data", "", "the node's data directory")
	id.Flags().StringVar(&o.format, "format", "text", "output: text (the ID), or json (ID and public key, for 'rime node invite')")
	cmd.AddCommand(id, newNodeInvite())
	return cmd
}

// identityDir is where a node keeps its key: the same place node.Start
// looks, so the TLS certificate and the node's ID agree.
func identityDir(data string) string { return filepath.Join(data, "identity") }

// nodeReady is the line a node prints once it serves.
type nodeReady struct {
	Event     string   `json:"event"`
	ID        string   `json:"id"`
	NodeClass string   `json:"node_class"`
	Addr      string   `json:"addr"`
	API       string   `json:"api,omitempty"`
	Classes   []string `json:"classes"`
	Secret    string   `json:"secret"`
}

func runNode(ctx context.Context, o nodeOptions, out, errOut io.Writer) error {
	level, ok := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[o.logLevel]
	if !ok {
		return &exitError{ExitInvalid, fmt.Errorf("--log %q: want debug, info, warn or error", o.logLevel)}
	}
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))
	// The status watchers write beside this goroutine: one line at a time.
	out = &lockedWriter{w: out}
	say := func(format string, args ...any) {
		if o.format == "text" {
			fmt.Fprintf(out, format+"\n", args...)
		}
	}

	notes := out
	if o.format != "text" {
		notes = io.Discard
	}
	p, classes, appNodeClasses, err := loadNodePlan(o.plan, o.classes, notes)
	if err != nil {
		return err
	}
	nodeClass, err := pickNodeClass(o.nodeClass, appNodeClasses, p, classes)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return &exitError{ExitFailure, err}
	}
	secretFile := o.secret
	if secretFile == "" {
		secretFile = filepath.Join(o.data, "group.secret")
	}
	secret, created, err := groupSecret(secretFile, len(o.join) == 0)
	if err != nil {
		return &exitError{ExitInvalid, err}
	}
	if created {
		say("created the group secret %s: copy it to every other node of %s (--secret)", secretFile, p.Group)
	}

	ident, err := identity.LoadOrCreate(identityDir(o.data))
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	var nh *nodeHub
	var authorize func(string, ed25519.PublicKey) error
	if len(o.hubs) > 0 {
		if len(o.admit) > 0 {
			return &exitError{ExitInvalid, errors.New("--admit and --hub: the hub's member list decides who is admitted; pass one of them")}
		}
		if o.reachable != "public" && o.reachable != "nat" {
			return &exitError{ExitInvalid, fmt.Errorf("--reachable %q: want public or nat", o.reachable)}
		}
		reg := hub.RegisterArgs{Class: nodeClass, Reachability: o.reachable}
		if nh, err = joinHub(ctx, ident, o.hubs, p.Group, reg, len(o.join) == 0, logger, say); err != nil {
			return err
		}
		defer nh.close()
		authorize = nh.authorize
	} else if authorize, err = admission(o.admit, ident.ID()); err != nil {
		return &exitError{ExitInvalid, err}
	}
	if authorize == nil {
		logger.Warn("rime node: any peer that completes mutual TLS may connect; pass --admit with the group's node IDs to restrict it")
	}
	tn, err := tlsnet.New(tlsnet.Config{Identity: ident, Authorize: authorize, Logger: logger})
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	var nw network.Network = tn
	var faulty *faultnet.Network
	if o.faults {
		if o.api == "" {
			return &exitError{ExitInvalid, errors.New("--faults needs the API (--api) to receive the faults on")}
		}
		faulty = faultnet.Wrap(tn, uint64(time.Now().UnixNano()))
		nw = faulty
	}
	ncfg := node.Config{
		Plan: p, Group: p.Group, GroupSecret: secret, NodeClass: nodeClass,
		DataDir: o.data, Network: nw, Listen: o.listen, Join: o.join,
		Classes: classes, Logger: logger,
	}
	if nh != nil {
		ncfg.Keys, ncfg.Relayer = nh.keys, nh.client.Relayer()
	}
	n, err := node.Start(ctx, ncfg)
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	defer func() {
		say("stopping")
		n.Close()
	}()
	if nh != nil {
		if err := nh.registerAddr(ctx, n.Addr()); err != nil {
			return &exitError{ExitFailure, fmt.Errorf("register this node's address with the hub: %w", err)}
		}
	}

	ready := nodeReady{Event: "ready", ID: n.ID(), NodeClass: nodeClass, Addr: n.Addr(), Classes: classes, Secret: secretFile}
	if o.api != "" {
		ln, err := net.Listen("tcp", o.api)
		if err != nil {
			return &exitError{ExitFailure, fmt.Errorf("--api %s: %w", o.api, err)}
		}
		if !isLoopback(ln.Addr()) {
			logger.Warn("rime node: the application API has no authentication and listens beyond loopback", "addr", ln.Addr().String())
		}
		mux := http.NewServeMux()
		mux.Handle("/v1/", client.NewHandler(n.Channel, logger))
		if faulty != nil {
			mux.HandleFunc("/v1/faults", faultsHandler(faulty))
		}
		mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
			st := map[string]any{"id": n.ID(), "addr": n.Addr(), "node_class": nodeClass}
			classes := map[string]any{}
			for _, c := range n.Classes() {
				rep, err := n.Report(r.Context(), c)
				if err != nil {
					rep = map[string]any{"error": err.Error()}
				}
				classes[c] = rep
			}
			st["classes"] = classes
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(st)
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		ready.API = "http://" + ln.Addr().String()
	}
	if o.format == "json" {
		json.NewEncoder(out).Encode(ready)
	} else {
		say("node %s (%s) of %s at %s; classes %s", ready.ID, nodeClass, p.App, ready.Addr, strings.Join(classes, ", "))
		if ready.API != "" {
			say("application API at %s; Ctrl-C stops", ready.API)
		}
	}
	for _, c := range classes {
		go watchClass(ctx, n, c, o.format, out)
	}
	<-ctx.Done()
	return nil
}

// classStatus is the line a node prints when a class's shape changes:
// its leader, term or members, not its progress.
type classStatus struct {
	Event     string `json:"event"`
	Class     string `json:"class"`
	Leader    any    `json:"leader,omitempty"`
	Term      any    `json:"term,omitempty"`
	Voters    any    `json:"voters,omitempty"`
	NonVoting any    `json:"non_voting,omitempty"`
	Members   any    `json:"members,omitempty"`
	Error     any    `json:"error,omitempty"`
}

// watchClass prints the class's status at each change its layers
// announce, when what it shows differs from the last line.
func watchClass(ctx context.Context, n *node.Node, class, format string, out io.Writer) {
	var last []byte
	for ctx.Err() == nil {
		wait := n.Watch(class)
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		rep, _ := n.Report(rctx, class)
		cancel()
		st := classStatus{Event: "status", Class: class, Leader: rep["leader"], Term: rep["term"],
			Voters: rep["voters"], NonVoting: rep["non_voting"], Members: rep["members"], Error: rep["error"]}
		b, _ := json.Marshal(st)
		if !bytes.Equal(b, last) && ctx.Err() == nil {
			last = b
			if format == "json" {
				fmt.Fprintf(out, "%s\n", b)
			} else {
				fmt.Fprintf(out, "class %s: leader %v, term %v, voters %v, non-voting %v, members %v\n", class, short(st.Leader), st.Term, st.Voters, st.NonVoting, st.Members)
			}
		}
		if wait(ctx) != nil {
			return
		}
	}
}

// loadNodePlan reads --plan: plan JSON, or an app planned here with the
// implemented protocols, and picks the classes to host, writing to notes
// why any other class is left out. For an app it also returns the app's
// node classes, which the node's class must be one of.
func loadNodePlan(path string, want []string, notes io.Writer) (*engine.Plan, []string, []string, error) {
	if st, err := os.Stat(path); err == nil && (st.IsDir() || strings.HasSuffix(path, ".cue")) {
		e, err := loadEnv(nil)
		if err != nil {
			return nil, nil, nil, err
		}
		app, err := e.loadApp([]string{appFile(path)})
		if err != nil {
			return nil, nil, nil, err
		}
		p, classes, err := deployable(e, app, want, notes)
		if err != nil {
			return nil, nil, nil, err
		}
		var kinds []string
		for _, nc := range app.Env.Nodes {
			kinds = append(kinds, nc.Name)
		}
		return p, classes, kinds, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, &exitError{ExitInvalid, fmt.Errorf("--plan: %w", err)}
	}
	p, err := engine.DecodePlan(path, data)
	if err != nil {
		return nil, nil, nil, &exitError{ExitInvalid, err}
	}
	classes, skipped := node.Deployable(p, want, nil)
	for _, s := range skipped {
		fmt.Fprintln(notes, s)
	}
	if len(classes) == 0 {
		return nil, nil, nil, &exitError{ExitUnsatisfiable, fmt.Errorf("rime node: no class of %s can be deployed by this build", p.App)}
	}
	return p, classes, nil, nil
}

// pickNodeClass checks --node-class against what the plan can know: the
// app's node classes, or the classes the stacks' layers may be hosted on.
func pickNodeClass(given string, appClasses []string, p *engine.Plan, classes []string) (string, error) {
	known := slices.Clone(appClasses)
	if len(known) == 0 {
		for _, c := range p.Classes {
			if !slices.Contains(classes, c.Name) {
				continue
			}
			for _, l := range c.Stack {
				for _, h := range l.Hosts {
					if !slices.Contains(known, h) {
						known = append(known, h)
					}
				}
			}
		}
	}
	switch {
	case given != "" && (len(known) == 0 || slices.Contains(known, given)):
		return given, nil
	case given != "":
		return "", &exitError{ExitInvalid, fmt.Errorf("--node-class %s: the app's node classes are %s", given, strings.Join(known, ", "))}
	case len(known) == 1:
		return known[0], nil
	case len(known) == 0:
		return "node", nil
	}
	return "", &exitError{ExitInvalid, fmt.Errorf("rime node: name this node's class with --node-class, one of %s", strings.Join(known, ", "))}
}

// groupSecret reads the group secret file (hex), creating it with 32
// random bytes when create is set and it does not exist.
func groupSecret(path string, create bool) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, false, fmt.Errorf("the group secret %s does not exist: copy it from the group's first node (it is created there) and pass --secret", path)
		}
		s := make([]byte, 32)
		rand.Read(s)
		if err := os.WriteFile(path, []byte(hex.EncodeToString(s)+"\n"), 0o600); err != nil {
			return nil, false, err
		}
		return s, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	s, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(s) < 16 {
		return nil, false, fmt.Errorf("%s: want a group secret of at least 16 bytes in hex, as the first node writes it", path)
	}
	return s, false, nil
}

// admission turns --admit into tlsnet's Authorize: nil (anyone) for none
// or "any", else only the listed node IDs, and always this node itself.
func admission(admit []string, self string) (func(string, ed25519.PublicKey) error, error) {
	if len(admit) == 0 || (len(admit) == 1 && admit[0] == "any") {
		return nil, nil
	}
	ok := map[string]bool{self: true}
	for _, id := range admit {
		id = strings.TrimSpace(id)
		if id == "any" {
			return nil, errors.New("--admit: 'any' cannot be combined with node IDs")
		}
		if len(id) != len(self) || id[0] != 'n' {
			return nil, fmt.Errorf("--admit %q: not a node ID (like %s; 'rime node id --data DIR' prints one)", id, self)
		}
		ok[id] = true
	}
	return func(peer string, _ ed25519.PublicKey) error {
		if !ok[peer] {
			return fmt.Errorf("node %s is not admitted (--admit)", peer)
		}
		return nil
	}, nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// lockedWriter serializes writes, so lines from several goroutines do not
// interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
