package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network/tlsnet"
	"github.com/rime-dev/rime/policy"
)

type hubOptions struct {
	data      string
	listen    string
	join      []string
	bootstrap []string
	format    string
	logLevel  string
	hubAddr   string
	key       string
	id        string
	policyDir string
	decisions string
}

func newHub() *cobra.Command {
	var o hubOptions
	cmd := &cobra.Command{
		Use:   "hub --data DIR --listen ADDR [--join ADDR] [--bootstrap ID,ID,ID]",
		Short: "run one replica of the hub, the replicated authority on groups",
		Long: `hub runs one replica of rime's hub: the authority on nodes, groups, members,
invitations, each group's namespace (channels, data classes, processes), the
placement directory and channel references, and a relay for nodes that cannot
reach each other. Replicas form one Raft shard over TCP with mutual TLS bound
to their node keys; the hub survives the loss of one replica in three.

A new hub: print each replica's ID first ('rime hub id --data DIR'), then start
every replica with the same --bootstrap list and --join naming the others'
addresses (hellos spread the rest).

Replacing a lost replica: on a live one, remove the lost one
('rime hub remove --data DIR --id ID') and invite the new one's key
('rime hub invite --data DIR --key HEX', the key from 'rime hub id'), then
start the new replica with --join naming a live replica and no --bootstrap.

When ready it prints one line (JSON with --format json) with the replica's ID
and address; it stops cleanly on Ctrl-C or SIGTERM.`,
		Example: `  rime hub id --data ./h1
  rime hub --data ./h1 --listen 10.0.0.1:7400 --bootstrap n1...,n2...,n3... --join 10.0.0.2:7400 --join 10.0.0.3:7400
  rime hub --data ./h4 --listen 10.0.0.4:7400 --join 10.0.0.1:7400`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(o.format, "text", "json"); err != nil {
				return err
			}
			if o.data == "" || o.listen == "" {
				return &exitError{ExitInvalid, errors.New("rime hub: --data and --listen are required (see rime hub --help)")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runHub(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "the replica's data directory: its key and its Raft log (created if missing)")
	f.StringVar(&o.listen, "listen", "", "address for nodes and the other replicas (host:port)")
	f.StringArrayVar(&o.join, "join", nil, "address of another hub replica (repeatable)")
	f.StringSliceVar(&o.bootstrap, "bootstrap", nil, "IDs of the first replicas, this one included, when starting a new hub")
	f.StringVar(&o.format, "format", "text", "output: text, or json (one object per line)")
	f.StringVar(&o.logLevel, "log", "warn", "log level on stderr: debug, info, warn or error")
	f.StringVar(&o.policyDir, "policy", "", "directory of Rego trust policies (default: rime's own, policies/)")
	f.StringVar(&o.decisions, "decision-log", "", "append every trust decision here as JSON lines (default DIR/decisions.log; read it with rime audit --log)")

	id := &cobra.Command{
		Use:   "id --data DIR",
		Short: "print a replica's ID and public key, creating its key in DIR if there is none",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.data == "" {
				return &exitError{ExitInvalid, errors.New("rime hub id: --data is required")}
			}
			ident, err := identity.LoadOrCreate(identityDir(o.data))
			if err != nil {
				return &exitError{ExitFailure, err}
			}
			if o.format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"id": ident.ID(), "key": hex.EncodeToString(ident.Public())})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", ident.ID(), hex.EncodeToString(ident.Public()))
			return nil
		},
	}
	id.Flags().StringVar(&o.data, "data", "", "the replica's data directory")
	id.Flags().StringVar(&o.format, "format", "text", "output: text or json")

	invite := &cobra.Command{
		Use:   "invite --data DIR --key HEX [--hub ADDR]",
		Short: "invite a new replica's key to the hub, signed by this replica's key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := hex.DecodeString(o.key)
			if err != nil || len(key) != 32 {
				return &exitError{ExitInvalid, fmt.Errorf("rime hub invite: --key %q: want the 64 hex digits 'rime hub id' prints", o.key)}
			}
			return withHubClient(cmd.Context(), o, func(ctx context.Context, c *hub.Client) error {
				_, err := c.Invite(ctx, hub.HubGroup, key)
				if err == nil {
					addr, _ := hubAddr(o)
					fmt.Fprintln(cmd.OutOrStdout(), "invited; start the new replica with --join", addr)
				}
				return err
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove --data DIR --id ID [--hub ADDR]",
		Short: "remove a replica from the hub (for example a lost one), signed by this replica's key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.id == "" {
				return &exitError{ExitInvalid, errors.New("rime hub remove: --id is required")}
			}
			return withHubClient(cmd.Context(), o, func(ctx context.Context, c *hub.Client) error {
				_, err := c.Remove(ctx, hub.HubGroup, o.id)
				if err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), "removed", o.id)
				}
				return err
			})
		},
	}
	status := &cobra.Command{
		Use:   "status --data DIR [--hub ADDR]",
		Short: "print a replica's view: leader, term, replicas, applied index (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withHubClient(cmd.Context(), o, func(ctx context.Context, c *hub.Client) error {
				addr, err := hubAddr(o)
				if err != nil {
					return err
				}
				st, err := c.Status(ctx, addr)
				if err != nil {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), st)
			})
		},
	}
	for _, sub := range []*cobra.Command{invite, remove, status} {
		sub.Flags().StringVar(&o.data, "data", "", "this replica's data directory (its key signs the request)")
		sub.Flags().StringVar(&o.hubAddr, "hub", "", "address of a live replica (default: this replica's, from DIR/hub.addr)")
	}
	invite.Flags().StringVar(&o.key, "key", "", "the new replica's public key, hex")
	remove.Flags().StringVar(&o.id, "id", "", "the ID of the replica to remove")
	cmd.AddCommand(id, invite, remove, status)
	return cmd
}

// addrFile remembers where the replica listens, for its own subcommands.
func addrFile(data string) string { return filepath.Join(data, "hub.addr") }

// hubAddr is --hub, or the address the replica in --data recorded.
func hubAddr(o hubOptions) (string, error) {
	if o.hubAddr != "" {
		return o.hubAddr, nil
	}
	b, err := os.ReadFile(addrFile(o.data))
	if err != nil {
		return "", &exitError{ExitInvalid, fmt.Errorf("rime hub: no --hub and no %s: %w", addrFile(o.data), err)}
	}
	return strings.TrimSpace(string(b)), nil
}

func withHubClient(ctx context.Context, o hubOptions, f func(context.Context, *hub.Client) error) error {
	if o.data == "" {
		return &exitError{ExitInvalid, errors.New("rime hub: --data is required")}
	}
	ident, err := identity.LoadOrCreate(identityDir(o.data))
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	addr, err := hubAddr(o)
	if err != nil {
		return err
	}
	c, done, err := dialHub(ident, []string{addr}, nil)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f(ctx, c); err != nil {
		return &exitError{ExitFailure, err}
	}
	return nil
}

// hubReady is the line a replica prints once it serves.
type hubReady struct {
	Event     string   `json:"event"`
	ID        string   `json:"id"`
	Addr      string   `json:"addr"`
	Bootstrap []string `json:"bootstrap,omitempty"`
}

func runHub(ctx context.Context, o hubOptions, out, errOut io.Writer) error {
	level, ok := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[o.logLevel]
	if !ok {
		return &exitError{ExitInvalid, fmt.Errorf("--log %q: want debug, info, warn or error", o.logLevel)}
	}
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))
	ident, err := identity.LoadOrCreate(identityDir(o.data))
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	// Any key may connect: every request is signed and checked against
	// the hub's own records, and the relay admits only members.
	nw, err := tlsnet.New(tlsnet.Config{Identity: ident, Logger: logger})
	if err != nil {
		return &exitError{ExitFailure, err}
	}
	ep, err := nw.Listen(o.listen)
	if err != nil {
		return &exitError{ExitFailure, fmt.Errorf("--listen %s: %w", o.listen, err)}
	}
	defer ep.Close()
	cfg := hub.DefaultConfig()
	cfg.Identity, cfg.Endpoint = ident, ep
	cfg.DataDir = filepath.Join(o.data, "hub")
	cfg.Bootstrap, cfg.Join = o.bootstrap, o.join
	cfg.Logger = logger
	// Every trust decision goes through OPA and into the decision log.
	logPath := o.decisions
	if logPath == "" {
		logPath = filepath.Join(o.data, "decisions.log")
	}
	decisionLog, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return &exitError{ExitFailure, fmt.Errorf("--decision-log: %w", err)}
	}
	defer decisionLog.Close()
	pcfg := policy.DefaultConfig()
	pcfg.Dir, pcfg.DecisionLog, pcfg.Logger = o.policyDir, decisionLog, logger
	engine, err := policy.New(ctx, pcfg)
	if err != nil {
		return &exitError{ExitInvalid, err}
	}
	cfg.Authorizer = hub.PolicyAuthorizer(engine)
	r, err := hub.Start(ctx, cfg)
	if err != nil {
		return &exitError{ExitInvalid, err}
	}
	defer r.Close()
	if err := os.WriteFile(addrFile(o.data), []byte(ep.Addr()+"\n"), 0o600); err != nil {
		logger.Warn("rime hub: cannot record the address for 'rime hub invite'", "err", err)
	}
	ready := hubReady{Event: "ready", ID: r.ID(), Addr: r.Addr(), Bootstrap: o.bootstrap}
	if o.format == "json" {
		json.NewEncoder(out).Encode(ready)
	} else {
		fmt.Fprintf(out, "hub replica %s at %s; Ctrl-C stops\n", ready.ID, ready.Addr)
	}
	<-ctx.Done()
	return nil
}

// dialHub is a hub client for ident over an endpoint of its own (on
// loopback: it only dials out); done closes both.
func dialHub(ident *identity.Identity, addrs []string, logger *slog.Logger) (c *hub.Client, done func(), err error) {
	nw, err := tlsnet.New(tlsnet.Config{Identity: ident, Logger: logger})
	if err != nil {
		return nil, nil, &exitError{ExitFailure, err}
	}
	ep, err := nw.Listen("127.0.0.1:0")
	if err != nil {
		return nil, nil, &exitError{ExitFailure, err}
	}
	if c, err = hub.NewClient(hub.ClientConfig{Identity: ident, Endpoint: ep, Hubs: addrs, Timeout: 30 * time.Second}); err != nil {
		ep.Close()
		return nil, nil, &exitError{ExitFailure, err}
	}
	return c, func() { c.Close(); ep.Close() }, nil
}
