// Package seal authenticates and encrypts a protocol's datagrams under a
// key derived from the group secret (protocols.Env.DeriveKey), so nodes
// outside the group can neither read a layer's messages nor inject any,
// and the associated data (the layer's service name) keeps one class's
// messages from being taken for another's.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealer seals datagrams with AES-256-GCM and a random nonce.
type Sealer struct {
	aead cipher.AEAD
	ad   []byte
}

// New returns a Sealer for a 32-byte key, binding ad into every message.
func New(key []byte, ad string) (*Sealer, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: g, ad: []byte(ad)}, nil
}

// Seal returns nonce | ciphertext.
func (s *Sealer) Seal(plain []byte) []byte {
	n := s.aead.NonceSize()
	out := make([]byte, n, n+len(plain)+s.aead.Overhead())
	rand.Read(out[:n])
	return s.aead.Seal(out, out[:n], plain, s.ad)
}

// ErrOpen: the datagram was not sealed under this key and data.
var ErrOpen = errors.New("not sealed under the class's key")

// Open checks and decrypts a datagram.
func (s *Sealer) Open(b []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(b) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes", ErrOpen, len(b))
	}
	p, err := s.aead.Open(nil, b[:n], b[n:], s.ad)
	if err != nil {
		return nil, ErrOpen
	}
	return p, nil
}
