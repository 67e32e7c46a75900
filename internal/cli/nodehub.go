package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/identity"
)

// nodeHub is a node's link to its group's hub: the client (over an
// endpoint of its own, for outbound connections only) and the watch of
// the group that decides whom the node's TLS admits.
type nodeHub struct {
	client *hub.Client
	done   func() // closes the client and its endpoint
	watch  *hub.GroupWatch
	keys   *hub.Keys // the group's epoch keys, for e2e-encryption
	reg    hub.RegisterArgs
	group  string
}

// joinHub enrolls the node in group through the hub at addrs (creating
// the group if create and it does not exist) and starts watching it.
func joinHub(ctx context.Context, ident *identity.Identity, addrs []string, group string, reg hub.RegisterArgs, create bool, logger *slog.Logger, say func(string, ...any)) (*nodeHub, error) {
	// The hub's replicas are not pinned here: requests are signed by the
	// node's key and TLS encrypts the link, but a node that must not
	// trust the network path to its hub should reach it over one it
	// trusts (not yet: pinning the replicas' keys).
	c, done, err := dialHub(ident, addrs, logger)
	if err != nil {
		return nil, err
	}
	h := &nodeHub{client: c, done: done, reg: reg, group: group}
	how, err := hub.Enroll(ctx, h.client, group, reg, create)
	if err != nil {
		h.close()
		if errors.Is(err, hub.ErrNotInvited) {
			return nil, &exitError{ExitInvalid, fmt.Errorf("%w\n  on a member's machine: rime node invite --data DIR --hub %s --key %s", err, addrs[0], hex.EncodeToString(ident.Public()))}
		}
		return nil, &exitError{ExitFailure, err}
	}
	say("group %s at the hub: %s", group, how)
	if h.watch, err = hub.WatchGroup(ctx, hub.WatchConfig{Client: h.client, Group: group, Logger: logger}); err != nil {
		h.close()
		return nil, &exitError{ExitFailure, err}
	}
	kc := hub.DefaultKeysConfig()
	kc.Client, kc.Group, kc.Logger = h.client, group, logger
	if h.keys, err = hub.StartKeys(kc); err != nil {
		h.close()
		return nil, &exitError{ExitFailure, err}
	}
	return h, nil
}

// authorize admits the group's members, with the keys the hub knows.
func (h *nodeHub) authorize(peer string, key ed25519.PublicKey) error {
	return h.watch.Authorize(peer, key)
}

// registerAddr tells the hub where the node listens, once it does.
func (h *nodeHub) registerAddr(ctx context.Context, addr string) error {
	reg := h.reg
	reg.Addr = addr
	return h.client.Register(ctx, reg)
}

func (h *nodeHub) close() {
	if h.keys != nil {
		h.keys.Close()
	}
	if h.watch != nil {
		h.watch.Close()
	}
	h.done()
}

// newNodeInvite is `rime node invite`: a member invites a node's key to
// the group, signed by the member's key.
func newNodeInvite() *cobra.Command {
	var data, key, group string
	var hubs []string
	cmd := &cobra.Command{
		Use:   "invite --data DIR --hub ADDR --group GROUP --key HEX",
		Short: "invite a node's key to the group, signed by this (member) node's key",
		Long: `invite lets another node join this node's group: the hub records the
invitation (if the group's policy allows this node to invite), and the
invited node's next 'rime node --hub' accepts it. The key is the one
'rime node id --format json --data ITS_DIR' prints on the invited node's
machine, or the one its refused start printed.`,
		Example: `  rime node invite --data ./n1 --hub 10.0.0.9:7400 --group editors --key 3f2a...`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" || len(hubs) == 0 || group == "" {
				return &exitError{ExitInvalid, errors.New("rime node invite: --data, --hub and --group are required")}
			}
			pub, err := hex.DecodeString(key)
			if err != nil || len(pub) != ed25519.PublicKeySize {
				return &exitError{ExitInvalid, fmt.Errorf("rime node invite: --key %q: want the 64 hex digits of a node's public key ('rime node id --format json')", key)}
			}
			ident, err := identity.LoadOrCreate(identityDir(data))
			if err != nil {
				return &exitError{ExitFailure, err}
			}
			c, done, err := dialHub(ident, hubs, nil)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			d, err := c.Invite(ctx, group, pub)
			if err != nil {
				return &exitError{ExitFailure, fmt.Errorf("rime node invite: %w (reasons: %v)", err, d.Reasons)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "invited %s to %s (decision %s)\n", identity.IDOf(pub), group, d.DecisionID)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "this node's data directory (its key signs the invitation)")
	cmd.Flags().StringArrayVar(&hubs, "hub", nil, "address of a hub replica (repeatable)")
	cmd.Flags().StringVar(&group, "group", "", "the group (the app's group)")
	cmd.Flags().StringVar(&key, "key", "", "the invited node's public key, hex")
	return cmd
}
