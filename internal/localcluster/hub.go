package localcluster

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/tlsnet"
	"github.com/rime-dev/rime/policy"
	"github.com/rime-dev/rime/spec"
)

// HubConfig is the hub a cluster embeds: replicas in this process, the
// nodes enrolled in the app's group through it, and node-to-node TLS
// bound to the members the hub knows.
type HubConfig struct {
	// Replicas is how many hub replicas to start (0: no hub; the nodes
	// then admit each other by the cluster's own list of keys).
	Replicas int
	// App gives the trust and reachability of each node class and the
	// classes' confidentiality, which the hub's policy decides on.
	// Required with Replicas > 0.
	App *spec.App
	// PolicyDir holds the Rego policies; empty means the embedded default
	// (policies/trust.rego).
	PolicyDir string
	// DecisionLog receives every decision as a JSON line; nil keeps none.
	DecisionLog io.Writer
}

// embeddedHub is the hub's replicas and what the nodes hold of it.
type embeddedHub struct {
	ids      []*identity.Identity
	eps      []network.Endpoint
	replicas []*hub.Replica
	// clients[i] and watches[i] are node i's, over its own endpoint
	// for the hub (hubEps[i]).
	hubEps  []network.Endpoint
	clients []*hub.Client
	watches []*hub.GroupWatch
	// keys[i] is node i's view of the group's epoch keys (e2e-encryption
	// seals with them; a node the policy does not trust gets none).
	keys []*hub.Keys
}

func (h *embeddedHub) addrs() []string {
	out := make([]string, len(h.replicas))
	for i, r := range h.replicas {
		out[i] = r.Addr()
	}
	return out
}

func (h *embeddedHub) replicaIDs() []string {
	out := make([]string, len(h.ids))
	for i, id := range h.ids {
		out[i] = id.ID()
	}
	return out
}

// HubAddrs are the embedded hub's replica addresses (none without a hub).
func (c *Cluster) HubAddrs() []string {
	if c.hub == nil {
		return nil
	}
	return c.hub.addrs()
}

// HubReplicas are the embedded hub's replicas (none without a hub).
func (c *Cluster) HubReplicas() []*hub.Replica {
	if c.hub == nil {
		return nil
	}
	return c.hub.replicas
}

// HubClient is node i's client of the embedded hub (nil without one).
func (c *Cluster) HubClient(i int) *hub.Client {
	if c.hub == nil || i >= len(c.hub.clients) {
		return nil
	}
	return c.hub.clients[i]
}

// startHub starts the replicas, on loopback over TLS. Any key may connect
// to a replica: every request is signed and checked against the hub's
// own records, and the relay admits only members (as `rime hub` does).
func (c *Cluster) startHub(ctx context.Context) error {
	hc := c.cfg.Hub
	h := &embeddedHub{}
	c.hub = h
	for i := range hc.Replicas {
		id, err := identity.LoadOrCreate(filepath.Join(hubDir(c.cfg.DataDir, i), "identity"))
		if err != nil {
			return fmt.Errorf("localcluster: hub replica %d: %w", i+1, err)
		}
		nw, err := tlsnet.New(tlsnet.Config{Identity: id, Logger: c.cfg.Logger})
		if err != nil {
			return err
		}
		ep, err := nw.Listen("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("localcluster: hub replica %d: %w", i+1, err)
		}
		h.ids, h.eps = append(h.ids, id), append(h.eps, ep)
	}
	var addrs []string
	for _, ep := range h.eps {
		addrs = append(addrs, ep.Addr())
	}
	pcfg := policy.DefaultConfig()
	pcfg.Dir, pcfg.DecisionLog, pcfg.Logger = hc.PolicyDir, hc.DecisionLog, c.cfg.Logger
	pol, err := policy.New(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("localcluster: hub policy: %w", err)
	}
	for i, id := range h.ids {
		cfg := hub.DefaultConfig()
		cfg.Identity, cfg.Endpoint = id, h.eps[i]
		cfg.DataDir = filepath.Join(hubDir(c.cfg.DataDir, i), "hub")
		// The same list on every start: a restarted replica finds its shard
		// in DataDir, and dragonboat then ignores the list.
		cfg.Bootstrap = h.replicaIDs()
		cfg.Join = slices.Delete(slices.Clone(addrs), i, i+1)
		cfg.Authorizer = hub.PolicyAuthorizer(pol)
		cfg.Logger = c.cfg.Logger
		r, err := hub.Start(ctx, cfg)
		if err != nil {
			return fmt.Errorf("localcluster: hub replica %d: %w", i+1, err)
		}
		h.replicas = append(h.replicas, r)
	}
	return nil
}

func hubDir(data string, i int) string { return filepath.Join(data, fmt.Sprintf("hub%d", i+1)) }

// enroll registers every node with the hub, has the first node create the
// group (and say how far each node class and data class is trusted) and
// invite the others, who accept, and places each deployed class on the
// nodes; then each node watches the group, and its TLS admits the
// members the hub knows (and the hub's replicas).
func (c *Cluster) enroll(ctx context.Context) error {
	h, app := c.hub, c.cfg.Hub.App
	for _, id := range c.ids {
		hubOnly := func(peer string, _ ed25519.PublicKey) error {
			if slices.Contains(h.replicaIDs(), peer) {
				return nil
			}
			return fmt.Errorf("%s is not one of the hub's replicas", peer)
		}
		nw, err := tlsnet.New(tlsnet.Config{Identity: id, Authorize: hubOnly, Logger: c.cfg.Logger})
		if err != nil {
			return err
		}
		ep, err := nw.Listen("127.0.0.1:0")
		if err != nil {
			return err
		}
		h.hubEps = append(h.hubEps, ep)
		cl, err := hub.NewClient(hub.ClientConfig{Identity: id, Endpoint: ep, Hubs: h.addrs()})
		if err != nil {
			return err
		}
		h.clients = append(h.clients, cl)
	}
	admin, group := h.clients[0], c.cfg.Group
	if _, err := hub.Enroll(ctx, admin, group, c.registration(0, ""), true); err != nil {
		return fmt.Errorf("localcluster: node 1: %w", err)
	}
	for _, nc := range app.Env.Nodes {
		if err := admin.SetTrust(ctx, group, nc.Name, nc.Trust); err != nil {
			return fmt.Errorf("localcluster: trust of node class %s: %w", nc.Name, err)
		}
	}
	for _, cp := range c.cfg.Plan.Classes {
		g, err := cp.DataGuarantees()
		if err != nil {
			continue // unsatisfiable: nothing deploys it
		}
		info := hub.ClassInfo{Confidential: g.Confidential, Encrypted: encrypts(cp)}
		if err := admin.SetClass(ctx, group, cp.Name, info); err != nil {
			return fmt.Errorf("localcluster: class %s: %w", cp.Name, err)
		}
	}
	info, err := admin.Group(ctx, group)
	if err != nil {
		return err
	}
	for i, id := range c.ids[1:] {
		member := slices.ContainsFunc(info.Members, func(m hub.MemberInfo) bool { return m.ID == id.ID() })
		if d, err := admin.Invite(ctx, group, id.Public()); !member && (err != nil || !d.Allow) {
			return fmt.Errorf("localcluster: invite node %d to %s: %v %v", i+2, group, d.Reasons, err)
		}
		if _, err := hub.Enroll(ctx, h.clients[i+1], group, c.registration(i+1, ""), false); err != nil {
			return fmt.Errorf("localcluster: node %d: %w", i+2, err)
		}
	}
	// Every node hosts every deployed class here; the hub's policy decides
	// whether it may (a confidential class goes on a non-member only if
	// its stack encrypts it).
	for _, cp := range c.cfg.Plan.Classes {
		if !cp.Satisfiable || len(c.cfg.Classes) > 0 && !slices.Contains(c.cfg.Classes, cp.Name) {
			continue
		}
		for i, id := range c.ids {
			d, err := admin.Place(ctx, group, cp.Name, id.ID())
			if err != nil {
				return fmt.Errorf("localcluster: place class %s on node %d (%s): %w (reasons: %v)", cp.Name, i+1, c.cfg.NodeClasses[i], err, d.Reasons)
			}
		}
	}
	for i := range c.ids {
		w, err := hub.WatchGroup(ctx, hub.WatchConfig{Client: h.clients[i], Group: group, Also: h.replicaIDs(), Logger: c.cfg.Logger})
		if err != nil {
			return fmt.Errorf("localcluster: node %d: %w", i+1, err)
		}
		h.watches = append(h.watches, w)
		kc := hub.DefaultKeysConfig()
		kc.Client, kc.Group, kc.Logger = h.clients[i], group, c.cfg.Logger
		k, err := hub.StartKeys(kc)
		if err != nil {
			return fmt.Errorf("localcluster: node %d: %w", i+1, err)
		}
		h.keys = append(h.keys, k)
	}
	return nil
}

// encrypts reports whether a class's stack provides encryption.
func encrypts(cp engine.ClassPlan) bool {
	for _, l := range cp.Stack {
		if slices.Contains(l.Provides, "encryption") {
			return true
		}
	}
	return false
}

// registration is node i's registration with the hub: its node class,
// whether other nodes can dial it (the app's `reachable`), and where.
func (c *Cluster) registration(i int, addr string) hub.RegisterArgs {
	nc := c.cfg.NodeClasses[i]
	reach := "public"
	for _, n := range c.cfg.Hub.App.Env.Nodes {
		if n.Name == nc && n.Reachable == "nat" {
			reach = "nat"
		}
	}
	return hub.RegisterArgs{Class: nc, Reachability: reach, Addr: addr}
}

func (h *embeddedHub) close() {
	for _, k := range h.keys {
		k.Close()
	}
	for _, w := range h.watches {
		w.Close()
	}
	for _, cl := range h.clients {
		cl.Close()
	}
	for _, ep := range h.hubEps {
		ep.Close()
	}
	for i := len(h.replicas) - 1; i >= 0; i-- {
		h.replicas[i].Close()
	}
	for _, ep := range h.eps {
		ep.Close()
	}
}
