package causalbroadcast

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealer seals datagrams with AES-256-GCM and a random nonce.
type sealer struct {
	aead cipher.AEAD
	ad   []byte
}

func newSealer(key []byte, ad string) (*sealer, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: g, ad: []byte(ad)}, nil
}

// seal returns nonce | ciphertext.
func (s *sealer) seal(plain []byte) []byte {
	n := s.aead.NonceSize()
	out := make([]byte, n, n+len(plain)+s.aead.Overhead())
	rand.Read(out[:n])
	return s.aead.Seal(out, out[:n], plain, s.ad)
}

var errOpen = errors.New("not sealed under the class's key")

// open checks and decrypts a datagram.
func (s *sealer) open(b []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(b) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes", errOpen, len(b))
	}
	p, err := s.aead.Open(nil, b[:n], b[n:], s.ad)
	if err != nil {
		return nil, errOpen
	}
	return p, nil
}
