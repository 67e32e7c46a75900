package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/rime-dev/rime/identity"
)

// machine drives a State the way the leader does, without Raft: it takes
// the decision with an Authorizer and applies the command.
type machine struct {
	t    *testing.T
	st   *State
	auth Authorizer
	now  time.Time
	idx  uint64
}

func newMachine(t *testing.T) *machine {
	return &machine{t: t, st: NewState(), auth: Builtin{}, now: time.Unix(1_700_000_000, 0)}
}

func (m *machine) command(req Request) Command {
	m.t.Helper()
	cmd := Command{Now: m.now.UnixNano(), Req: &req}
	in, err := m.st.InputFor(&req)
	if err == nil && in != nil {
		d, _ := m.auth.Decide(context.Background(), *in)
		cmd.Input, cmd.Decision = in, &d
	}
	return cmd
}

func (m *machine) apply(req Request) error {
	m.t.Helper()
	m.idx++
	return m.st.Apply(m.idx, m.command(req)).Err()
}

func (m *machine) do(id *identity.Identity, op string, args any) error {
	m.t.Helper()
	req, err := NewRequest(id, op, args, m.now)
	if err != nil {
		m.t.Fatal(err)
	}
	return m.apply(req)
}

func newIdentity(t testing.TB) *identity.Identity {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func register(m *machine, id *identity.Identity, class string) {
	m.t.Helper()
	if err := m.do(id, OpRegister, RegisterArgs{Class: class, Reachability: "nat"}); err != nil {
		m.t.Fatalf("register: %v", err)
	}
}

func TestStateMembership(t *testing.T) {
	m := newMachine(t)
	alice, bob, eve := newIdentity(t), newIdentity(t), newIdentity(t)
	if err := m.do(alice, OpCreateGroup, GroupArgs{Group: "friends"}); !errors.Is(err, ErrUnregistered) {
		t.Fatalf("create before register: %v, want ErrUnregistered", err)
	}
	for _, id := range []*identity.Identity{alice, bob, eve} {
		register(m, id, "phone")
	}
	if err := m.do(alice, OpCreateGroup, GroupArgs{Group: "friends"}); err != nil {
		t.Fatal(err)
	}
	if err := m.do(bob, OpAccept, GroupArgs{Group: "friends"}); !errors.Is(err, ErrDenied) {
		t.Fatalf("join without invite: %v, want ErrDenied", err)
	}
	if err := m.do(eve, OpInvite, InviteArgs{Group: "friends", Key: eve.Public()}); !errors.Is(err, ErrDenied) {
		t.Fatalf("non-member invites: %v, want ErrDenied", err)
	}
	if err := m.do(alice, OpInvite, InviteArgs{Group: "friends", Key: bob.Public()}); err != nil {
		t.Fatal(err)
	}
	if err := m.do(bob, OpAccept, GroupArgs{Group: "friends"}); err != nil {
		t.Fatal(err)
	}
	g := m.st.Groups["friends"]
	if _, ok := g.Members[bob.ID()]; !ok || g.Epoch != 2 {
		t.Fatalf("bob not a member or epoch %d, want 2", g.Epoch)
	}
	if err := m.do(bob, OpRemove, MemberArgs{Group: "friends", Node: alice.ID()}); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("non-admin removes: %v, want ErrNotAdmin", err)
	}
	if err := m.do(alice, OpRemove, MemberArgs{Group: "friends", Node: bob.ID()}); err != nil {
		t.Fatal(err)
	}
	if err := m.do(bob, OpPut, PutArgs{Group: "friends", Path: "/x", Value: []byte("1")}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removed member puts: %v, want ErrNotMember", err)
	}
	if g.Epoch != 3 {
		t.Fatalf("epoch %d after removal, want 3", g.Epoch)
	}
	// Decisions: join denied, invite denied, invite allowed, join allowed.
	var allows []bool
	for _, d := range m.st.Decisions {
		allows = append(allows, d.Decision.Allow)
	}
	if want := []bool{false, false, true, true}; !equalBools(allows, want) {
		t.Fatalf("decisions %v, want %v", allows, want)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStateSignaturesAndReplay(t *testing.T) {
	m := newMachine(t)
	alice, mallory := newIdentity(t), newIdentity(t)
	register(m, alice, "phone")
	register(m, mallory, "phone")
	if err := m.do(alice, OpCreateGroup, GroupArgs{Group: "g"}); err != nil {
		t.Fatal(err)
	}
	put, _ := NewRequest(alice, OpPut, PutArgs{Group: "g", Path: "/a", Value: []byte("1")}, m.now)
	if err := m.apply(put); err != nil {
		t.Fatal(err)
	}
	if err := m.apply(put); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v, want ErrReplay", err)
	}
	// The same nonce on a different request is a replay too.
	other := put
	other.Body = []byte(`{"group":"g","path":"/b&c","value":"Mg=="}`)
	other.Sig = nil
	other.Sig = signWith(alice, &other)
	if err := m.apply(other); !errors.Is(err, ErrReplay) {
		t.Fatalf("reused nonce: %v, want ErrReplay", err)
	}
	// Forged: Mallory signs a request that claims to be Alice's.
	forged, _ := NewRequest(mallory, OpPut, PutArgs{Group: "g", Path: "/a", Value: []byte("evil")}, m.now)
	forged.Signer = alice.ID()
	if err := m.apply(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v, want ErrBadSignature", err)
	}
	// Tampered body.
	tampered, _ := NewRequest(alice, OpPut, PutArgs{Group: "g", Path: "/a", Value: []byte("2")}, m.now)
	tampered.Body = bytes.Replace(tampered.Body, []byte(`"Mg=="`), []byte(`"Mw=="`), 1)
	if err := m.apply(tampered); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: %v, want ErrBadSignature", err)
	}
	// Stale: signed long before the hub's clock.
	stale, _ := NewRequest(alice, OpPut, PutArgs{Group: "g", Path: "/c", Value: []byte("1")}, m.now.Add(-2*ReplayWindow))
	if err := m.apply(stale); !errors.Is(err, ErrStale) {
		t.Fatalf("stale: %v, want ErrStale", err)
	}
	// Once the window has passed, the nonce is forgotten but the request
	// is stale: still refused.
	m.now = m.now.Add(3 * ReplayWindow)
	if err := m.do(alice, OpPut, PutArgs{Group: "g", Path: "/d", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := m.apply(put); !errors.Is(err, ErrStale) {
		t.Fatalf("old replay: %v, want ErrStale", err)
	}
	if v := string(m.st.Groups["g"].Namespace["/a"]); v != "1" {
		t.Fatalf("/a = %q, want 1", v)
	}
}

func signWith(id *identity.Identity, r *Request) []byte {
	nr := *r
	nr.Sig = nil
	return ed25519.Sign(id.Key, nr.SigningBytes())
}

func TestStatePlacementDecisions(t *testing.T) {
	m := newMachine(t)
	alice, cloud := newIdentity(t), newIdentity(t)
	register(m, alice, "phone")
	register(m, cloud, "cloud")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.do(alice, OpCreateGroup, GroupArgs{Group: "g"}))
	must(m.do(alice, OpPut, PutArgs{Group: "g", Path: TrustPath("phone"), Value: []byte(TrustMember)}))
	// An undeclared class is confidential and unencrypted: only trusted
	// members hold it.
	if err := m.do(alice, OpPlace, PlaceArgs{Group: "g", Class: "photos", Node: cloud.ID()}); !errors.Is(err, ErrDenied) {
		t.Fatalf("place undeclared class on cloud: %v, want ErrDenied", err)
	}
	must(m.do(alice, OpPlace, PlaceArgs{Group: "g", Class: "photos", Node: alice.ID()}))
	must(m.do(alice, OpPut, PutArgs{Group: "g", Path: ClassPrefix + "photos", Value: []byte(`{"confidential":true,"encrypted":true}`)}))
	must(m.do(alice, OpPlace, PlaceArgs{Group: "g", Class: "photos", Node: cloud.ID()}))
	if got := m.st.Groups["g"].Placement["photos"]; len(got) != 2 {
		t.Fatalf("placement %v, want two nodes", got)
	}
	// A decision taken on a state that moved is refused, not applied.
	req, _ := NewRequest(alice, OpPlace, PlaceArgs{Group: "g", Class: "albums", Node: cloud.ID()}, m.now)
	cmd := m.command(req)
	must(m.do(alice, OpPut, PutArgs{Group: "g", Path: TrustPath("cloud"), Value: []byte(TrustByzantine)}))
	m.idx++
	if err := m.st.Apply(m.idx, cmd).Err(); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale decision: %v, want ErrConflict", err)
	}
}

func TestSnapshotDeterministic(t *testing.T) {
	a, b := newMachine(t), newMachine(t)
	ids := []*identity.Identity{newIdentity(t), newIdentity(t), newIdentity(t)}
	var reqs []Request
	add := func(id *identity.Identity, op string, args any) {
		r, err := NewRequest(id, op, args, a.now)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	for _, id := range ids {
		add(id, OpRegister, RegisterArgs{Class: "phone", Reachability: "public", Addr: "x:1"})
	}
	add(ids[0], OpCreateGroup, GroupArgs{Group: "g"})
	add(ids[0], OpInvite, InviteArgs{Group: "g", Key: ids[1].Public()})
	add(ids[1], OpAccept, GroupArgs{Group: "g"})
	for i := range 20 {
		add(ids[i%2], OpPut, PutArgs{Group: "g", Path: "/k/" + string(rune('a'+i)), Value: []byte{byte(i)}})
	}
	for i, r := range reqs {
		// The same log: the same commands, decisions included.
		cmd := a.command(r)
		a.st.Apply(uint64(i+1), cmd)
		b.st.Apply(uint64(i+1), cmd)
	}
	ea, _ := a.st.Encode()
	eb, _ := b.st.Encode()
	if !bytes.Equal(ea, eb) {
		t.Fatal("two replicas applying the same log encode differently")
	}
	back, err := DecodeState(ea)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := back.Encode()
	if !bytes.Equal(ea, ec) {
		t.Fatal("decode then encode changed the snapshot")
	}
	if len(back.Groups["g"].Namespace) != 20 || len(back.Groups["g"].Members) != 2 {
		t.Fatalf("snapshot lost data: %d paths, %d members", len(back.Groups["g"].Namespace), len(back.Groups["g"].Members))
	}
}
