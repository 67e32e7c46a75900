package e2eencryption

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/rime-dev/rime/protocols"
)

// version is the sealed update's format.
const version byte = 1

// adLabel starts the associated data, so that nothing else rime seals
// with these keys could be taken for a sealed update.
const adLabel = "rime/e2e-encryption/v1"

// header is a sealed update's clear part.
type header struct {
	epoch uint64
	nonce []byte
	// body is the ciphertext and tag.
	body []byte
	// clear is the version and epoch bytes, authenticated as data.
	clear []byte
}

// decodeHeader splits a sealed update; it never panics on any input
// (FuzzDecodeHeader).
func decodeHeader(b []byte) (header, error) {
	if len(b) < 1 {
		return header{}, fmt.Errorf("%w: empty", protocols.ErrSealed)
	}
	if b[0] != version {
		return header{}, fmt.Errorf("%w: version %d, this build reads %d", protocols.ErrSealed, b[0], version)
	}
	epoch, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return header{}, fmt.Errorf("%w: epoch", protocols.ErrSealed)
	}
	if epoch == 0 {
		return header{}, fmt.Errorf("%w: epoch 0", protocols.ErrSealed)
	}
	off := 1 + n
	if len(b)-off < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return header{}, fmt.Errorf("%w: %d bytes after the epoch, want at least %d", protocols.ErrSealed, len(b)-off, chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead)
	}
	return header{
		epoch: epoch,
		clear: b[:off],
		nonce: b[off : off+chacha20poly1305.NonceSizeX],
		body:  b[off+chacha20poly1305.NonceSizeX:],
	}, nil
}

// keyring seals and opens one class's updates with a key source's
// epoch keys. It is the layer's core, usable without a stack.
type keyring struct {
	keys   protocols.KeySource // nil: this node holds no key
	salt   []byte              // "<app>/<group>"
	info   string              // "e2e-encryption/<class>"
	adBase []byte

	mu    sync.Mutex
	aeads map[uint64]aeadKey // derived per epoch
}

type aeadKey struct {
	raw  []byte // the epoch key it was derived from
	aead cipher.AEAD
}

func newKeyring(keys protocols.KeySource, app, group, class string) *keyring {
	ad := []byte(adLabel)
	for _, s := range []string{app, group, class} {
		ad = binary.AppendUvarint(ad, uint64(len(s)))
		ad = append(ad, s...)
	}
	return &keyring{keys: keys, salt: []byte(app + "/" + group), info: Name + "/" + class, adBase: ad, aeads: map[uint64]aeadKey{}}
}

// aead is the class's AEAD for epoch, derived once from the epoch key.
func (k *keyring) aead(epoch uint64, key []byte) (cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.aeads[epoch]; ok && string(a.raw) == string(key) {
		return a.aead, nil
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("%s: the key of epoch %d has %d bytes, want at least 16", Name, epoch, len(key))
	}
	sub, err := hkdf.Key(sha256.New, key, k.salt, k.info, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("%s: derive the key of epoch %d: %w", Name, epoch, err)
	}
	a, err := chacha20poly1305.NewX(sub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	k.aeads[epoch] = aeadKey{raw: append([]byte(nil), key...), aead: a}
	return a, nil
}

func (k *keyring) ad(clear []byte) []byte {
	ad := make([]byte, 0, len(k.adBase)+len(clear))
	return append(append(ad, k.adBase...), clear...)
}

func (k *keyring) seal(ctx context.Context, plaintext []byte) ([]byte, error) {
	if k.keys == nil {
		return nil, fmt.Errorf("%s: %w", Name, protocols.ErrNoKey)
	}
	epoch, key, err := k.keys.Current(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: current key: %w", Name, err)
	}
	if epoch == 0 {
		return nil, fmt.Errorf("%s: the key source gave epoch 0", Name)
	}
	a, err := k.aead(epoch, key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+binary.MaxVarintLen64+a.NonceSize()+len(plaintext)+a.Overhead())
	out = append(out, version)
	out = binary.AppendUvarint(out, epoch)
	clear := len(out)
	out = out[:clear+a.NonceSize()]
	rand.Read(out[clear:])
	return a.Seal(out, out[clear:], plaintext, k.ad(out[:clear])), nil
}

func (k *keyring) open(ctx context.Context, sealed []byte) ([]byte, error) {
	h, err := decodeHeader(sealed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if k.keys == nil {
		return nil, fmt.Errorf("%s: %w", Name, protocols.ErrNoKey)
	}
	key, err := k.keys.Key(ctx, h.epoch)
	if err != nil {
		return nil, fmt.Errorf("%s: epoch %d: %w", Name, h.epoch, err)
	}
	a, err := k.aead(h.epoch, key)
	if err != nil {
		return nil, err
	}
	p, err := a.Open(nil, h.nonce, h.body, k.ad(h.clear))
	if err != nil {
		return nil, fmt.Errorf("%s: epoch %d: %w", Name, h.epoch, protocols.ErrSealed)
	}
	return p, nil
}
