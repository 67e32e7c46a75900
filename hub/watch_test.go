package hub

import (
	"errors"
	"testing"
	"time"

	"github.com/rime-dev/rime/network/tlsnet"
)

// The watch admits exactly the group's members with the keys the hub
// knows, and a removed member is refused within a round of its removal:
// over real TLS, its connection to a member is refused.
func TestGroupWatchBindsTLSToHubMembers(t *testing.T) {
	h := newTestHub(t, 3)
	ctx := testCtx(t)
	h.ready(ctx)
	alice, bob, eve := h.newNode(t, "phone"), h.newNode(t, "phone"), h.newNode(t, "cloud")
	if err := alice.c.CreateGroup(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Invite(ctx, "team", bob.id.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Accept(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if _, err := WatchGroup(ctx, WatchConfig{Client: eve.c, Group: "team"}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("a non-member watches the group: %v, want ErrNotMember", err)
	}
	w, err := WatchGroup(ctx, WatchConfig{Client: alice.c, Group: "team", Every: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Authorize(bob.id.ID(), bob.id.Public()); err != nil {
		t.Fatalf("member bob: %v", err)
	}
	if err := w.Authorize(bob.id.ID(), eve.id.Public()); !errors.Is(err, ErrNotInGroup) {
		t.Fatalf("bob's ID with eve's key: %v, want ErrNotInGroup", err)
	}
	if err := w.Authorize(eve.id.ID(), eve.id.Public()); !errors.Is(err, ErrNotInGroup) {
		t.Fatalf("non-member eve: %v, want ErrNotInGroup", err)
	}

	// Node-to-node TLS on loopback, alice's side authorized by the watch.
	an, err := tlsnet.New(tlsnet.Config{Identity: alice.id, Authorize: w.Authorize})
	if err != nil {
		t.Fatal(err)
	}
	aep, err := an.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer aep.Close()
	port, err := aep.Open("chat")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := port.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
		}
	}()
	dial := func() error {
		bn, err := tlsnet.New(tlsnet.Config{Identity: bob.id})
		if err != nil {
			return err
		}
		bep, err := bn.Listen("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer bep.Close()
		c, err := bep.Dial(ctx, aep.Addr(), "chat")
		if err != nil {
			return err
		}
		defer c.Close()
		var b [2]byte
		_, err = c.Read(b[:])
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("member bob dials alice: %v", err)
	}

	// Bob watches too; once removed, his watch admits nobody.
	bw, err := WatchGroup(ctx, WatchConfig{Client: bob.c, Group: "team", Every: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer bw.Close()
	changed, bobChanged := w.Changed(), bw.Changed()
	if _, err := alice.c.Remove(ctx, "team", bob.id.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("the watch did not see bob's removal")
	}
	if err := w.Authorize(bob.id.ID(), bob.id.Public()); !errors.Is(err, ErrNotInGroup) {
		t.Fatalf("removed bob: %v, want ErrNotInGroup", err)
	}
	if err := dial(); err == nil {
		t.Fatal("removed member bob still connects to alice")
	}

	select {
	case <-bobChanged:
	case <-ctx.Done():
		t.Fatal("bob's watch did not see his removal")
	}
	if err := bw.Err(); !errors.Is(err, ErrNotMember) {
		t.Fatalf("bob's watch after his removal: %v, want ErrNotMember", err)
	}
	if err := bw.Authorize(alice.id.ID(), alice.id.Public()); !errors.Is(err, ErrNotInGroup) {
		t.Fatalf("bob's watch still admits alice after bob's removal: %v", err)
	}
}

// Enroll: the first node creates the group, an uninvited node is told
// to get an invitation, an invited one joins, and a restart finds it a
// member.
func TestEnroll(t *testing.T) {
	h := newTestHub(t, 1)
	ctx := testCtx(t)
	h.ready(ctx)
	alice, bob := h.newNode(t, ""), h.newNode(t, "")
	reg := RegisterArgs{Class: "laptop", Reachability: "nat"}
	if e, err := Enroll(ctx, alice.c, "team", reg, true); err != nil || e != Created {
		t.Fatalf("first node: %v %v, want Created", e, err)
	}
	if e, err := Enroll(ctx, bob.c, "team", reg, true); !errors.Is(err, ErrNotInvited) {
		t.Fatalf("uninvited node: %v %v, want ErrNotInvited", e, err)
	}
	if _, err := alice.c.Invite(ctx, "team", bob.id.Public()); err != nil {
		t.Fatal(err)
	}
	if e, err := Enroll(ctx, bob.c, "team", reg, true); err != nil || e != Joined {
		t.Fatalf("invited node: %v %v, want Joined", e, err)
	}
	if e, err := Enroll(ctx, bob.c, "team", reg, true); err != nil || e != AlreadyMember {
		t.Fatalf("restarted member: %v %v, want AlreadyMember", e, err)
	}
	if e, err := Enroll(ctx, bob.c, "other", reg, false); !errors.Is(err, ErrNotInvited) {
		t.Fatalf("a group that does not exist, without create: %v %v, want ErrNotInvited", e, err)
	}
}
