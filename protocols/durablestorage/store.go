// Package durablestorage is the "durable-storage" layer: a node's
// versioned key-value store on its own disk, where a Put returns only once
// the value is fsynced, and a directory service for libraries that keep
// their own files (dragonboat's log).
//
// Each key is one file named by the key's hex encoding, holding an 8-byte
// version and the value. A Put writes a temporary file, fsyncs it, renames
// it over the old one and fsyncs the directory, so a crash leaves either
// the old value or the new one, never a torn one.
package durablestorage

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/rime-dev/rime/protocols"
)

// Name is the protocol's name in its spec.
const Name = "durable-storage"

func init() {
	protocols.Default.MustRegister(protocols.Module{Name: Name, Provides: []string{"store"},
		New: func() protocols.Instance { return &Store{} }})
}

// Store is the durable store of one class on one node.
type Store struct {
	dir string
	mu  sync.Mutex
}

func (s *Store) Provision(env *protocols.Env) error {
	s.dir = env.DataDir
	return nil
}

func (s *Store) Validate() error {
	if s.dir == "" {
		return fmt.Errorf("%s: no data directory", Name)
	}
	return nil
}

func (s *Store) Start(context.Context) error {
	if err := os.MkdirAll(filepath.Join(s.dir, "kv"), 0o700); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

func (s *Store) Close() error { return nil }

func (s *Store) path(key string) string {
	return filepath.Join(s.dir, "kv", hex.EncodeToString([]byte(key)))
}

// Get reads key.
func (s *Store) Get(_ context.Context, key string) ([]byte, uint64, error) {
	b, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, protocols.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: get %q: %w", Name, key, err)
	}
	if len(b) < 8 {
		return nil, 0, fmt.Errorf("%s: get %q: file %s is truncated (%d bytes)", Name, key, s.path(key), len(b))
	}
	return b[8:], binary.BigEndian.Uint64(b), nil
}

// Put writes value if key is still at version.
func (s *Store) Put(ctx context.Context, key string, value []byte, version uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, cur, err := s.Get(ctx, key)
	if err != nil && !errors.Is(err, protocols.ErrNotFound) {
		return 0, err
	}
	if cur != version {
		return cur, fmt.Errorf("%s: put %q at version %d, current is %d: %w", Name, key, version, cur, protocols.ErrVersion)
	}
	next := cur + 1
	buf := binary.BigEndian.AppendUint64(nil, next)
	if err := writeSynced(s.path(key), append(buf, value...)); err != nil {
		return 0, fmt.Errorf("%s: put %q: %w", Name, key, err)
	}
	return next, nil
}

// Dir returns (creating it) a directory of the store's own.
func (s *Store) Dir(name string) (string, error) {
	d := filepath.Join(s.dir, "dirs", name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("%s: %w", Name, err)
	}
	return d, nil
}

// writeSynced replaces path atomically and durably.
func writeSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

var _ protocols.Store = (*Store)(nil)
