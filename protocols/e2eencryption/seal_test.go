package e2eencryption

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/rime-dev/rime/protocols"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func layer(t testing.TB, keys protocols.KeySource, class string) *Layer {
	t.Helper()
	l := &Layer{}
	env := &protocols.Env{App: "teamchat", Group: "team", Class: class}
	if keys != nil {
		env.Keys = keys // a typed nil would not read as "no keys"
	}
	if err := l.Provision(env); err != nil {
		t.Fatal(err)
	}
	return l
}

func static(t testing.TB, epochs ...byte) *StaticKeys {
	t.Helper()
	s := NewStaticKeys()
	for _, e := range epochs {
		if err := s.Add(uint64(e), key(e)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestSealOpen(t *testing.T) {
	ctx := context.Background()
	l := layer(t, static(t, 1), "messages")
	plain := []byte("meet at the usual place at nine")
	sealed, err := l.Seal(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain[:8]) {
		t.Fatalf("sealed update holds plaintext: %q", sealed)
	}
	got, err := l.Open(ctx, sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q %v", got, err)
	}
	again, _ := l.Seal(ctx, plain)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one plaintext are equal: the nonce is not fresh")
	}
}

// A sealed update opens only in its own class, app and group, with its
// own epoch, unaltered.
func TestOpenRefusesWhatWasNotSealedForIt(t *testing.T) {
	ctx := context.Background()
	keys := static(t, 1, 2)
	l := layer(t, keys, "messages")
	sealed, err := l.Seal(ctx, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	other := layer(t, keys, "channels")
	if _, err := other.Open(ctx, sealed); !errors.Is(err, protocols.ErrSealed) {
		t.Fatalf("another class opens it: %v, want ErrSealed", err)
	}
	otherApp := &Layer{}
	otherApp.Provision(&protocols.Env{App: "photoshare", Group: "team", Class: "messages", Keys: keys})
	if _, err := otherApp.Open(ctx, sealed); !errors.Is(err, protocols.ErrSealed) {
		t.Fatalf("another app opens it: %v, want ErrSealed", err)
	}
	// The header says epoch 2; moving it to 1 (whose key is also held)
	// breaks the tag, since the header is authenticated.
	if sealed[1] != 2 {
		t.Fatalf("sealed under epoch %d, want the newest (2)", sealed[1])
	}
	moved := bytes.Clone(sealed)
	moved[1] = 1
	if _, err := l.Open(ctx, moved); !errors.Is(err, protocols.ErrSealed) {
		t.Fatalf("epoch changed in transit: %v, want ErrSealed", err)
	}
	for i := range sealed {
		if i == 1 {
			continue
		}
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x40
		if _, err := l.Open(ctx, bad); err == nil {
			t.Fatalf("byte %d flipped: opened", i)
		}
	}
}

// A node given no keys (a non-member) can neither seal nor open.
func TestNonMember(t *testing.T) {
	ctx := context.Background()
	sealed, err := layer(t, static(t, 1), "messages").Seal(ctx, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	l := layer(t, nil, "messages")
	if l.CanOpen() {
		t.Fatal("a node without keys says it can open")
	}
	if _, err := l.Open(ctx, sealed); !errors.Is(err, protocols.ErrNoKey) {
		t.Fatalf("open: %v, want ErrNoKey", err)
	}
	if _, err := l.Seal(ctx, []byte("x")); !errors.Is(err, protocols.ErrNoKey) {
		t.Fatalf("seal: %v, want ErrNoKey", err)
	}
	if err := l.Ready(ctx); !errors.Is(err, protocols.ErrNoKey) {
		t.Fatalf("ready: %v, want ErrNoKey", err)
	}
	if l.Changed() != nil {
		t.Fatal("a node without keys has a Changed channel")
	}
}

// After a rotation, new updates are sealed under the new epoch: a
// member removed before it (holding only the old key) opens the old
// updates and none of the new; the remaining members open both.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	writerKeys := static(t, 1)
	writer := layer(t, writerKeys, "messages")
	removedKeys := static(t, 1)
	removed := layer(t, removedKeys, "messages")

	before, _ := writer.Seal(ctx, []byte("before"))
	ch := writer.Changed()
	if err := writerKeys.Add(2, key(2)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed was not closed by a new epoch")
	}
	after, _ := writer.Seal(ctx, []byte("after"))
	if e, _ := binary.Uvarint(after[1:]); e != 2 {
		t.Fatalf("sealed under epoch %d after the rotation, want 2", e)
	}
	if p, err := removed.Open(ctx, before); err != nil || string(p) != "before" {
		t.Fatalf("removed member, update before its removal: %q %v", p, err)
	}
	if _, err := removed.Open(ctx, after); !errors.Is(err, protocols.ErrNoKey) {
		t.Fatalf("removed member, update after: %v, want ErrNoKey", err)
	}
	for _, s := range [][]byte{before, after} {
		if _, err := writer.Open(ctx, s); err != nil {
			t.Fatalf("member reads history: %v", err)
		}
	}
}

func TestStaticKeys(t *testing.T) {
	s := NewStaticKeys()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Current(ctx); !errors.Is(err, protocols.ErrNoKey) {
		t.Fatalf("current before any key: %v, want ErrNoKey", err)
	}
	if err := s.Add(0, key(1)); err == nil {
		t.Fatal("epoch 0 accepted")
	}
	if err := s.Add(1, key(1)[:8]); err == nil {
		t.Fatal("an 8-byte key accepted")
	}
	if err := s.Add(1, key(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(1, key(9)); err == nil {
		t.Fatal("epoch 1's key replaced")
	}
	if e, k, err := s.Current(ctx); err != nil || e != 1 || !bytes.Equal(k, key(1)) {
		t.Fatalf("current: %d %x %v", e, k, err)
	}
}

func FuzzDecodeHeader(f *testing.F) {
	ctx := context.Background()
	l := layer(f, static(f, 1, 200), "messages")
	s, _ := l.Seal(ctx, []byte("seed"))
	f.Add(s)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0x80, 0x80, 0x80})
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			if !errors.Is(err, protocols.ErrSealed) {
				t.Fatalf("error %v does not wrap ErrSealed", err)
			}
			return
		}
		if h.epoch == 0 || len(h.nonce) != 24 || len(h.clear)+len(h.nonce)+len(h.body) != len(b) {
			t.Fatalf("header %+v of %d bytes", h, len(b))
		}
		// Only a sealed update opens (the seed, sealed in this process
		// or in the one that gathered the corpus); a fuzzer forging
		// another is a bug.
		if p, err := l.Open(ctx, b); err == nil && string(p) != "seed" {
			t.Fatalf("forged bytes opened: %q", p)
		}
	})
}

// A layer nothing above claims refuses to start, so a class whose data
// layers do not seal never runs as though it were encrypted.
func TestStartRefusesWithoutAUser(t *testing.T) {
	l := layer(t, static(t, 1), "messages")
	if err := l.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no layer above seals") {
		t.Fatalf("start unclaimed: %v", err)
	}
	l.Claim()
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}
