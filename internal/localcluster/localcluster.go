package localcluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network/tlsnet"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
)

// Config describes the cluster. New copies it.
type Config struct {
	// Plan is what every node deploys; Classes are the classes they host
	// (empty: every class of the plan).
	Plan    *engine.Plan
	Classes []string
	// Group is the app's group; GroupSecret its secret (nil: 32 random
	// bytes, fresh for this cluster).
	Group       string
	GroupSecret []byte
	// NodeClasses gives each node its node class of the app; its length
	// is the number of nodes.
	NodeClasses []string
	// DataDir holds one directory per node (see NodeDir).
	DataDir string
	// Registry of protocol implementations; nil means protocols.Default.
	Registry *protocols.Registry
	// Logger for the nodes and the network; nil discards.
	Logger *slog.Logger
	// Hub, if Hub.Replicas > 0, is a hub embedded in the cluster: the
	// nodes enroll in Group through it and admit each other by its member
	// list (see HubConfig).
	Hub HubConfig
	// Started, if set, is called as each node comes up, from the goroutine
	// that started it (so concurrently for all but the first).
	Started func(i int, n *node.Node)
}

// Validate names the field that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Plan == nil:
		return errors.New("localcluster: Config.Plan is nil")
	case len(c.NodeClasses) == 0:
		return errors.New("localcluster: Config.NodeClasses is empty: it gives the number of nodes")
	case c.DataDir == "":
		return errors.New("localcluster: Config.DataDir is empty")
	case c.GroupSecret != nil && len(c.GroupSecret) < 16:
		return fmt.Errorf("localcluster: Config.GroupSecret has %d bytes; want at least 16", len(c.GroupSecret))
	case c.Hub.Replicas < 0 || c.Hub.Replicas > 0 && c.Hub.App == nil:
		return fmt.Errorf("localcluster: Config.Hub: %d replicas, app %v: want 0, or replicas and the app", c.Hub.Replicas, c.Hub.App != nil)
	case c.Hub.Replicas > 0 && c.Group == "":
		return errors.New("localcluster: Config.Group is empty: an embedded hub enrolls the nodes in the app's group")
	}
	return nil
}

// NodeDir is node i's data directory under data.
func NodeDir(data string, i int) string { return filepath.Join(data, fmt.Sprintf("node%d", i+1)) }

// Cluster is the nodes of one Config.
type Cluster struct {
	cfg   Config
	ids   []*identity.Identity
	nodes []*node.Node
	hub   *embeddedHub // nil without one

	closeOnce sync.Once
}

// New checks cfg and creates or loads every node's identity.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GroupSecret == nil {
		cfg.GroupSecret = make([]byte, 32)
		rand.Read(cfg.GroupSecret)
	}
	c := &Cluster{cfg: cfg, ids: make([]*identity.Identity, len(cfg.NodeClasses)), nodes: make([]*node.Node, len(cfg.NodeClasses))}
	for i := range c.ids {
		var err error
		if c.ids[i], err = identity.LoadOrCreate(filepath.Join(NodeDir(cfg.DataDir, i), "identity")); err != nil {
			return nil, fmt.Errorf("localcluster: node %d: %w", i+1, err)
		}
	}
	return c, nil
}

// authorizer is how node i admits peers: by the hub's member list when
// the cluster embeds a hub, else by the cluster's own list of nodes.
func (c *Cluster) authorizer(i int) func(string, ed25519.PublicKey) error {
	if c.hub != nil {
		return c.hub.watches[i].Authorize
	}
	return c.authorize
}

// authorize admits exactly the cluster's own nodes.
func (c *Cluster) authorize(peer string, _ ed25519.PublicKey) error {
	for _, id := range c.ids {
		if id.ID() == peer {
			return nil
		}
	}
	return fmt.Errorf("%s is not one of this cluster's nodes", peer)
}

// Start starts the hub if there is one and enrolls the nodes, then the
// first node, then the others concurrently, joining it. After an error
// what is already up keeps running until Close.
func (c *Cluster) Start(ctx context.Context) error {
	if c.cfg.Hub.Replicas > 0 {
		if err := c.startHub(ctx); err != nil {
			return err
		}
		if err := c.enroll(ctx); err != nil {
			return err
		}
	}
	if err := c.start(ctx, 0, nil); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i := 1; i < len(c.nodes); i++ {
		wg.Add(1)
		// The first node's address, and its ID for transports that name
		// nodes by ID (hub-relay: see protocols.Resolver).
		go func() { defer wg.Done(); errs[i] = c.start(ctx, i, []string{c.nodes[0].Addr(), c.nodes[0].ID()}) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) start(ctx context.Context, i int, join []string) error {
	nw, err := tlsnet.New(tlsnet.Config{Identity: c.ids[i], Authorize: c.authorizer(i), Logger: c.cfg.Logger})
	if err != nil {
		return err
	}
	ncfg := node.Config{
		Plan: c.cfg.Plan, Group: c.cfg.Group, GroupSecret: c.cfg.GroupSecret, NodeClass: c.cfg.NodeClasses[i],
		DataDir: NodeDir(c.cfg.DataDir, i), Network: nw, Listen: "127.0.0.1:0", Join: join,
		Classes: c.cfg.Classes, Registry: c.cfg.Registry, Logger: c.cfg.Logger,
	}
	if c.hub != nil {
		ncfg.Keys, ncfg.Relayer = c.hub.keys[i], c.hub.clients[i].Relayer()
	}
	n, err := node.Start(ctx, ncfg)
	if err != nil {
		return err
	}
	c.nodes[i] = n
	if c.hub != nil {
		if err := c.hub.clients[i].Register(ctx, c.registration(i, n.Addr())); err != nil {
			return fmt.Errorf("localcluster: node %d: register its address: %w", i+1, err)
		}
	}
	if c.cfg.Started != nil {
		c.cfg.Started(i, n)
	}
	return nil
}

// Nodes are the cluster's nodes in order; a node that failed to start is nil.
func (c *Cluster) Nodes() []*node.Node { return c.nodes }

// Ready waits until class's log, as the first node sees it, has its
// replicas and a leader. A class whose stack has no log is ready at once.
func (c *Cluster) Ready(ctx context.Context, class string) error {
	if c.nodes[0] == nil {
		return errors.New("localcluster: the first node is not running")
	}
	lg, ok := node.Layer[protocols.Log](c.nodes[0], class)
	if !ok {
		return nil
	}
	return lg.Ready(ctx)
}

// Close stops the nodes, last first; it is idempotent.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		for i := len(c.nodes) - 1; i >= 0; i-- {
			if c.nodes[i] != nil {
				c.nodes[i].Close()
			}
		}
		if c.hub != nil {
			c.hub.close()
		}
	})
}
