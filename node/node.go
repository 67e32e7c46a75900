package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
)

// Config is what a node is started with.
type Config struct {
	// Plan is the app's plan (rime plan --format json).
	Plan *engine.Plan
	// Group is the app's group, which keys the group's secrets.
	Group string
	// GroupSecret is the group's shared secret (at least 16 bytes).
	GroupSecret []byte
	// NodeClass is the app's node class this node belongs to.
	NodeClass string
	// DataDir keeps the identity and every layer's files.
	DataDir string
	// Network and Listen: the node attaches to Network at Listen.
	Network network.Network
	Listen  string
	// Join: addresses of nodes already in the group; empty for the
	// group's first node, which bootstraps the group's shards.
	Join []string
	// Classes to host; empty means every class of the plan.
	Classes []string
	// Keys gives this node the group's epoch keys for the classes sealed
	// end to end (see protocols.KeySource); nil on a node that is not a
	// member, which then keeps and forwards only their ciphertext.
	Keys protocols.KeySource
	// Registry of protocol implementations; nil means protocols.Default.
	Registry *protocols.Registry
	// Logger; nil discards.
	Logger *slog.Logger

	// --- hub relay ---
	// Relayer reaches the group's members through the hub's relay
	// (hub.Client.Relayer); the hub-relay transport needs it. nil when
	// the plan puts no class of this node on hub-relay.
	Relayer protocols.Relayer
	// --- end hub relay ---
}

// Validate names the field that is wrong.
func (c *Config) Validate() error {
	switch {
	case c.Plan == nil:
		return errors.New("node: Config.Plan is nil")
	case c.DataDir == "":
		return errors.New("node: Config.DataDir is empty")
	case c.Network == nil || c.Listen == "":
		return errors.New("node: Config.Network and Config.Listen are required")
	case c.NodeClass == "":
		return errors.New("node: Config.NodeClass is empty")
	case len(c.GroupSecret) < 16:
		return fmt.Errorf("node: Config.GroupSecret has %d bytes; want at least 16", len(c.GroupSecret))
	}
	return nil
}

// Node is a running node.
type Node struct {
	id     *identity.Identity
	ep     network.Endpoint
	log    *slog.Logger
	stacks []*stack

	closeOnce sync.Once
}

type stack struct {
	class  string
	plan   engine.ClassPlan
	layers []protocols.Instance
}

// Check reports, without starting anything, whether reg can deploy the
// plan's classes: one error naming every class that is unsatisfiable and
// every layer whose protocol has no implementation.
func Check(p *engine.Plan, classes []string, reg *protocols.Registry) error {
	if reg == nil {
		reg = protocols.Default
	}
	var problems []string
	for _, name := range classes {
		cp, ok := classPlan(p, name)
		if !ok {
			problems = append(problems, fmt.Sprintf("class %q is not in the plan of %s (it has %s)", name, p.App, strings.Join(classNames(p), ", ")))
			continue
		}
		if !cp.Satisfiable {
			problems = append(problems, fmt.Sprintf("class %s is unsatisfiable: see `rime explain --class %s`", name, name))
			continue
		}
		for _, l := range cp.Stack {
			if _, ok := reg.Lookup(l.Protocol); !ok {
				problems = append(problems, fmt.Sprintf("class %s: layer %s uses protocol %s, which has no implementation in this build (its spec says implemented: %v)", name, l.Layer, l.Protocol, l.Implemented))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("node: refusing the plan of %s:\n  %s\nPlan with implemented protocols only (rime plan --implemented), or host fewer classes (--class)", p.App, strings.Join(problems, "\n  "))
}

func classPlan(p *engine.Plan, name string) (engine.ClassPlan, bool) {
	for _, c := range p.Classes {
		if c.Name == name {
			return c, true
		}
	}
	return engine.ClassPlan{}, false
}

func classNames(p *engine.Plan) []string {
	var out []string
	for _, c := range p.Classes {
		out = append(out, c.Name)
	}
	return out
}

// Start starts a node; see the package comment for the steps.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = protocols.Default
	}
	classes := cfg.Classes
	if len(classes) == 0 {
		classes = classNames(cfg.Plan)
	}
	if err := Check(cfg.Plan, classes, reg); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	id, err := identity.LoadOrCreate(filepath.Join(cfg.DataDir, "identity"))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ep, err := cfg.Network.Listen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: listen %s: %w", cfg.Listen, err)
	}
	n := &Node{id: id, ep: ep, log: lg.With("node", id.ID())}
	for _, name := range classes {
		cp, _ := classPlan(cfg.Plan, name)
		st, err := n.build(ctx, &cfg, reg, cp)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.stacks = append(n.stacks, st)
	}
	return n, nil
}

// build provisions a class's layers bottom up, then starts them bottom up.
func (n *Node) build(ctx context.Context, cfg *Config, reg *protocols.Registry, cp engine.ClassPlan) (*stack, error) {
	st := &stack{class: cp.Name, plan: cp}
	node := protocols.Node{
		ID: n.id.ID(), NodeClass: cfg.NodeClass, Key: n.id.Key, DataDir: cfg.DataDir,
		Bootstrap: len(cfg.Join) == 0, Join: cfg.Join,
	}
	order, err := dependencyOrder(cp)
	if err != nil {
		return nil, err
	}
	var started []engine.Layer
	for _, l := range order {
		started = append(started, l)
		mod, _ := reg.Lookup(l.Protocol)
		inst := mod.New()
		env := &protocols.Env{
			Node: node, App: cfg.Plan.App, Group: cfg.Group, Class: cp.Name, GroupSecret: cfg.GroupSecret,
			Keys: cfg.Keys, Params: l.Params, Hosts: l.Hosts,
			DataDir: filepath.Join(cfg.DataDir, "classes", cp.Name, l.Protocol),
			Network: n.ep, Below: slices.Clone(st.layers),
			Logger: n.log.With("class", cp.Name, "protocol", l.Protocol),
		}
		env.Relayer = cfg.Relayer // for the hub-relay transport
		if err := inst.Provision(env); err != nil {
			return nil, fmt.Errorf("node: class %s: provision %s: %w", cp.Name, l.Protocol, err)
		}
		if err := inst.Validate(); err != nil {
			return nil, fmt.Errorf("node: class %s: %s: %w", cp.Name, l.Protocol, err)
		}
		st.layers = append(st.layers, inst)
	}
	for i, inst := range st.layers {
		if err := inst.Start(ctx); err != nil {
			closeTopDown(st.layers[:i])
			return nil, fmt.Errorf("node: class %s: start %s: %w", cp.Name, started[i].Protocol, err)
		}
	}
	return st, nil
}

// earlyCapability is placed as low in a stack as its provider's own
// requirements allow. A layer finds the layers below it (protocols.Find)
// and nothing above, and the plan lists "security" above replication
// and storage; so the layer that seals a class's data end to end must
// sit below every layer that keeps or sends that data, or they would not
// find it and would keep plaintext.
const earlyCapability = "encryption"

// dependencyOrder orders a stack so each layer comes after the layers
// providing what it requires (the plan lists layers by kind, where
// storage sits above consensus although Raft keeps its log in it); ties
// keep the plan's order, except that a layer providing earlyCapability
// goes first among the layers that are ready.
func dependencyOrder(cp engine.ClassPlan) ([]engine.Layer, error) {
	var out []engine.Layer
	have := map[string]bool{}
	placed := make([]bool, len(cp.Stack))
	ready := func(l engine.Layer) bool {
		for _, rq := range l.Requires {
			if !have[rq] {
				return false
			}
		}
		return true
	}
	for len(out) < len(cp.Stack) {
		next := -1
		for i, l := range cp.Stack {
			if placed[i] || !ready(l) {
				continue
			}
			if next < 0 {
				next = i
			}
			if slices.Contains(l.Provides, earlyCapability) {
				next = i
				break
			}
		}
		if next >= 0 {
			l := cp.Stack[next]
			placed[next] = true
			out = append(out, l)
			for _, pv := range l.Provides {
				have[pv] = true
			}
		}
		if next < 0 {
			return nil, fmt.Errorf("node: class %s: the stack's requires cannot be ordered (a cycle, or a capability no layer provides)", cp.Name)
		}
	}
	return out, nil
}

func closeTopDown(layers []protocols.Instance) {
	for i := len(layers) - 1; i >= 0; i-- {
		layers[i].Close()
	}
}

// ID is the node's identity.
func (n *Node) ID() string { return n.id.ID() }

// Addr is the node's network address.
func (n *Node) Addr() string { return n.ep.Addr() }

// Classes are the classes the node hosts, in plan order.
func (n *Node) Classes() []string {
	var out []string
	for _, st := range n.stacks {
		out = append(out, st.class)
	}
	return out
}

// Channel is the top layer of class's stack, as applications use it.
func (n *Node) Channel(class string) (protocols.Channel, error) {
	for _, st := range n.stacks {
		if st.class != class {
			continue
		}
		if ch, ok := st.layers[len(st.layers)-1].(protocols.Channel); ok {
			return ch, nil
		}
		return nil, fmt.Errorf("node: class %s: its top layer %s is not a channel", class, st.plan.Stack[len(st.plan.Stack)-1].Protocol)
	}
	return nil, fmt.Errorf("node: class %q is not hosted here (hosted: %s)", class, strings.Join(n.Classes(), ", "))
}

// Layer returns class's layer that implements T (say protocols.Log).
func Layer[T any](n *Node, class string) (T, bool) {
	var zero T
	for _, st := range n.stacks {
		if st.class == class {
			for i := len(st.layers) - 1; i >= 0; i-- {
				if t, ok := st.layers[i].(T); ok {
					return t, true
				}
			}
		}
	}
	return zero, false
}

// Close stops every stack, top down, then leaves the network.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		for i := len(n.stacks) - 1; i >= 0; i-- {
			closeTopDown(n.stacks[i].layers)
		}
		n.ep.Close()
	})
	return nil
}

// Deployable picks the classes of p that reg can run: the ones asked for
// (all when want is empty) that are satisfiable and whose every protocol
// has an implementation. skipped says, one line each, why every other
// class is left out, and names asked-for classes the plan lacks.
func Deployable(p *engine.Plan, want []string, reg *protocols.Registry) (classes, skipped []string) {
	if reg == nil {
		reg = protocols.Default
	}
	for _, c := range p.Classes {
		if len(want) > 0 && !slices.Contains(want, c.Name) {
			continue
		}
		if !c.Satisfiable {
			skipped = append(skipped, fmt.Sprintf("class %s: not deployed: unsatisfiable (see rime explain --class %s)", c.Name, c.Name))
			continue
		}
		var missing []string
		for _, l := range c.Stack {
			if _, ok := reg.Lookup(l.Protocol); !ok {
				missing = append(missing, l.Protocol)
			}
		}
		if len(missing) > 0 {
			skipped = append(skipped, fmt.Sprintf("class %s: not deployed: needs %s, not implemented in this build", c.Name, strings.Join(missing, ", ")))
			continue
		}
		classes = append(classes, c.Name)
	}
	for _, w := range want {
		if _, ok := classPlan(p, w); !ok {
			skipped = append(skipped, fmt.Sprintf("class %s: not in the plan of %s (it has %s)", w, p.App, strings.Join(classNames(p), ", ")))
		}
	}
	return classes, skipped
}

// Report is what a class's layers show of themselves, merged (see
// protocols.Reporter), with "members": the alive members the class's
// membership layer sees. A layer that fails to report adds "error".
func (n *Node) Report(ctx context.Context, class string) (map[string]any, error) {
	st, ok := n.stackOf(class)
	if !ok {
		return nil, fmt.Errorf("node: class %q is not hosted here (it hosts %s)", class, strings.Join(n.Classes(), ", "))
	}
	out := map[string]any{}
	for _, l := range st.layers {
		if m, ok := l.(protocols.Membership); ok {
			alive := 0
			for _, mem := range m.Members() {
				if mem.State == protocols.MemberAlive {
					alive++
				}
			}
			out["members"] = alive
		}
		if r, ok := l.(protocols.Reporter); ok {
			rep, err := r.Report(ctx)
			for k, v := range rep {
				out[k] = v
			}
			if err != nil {
				out["error"] = err.Error()
			}
		}
	}
	return out, nil
}

// Watch returns a wait function for the class's next announced change
// (see protocols.Notifier): call Watch, read Report, then wait; wait
// returns at the first change after Watch, or when ctx ends (with its
// error). A class no layer of which announces changes waits for ctx.
func (n *Node) Watch(class string) (wait func(ctx context.Context) error) {
	var chs []<-chan struct{}
	if st, ok := n.stackOf(class); ok {
		for _, l := range st.layers {
			if nt, ok := l.(protocols.Notifier); ok {
				chs = append(chs, nt.Changed())
			}
		}
	}
	return func(ctx context.Context) error {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
		for _, ch := range chs {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			return ctx.Err()
		}
		return nil
	}
}

func (n *Node) stackOf(class string) (*stack, bool) {
	for _, st := range n.stacks {
		if st.class == class {
			return st, true
		}
	}
	return nil, false
}
