// Package sim runs a plan's nodes in this process on the in-process
// network (memnet), where every fault rime verify injects can be made:
// partitions, one-way cuts, loss, duplication, reordering, delay, crash,
// and restart with the disk kept or lost. A Cluster is a nemesis.Target.
//
// Use it in order:
//
//  1. Start: the first node bootstraps the plan's shards, the others
//     join it; Start returns once they are all up;
//  2. drive it: Node(i) and Channel(i, class) for workloads, the
//     Target methods for faults;
//  3. Close.
//
// Timings: FastRegistry holds the real protocols tuned so that failure
// detection takes about a second and checkpoints and snapshots happen
// within seconds, so a verify schedule of ten seconds exercises them.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/checkpointedchannel"
	"github.com/rime-dev/rime/protocols/raft"
	"github.com/rime-dev/rime/protocols/swim"
	"github.com/rime-dev/rime/verify/nemesis"
)

// FastRegistry is protocols.Default with swim, raft and the checkpointed
// channel re-registered with test timings. Modules in the default
// registry that it does not retune are carried over as they are, and
// overrides replace modules of the same name (a test's broken protocol,
// say).
func FastRegistry(overrides ...protocols.Module) *protocols.Registry {
	reg := protocols.NewRegistry()
	sw := swim.DefaultConfig()
	sw.ProbeInterval, sw.ProbeTimeout, sw.GossipInterval = 100*time.Millisecond, 50*time.Millisecond, 30*time.Millisecond
	sw.SuspicionMult, sw.PushPullInterval, sw.ReconnectInterval = 2, time.Second, 300*time.Millisecond
	sw.LeaveTimeout = 200 * time.Millisecond
	rf := FastRaftConfig()
	ch := checkpointedchannel.DefaultConfig()
	ch.CheckpointEvery = 25
	ch.AppendTimeout = 2 * time.Second
	tuned := map[string]protocols.Module{
		swim.Name: swim.NewModule(sw), raft.Name: raft.NewModule(rf), checkpointedchannel.Name: checkpointedchannel.NewModule(ch),
	}
	for _, m := range overrides {
		tuned[m.Name] = m
	}
	for _, name := range protocols.Default.Names() {
		m, _ := protocols.Default.Lookup(name)
		if t, ok := tuned[name]; ok {
			m = t
		}
		reg.MustRegister(m)
	}
	return reg
}

// FastRaftConfig is raft's configuration in FastRegistry: snapshots
// every 50 entries, so a short run installs some.
func FastRaftConfig() raft.Config {
	rf := raft.DefaultConfig()
	rf.SnapshotEntries, rf.CompactionOverhead = 50, 10
	return rf
}

// Config describes a cluster. Start copies it.
type Config struct {
	Plan *engine.Plan
	// Classes the nodes host; empty: every class of the plan.
	Classes []string
	// NodeClasses gives each node its node class; its length is the
	// number of nodes.
	NodeClasses []string
	// Registry; nil means FastRegistry().
	Registry *protocols.Registry
	// Seed for the network's randomness (loss, duplication, ...).
	Seed uint64
	// DataDir holds the nodes' directories.
	DataDir string
	// GroupSecret; nil means a fixed test secret.
	GroupSecret []byte
	// Logger for node i; nil discards.
	Logger func(i int) *slog.Logger
}

// Cluster is n nodes on one memnet.
type Cluster struct {
	cfg Config
	net *memnet.Network

	mu    sync.Mutex
	nodes []*node.Node
	gen   []int // disk generation: a lost disk starts the next
}

// Start starts every node and returns once all are up.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Plan == nil || len(cfg.NodeClasses) == 0 || cfg.DataDir == "" {
		return nil, errors.New("sim: Config needs Plan, NodeClasses and DataDir")
	}
	if cfg.Registry == nil {
		cfg.Registry = FastRegistry()
	}
	if cfg.GroupSecret == nil {
		cfg.GroupSecret = []byte("rime-verify-group-secret-0123456")
	}
	n := len(cfg.NodeClasses)
	c := &Cluster{cfg: cfg, net: memnet.New(cfg.Seed), nodes: make([]*node.Node, n), gen: make([]int, n)}
	if err := c.start(ctx, 0, nil); err != nil {
		return nil, err
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.start(ctx, i, []string{c.Addr(0)}) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// N is the number of nodes.
func (c *Cluster) N() int { return len(c.nodes) }

// Network is the cluster's memnet, for statistics.
func (c *Cluster) Network() *memnet.Network { return c.net }

// Addr is node i's address, the same across restarts.
func (c *Cluster) Addr(i int) string { return fmt.Sprintf("10.0.%d.%d:7000", i/250, i%250+1) }

func (c *Cluster) dataDir(i int) string {
	return filepath.Join(c.cfg.DataDir, fmt.Sprintf("node%d.%d", i, c.gen[i]))
}

func (c *Cluster) start(ctx context.Context, i int, join []string) error {
	var lg *slog.Logger
	if c.cfg.Logger != nil {
		lg = c.cfg.Logger(i)
	}
	n, err := node.Start(ctx, node.Config{
		Plan: c.cfg.Plan, Group: c.cfg.Plan.Group, GroupSecret: c.cfg.GroupSecret, NodeClass: c.cfg.NodeClasses[i],
		DataDir: c.dataDir(i), Network: c.net, Listen: c.Addr(i), Join: join, Classes: c.cfg.Classes,
		Registry: c.cfg.Registry, Logger: lg,
	})
	if err != nil {
		return fmt.Errorf("sim: start node %d: %w", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return nil
}

// Node is node i, or nil while it is crashed.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Channel is class's channel on node i, or nil while it is crashed.
func (c *Cluster) Channel(i int, class string) protocols.Channel {
	n := c.Node(i)
	if n == nil {
		return nil
	}
	ch, err := n.Channel(class)
	if err != nil {
		return nil
	}
	return ch
}

// Partition cuts the links between groups (nodes in no group form one
// more group).
func (c *Cluster) Partition(groups [][]int) {
	listed := map[int]bool{}
	var addrs [][]string
	for _, g := range groups {
		var as []string
		for _, i := range g {
			listed[i] = true
			as = append(as, c.Addr(i))
		}
		addrs = append(addrs, as)
	}
	var rest []string
	for i := range c.nodes {
		if !listed[i] {
			rest = append(rest, c.Addr(i))
		}
	}
	if len(rest) > 0 {
		addrs = append(addrs, rest)
	}
	c.net.Partition(addrs...)
}

// OneWay drops what from sends to to.
func (c *Cluster) OneWay(from, to int) { c.net.Block(c.Addr(from), c.Addr(to)) }

func (c *Cluster) Heal()                               { c.net.Heal() }
func (c *Cluster) SetLoss(p float64)                   { c.net.SetLoss(p) }
func (c *Cluster) SetDuplicate(p float64)              { c.net.SetDuplicate(p) }
func (c *Cluster) SetReorder(p float64)                { c.net.SetReorder(p) }
func (c *Cluster) SetDelay(base, jitter time.Duration) { c.net.SetDelay(base, jitter) }

// Crash cuts node i off at once, then stops its layers, which can no
// longer tell anyone.
func (c *Cluster) Crash(i int) {
	c.net.Crash(c.Addr(i))
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

// Restart brings crashed node i back at its address, with its disk, or
// with a new one (a new identity), joining through the live nodes.
func (c *Cluster) Restart(ctx context.Context, i int, keepDisk bool) error {
	if c.Node(i) != nil {
		return nil
	}
	if !keepDisk {
		os.RemoveAll(c.dataDir(i))
		c.mu.Lock()
		c.gen[i]++
		c.mu.Unlock()
	}
	var join []string
	for j := range c.nodes {
		if j != i && c.Node(j) != nil {
			join = append(join, c.Addr(j))
		}
	}
	return c.start(ctx, i, join)
}

// Close stops every node, last first.
func (c *Cluster) Close() {
	for i := len(c.nodes) - 1; i >= 0; i-- {
		c.mu.Lock()
		n := c.nodes[i]
		c.nodes[i] = nil
		c.mu.Unlock()
		if n != nil {
			n.Close()
		}
	}
}

var _ nemesis.Target = (*Cluster)(nil)
