package durablestorage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rime-dev/rime/protocols"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s := &Store{}
	if err := s.Provision(&protocols.Env{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutGetVersionsAndReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if _, _, err := s.Get(ctx, "k"); !errors.Is(err, protocols.ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
	v, err := s.Put(ctx, "k", []byte("one"), 0)
	if err != nil || v != 1 {
		t.Fatalf("put: %d %v", v, err)
	}
	if _, err := s.Put(ctx, "k", []byte("stale"), 0); !errors.Is(err, protocols.ErrVersion) {
		t.Fatalf("stale put: %v", err)
	}
	if v, err = s.Put(ctx, "k", []byte("two"), 1); err != nil || v != 2 {
		t.Fatalf("put: %d %v", v, err)
	}
	// A restart with the disk kept sees the last acknowledged value.
	s2 := open(t, dir)
	b, ver, err := s2.Get(ctx, "k")
	if err != nil || string(b) != "two" || ver != 2 {
		t.Fatalf("after reopen: %q %d %v", b, ver, err)
	}
	// A torn file is reported, not returned as a value.
	os.WriteFile(s2.path("bad"), []byte{1, 2}, 0o600)
	if _, _, err := s2.Get(ctx, "bad"); err == nil {
		t.Fatal("truncated file read as a value")
	}
	d, err := s2.Dir("raft")
	if err != nil || filepath.Dir(d) != filepath.Join(dir, "dirs") {
		t.Fatalf("dir: %q %v", d, err)
	}
}
