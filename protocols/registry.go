package protocols

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/rime-dev/rime/network"
)

// Module is a protocol's Go implementation as the registry knows it: its
// name (the spec's `name`), the capabilities it provides (the spec's
// `provides`), and a constructor.
type Module struct {
	Name     string
	Provides []string
	New      func() Instance
}

// Instance is one protocol instance in one class's stack on one node. Its
// lifecycle, driven by package node, is:
//
//  1. New: an empty instance;
//  2. Provision(env): decode env.Params and take the layers below from
//     env; no I/O that others can observe;
//  3. Validate: check the decoded configuration; errors name the field
//     and the value;
//  4. Start(ctx): begin work (the layers below are already started);
//  5. Close: stop (the layers above are already closed).
//
// After Provision an instance offers its capabilities through the
// interfaces of layer.go (a "log" provider implements Log, and so on).
type Instance interface {
	Provision(env *Env) error
	Validate() error
	Layer
}

// Node is what a layer knows of the node it runs on.
type Node struct {
	// ID is the node's identity, derived from Key's public half.
	ID string
	// NodeClass is the app's node class this node belongs to.
	NodeClass string
	// Key signs for the node.
	Key ed25519.PrivateKey
	// DataDir is the node's data directory; a layer keeps its files in
	// env.DataDir, a subdirectory of it.
	DataDir string
	// Bootstrap: this node starts the group's shards rather than joining
	// them (the first node of a group; see package node).
	Bootstrap bool
	// Join are addresses or IDs of nodes already in the group (empty for
	// the first node); see Resolver for what an ID joins through.
	Join []string
}

// Env is what a protocol instance is provisioned with.
type Env struct {
	Node Node
	// App and Class name the stack; Group is the app's group.
	App, Group, Class string
	// GroupSecret is the group's shared secret (32 bytes), from which
	// layers derive their keys, each with its own label (HKDF), so that
	// no two layers share a key.
	GroupSecret []byte
	// Keys gives the group's epoch keys to a member (see sealing.go);
	// nil on a node that is given none, which then holds only
	// ciphertext of the classes sealed end to end.
	Keys KeySource
	// Params are the plan's parameters for this layer, as decoded from
	// the plan's JSON (numbers are float64).
	Params map[string]any
	// Hosts are the node classes that may host this layer's replicas
	// (the classes its `assumes.hosts` admits); empty means every class.
	Hosts []string
	// DataDir is this layer's own directory under the node's data dir.
	DataDir string
	// Network is the node's endpoint; only transports use it directly.
	Network network.Endpoint
	// Below are the started-or-to-be-started layers under this one,
	// bottom first.
	Below []Instance
	// Logger is the layer's logger, already labelled with node, class and
	// protocol.
	Logger *slog.Logger

	// --- hub relay (protocols/hubrelay) ---
	// Relayer reaches the group's other members through the hub's relay
	// (see Relayer); only the hub-relay transport uses it. nil when the
	// node has no hub client, and then a plan that puts hub-relay on this
	// node fails at Validate.
	Relayer Relayer
	// --- end hub relay ---
}

// IntParam returns the integer parameter name, or def if the plan does
// not set it.
func (e *Env) IntParam(name string, def int) (int, error) {
	v, ok := e.Params[name]
	if !ok {
		return def, nil
	}
	switch n := v.(type) {
	case float64:
		if n != float64(int(n)) {
			return 0, fmt.Errorf("parameter %s: want an integer, have %v", name, n)
		}
		return int(n), nil
	case int:
		return n, nil
	case int64:
		return int(n), nil
	}
	return 0, fmt.Errorf("parameter %s: want an integer, have %T %v", name, v, v)
}

// HostsClass reports whether a node of nodeClass may host this layer.
func (e *Env) HostsClass(nodeClass string) bool {
	if len(e.Hosts) == 0 {
		return true
	}
	for _, h := range e.Hosts {
		if h == nodeClass {
			return true
		}
	}
	return false
}

// Find returns the nearest layer below that implements T.
func Find[T any](env *Env) (T, bool) {
	for i := len(env.Below) - 1; i >= 0; i-- {
		if t, ok := env.Below[i].(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// Need is Find with an error that names the capability and the layer
// asking for it.
func Need[T any](env *Env, who, capability string) (T, error) {
	t, ok := Find[T](env)
	if !ok {
		return t, fmt.Errorf("%s: no %q layer below it in class %s's stack", who, capability, env.Class)
	}
	return t, nil
}

// Registry maps protocol names to their implementations. Default holds
// the built-ins, registered from their packages' init; tests build their
// own with NewRegistry.
type Registry struct {
	mu   sync.RWMutex
	mods map[string]Module
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{mods: map[string]Module{}} }

// Default is filled by the built-in protocol packages; import
// protocols/builtin to register them all.
var Default = NewRegistry()

// Register adds m; a second module of the same name is an error.
func (r *Registry) Register(m Module) error {
	if m.Name == "" || m.New == nil {
		return fmt.Errorf("protocols: module %q: a name and a constructor are required", m.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.mods[m.Name]; dup {
		return fmt.Errorf("protocols: module %q registered twice", m.Name)
	}
	r.mods[m.Name] = m
	return nil
}

// MustRegister is Register for init functions: a duplicate is a
// programming error.
func (r *Registry) MustRegister(m Module) {
	if err := r.Register(m); err != nil {
		panic(err)
	}
}

// Lookup returns the module named name.
func (r *Registry) Lookup(name string) (Module, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.mods[name]
	return m, ok
}

// Names lists the registered modules, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.mods))
	for n := range r.mods {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DeriveKey derives a size-byte key for label (say "swim/gossip") from
// the group secret, so layers never share key material.
func (e *Env) DeriveKey(label string, size int) ([]byte, error) {
	if len(e.GroupSecret) < 16 {
		return nil, fmt.Errorf("%s: the group secret is missing or shorter than 16 bytes", label)
	}
	return hkdf.Key(sha256.New, e.GroupSecret, []byte(e.App+"/"+e.Group), label, size)
}
