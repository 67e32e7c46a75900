package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
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
	"github.com/rime-dev/rime/identity"
	rimenode "github.com/rime-dev/rime/node"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/causalbroadcast"
	"github.com/rime-dev/rime/protocols/convergentchannel"
	"github.com/rime-dev/rime/protocols/crdtreplication"
	"github.com/rime-dev/rime/protocols/durablestorage"
	"github.com/rime-dev/rime/protocols/e2eencryption"
	"github.com/rime-dev/rime/protocols/epidemicbroadcast"
	"github.com/rime-dev/rime/protocols/tcpmtls"
	"github.com/rime-dev/rime/verify/sim"
)

func fastKeys(t testing.TB, n *node, group string) *Keys {
	t.Helper()
	cfg := DefaultKeysConfig()
	cfg.Client, cfg.Group, cfg.PollInterval = n.c, group, 50*time.Millisecond
	k, err := StartKeys(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// waitKey waits until k holds epoch's key, woken by its Changed.
func waitKey(ctx context.Context, t testing.TB, k *Keys, epoch uint64) []byte {
	t.Helper()
	for {
		ch := k.Changed()
		if key, err := k.Key(ctx, epoch); err == nil {
			return key
		}
		select {
		case <-ch:
		case <-ctx.Done():
			k.mu.Lock()
			last := k.err
			k.mu.Unlock()
			t.Fatalf("no key of epoch %d (holds %v; last round: %v): %v", epoch, k.Epochs(), last, ctx.Err())
		}
	}
}

// teamGroup makes group "team" with members of the given classes (the
// first creates it); laptops are trusted with keys, relays are
// honest-but-curious. It returns the nodes and the group's epoch.
func teamGroup(ctx context.Context, t *testing.T, h *testHub, classes ...string) ([]*node, uint64) {
	t.Helper()
	var ns []*node
	for _, c := range classes {
		ns = append(ns, h.newNode(t, c))
	}
	if err := ns[0].c.CreateGroup(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if err := ns[0].c.SetTrust(ctx, "team", "laptop", TrustMember); err != nil {
		t.Fatal(err)
	}
	if err := ns[0].c.SetTrust(ctx, "team", "relay", TrustHonestButCurious); err != nil {
		t.Fatal(err)
	}
	epoch := uint64(1)
	for _, n := range ns[1:] {
		if _, err := ns[0].c.Invite(ctx, "team", n.id.Public()); err != nil {
			t.Fatal(err)
		}
		e, err := n.c.Accept(ctx, "team")
		if err != nil {
			t.Fatal(err)
		}
		epoch = e
	}
	return ns, epoch
}

func e2eLayer(t testing.TB, keys protocols.KeySource) *e2eencryption.Layer {
	t.Helper()
	l := e2eencryption.NewModule().New().(*e2eencryption.Layer)
	env := &protocols.Env{App: "teamchat", Group: "team", Class: "messages"}
	if keys != nil {
		env.Keys = keys
	}
	if err := l.Provision(env); err != nil {
		t.Fatal(err)
	}
	return l
}

// Three members and an honest-but-curious node. A member is removed: it
// keeps the old epoch key and opens what was written before, but opens
// nothing written after the rotation, which the remaining members read
// with the history. The honest-but-curious node is given no key at all,
// and the hub holds only wrapped keys.
func TestKeysRotateWhenAMemberIsRemoved(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	ns, epoch := teamGroup(ctx, t, h, "laptop", "laptop", "laptop", "relay")
	relay := ns[3]
	keys := []*Keys{fastKeys(t, ns[0], "team"), fastKeys(t, ns[1], "team"), fastKeys(t, ns[2], "team"), fastKeys(t, relay, "team")}
	var first []byte
	for i := range 3 {
		k := waitKey(ctx, t, keys[i], epoch)
		if first == nil {
			first = k
		} else if !bytes.Equal(k, first) {
			t.Fatalf("member %d holds another key of epoch %d", i, epoch)
		}
	}
	layers := []*e2eencryption.Layer{e2eLayer(t, keys[0]), e2eLayer(t, keys[1]), e2eLayer(t, keys[2])}
	before, err := layers[0].Seal(ctx, []byte("secret before the removal"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := layers[2].Open(ctx, before); err != nil || string(p) != "secret before the removal" {
		t.Fatalf("member 2 opens before its removal: %q %v", p, err)
	}

	// Remove member 2 (by the admin, node 0).
	removed := ns[2].id.ID()
	next, err := ns[0].c.Remove(ctx, "team", removed)
	if err != nil || next != epoch+1 {
		t.Fatalf("remove: epoch %d %v, want %d", next, err, epoch+1)
	}
	newKey := waitKey(ctx, t, keys[0], next)
	if !bytes.Equal(waitKey(ctx, t, keys[1], next), newKey) {
		t.Fatal("the remaining members hold different keys of the new epoch")
	}
	if bytes.Equal(newKey, first) {
		t.Fatal("the key did not change")
	}
	after, err := layers[1].Seal(ctx, []byte("secret after the removal"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layers[2].Open(ctx, after); !errors.Is(err, protocols.ErrNoKey) {
		t.Fatalf("the removed member opens an update written after its removal: %v, want ErrNoKey", err)
	}
	if p, err := layers[2].Open(ctx, before); err != nil || string(p) != "secret before the removal" {
		t.Fatalf("the removed member's old key: %q %v", p, err)
	}
	for i := range 2 {
		for _, s := range [][]byte{before, after} {
			if _, err := layers[i].Open(ctx, s); err != nil {
				t.Fatalf("member %d reads the history: %v", i, err)
			}
		}
	}

	// What the hub holds: copies for the members of each epoch only, and
	// no key in the clear on any replica's disk.
	es, err := ns[0].c.List(ctx, "team", keysEpochPrefix)
	if err != nil {
		t.Fatal(err)
	}
	copies := map[string]bool{}
	for _, e := range es {
		copies[strings.TrimPrefix(e.Path, keysEpochPrefix)] = true
		if strings.HasSuffix(e.Path, "/"+relay.id.ID()) {
			t.Errorf("a key copy for the honest-but-curious node: %s", e.Path)
		}
		if strings.HasPrefix(e.Path, keysCopyPath(next, removed)) {
			t.Errorf("a copy of the new epoch for the removed member: %s", e.Path)
		}
	}
	if !copies[strings.TrimPrefix(keysCopyPath(next, ns[1].id.ID()), keysEpochPrefix)] {
		t.Fatalf("no copy of epoch %d for member 1 in %v", next, copies)
	}
	if got := keys[3].Epochs(); len(got) != 0 {
		t.Fatalf("the honest-but-curious node holds keys of epochs %v", got)
	}
	if got := keys[2].Epochs(); got[len(got)-1] >= next {
		t.Fatalf("the removed member holds keys of epochs %v", got)
	}
	for _, k := range [][]byte{first, newKey} {
		if hits := scanDir(t, h.dir, k); len(hits) > 0 {
			t.Fatalf("an epoch key in the clear on a hub replica's disk: %v", hits)
		}
	}
}

func scanDir(t testing.TB, dir string, secret []byte) []string {
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
		if bytes.Contains(b, secret) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func TestKeysEncodings(t *testing.T) {
	id, _ := identity.Generate()
	other, _ := identity.Generate()
	var pub [32]byte
	copy(pub[:], bytes.Repeat([]byte{7}, 32))
	v := encodeKeysPub("team", id.ID(), pub, id.Key)
	if got, err := decodeKeysPub(v, "team", id.ID(), id.Public()); err != nil || got != pub {
		t.Fatalf("public key: %x %v", got, err)
	}
	for _, bad := range []struct {
		group, node string
		key         ed25519.PublicKey
	}{{"other", id.ID(), id.Public()}, {"team", other.ID(), id.Public()}, {"team", id.ID(), other.Public()}, {"team", id.ID(), nil}} {
		if _, err := decodeKeysPub(v, bad.group, bad.node, bad.key); err == nil {
			t.Fatalf("public key accepted for %+v", bad)
		}
	}
	c := encodeKeysCopy("team", 3, other.ID(), id.ID(), []byte("box"), id.Key)
	cp, err := decodeKeysCopy(c)
	if err != nil || cp.writer != id.ID() || string(cp.box) != "box" {
		t.Fatalf("copy: %+v %v", cp, err)
	}
	if !ed25519.Verify(id.Public(), keysCopyMessage("team", 3, other.ID(), id.ID(), cp.box), cp.sig) {
		t.Fatal("copy's signature")
	}
	if ed25519.Verify(id.Public(), keysCopyMessage("team", 4, other.ID(), id.ID(), cp.box), cp.sig) {
		t.Fatal("a copy's signature holds for another epoch")
	}
}

func FuzzDecodeKeys(f *testing.F) {
	id, _ := identity.Generate()
	var pub [32]byte
	f.Add(encodeKeysPub("team", id.ID(), pub, id.Key))
	f.Add(encodeKeysCopy("team", 1, "n1", id.ID(), []byte("box"), id.Key))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if cp, err := decodeKeysCopy(b); err == nil && (cp.writer == "" || len(cp.sig) != ed25519.SignatureSize) {
			t.Fatalf("decoded %+v", cp)
		}
		decodeKeysPub(b, "team", id.ID(), id.Public())
	})
}

// teamchatPlan is `rime plan examples/teamchat` for its two confidential
// classes, with the TLS transport in place of the hub relay (not
// implemented yet): messages, a causal log, and channels, an eventual
// set, each with e2e-encryption listed where the planner lists it.
// copies asks every node to keep each message (so an acknowledged
// message is on every disk, the removed member's included).
func teamchatPlan(copies int) *engine.Plan {
	class := func(name, typ, bc, delivery, model string, copies int) engine.ClassPlan {
		return engine.ClassPlan{Name: name, Satisfiable: true, Stack: []engine.Layer{
			{Layer: "transport", Protocol: tcpmtls.Name, Implemented: true, Provides: []string{"transport"}},
			{Layer: "membership", Protocol: "swim", Implemented: true, Provides: []string{"membership"}, Requires: []string{"transport"}},
			{Layer: "broadcast", Protocol: bc, Implemented: true, Params: map[string]any{"fanout": float64(3)},
				Provides: []string{"broadcast"}, Requires: []string{"membership"}},
			{Layer: "replication", Protocol: crdtreplication.Name, Implemented: true,
				Params:   map[string]any{"type": typ, "delivery": delivery, "copies": float64(copies)},
				Provides: []string{"local-replica"}, Requires: []string{"broadcast", "store"}},
			{Layer: "storage", Protocol: durablestorage.Name, Implemented: true, Provides: []string{"store"}},
			{Layer: "security", Protocol: e2eencryption.Name, Implemented: true, Provides: []string{"encryption"},
				Requires: []string{"membership"}, Hosts: []string{"laptop", "phone"}},
			{Layer: "channel", Protocol: convergentchannel.Name, Implemented: true, Params: map[string]any{"model": model},
				Provides: []string{"channel"}, Requires: []string{"local-replica"}},
		}}
	}
	return &engine.Plan{App: "teamchat", Group: "team", Classes: []engine.ClassPlan{
		class("messages", "log", causalbroadcast.Name, "causal", "causal", copies),
		class("channels", "set", epidemicbroadcast.Name, "none", "eventual", 2),
	}}
}

// chatView follows one class on one device.
type chatView struct {
	t    *testing.T
	sess protocols.Session

	mu      sync.Mutex
	state   crdt.State
	err     error
	changed chan struct{}
}

func follow(ctx context.Context, t *testing.T, n *rimenode.Node, class string) *chatView {
	t.Helper()
	ch, err := n.Channel(class)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ch.Connect(ctx)
	if err != nil {
		t.Fatalf("connect %s: %v", class, err)
	}
	v := &chatView{t: t, sess: s, changed: make(chan struct{})}
	t.Cleanup(s.Disconnect)
	go func() {
		for ev := range s.Events() {
			v.mu.Lock()
			d, err := crdt.Decode(ev.Data)
			if err == nil && ev.Kind == protocols.Initialize {
				v.state = d
			} else if err == nil {
				err = v.state.Merge(d)
			}
			if err != nil && v.err == nil {
				v.err = err
			}
			close(v.changed)
			v.changed = make(chan struct{})
			v.mu.Unlock()
		}
		v.mu.Lock()
		if v.err == nil {
			v.err = fmt.Errorf("session ended: %w", s.Err())
		}
		close(v.changed)
		v.mu.Unlock()
	}()
	return v
}

func (v *chatView) values() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch s := v.state.(type) {
	case *crdt.Log:
		var out []string
		for _, e := range s.Entries() {
			out = append(out, string(e.Data))
		}
		return out
	case *crdt.Set:
		return s.Elems()
	}
	return nil
}

// waitHas waits until the view holds every value of want.
func (v *chatView) waitHas(ctx context.Context, want ...string) {
	v.t.Helper()
	for {
		v.mu.Lock()
		ch, err := v.changed, v.err
		v.mu.Unlock()
		have := v.values()
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return slices.Contains(have, w) })
		if len(missing) == 0 {
			return
		}
		if err != nil {
			v.t.Fatalf("view: %v (missing %v)", err, missing)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			v.t.Fatalf("missing %v (have %v): %v", missing, have, ctx.Err())
		}
	}
}

func (v *chatView) submit(ctx context.Context, op crdt.Op) {
	v.t.Helper()
	b, _ := crdt.MarshalOp(op)
	if err := v.sess.Submit(ctx, b); err != nil {
		v.t.Fatalf("submit: %v", err)
	}
}

// A teamchat-like deployment: two laptops and a phone (members, given
// the group's keys through the hub), two honest-but-curious relays that
// host replicas of both confidential classes. Messages and channels flow
// between the members; the phone is removed and the conversation goes
// on under the next epoch's key, which the phone never opens although it
// keeps the ciphertext. No file on the relays' disks, nor on any
// device's, holds a message or a channel name.
func TestTeamchatRelaysHoldOnlyCiphertext(t *testing.T) {
	h := newTestHub(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.ready(ctx)
	classes := []string{"laptop", "laptop", "phone", "relay", "relay"}
	root := t.TempDir()
	var ids []*identity.Identity
	var hubNodes []*node
	for i, c := range classes {
		// The node's identity is the hub member's: make it where the node
		// will load it.
		id, err := identity.LoadOrCreate(filepath.Join(root, fmt.Sprint(i), "identity"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		hubNodes = append(hubNodes, h.newNodeWith(t, id, c))
	}
	admin := hubNodes[0]
	if err := admin.c.CreateGroup(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	for _, nc := range []string{"laptop", "phone"} {
		if err := admin.c.SetTrust(ctx, "team", nc, TrustMember); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.c.SetTrust(ctx, "team", "relay", TrustHonestButCurious); err != nil {
		t.Fatal(err)
	}
	var epoch uint64
	for _, n := range hubNodes[1:] {
		if _, err := admin.c.Invite(ctx, "team", n.id.Public()); err != nil {
			t.Fatal(err)
		}
		e, err := n.c.Accept(ctx, "team")
		if err != nil {
			t.Fatal(err)
		}
		epoch = e
	}
	keys := make([]*Keys, len(classes))
	for i, c := range classes {
		if c != "relay" {
			keys[i] = fastKeys(t, hubNodes[i], "team")
		}
	}
	for _, k := range keys[:3] {
		// The epoch's generator is whichever member has the lowest ID, so
		// every source runs before any is waited for.
		waitKey(ctx, t, k, epoch)
	}

	plan := teamchatPlan(len(classes))
	reg := sim.FastRegistry(crdtreplication.NewModule(func() crdtreplication.Config {
		c := crdtreplication.DefaultConfig()
		c.AntiEntropyInterval, c.AckInterval = 50*time.Millisecond, 100*time.Millisecond
		return c
	}()))
	nodes := make([]*rimenode.Node, len(classes))
	for i, c := range classes {
		cfg := rimenode.Config{Plan: plan, Group: "team", GroupSecret: []byte("teamchat-transport-secret-012345"), NodeClass: c,
			DataDir: filepath.Join(root, fmt.Sprint(i)), Network: h.net, Listen: fmt.Sprintf("10.4.0.%d:7000", i+1), Registry: reg}
		if i > 0 {
			cfg.Join = []string{"10.4.0.1:7000"}
		}
		if keys[i] != nil {
			cfg.Keys = keys[i]
		}
		n, err := rimenode.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n.ID() != ids[i].ID() {
			t.Fatalf("node %d runs as %s, its hub member is %s", i, n.ID(), ids[i].ID())
		}
		nodes[i] = n
		t.Cleanup(func() { n.Close() })
	}
	for _, c := range []string{"messages", "channels"} {
		for i, n := range nodes {
			m, _ := rimenode.Layer[protocols.Membership](n, c)
			ev, stop := m.Subscribe()
			for alive := 0; alive < len(nodes); {
				alive = 0
				for _, x := range m.Members() {
					if x.State == protocols.MemberAlive {
						alive++
					}
				}
				if alive < len(nodes) {
					select {
					case <-ev:
					case <-ctx.Done():
						t.Fatalf("node %d, class %s: %d alive", i, c, alive)
					}
				}
			}
			stop()
		}
	}
	for _, relay := range nodes[3:] {
		ch, _ := relay.Channel("messages")
		if _, err := ch.Connect(ctx); err == nil || !strings.Contains(err.Error(), "holds only ciphertext of class messages") {
			t.Fatalf("a session on a relay: %v", err)
		}
	}

	msgs := []*chatView{follow(ctx, t, nodes[0], "messages"), follow(ctx, t, nodes[1], "messages"), follow(ctx, t, nodes[2], "messages")}
	chans := []*chatView{follow(ctx, t, nodes[0], "channels"), follow(ctx, t, nodes[1], "channels"), follow(ctx, t, nodes[2], "channels")}
	var before []string
	for i, m := range msgs {
		v := fmt.Sprintf("zebra-%d: the launch code is %d", i, 4711+i)
		m.submit(ctx, crdt.LogAppend{Data: []byte(v)})
		before = append(before, v)
	}
	chans[0].submit(ctx, crdt.SetAdd{Elem: "chan-quokka-general"})
	chans[2].submit(ctx, crdt.SetAdd{Elem: "chan-quokka-secret-plans"})
	for i := range msgs {
		msgs[i].waitHas(ctx, before...)
		chans[i].waitHas(ctx, "chan-quokka-general", "chan-quokka-secret-plans")
	}

	// The admin removes the phone; the laptops move to the next epoch.
	next, err := admin.c.Remove(ctx, "team", ids[2].ID())
	if err != nil {
		t.Fatal(err)
	}
	waitKey(ctx, t, keys[0], next)
	waitKey(ctx, t, keys[1], next)
	after := []string{"zebra-0: after the phone left", "zebra-1: the phone must not read this"}
	msgs[0].submit(ctx, crdt.LogAppend{Data: []byte(after[0])})
	msgs[1].submit(ctx, crdt.LogAppend{Data: []byte(after[1])})
	// Acknowledged means kept by every node (copies: all five), the
	// phone included.
	msgs[0].waitHas(ctx, append(before, after...)...)
	msgs[1].waitHas(ctx, append(before, after...)...)
	phone, _ := rimenode.Layer[protocols.Replica](nodes[2], "messages")
	if _, err := phone.Seen(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := msgs[2].sess.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := msgs[2].values()
	for _, v := range after {
		if slices.Contains(got, v) {
			t.Fatalf("the removed phone reads %q", v)
		}
	}
	for _, v := range before {
		if !slices.Contains(got, v) {
			t.Fatalf("the removed phone lost %q it read before", v)
		}
	}

	secrets := append(append([]string{"zebra-", "launch code", "chan-quokka"}, before...), after...)
	for i := range nodes {
		for _, s := range secrets {
			if hits := scanDir(t, filepath.Join(root, fmt.Sprint(i)), []byte(s)); len(hits) > 0 {
				t.Errorf("node %d (%s) holds %q in the clear: %v", i, classes[i], s, hits)
			}
		}
	}
	for _, s := range secrets {
		if hits := scanDir(t, h.dir, []byte(s)); len(hits) > 0 {
			t.Errorf("a hub replica holds %q: %v", s, hits)
		}
	}
}

// newNodeWith is newNode with a given identity.
func (h *testHub) newNodeWith(t testing.TB, id *identity.Identity, class string) *node {
	t.Helper()
	h.mu.Lock()
	h.nextNode++
	addr := fmt.Sprintf("10.2.0.%d:1", h.nextNode)
	h.mu.Unlock()
	ep, err := h.net.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{Identity: id, Endpoint: ep, Hubs: h.addrs(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ep.Close() })
	if err := c.Register(context.Background(), RegisterArgs{Class: class, Reachability: "nat", Addr: addr}); err != nil {
		t.Fatalf("register: %v", err)
	}
	return &node{id: id, c: c, ep: ep}
}
