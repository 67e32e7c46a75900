package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/protocols"
	"github.com/rime-dev/rime/protocols/e2eencryption"
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
