package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// WatchConfig configures a GroupWatch.
type WatchConfig struct {
	// Client reads the group; it must be a member's client. Required.
	Client *Client
	// Group is the group watched. Required.
	Group string
	// Every is one membership round: how often the watch reads the group.
	// A removed member is refused by Authorize within one round of its
	// removal. Zero means DefaultWatchEvery.
	Every time.Duration
	// Also admits these node IDs whatever the group says (the hub's own
	// replicas, which a node dials for the hub and the relay).
	Also []string
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultWatchEvery is a membership round on a LAN or loopback: the
// hub's own management round (Config.ManageEvery).
const DefaultWatchEvery = 200 * time.Millisecond

// GroupWatch keeps a member's view of its group fresh from the hub, so
// that node-to-node TLS admits exactly the group's members with the keys
// the hub knows for them (Authorize), and layers that follow the group
// (key rotation) learn of each change (Changed).
//
// The hub has no push channel, so the watch reads the group once a
// round; a read that fails keeps the last view (a hub out of reach does
// not lock the group's members out of each other) and is retried next
// round.
type GroupWatch struct {
	cfg WatchConfig
	log *slog.Logger

	mu      sync.Mutex
	info    GroupInfo
	have    bool
	changed chan struct{}
	err     error

	cancel context.CancelFunc
	done   chan struct{}
}

// WatchGroup reads the group once (so the watch starts with a view, or
// fails if this node cannot read the group) and then once a round until
// Close.
func WatchGroup(ctx context.Context, cfg WatchConfig) (*GroupWatch, error) {
	if cfg.Client == nil || cfg.Group == "" {
		return nil, errors.New("hub: WatchConfig needs a Client and a Group")
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultWatchEvery
	}
	w := &GroupWatch{cfg: cfg, log: cfg.Logger, changed: make(chan struct{}), done: make(chan struct{})}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if err := w.refresh(ctx); err != nil {
		return nil, fmt.Errorf("hub: watch group %s: %w", cfg.Group, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(wctx)
	return w, nil
}

func (w *GroupWatch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, w.cfg.Every*5)
		err := w.refresh(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Debug("hub: group watch: read failed; keeping the last view", "group", w.cfg.Group, "err", err)
		}
	}
}

// refresh reads the group and, if it changed, wakes Changed's waiters.
func (w *GroupWatch) refresh(ctx context.Context) error {
	g, err := w.cfg.Client.Group(ctx, w.cfg.Group)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if errors.Is(err, ErrNotMember) || errors.Is(err, ErrNotFound) {
			// This node was removed (or the group is gone): it is no
			// longer in a position to admit anyone.
			if w.have && len(w.info.Members) > 0 {
				w.info = GroupInfo{Name: w.cfg.Group, Epoch: w.info.Epoch}
				w.err = err
				w.wakeLocked()
			}
		}
		return err
	}
	if w.have && sameGroup(w.info, g) {
		return nil
	}
	w.info, w.have, w.err = g, true, nil
	w.wakeLocked()
	return nil
}

func (w *GroupWatch) wakeLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// sameGroup compares what the watch's users depend on: epoch, members
// and their keys and addresses.
func sameGroup(a, b GroupInfo) bool {
	return a.Epoch == b.Epoch && slices.EqualFunc(a.Members, b.Members, func(x, y MemberInfo) bool {
		return x.ID == y.ID && bytes.Equal(x.Key, y.Key) && x.Addr == y.Addr && x.Class == y.Class && x.Admin == y.Admin
	})
}

// Info is the latest view of the group; if this node has been removed,
// it has no members and Err says why.
func (w *GroupWatch) Info() GroupInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.info
}

// Err is why this node can no longer read the group (nil while it can).
func (w *GroupWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Changed returns a channel closed at the next change of the view. Take
// it before reading Info, so that no change falls between the two.
func (w *GroupWatch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// ErrNotInGroup: a peer that is not a member of the group, or presents a
// key other than the one the hub knows for it.
var ErrNotInGroup = errors.New("hub: peer is not a member of the group")

// Authorize admits a peer that is a member of the group with the key the
// hub knows for it, or one of WatchConfig.Also. It has the shape of
// tlsnet's Config.Authorize.
func (w *GroupWatch) Authorize(peer string, key ed25519.PublicKey) error {
	if slices.Contains(w.cfg.Also, peer) {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.info.Members {
		if m.ID == peer {
			if !bytes.Equal(m.Key, key) {
				return fmt.Errorf("%w: %s presents a key other than the hub's (group %s)", ErrNotInGroup, peer, w.cfg.Group)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %s (group %s, epoch %d)", ErrNotInGroup, peer, w.cfg.Group, w.info.Epoch)
}

// Close stops the watch.
func (w *GroupWatch) Close() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
		w.cancel = nil
	}
}
