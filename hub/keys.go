package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"

	"github.com/rime-dev/rime/protocols"
)

// Group keys through the hub: a protocols.KeySource for a member node,
// over its hub Client. The hub only ever stores wrapped keys.
//
//  1. Each member publishes an X25519 public key, derived from its
//     identity's seed (so it survives restarts without a file), signed
//     with its ed25519 identity key, at /keys/pub/<node>.
//  2. The group's epoch (GroupInfo.Epoch) moves on with every membership
//     change. For epoch n, one member generates a random 32-byte key and
//     wraps it for each eligible member with nacl/box's anonymous box
//     (X25519, XSalsa20-Poly1305), signed by the writer over the group,
//     the epoch, the recipient and the box, at /keys/epoch/<n>/<node>.
//     Eligible members are those whose node class the group declares
//     trust "member" (TrustPath); honest-but-curious and byzantine nodes,
//     though group members in the hub, are never given a key.
//  3. A member polls the hub (KeysConfig.PollInterval, and at once when
//     asked for an epoch newer than it holds), reads its own copies,
//     checks the writer's signature and eligibility, and opens them.
//     Keys are held in memory and fetched again after a restart.
//  4. A removed member is not in the group of the next epoch, so no copy
//     of that epoch, or of any later one, is wrapped for it; the hub also
//     refuses it every read of the group. It keeps the keys it held, and
//     reads what was written before its removal, and nothing after.
//
// # One writer per epoch
//
// The generator of epoch n is a function of the hub's state at epoch n
// alone: the eligible member with the lowest ID. The member set cannot
// change without the epoch changing, so every node that reads epoch n
// names the same generator, and a generator that comes back from a crash
// finds the copy it wrote for itself first (it writes its own first) and
// wraps that key for the rest instead of making another. Adding a copy
// for a member who lacks one (a member who published its public key
// after the key was made, or joined later) writes the same key again, so
// it cannot conflict. The price: while the generator is offline, the
// epoch has no key, and members keep sealing under the previous epoch's
// key, which the removed member holds. Not done: a takeover by the next
// member after a timeout, which would need a tie-break between two keys
// of one epoch.
//
// Members who join receive, with the current key, the older keys the
// generator holds (written before the current one, so a member that has
// the current key has the older ones too): the class's history is
// theirs to read. A trust declaration changed without a membership
// change does not rotate the key.

// Namespace paths of the group keys.
const (
	keysPubPrefix   = "/keys/pub/"
	keysEpochPrefix = "/keys/epoch/"
)

func keysPubPath(node string) string { return keysPubPrefix + node }
func keysCopyPath(epoch uint64, node string) string {
	return keysEpochPrefix + strconv.FormatUint(epoch, 10) + "/" + node
}

// KeysConfig configures a Keys.
type KeysConfig struct {
	// Client is this node's hub client; its identity is the member's.
	// Required.
	Client *Client
	// Group whose keys to hold. Required.
	Group string
	// PollInterval is how often the group is read for a new epoch. The
	// hub has no watch, so this bounds how long after a removal the
	// remaining members keep sealing under the old key.
	PollInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultKeysConfig polls every two seconds: a removal takes effect
// within a few seconds, at one small read per member per interval.
func DefaultKeysConfig() KeysConfig { return KeysConfig{PollInterval: 2 * time.Second} }

// Validate names the field that is wrong.
func (c KeysConfig) Validate() error {
	switch {
	case c.Client == nil:
		return errors.New("hub keys: KeysConfig.Client is nil")
	case validGroupName(c.Group) != nil:
		return fmt.Errorf("hub keys: KeysConfig.Group: %w", validGroupName(c.Group))
	case c.PollInterval <= 0:
		return fmt.Errorf("hub keys: KeysConfig.PollInterval is %v, want > 0", c.PollInterval)
	}
	return nil
}

// Keys is a member's view of its group's epoch keys (a
// protocols.KeySource).
type Keys struct {
	cfg       KeysConfig
	self      string
	sign      ed25519.PrivateKey
	priv, pub [32]byte
	lg        *slog.Logger

	nudge chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	// Owned by the loop.
	checked   uint64                     // own copies of epochs 1..checked were looked up
	published bool                       // this node's public key is in the hub
	pubs      map[string][32]byte        // verified public keys of members
	wrapped   map[uint64]map[string]bool // epoch -> members known to hold a copy
	writers   map[string]bool            // writers verified eligible

	mu      sync.Mutex
	keys    map[uint64][]byte
	newest  uint64
	changed chan struct{}
	err     error // of the last round
}

// StartKeys starts polling the hub for cfg.Group's keys; Close stops it.
func StartKeys(cfg KeysConfig) (*Keys, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	id := cfg.Client.cfg.Identity
	priv, err := hkdf.Key(sha256.New, id.Key.Seed(), []byte(cfg.Group), "rime/hub/keys/x25519", 32)
	if err != nil {
		return nil, fmt.Errorf("hub keys: %w", err)
	}
	k := &Keys{cfg: cfg, self: id.ID(), sign: id.Key, lg: cfg.Logger,
		nudge: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		pubs: map[string][32]byte{}, wrapped: map[uint64]map[string]bool{}, writers: map[string]bool{},
		keys: map[uint64][]byte{}, changed: make(chan struct{})}
	if k.lg == nil {
		k.lg = slog.New(slog.DiscardHandler)
	}
	copy(k.priv[:], priv)
	pub, err := curve25519.X25519(k.priv[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("hub keys: %w", err)
	}
	copy(k.pub[:], pub)
	go k.run()
	return k, nil
}

// Close stops polling; the keys held stay readable.
func (k *Keys) Close() error {
	k.once.Do(func() { close(k.stop); <-k.done })
	return nil
}

func (k *Keys) run() {
	defer close(k.done)
	t := time.NewTicker(k.cfg.PollInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 4*k.cfg.PollInterval+10*time.Second)
		go func() {
			select {
			case <-k.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := k.round(ctx)
		cancel()
		if err != nil {
			k.lg.Debug("hub keys: round", "group", k.cfg.Group, "err", err)
		}
		k.mu.Lock()
		k.err = err
		k.mu.Unlock()
		select {
		case <-k.stop:
			return
		case <-t.C:
		case <-k.nudge:
		}
	}
}

// poke asks the loop for a round now.
func (k *Keys) poke() {
	select {
	case k.nudge <- struct{}{}:
	default:
	}
}

// Current is the newest epoch key held; it waits for the first.
func (k *Keys) Current(ctx context.Context) (uint64, []byte, error) {
	for {
		k.mu.Lock()
		e, ch, err := k.newest, k.changed, k.err
		key := k.keys[e]
		k.mu.Unlock()
		if e > 0 {
			return e, key, nil
		}
		k.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("hub keys: group %s: %w (last round: %v): %w", k.cfg.Group, protocols.ErrNoKey, err, ctx.Err())
		}
	}
}

// Key is epoch's key if held; asking for an epoch newer than any held
// starts a round at once (a peer wrote under a key this node has not
// fetched yet).
func (k *Keys) Key(_ context.Context, epoch uint64) ([]byte, error) {
	k.mu.Lock()
	key, ok := k.keys[epoch]
	newer := epoch > k.newest
	k.mu.Unlock()
	if ok {
		return key, nil
	}
	if newer {
		k.poke()
	}
	return nil, fmt.Errorf("hub keys: group %s, epoch %d: %w", k.cfg.Group, epoch, protocols.ErrNoKey)
}

// Changed is closed when a key is added.
func (k *Keys) Changed() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.changed
}

// Epochs are the epochs whose keys are held, for a live view.
func (k *Keys) Epochs() []uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Sorted(maps.Keys(k.keys))
}

func (k *Keys) add(epoch uint64, key []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.keys[epoch]; ok {
		return
	}
	k.keys[epoch] = key
	k.newest = max(k.newest, epoch)
	close(k.changed)
	k.changed = make(chan struct{})
}

func (k *Keys) held(epoch uint64) ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.keys[epoch]
	return key, ok
}

// round is one poll: publish, read the group, fetch own copies, and,
// as the epoch's generator, make and hand out its key.
func (k *Keys) round(ctx context.Context) error {
	c, g := k.cfg.Client, k.cfg.Group
	if !k.published {
		if err := c.Put(ctx, g, keysPubPath(k.self), encodeKeysPub(g, k.self, k.pub, k.sign)); err != nil {
			return fmt.Errorf("publish the public key: %w", err)
		}
		k.published = true
	}
	gi, err := c.Group(ctx, g)
	if err != nil {
		return err
	}
	elig, err := k.eligible(ctx, gi)
	if err != nil {
		return err
	}
	if !elig[k.self] {
		return nil // this node's class is not trusted with keys
	}
	for n := k.checked + 1; n <= gi.Epoch; n++ {
		if err := k.fetch(ctx, n); err != nil {
			return err
		}
	}
	if _, ok := k.held(gi.Epoch); ok {
		k.checked = gi.Epoch
	} else {
		k.checked = gi.Epoch - 1
	}
	if generator(gi, elig) != k.self {
		return nil
	}
	key, ok := k.held(gi.Epoch)
	if !ok {
		key = make([]byte, 32)
		rand.Read(key)
		// Own copy first: after a crash mid-way the generator finds it
		// and never makes a second key for the epoch.
		if err := k.wrapFor(ctx, gi, gi.Epoch, k.self, k.pub, key); err != nil {
			return err
		}
		k.add(gi.Epoch, key)
		k.checked = gi.Epoch
		k.lg.Info("hub keys: new epoch key", "group", g, "epoch", gi.Epoch)
	}
	return k.handOut(ctx, gi, elig, key)
}

// handOut wraps the epoch's key for each eligible member that has no
// copy yet (older keys first, so that the current one means all).
func (k *Keys) handOut(ctx context.Context, gi GroupInfo, elig map[string]bool, key []byte) error {
	done := k.wrapped[gi.Epoch]
	if done == nil {
		done = map[string]bool{k.self: true}
		k.wrapped[gi.Epoch] = done
	}
	for _, m := range gi.Members {
		if !elig[m.ID] || done[m.ID] {
			continue
		}
		_, err := k.cfg.Client.Get(ctx, k.cfg.Group, keysCopyPath(gi.Epoch, m.ID))
		if err == nil {
			done[m.ID] = true
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		pub, ok, err := k.pubOf(ctx, m)
		if err != nil || !ok {
			continue // not published yet: next round
		}
		for _, e := range k.Epochs() {
			if e >= gi.Epoch {
				continue
			}
			old, _ := k.held(e)
			if err := k.wrapFor(ctx, gi, e, m.ID, pub, old); err != nil {
				return err
			}
		}
		if err := k.wrapFor(ctx, gi, gi.Epoch, m.ID, pub, key); err != nil {
			return err
		}
		done[m.ID] = true
	}
	return nil
}

func (k *Keys) wrapFor(ctx context.Context, gi GroupInfo, epoch uint64, to string, pub [32]byte, key []byte) error {
	sealed, err := box.SealAnonymous(nil, key, &pub, rand.Reader)
	if err != nil {
		return fmt.Errorf("wrap epoch %d for %s: %w", epoch, to, err)
	}
	v := encodeKeysCopy(gi.Name, epoch, to, k.self, sealed, k.sign)
	if err := k.cfg.Client.Put(ctx, gi.Name, keysCopyPath(epoch, to), v); err != nil {
		return fmt.Errorf("write epoch %d for %s: %w", epoch, to, err)
	}
	return nil
}

// fetch reads and opens this node's copy of epoch n, if any.
func (k *Keys) fetch(ctx context.Context, n uint64) error {
	if _, ok := k.held(n); ok {
		return nil
	}
	v, err := k.cfg.Client.Get(ctx, k.cfg.Group, keysCopyPath(n, k.self))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cp, err := decodeKeysCopy(v)
	if err != nil {
		k.lg.Warn("hub keys: refused copy", "epoch", n, "err", err)
		return nil
	}
	if err := k.checkWriter(ctx, cp, n); err != nil {
		k.lg.Warn("hub keys: refused copy", "epoch", n, "writer", cp.writer, "err", err)
		return nil
	}
	key, ok := box.OpenAnonymous(nil, cp.box, &k.pub, &k.priv)
	if !ok || len(key) != 32 {
		k.lg.Warn("hub keys: copy does not open", "epoch", n, "writer", cp.writer)
		return nil
	}
	k.add(n, key)
	return nil
}

// checkWriter verifies a copy's signature and that its writer's class is
// trusted with keys.
func (k *Keys) checkWriter(ctx context.Context, cp keysCopy, epoch uint64) error {
	nr, err := k.cfg.Client.Node(ctx, cp.writer)
	if err != nil {
		return err
	}
	if !ed25519.Verify(ed25519.PublicKey(nr.Key), keysCopyMessage(k.cfg.Group, epoch, k.self, cp.writer, cp.box), cp.sig) {
		return errors.New("bad signature")
	}
	if !k.writers[cp.writer] {
		t, err := k.trustOf(ctx, nr.Class)
		if err != nil {
			return err
		}
		if t != TrustMember {
			return fmt.Errorf("writer's class %s has trust %q", nr.Class, t)
		}
		k.writers[cp.writer] = true
	}
	return nil
}

// pubOf is member m's verified public key, if published.
func (k *Keys) pubOf(ctx context.Context, m MemberInfo) ([32]byte, bool, error) {
	if p, ok := k.pubs[m.ID]; ok {
		return p, true, nil
	}
	v, err := k.cfg.Client.Get(ctx, k.cfg.Group, keysPubPath(m.ID))
	if errors.Is(err, ErrNotFound) {
		return [32]byte{}, false, nil
	}
	if err != nil {
		return [32]byte{}, false, err
	}
	p, err := decodeKeysPub(v, k.cfg.Group, m.ID, ed25519.PublicKey(m.Key))
	if err != nil {
		k.lg.Warn("hub keys: refused public key", "member", m.ID, "err", err)
		return [32]byte{}, false, nil
	}
	k.pubs[m.ID] = p
	return p, true, nil
}

// eligible are the members whose node class the group trusts with keys.
func (k *Keys) eligible(ctx context.Context, gi GroupInfo) (map[string]bool, error) {
	trust := map[string]string{}
	out := map[string]bool{}
	for _, m := range gi.Members {
		t, ok := trust[m.Class]
		if !ok {
			var err error
			if t, err = k.trustOf(ctx, m.Class); err != nil {
				return nil, err
			}
			trust[m.Class] = t
		}
		out[m.ID] = t == TrustMember
	}
	return out, nil
}

func (k *Keys) trustOf(ctx context.Context, nodeClass string) (string, error) {
	if nodeClass == "" {
		return DefaultTrust, nil
	}
	v, err := k.cfg.Client.Get(ctx, k.cfg.Group, TrustPath(nodeClass))
	switch {
	case errors.Is(err, ErrNotFound):
		return DefaultTrust, nil
	case err != nil:
		return "", err
	}
	return string(v), nil
}

// generator names the member that makes the epoch's key: the eligible
// member with the lowest ID (GroupInfo lists members sorted by ID).
func generator(gi GroupInfo, elig map[string]bool) string {
	for _, m := range gi.Members {
		if elig[m.ID] {
			return m.ID
		}
	}
	return ""
}

// Encodings, version 1.
//
//	public key: version (1) | X25519 public key (32) | ed25519 signature (64)
//	            over "rime/hub/keys/pub/v1" | group | node | key
//	copy:       version (1) | writer (uvarint length, bytes) | box (uvarint
//	            length, bytes) | ed25519 signature (64) over
//	            "rime/hub/keys/epoch/v1" | group | epoch | recipient | writer | box
//
// Strings in the signed messages are length prefixed, so no two fields
// can be shifted into each other.
const keysVersion byte = 1

var errKeysEncoding = errors.New("hub keys: malformed value")

func appendField(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func keysPubMessage(group, node string, pub [32]byte) []byte {
	m := []byte("rime/hub/keys/pub/v1")
	m = appendField(m, []byte(group))
	m = appendField(m, []byte(node))
	return append(m, pub[:]...)
}

func encodeKeysPub(group, node string, pub [32]byte, sign ed25519.PrivateKey) []byte {
	b := append([]byte{keysVersion}, pub[:]...)
	return append(b, ed25519.Sign(sign, keysPubMessage(group, node, pub))...)
}

func decodeKeysPub(b []byte, group, node string, signer ed25519.PublicKey) ([32]byte, error) {
	var pub [32]byte
	if len(b) != 1+32+ed25519.SignatureSize || b[0] != keysVersion {
		return pub, fmt.Errorf("%w: public key of %d bytes", errKeysEncoding, len(b))
	}
	copy(pub[:], b[1:33])
	if len(signer) != ed25519.PublicKeySize || !ed25519.Verify(signer, keysPubMessage(group, node, pub), b[33:]) {
		return pub, fmt.Errorf("%w: public key of %s not signed by it", errKeysEncoding, node)
	}
	return pub, nil
}

type keysCopy struct {
	writer string
	box    []byte
	sig    []byte
}

func keysCopyMessage(group string, epoch uint64, to, writer string, sealed []byte) []byte {
	m := []byte("rime/hub/keys/epoch/v1")
	m = appendField(m, []byte(group))
	m = binary.BigEndian.AppendUint64(m, epoch)
	m = appendField(m, []byte(to))
	m = appendField(m, []byte(writer))
	return appendField(m, sealed)
}

func encodeKeysCopy(group string, epoch uint64, to, writer string, sealed []byte, sign ed25519.PrivateKey) []byte {
	b := []byte{keysVersion}
	b = appendField(b, []byte(writer))
	b = appendField(b, sealed)
	return append(b, ed25519.Sign(sign, keysCopyMessage(group, epoch, to, writer, sealed))...)
}

// decodeKeysCopy parses a copy; the signature is checked by the caller,
// which knows the writer's key.
func decodeKeysCopy(b []byte) (keysCopy, error) {
	if len(b) < 1 || b[0] != keysVersion {
		return keysCopy{}, fmt.Errorf("%w: copy version", errKeysEncoding)
	}
	r := &fieldReader{b: b[1:]}
	w, sealed := r.field(256), r.field(1024)
	if r.err != nil {
		return keysCopy{}, r.err
	}
	if len(r.b) != ed25519.SignatureSize || len(w) == 0 {
		return keysCopy{}, fmt.Errorf("%w: copy of %d bytes", errKeysEncoding, len(b))
	}
	return keysCopy{writer: string(w), box: bytes.Clone(sealed), sig: bytes.Clone(r.b)}, nil
}

type fieldReader struct {
	b   []byte
	err error
}

func (r *fieldReader) field(limit int) []byte {
	if r.err != nil {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(limit) || n > uint64(len(r.b)-k) {
		r.err = fmt.Errorf("%w: field length", errKeysEncoding)
		return nil
	}
	f := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return f
}

var _ protocols.KeySource = (*Keys)(nil)
