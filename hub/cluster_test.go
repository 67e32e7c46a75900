package hub

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/network/memnet"
)

// testHub is a hub of replicas on one memnet.
type testHub struct {
	t        *testing.T
	net      *memnet.Network
	dir      string
	auth     Authorizer
	mu       sync.Mutex
	replicas map[string]*Replica // by ID
	ids      map[string]*identity.Identity
	eps      map[string]network.Endpoint
	nextNode int
}

func newTestHub(t *testing.T, n int) *testHub {
	return newTestHubWith(t, n, Builtin{})
}

func newTestHubWith(t testing.TB, n int, auth Authorizer) *testHub {
	h := &testHub{net: memnet.New(7), dir: t.TempDir(), auth: auth, replicas: map[string]*Replica{}, ids: map[string]*identity.Identity{}, eps: map[string]network.Endpoint{}}
	if tt, ok := t.(*testing.T); ok {
		h.t = tt
	}
	var idents []*identity.Identity
	var boot, addrs []string
	for i := range n {
		id := newIdentity(t)
		idents = append(idents, id)
		boot = append(boot, id.ID())
		addrs = append(addrs, fmt.Sprintf("10.1.0.%d:7000", i+1))
	}
	for i, id := range idents {
		h.startReplica(t, id, addrs[i], boot, addrs)
	}
	t.Cleanup(h.close)
	return h
}

func (h *testHub) startReplica(t testing.TB, id *identity.Identity, addr string, boot, join []string) *Replica {
	t.Helper()
	ep, err := h.net.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Identity, cfg.Endpoint = id, ep
	cfg.DataDir = filepath.Join(h.dir, id.ID())
	cfg.Bootstrap = boot
	cfg.Join = slices.DeleteFunc(slices.Clone(join), func(a string) bool { return a == addr })
	cfg.Authorizer = h.auth
	r, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.replicas[id.ID()], h.ids[id.ID()], h.eps[id.ID()] = r, id, ep
	h.mu.Unlock()
	return r
}

func (h *testHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, r := range h.replicas {
		r.Close()
		h.eps[id].Close()
	}
}

// crash cuts a replica off as a power cut would, then stops it.
func (h *testHub) crash(id string) {
	h.mu.Lock()
	r := h.replicas[id]
	delete(h.replicas, id)
	h.mu.Unlock()
	h.net.Crash(r.Addr())
	r.Close()
}

func (h *testHub) live() []*Replica {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Replica
	for _, r := range h.replicas {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Replica) int { return cmpString(a.id, b.id) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (h *testHub) addrs() []string {
	var out []string
	for _, r := range h.live() {
		out = append(out, r.Addr())
	}
	return out
}

// waitFor waits until cond holds, waking at every change a live replica
// sees (entries applied, leaders, membership), never by sleeping.
func (h *testHub) waitFor(ctx context.Context, what string, cond func() bool) {
	h.t.Helper()
	for {
		rs := h.live()
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
		for _, r := range rs {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.Changed())})
		}
		if cond() {
			return
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			h.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// ready waits for a leader, the hub's initialization and every live
// replica's registration.
func (h *testHub) ready(ctx context.Context) {
	h.t.Helper()
	h.waitFor(ctx, "a leader, an initialized hub and registered replicas", func() bool {
		live := h.live()
		for _, r := range live {
			if st := r.Status(); !st.IsLeader || len(st.Replicas) == 0 {
				continue
			}
			ok := true
			r.core.view(func(s *State) {
				for _, o := range live {
					if n, found := s.Nodes[o.id]; !found || n.Addr != o.Addr() {
						ok = false
					}
				}
			})
			return ok
		}
		return false
	})
}

// node is a test node: an identity, an endpoint and a client.
type node struct {
	id *identity.Identity
	c  *Client
	ep network.Endpoint
}

func (h *testHub) newNode(t testing.TB, class string) *node {
	t.Helper()
	h.mu.Lock()
	h.nextNode++
	addr := fmt.Sprintf("10.2.0.%d:1", h.nextNode)
	h.mu.Unlock()
	ep, err := h.net.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	id := newIdentity(t)
	c, err := NewClient(ClientConfig{Identity: id, Endpoint: ep, Hubs: h.addrs(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ep.Close() })
	n := &node{id: id, c: c, ep: ep}
	if class != "" {
		if err := c.Register(context.Background(), RegisterArgs{Class: class, Reachability: "nat", Addr: addr}); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	return n
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHubGroupsAndTrust(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	alice, bob, eve := h.newNode(t, "phone"), h.newNode(t, "phone"), h.newNode(t, "cloud")

	if err := alice.c.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	// A non-member cannot join without an invitation, nor invite itself.
	_, err := eve.c.Accept(ctx, "friends")
	var he *Error
	if !errors.Is(err, ErrDenied) || !errors.As(err, &he) || he.Decision == nil || len(he.Decision.Reasons) == 0 {
		t.Fatalf("join without invite: %v, want a denial with reasons", err)
	}
	if _, err := eve.c.Invite(ctx, "friends", eve.id.Public()); !errors.Is(err, ErrDenied) {
		t.Fatalf("non-member invites: %v, want ErrDenied", err)
	}
	if _, err := eve.c.Group(ctx, "friends"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("non-member reads the group: %v, want ErrNotMember", err)
	}
	if d, err := alice.c.Invite(ctx, "friends", bob.id.Public()); err != nil || !d.Allow || d.DecisionID == "" {
		t.Fatalf("invite: %+v %v", d, err)
	}
	epoch, err := bob.c.Accept(ctx, "friends")
	if err != nil || epoch != 2 {
		t.Fatalf("accept: epoch %d, %v; want 2", epoch, err)
	}
	// Namespace, channel references, placement.
	if err := bob.c.Put(ctx, "friends", "/processes/thumbs", []byte("ckpt-1")); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.SetTrust(ctx, "friends", "phone", TrustMember); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.SetClass(ctx, "friends", "photos", ClassInfo{Confidential: true}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{alice, bob} {
		if _, err := alice.c.Place(ctx, "friends", "photos", n.id.ID()); err != nil {
			t.Fatalf("place on a trusted member: %v", err)
		}
	}
	if _, err := alice.c.Place(ctx, "friends", "photos", eve.id.ID()); !errors.Is(err, ErrDenied) {
		t.Fatalf("confidential unencrypted class on a non-member: %v, want ErrDenied", err)
	}
	ref := ChannelRef{Class: "photos", Stack: []StackLayer{{Layer: "transport", Protocol: "tls"}, {Layer: "consensus", Protocol: "raft", Params: []byte(`{"replicas":3}`)}}}
	if err := alice.c.SetChannel(ctx, "friends", "photos", ref); err != nil {
		t.Fatal(err)
	}
	got, err := bob.c.Channel(ctx, "friends", "photos")
	want := []string{alice.id.ID(), bob.id.ID()}
	slices.Sort(want)
	if err != nil || !slices.Equal(got.Nodes, want) || len(got.Stack) != 2 {
		t.Fatalf("channel: %+v %v; want nodes %v", got, err, want)
	}
	if d, err := eve.c.Authorize(ctx, AuthorizeArgs{Action: ActionRead, Group: "friends", Node: eve.id.ID(), Class: "photos"}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("non-member asks for a decision: %+v %v", d, err)
	}
	if d, err := alice.c.Authorize(ctx, AuthorizeArgs{Action: ActionRead, Group: "friends", Node: eve.id.ID(), Class: "photos"}); err != nil || d.Allow {
		t.Fatalf("may a non-member read a confidential class: %+v %v; want a denial", d, err)
	}

	// Removal: the member's requests are refused and its placements go.
	if _, err := bob.c.Remove(ctx, "friends", alice.id.ID()); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("non-admin removes: %v", err)
	}
	epoch, err = alice.c.Remove(ctx, "friends", bob.id.ID())
	if err != nil || epoch != 3 {
		t.Fatalf("remove: epoch %d %v; want 3", epoch, err)
	}
	if err := bob.c.Put(ctx, "friends", "/processes/x", []byte("1")); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removed member writes: %v, want ErrNotMember", err)
	}
	if _, err := bob.c.Get(ctx, "friends", "/processes/thumbs"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removed member reads: %v, want ErrNotMember", err)
	}
	if _, err := bob.c.Invite(ctx, "friends", eve.id.Public()); !errors.Is(err, ErrDenied) {
		t.Fatalf("removed member invites: %v, want ErrDenied", err)
	}
	if _, err := bob.c.Accept(ctx, "friends"); !errors.Is(err, ErrDenied) {
		t.Fatalf("removed member rejoins without a new invite: %v, want ErrDenied", err)
	}
	if ns, err := alice.c.Placement(ctx, "friends", "photos"); err != nil || !slices.Equal(ns, []string{alice.id.ID()}) {
		t.Fatalf("placement after removal: %v %v", ns, err)
	}
	ds, err := alice.c.Decisions(ctx, "friends")
	if err != nil || len(ds) < 6 {
		t.Fatalf("decisions: %d %v", len(ds), err)
	}
}

func TestHubForgedAndReplayed(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	alice, mallory := h.newNode(t, "phone"), h.newNode(t, "phone")
	if err := alice.c.CreateGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	send := func(req Request) *Response {
		t.Helper()
		enc, _ := EncodeRequest(req)
		for {
			resp, err := mallory.c.roundTrip(ctx, mallory.c.target(true), enc)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Code == "not-leader" {
				mallory.c.setLeader(resp.Leader)
				continue
			}
			return resp
		}
	}
	// Mallory signs with its key a request claiming to be Alice's.
	forged, _ := NewRequest(mallory.id, OpInvite, InviteArgs{Group: "g", Key: mallory.id.Public()}, time.Now())
	forged.Signer = alice.id.ID()
	if resp := send(forged); resp.Code != "bad-signature" {
		t.Fatalf("forged: %+v, want bad-signature", resp)
	}
	// Mallory captured Alice's signed invitation of someone and replays
	// it: refused, and it says it was applied once.
	bob := newIdentity(t)
	inv, _ := NewRequest(alice.id, OpInvite, InviteArgs{Group: "g", Key: bob.Public()}, time.Now())
	if resp := send(inv); resp.Code != "" {
		t.Fatalf("invite: %+v", resp)
	}
	if _, err := alice.c.Remove(ctx, "g", bob.ID()); err != nil {
		t.Fatalf("withdraw the invitation: %v", err)
	}
	if resp := send(inv); resp.Code != "replay" {
		t.Fatalf("replayed: %+v, want replay", resp)
	}
	// An old request is stale.
	old, _ := NewRequest(alice.id, OpInvite, InviteArgs{Group: "g", Key: bob.Public()}, time.Now().Add(-time.Hour))
	if resp := send(old); resp.Code != "stale" {
		t.Fatalf("old: %+v, want stale", resp)
	}
	g, err := alice.c.Group(ctx, "g")
	if err != nil || len(g.Invites) != 0 {
		t.Fatalf("invitations %v %v, want none: the replay must not have re-invited", g.Invites, err)
	}
}

// TestHubReplaceReplica loses a replica, replaces it with a new one by a
// membership change, then loses an original: every group, member and
// placement written before survives on the new set.
func TestHubReplaceReplica(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	alice, bob := h.newNode(t, "phone"), h.newNode(t, "phone")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		g := fmt.Sprintf("g%d", i)
		must(alice.c.CreateGroup(ctx, g))
		must(alice.c.SetTrust(ctx, g, "phone", TrustMember))
		_, err := alice.c.Invite(ctx, g, bob.id.Public())
		must(err)
		_, err = bob.c.Accept(ctx, g)
		must(err)
		_, err = alice.c.Place(ctx, g, "photos", bob.id.ID())
		must(err)
	}
	before := h.live()
	lost := before[0]
	h.crash(lost.id)
	keeper := h.live()[0]
	admin, err := NewClient(ClientConfig{Identity: h.ids[keeper.id], Endpoint: h.eps[keeper.id], Hubs: h.addrs()})
	must(err)
	defer admin.Close()
	_, err = admin.Remove(ctx, HubGroup, lost.id)
	must(err)
	h.waitFor(ctx, "the lost replica out of the shard", func() bool {
		vs, err := keeper.Voters(ctx)
		return err == nil && len(vs) == 2 && !slices.Contains(vs, lost.id)
	})

	// The replacement starts empty, knowing one replica's address; it
	// registers and waits for an invitation.
	fresh := newIdentity(t)
	_, err = admin.Invite(ctx, HubGroup, fresh.Public())
	must(err)
	nr := h.startReplica(t, fresh, "10.1.0.9:7000", nil, []string{keeper.Addr()})
	h.waitFor(ctx, "the new replica voting and caught up", func() bool {
		vs, err := keeper.Voters(ctx)
		if err != nil || len(vs) != 3 || !slices.Contains(vs, nr.id) {
			return false
		}
		caughtUp := true
		nr.core.view(func(s *State) {
			for i := range 5 {
				g, ok := s.Groups[fmt.Sprintf("g%d", i)]
				caughtUp = caughtUp && ok && len(g.Members) == 2 && len(g.Placement["photos"]) == 1
			}
		})
		return caughtUp
	})

	// Lose an original: the new replica and the other keep a majority.
	h.crash(keeper.id)
	h.ready(ctx)
	for i := range 5 {
		g := fmt.Sprintf("g%d", i)
		info, err := alice.c.Group(ctx, g)
		if err != nil {
			t.Fatalf("%s after replacement: %v", g, err)
		}
		if len(info.Members) != 2 || info.Epoch != 2 || !slices.Equal(info.Placement["photos"], []string{bob.id.ID()}) {
			t.Fatalf("%s after replacement: %+v", g, info)
		}
	}
	must(alice.c.Put(ctx, "g0", "/after", []byte("yes")))
}

// TestHubLeaderFailover crashes the leader while clients write: every
// write that was acknowledged is there afterwards.
func TestHubLeaderFailover(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	owner := h.newNode(t, "phone")
	if err := owner.c.CreateGroup(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 25
	var mu sync.Mutex
	acked := map[string]bool{}
	half := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if i == each/2 {
					once.Do(func() { close(half) })
				}
				p := fmt.Sprintf("/w%d/%d", w, i)
				if err := owner.c.Put(ctx, "w", p, []byte(p)); err == nil {
					mu.Lock()
					acked[p] = true
					mu.Unlock()
				}
			}
		}()
	}
	<-half
	for _, r := range h.live() {
		if r.Status().IsLeader {
			h.crash(r.id)
			break
		}
	}
	wg.Wait()
	entries, err := owner.c.List(ctx, "w", "/w")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Path] = string(e.Value) == e.Path
	}
	for p := range acked {
		if !have[p] {
			t.Errorf("acknowledged %s is lost", p)
		}
	}
	if len(acked) < writers*each/2 {
		t.Fatalf("only %d of %d writes acknowledged", len(acked), writers*each)
	}
}

func TestHubRelay(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	alice, bob, eve := h.newNode(t, "phone"), h.newNode(t, "phone"), h.newNode(t, "phone")
	if err := alice.c.CreateGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Invite(ctx, "g", bob.id.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Accept(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	// The relay checks membership in each replica's own state.
	h.everywhere(ctx, "bob's joining", func(s *State) bool {
		g, ok := s.Groups["g"]
		if ok {
			_, ok = g.Members[bob.id.ID()]
		}
		return ok
	})
	if _, err := eve.c.Relay(ctx, "g"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("non-member relays: %v, want ErrNotMember", err)
	}
	// Attach at different replicas, so frames cross between replicas.
	addrs := h.addrs()
	ca, _ := NewClient(ClientConfig{Identity: alice.id, Endpoint: alice.ep, Hubs: addrs[:1]})
	cb, _ := NewClient(ClientConfig{Identity: bob.id, Endpoint: bob.ep, Hubs: addrs[1:2]})
	defer ca.Close()
	defer cb.Close()
	rb, err := cb.Relay(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	ra, err := ca.Relay(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if err := ra.Send(bob.id.ID(), []byte("sealed-1")); err != nil {
		t.Fatal(err)
	}
	from, p, err := rb.Recv(ctx)
	if err != nil || from != alice.id.ID() || string(p) != "sealed-1" {
		t.Fatalf("recv: %s %q %v", from, p, err)
	}
	// After removal, Bob's session ends at his next frame.
	if _, err := alice.c.Remove(ctx, "g", bob.id.ID()); err != nil {
		t.Fatal(err)
	}
	h.waitFor(ctx, "bob's removal applied on his replica", func() bool {
		ok := true
		h.replicaAt(addrs[1]).core.view(func(s *State) { _, ok = s.Groups["g"].Members[bob.id.ID()] })
		return !ok
	})
	rb.Send(alice.id.ID(), []byte("after"))
	if _, _, err := rb.Recv(ctx); err == nil {
		t.Fatal("a removed member's relay session still delivers")
	}
}

// everywhere waits until every live replica's state satisfies cond.
func (h *testHub) everywhere(ctx context.Context, what string, cond func(*State) bool) {
	h.t.Helper()
	h.waitFor(ctx, what+" on every replica", func() bool {
		for _, r := range h.live() {
			ok := false
			r.core.view(func(s *State) { ok = cond(s) })
			if !ok {
				return false
			}
		}
		return true
	})
}

func (h *testHub) replicaAt(addr string) *Replica {
	for _, r := range h.live() {
		if r.Addr() == addr {
			return r
		}
	}
	return nil
}
