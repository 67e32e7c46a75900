package e2eencryption

import (
	"context"
	"fmt"
	"sync"

	"github.com/rime-dev/rime/protocols"
)

// StaticKeys is a protocols.KeySource whose keys its owner adds: keys
// provisioned out of band (a deployment without a hub, where operators
// hand members the epoch keys), and the in-process clusters of tests.
// The zero value is not usable; call NewStaticKeys.
type StaticKeys struct {
	mu      sync.Mutex
	keys    map[uint64][]byte
	newest  uint64
	changed chan struct{}
}

// NewStaticKeys returns a source holding no key yet.
func NewStaticKeys() *StaticKeys {
	return &StaticKeys{keys: map[uint64][]byte{}, changed: make(chan struct{})}
}

// Add gives the source epoch's key (at least 16 bytes). A key already
// held for epoch must not change: sealed updates would no longer open.
func (s *StaticKeys) Add(epoch uint64, key []byte) error {
	if epoch == 0 || len(key) < 16 {
		return fmt.Errorf("%s: static keys: epoch %d with a %d-byte key; want epoch > 0 and at least 16 bytes", Name, epoch, len(key))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.keys[epoch]; ok {
		if string(old) != string(key) {
			return fmt.Errorf("%s: static keys: epoch %d already has another key", Name, epoch)
		}
		return nil
	}
	s.keys[epoch] = append([]byte(nil), key...)
	s.newest = max(s.newest, epoch)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// Current is the newest epoch's key; it waits for the first one.
func (s *StaticKeys) Current(ctx context.Context) (uint64, []byte, error) {
	for {
		s.mu.Lock()
		e, ch := s.newest, s.changed
		k := s.keys[e]
		s.mu.Unlock()
		if e > 0 {
			return e, k, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("%s: waiting for a first key: %w: %w", Name, protocols.ErrNoKey, ctx.Err())
		}
	}
}

// Key is epoch's key, if held.
func (s *StaticKeys) Key(_ context.Context, epoch uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[epoch]
	if !ok {
		return nil, fmt.Errorf("%w: epoch %d", protocols.ErrNoKey, epoch)
	}
	return k, nil
}

// Changed is closed at the next Add of a new epoch.
func (s *StaticKeys) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

var _ protocols.KeySource = (*StaticKeys)(nil)
