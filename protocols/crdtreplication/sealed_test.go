package crdtreplication_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/engine"
	"github.com/rime-dev/rime/network/memnet"
	"github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/causalbroadcast"
	"github.com/rime-dev/rime/protocols/convergentchannel"
	"github.com/rime-dev/rime/protocols/crdtreplication"
	"github.com/rime-dev/rime/protocols/durablestorage"
	"github.com/rime-dev/rime/protocols/e2eencryption"
	"github.com/rime-dev/rime/protocols/tcpmtls"
	"github.com/rime-dev/rime/verify/sim"
)

// sealedPlan is the plan rime makes for a confidential available class
// of type typ: stackPlan's layers with e2e-encryption, listed by kind as
// the planner lists it (above storage; the node places it lower).
func sealedPlan(typ string, copies int, sealed bool) *engine.Plan {
	stack := []engine.Layer{
		{Layer: "transport", Protocol: tcpmtls.Name, Implemented: true, Provides: []string{"transport"}},
		{Layer: "membership", Protocol: "swim", Implemented: true, Provides: []string{"membership"}, Requires: []string{"transport"}},
		{Layer: "broadcast", Protocol: causalbroadcast.Name, Implemented: true, Params: map[string]any{"fanout": float64(3)},
			Provides: []string{"broadcast"}, Requires: []string{"membership"}},
		{Layer: "replication", Protocol: crdtreplication.Name, Implemented: true,
			Params:   map[string]any{"type": typ, "delivery": "causal", "copies": float64(copies)},
			Provides: []string{"replica", "local-replica"}, Requires: []string{"broadcast", "store"}},
		{Layer: "storage", Protocol: durablestorage.Name, Implemented: true, Provides: []string{"store"}},
	}
	if sealed {
		stack = append(stack, engine.Layer{Layer: "security", Protocol: e2eencryption.Name, Implemented: true,
			Provides: []string{"encryption"}, Requires: []string{"membership"}})
	}
	stack = append(stack, engine.Layer{Layer: "channel", Protocol: convergentchannel.Name, Implemented: true,
		Params: map[string]any{"model": "causal"}, Provides: []string{"channel"}, Requires: []string{"replica"}})
	return &engine.Plan{App: "notes", Group: "testers", Classes: []engine.ClassPlan{{Name: class, Satisfiable: true, Stack: stack}}}
}

// sealedCluster is nodes on one memnet, each given its own key source
// (nil: a node given no keys, like an honest-but-curious relay).
type sealedCluster struct {
	t    *testing.T
	net  *memnet.Network
	plan *engine.Plan
	reg  *protocols.Registry
	dir  string
	keys []protocols.KeySource

	mu    sync.Mutex
	nodes []*node.Node
}

func startSealed(ctx context.Context, t *testing.T, plan *engine.Plan, keys []protocols.KeySource) *sealedCluster {
	t.Helper()
	c := &sealedCluster{t: t, net: memnet.New(11), plan: plan, reg: sim.FastRegistry(crdtreplication.NewModule(fastReplication())),
		dir: t.TempDir(), keys: keys, nodes: make([]*node.Node, len(keys))}
	t.Cleanup(c.close)
	for i := range keys {
		var join []string
		if i > 0 {
			join = []string{c.addr(0)}
		}
		c.start(ctx, i, join)
	}
	c.waitMembers(ctx)
	return c
}

func (c *sealedCluster) addr(i int) string { return fmt.Sprintf("10.3.0.%d:7000", i+1) }

func (c *sealedCluster) dataDir(i int) string { return filepath.Join(c.dir, fmt.Sprintf("node%d", i)) }

func (c *sealedCluster) start(ctx context.Context, i int, join []string) {
	c.t.Helper()
	nodeClass := "device"
	if c.keys[i] == nil {
		nodeClass = "relay"
	}
	n, err := node.Start(ctx, node.Config{Plan: c.plan, Group: c.plan.Group, GroupSecret: []byte("rime-sealed-test-group-secret-01"),
		NodeClass: nodeClass, DataDir: c.dataDir(i), Network: c.net, Listen: c.addr(i), Join: join,
		Keys: c.keys[i], Registry: c.reg, Logger: testLogger(i)})
	if err != nil {
		c.t.Fatalf("start node %d: %v", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
}

// restart stops node i and starts it again from its disk, with keys.
func (c *sealedCluster) restart(ctx context.Context, i int, keys protocols.KeySource) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	n.Close()
	c.keys[i] = keys
	var join []string
	for j := range c.nodes {
		if j != i {
			join = append(join, c.addr(j))
		}
	}
	c.start(ctx, i, join)
	c.waitMembers(ctx)
}

func (c *sealedCluster) close() {
	for i := len(c.nodes) - 1; i >= 0; i-- {
		if n := c.nodes[i]; n != nil {
			n.Close()
		}
	}
}

func (c *sealedCluster) waitMembers(ctx context.Context) {
	c.t.Helper()
	for i, n := range c.nodes {
		m, _ := node.Layer[protocols.Membership](n, class)
		ev, cancel := m.Subscribe()
		for alive(m) < len(c.nodes) {
			select {
			case <-ev:
			case <-ctx.Done():
				cancel()
				c.t.Fatalf("node %d sees %d alive members, want %d", i, alive(m), len(c.nodes))
			}
		}
		cancel()
	}
}

// reader is a component following the class on a member: it keeps the
// state the session's events build.
type reader struct {
	t    *testing.T
	sess protocols.Session

	mu      sync.Mutex
	state   crdt.State
	err     error
	changed chan struct{}
}

func (c *sealedCluster) connect(ctx context.Context, i int) *reader {
	c.t.Helper()
	ch, err := c.nodes[i].Channel(class)
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := ch.Connect(ctx)
	if err != nil {
		c.t.Fatalf("node %d: connect: %v", i, err)
	}
	r := &reader{t: c.t, sess: s, changed: make(chan struct{})}
	c.t.Cleanup(s.Disconnect)
	go r.run()
	return r
}

func (r *reader) run() {
	for ev := range r.sess.Events() {
		r.mu.Lock()
		d, err := crdt.Decode(ev.Data)
		switch {
		case err != nil:
		case ev.Kind == protocols.Initialize:
			r.state = d
		case ev.Kind == protocols.Update:
			err = r.state.Merge(d)
		}
		if err != nil && r.err == nil {
			r.err = err
		}
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
	r.mu.Lock()
	if r.err == nil {
		r.err = fmt.Errorf("session ended: %w", r.sess.Err())
	}
	close(r.changed)
	r.mu.Unlock()
}

// render is a state as a comparable string.
func render(st crdt.State) string {
	switch s := st.(type) {
	case *crdt.Log:
		var vs []string
		for _, e := range s.Entries() {
			vs = append(vs, string(e.Data))
		}
		slices.Sort(vs)
		return strings.Join(vs, ",")
	case *crdt.Register:
		v, _ := s.Get()
		return string(v)
	case *crdt.Map:
		var vs []string
		for _, k := range s.Keys() {
			v, _ := s.Get(k)
			vs = append(vs, k+"="+string(v))
		}
		return strings.Join(vs, ",")
	case *crdt.Set:
		return strings.Join(s.Elems(), ",")
	case *crdt.Counter:
		return fmt.Sprint(s.Value())
	case *crdt.Text:
		return s.String()
	}
	return fmt.Sprintf("%T", st)
}

// wait waits until the reader's state renders as want.
func (r *reader) wait(ctx context.Context, want string) {
	r.t.Helper()
	for {
		r.mu.Lock()
		got, err, ch := "", r.err, r.changed
		if r.state != nil {
			got = render(r.state)
		}
		r.mu.Unlock()
		if got == want {
			return
		}
		if err != nil {
			r.t.Fatalf("reader: %v (state %q, want %q)", err, got, want)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			r.t.Fatalf("state %q, want %q: %v", got, want, ctx.Err())
		}
	}
}

// initialized waits for the session's Initialize.
func (r *reader) initialized(ctx context.Context) {
	r.t.Helper()
	for {
		r.mu.Lock()
		ok, err, ch := r.state != nil, r.err, r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			r.t.Fatalf("reader: %v", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			r.t.Fatalf("no Initialize: %v", ctx.Err())
		}
	}
}

func (r *reader) render() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		return ""
	}
	return render(r.state)
}

func submit(ctx context.Context, t *testing.T, r *reader, op crdt.Op) {
	t.Helper()
	b, err := crdt.MarshalOp(op)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.sess.Submit(ctx, b); err != nil {
		t.Fatalf("submit %#v: %v", op, err)
	}
}

// scan returns the files under dir that contain any of secrets.
func scan(t *testing.T, dir string, secrets []string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				hits = append(hits, fmt.Sprintf("%s holds %q", path, s))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func staticKeys(t *testing.T, epochs ...uint64) *e2eencryption.StaticKeys {
	t.Helper()
	s := e2eencryption.NewStaticKeys()
	for _, e := range epochs {
		if err := s.Add(e, bytes.Repeat([]byte{byte(e)}, 32)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// typeCase is a scenario for one convergent type: three members write in
// turn, each step waited for on every member, so the outcome is known.
type typeCase struct {
	typ   crdt.Type
	steps []struct {
		by int
		op crdt.Op
	}
	want string
	// secrets are distinctive strings the ops write (the plaintext a
	// disk must not hold).
	secrets []string
}

func typeCases() []typeCase {
	type step = struct {
		by int
		op crdt.Op
	}
	return []typeCase{
		{typ: crdt.TypeLog,
			steps:   []step{{0, crdt.LogAppend{Data: []byte("secret-log-alpha")}}, {1, crdt.LogAppend{Data: []byte("secret-log-bravo")}}, {2, crdt.LogAppend{Data: []byte("secret-log-charlie")}}},
			want:    "secret-log-alpha,secret-log-bravo,secret-log-charlie",
			secrets: []string{"secret-log-alpha", "secret-log-bravo", "secret-log-charlie"}},
		{typ: crdt.TypeRegister,
			steps:   []step{{0, crdt.RegisterSet{Value: []byte("secret-reg-first")}}, {1, crdt.RegisterSet{Value: []byte("secret-reg-second")}}, {2, crdt.RegisterSet{Value: []byte("secret-reg-third")}}},
			want:    "secret-reg-third",
			secrets: []string{"secret-reg-first", "secret-reg-second", "secret-reg-third"}},
		{typ: crdt.TypeMap,
			steps: []step{{0, crdt.MapPut{Key: "secret-key-a", Value: []byte("secret-map-one")}}, {1, crdt.MapPut{Key: "secret-key-b", Value: []byte("secret-map-two")}},
				{2, crdt.MapDelete{Key: "secret-key-a"}}, {0, crdt.MapPut{Key: "secret-key-c", Value: []byte("secret-map-three")}}},
			want:    "secret-key-b=secret-map-two,secret-key-c=secret-map-three",
			secrets: []string{"secret-key-a", "secret-key-b", "secret-map-one", "secret-map-two", "secret-map-three"}},
		{typ: crdt.TypeSet,
			steps: []step{{0, crdt.SetAdd{Elem: "secret-set-kept"}}, {1, crdt.SetAdd{Elem: "secret-set-gone"}},
				{2, crdt.SetRemove{Elem: "secret-set-gone"}}, {2, crdt.SetAdd{Elem: "secret-set-late"}}},
			want:    "secret-set-kept,secret-set-late",
			secrets: []string{"secret-set-kept", "secret-set-gone", "secret-set-late"}},
		{typ: crdt.TypeCounter,
			steps: []step{{0, crdt.CounterAdd{Delta: 1_000_001}}, {1, crdt.CounterAdd{Delta: 20}}, {2, crdt.CounterAdd{Delta: -3}}},
			want:  "1000018"},
		{typ: crdt.TypeText,
			steps: []step{{0, crdt.TextInsert{Pos: 0, Text: "secret-text-hello"}}, {1, crdt.TextInsert{Pos: 17, Text: " secret-text-world"}},
				{2, crdt.TextDelete{Pos: 0, Len: 7}}},
			want:    "text-hello secret-text-world",
			secrets: []string{"secret-text-hello", "text-hello", "secret-text-world", "text-world"}},
	}
}

// Three members and one node given no keys, each update acknowledged
// only once all four keep it: the members converge on every type; the
// keyless node replicated and acknowledged everything, and no file
// under any node's data directory holds a written value.
func TestSealedMembersConvergeEveryType(t *testing.T) {
	for _, tc := range typeCases() {
		t.Run(string(tc.typ), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			keys := []protocols.KeySource{staticKeys(t, 1), staticKeys(t, 1), staticKeys(t, 1), nil}
			c := startSealed(ctx, t, sealedPlan(string(tc.typ), 4, true), keys)
			rs := []*reader{c.connect(ctx, 0), c.connect(ctx, 1), c.connect(ctx, 2)}
			// The expected state after each step, from a local replica
			// applying the same ops in the same order.
			model, _ := crdt.New(tc.typ)
			for k, s := range tc.steps {
				submit(ctx, t, rs[s.by], s.op)
				if _, err := model.Apply(crdt.Stamp{Replica: fmt.Sprint(s.by), Time: uint64(k + 1)}, s.op); err != nil {
					t.Fatal(err)
				}
				for _, r := range rs {
					r.wait(ctx, render(model))
				}
			}
			if got := render(model); got != tc.want {
				t.Fatalf("the model renders %q, want %q", got, tc.want)
			}
			for i := range c.nodes {
				if hits := scan(t, c.dataDir(i), tc.secrets); len(hits) > 0 {
					t.Errorf("node %d's disk holds plaintext:\n%s", i, strings.Join(hits, "\n"))
				}
			}
			rep, _ := node.Layer[protocols.Replica](c.nodes[3], class)
			if err := rep.(interface{ Readable() error }).Readable(); !errors.Is(err, protocols.ErrNoKey) {
				t.Fatalf("keyless node: readable: %v", err)
			}
			got, err := c.nodes[3].Report(ctx, class)
			if err != nil || got["replica_held"] != uint64(0) || got["replica_sealed"] != true {
				// It shows nothing (it opens nothing) although it holds
				// and acknowledged every update (the members saw them).
				t.Fatalf("keyless node's report: %v %v", got, err)
			}
		})
	}
}

// The scan above can fail: without the encryption layer the same
// writes are on disk in plaintext.
func TestUnsealedDiskHoldsPlaintext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tc := typeCases()[0]
	keys := []protocols.KeySource{staticKeys(t, 1), staticKeys(t, 1), staticKeys(t, 1), nil}
	c := startSealed(ctx, t, sealedPlan(string(tc.typ), 4, false), keys)
	r := c.connect(ctx, 0)
	for _, s := range tc.steps {
		submit(ctx, t, r, s.op)
	}
	r.wait(ctx, tc.want)
	if hits := scan(t, c.dataDir(3), tc.secrets); len(hits) == 0 {
		t.Fatal("an unsealed replica's disk holds none of the written values: the scan finds nothing")
	}
}

// A node given no keys refuses to be read or written: the channel says
// why, the replica's Apply and Follow fail with ErrNoKey.
func TestSealedNonMemberHoldsOnlyCiphertext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := []protocols.KeySource{staticKeys(t, 1), nil}
	c := startSealed(ctx, t, sealedPlan("log", 2, true), keys)
	r := c.connect(ctx, 0)
	submit(ctx, t, r, crdt.LogAppend{Data: []byte("secret-one")})
	r.wait(ctx, "secret-one") // acknowledged: the keyless node keeps it

	ch, _ := c.nodes[1].Channel(class)
	_, err := ch.Connect(ctx)
	if err == nil || !errors.Is(err, protocols.ErrNoKey) || !strings.Contains(err.Error(), "holds only ciphertext of class "+class) {
		t.Fatalf("connect on the keyless node: %v", err)
	}
	rep, _ := node.Layer[protocols.Replica](c.nodes[1], class)
	op, _ := crdt.MarshalOp(crdt.LogAppend{Data: []byte("x")})
	if err := rep.Apply(ctx, op); !errors.Is(err, protocols.ErrNoKey) {
		t.Fatalf("apply on the keyless node: %v", err)
	}
	if _, err := rep.Follow(1).Next(ctx); !errors.Is(err, protocols.ErrNoKey) {
		t.Fatalf("follow on the keyless node: %v", err)
	}
	if seq, st := rep.Snapshot(); seq != 0 || st != nil {
		t.Fatalf("snapshot on the keyless node: %d %q", seq, st)
	}
}

// A member restarted rebuilds the class's state from its sealed log,
// once its keys are there: with no key yet it shows nothing and its
// writes wait; the keys arrive, and the history opens and the writes go
// through.
func TestSealedRestartRebuilds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := []protocols.KeySource{staticKeys(t, 1), staticKeys(t, 1), nil}
	c := startSealed(ctx, t, sealedPlan("set", 3, true), keys)
	r0, r1 := c.connect(ctx, 0), c.connect(ctx, 1)
	submit(ctx, t, r0, crdt.SetAdd{Elem: "secret-before-a"})
	submit(ctx, t, r1, crdt.SetAdd{Elem: "secret-before-b"})
	r0.wait(ctx, "secret-before-a,secret-before-b")
	r1.wait(ctx, "secret-before-a,secret-before-b")

	late := e2eencryption.NewStaticKeys()
	c.restart(ctx, 0, late)
	r0 = c.connect(ctx, 0)
	r0.initialized(ctx)
	if got := r0.render(); got != "" {
		t.Fatalf("state before any key: %q", got)
	}
	done := make(chan error, 1)
	go func() {
		op, _ := crdt.MarshalOp(crdt.SetRemove{Elem: "secret-before-b"})
		done <- r0.sess.Submit(ctx, op)
	}()
	if err := late.Add(1, bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("submit across the keys' arrival: %v", err)
	}
	// The remove observed node 1's add, so it removes it everywhere.
	r0.wait(ctx, "secret-before-a")
	r1.wait(ctx, "secret-before-a")
	for i := range c.nodes {
		if hits := scan(t, c.dataDir(i), []string{"secret-before"}); len(hits) > 0 {
			t.Errorf("plaintext on disk:\n%s", strings.Join(hits, "\n"))
		}
	}
}

// Key rotation with keys handed out of band: after member 2 is left out
// of epoch 2, what the others write opens for them and not for it, while
// it still reads everything written before.
func TestSealedRotationLeavesRemovedMemberBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k0, k1, k2 := staticKeys(t, 1), staticKeys(t, 1), staticKeys(t, 1)
	c := startSealed(ctx, t, sealedPlan("log", 2, true), []protocols.KeySource{k0, k1, k2, nil})
	rs := []*reader{c.connect(ctx, 0), c.connect(ctx, 1), c.connect(ctx, 2)}
	submit(ctx, t, rs[0], crdt.LogAppend{Data: []byte("secret-old")})
	for _, r := range rs {
		r.wait(ctx, "secret-old")
	}
	for _, k := range []*e2eencryption.StaticKeys{k0, k1} {
		if err := k.Add(2, bytes.Repeat([]byte{2}, 32)); err != nil {
			t.Fatal(err)
		}
	}
	submit(ctx, t, rs[1], crdt.LogAppend{Data: []byte("secret-new")})
	submit(ctx, t, rs[2], crdt.LogAppend{Data: []byte("secret-from-removed")})
	want := "secret-from-removed,secret-new,secret-old"
	rs[0].wait(ctx, want)
	rs[1].wait(ctx, want)
	// Member 2 holds the new update (the sealed log replicates to every
	// node) but cannot open it.
	rep, _ := node.Layer[protocols.Replica](c.nodes[2], class)
	if _, err := rep.Seen(ctx); err != nil {
		t.Fatal(err)
	}
	rs[2].wait(ctx, "secret-from-removed,secret-old")
	if got := rs[2].render(); strings.Contains(got, "secret-new") {
		t.Fatalf("the member left out of epoch 2 reads %q", got)
	}
}
