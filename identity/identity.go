package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// KeyFile is the name of the key file inside a node's directory.
const KeyFile = "node.key"

// pemType is the PEM block type of a PKCS#8 private key (RFC 7468).
const pemType = "PRIVATE KEY"

// ErrBadKey: the key file exists but does not hold a PEM PKCS#8 ed25519
// private key.
var ErrBadKey = errors.New("not a PEM PKCS#8 ed25519 key")

// Identity is a node's key pair.
type Identity struct {
	// Key is the node's private key; its public half names the node.
	Key ed25519.PrivateKey
}

// idEncoding is lowercase base32 without padding: IDs travel in URLs,
// file names and logs, where '=' and case differences get in the way.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IDOf is the ID of the node whose public key is pub: "n" and 16 base32
// characters (80 bits of SHA-256), short enough to read in a log and long
// enough that no two keys of a group collide by accident.
func IDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "n" + idEncoding.EncodeToString(sum[:10])
}

// IsID reports whether s has the shape of a node ID (as IDOf writes it).
func IsID(s string) bool {
	if len(s) != 17 || s[0] != 'n' {
		return false
	}
	b, err := idEncoding.DecodeString(s[1:])
	return err == nil && len(b) == 10
}

// ID is the node's ID: IDOf its public key.
func (id *Identity) ID() string { return IDOf(id.Public()) }

// Public is the node's public key, or nil if Key is not a whole ed25519
// private key (ed25519's own Public would panic on it).
func (id *Identity) Public() ed25519.PublicKey {
	if len(id.Key) != ed25519.PrivateKeySize {
		return nil
	}
	return id.Key.Public().(ed25519.PublicKey)
}

// Generate makes a new identity that lives only in memory, for tests and
// for nodes that should not outlive their process.
func Generate() (*Identity, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return &Identity{Key: key}, nil
}

// LoadOrCreate returns the identity kept in dir/node.key, creating dir
// (mode 0700) and the key (mode 0600) on first start.
func LoadOrCreate(dir string) (*Identity, error) {
	path := filepath.Join(dir, KeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := parseKey(data)
		if err != nil {
			return nil, fmt.Errorf("identity: %s: %w: %v; move it away to create a new identity", path, ErrBadKey, err)
		}
		return &Identity{Key: key}, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: read %s: %w", path, err)
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: create directory %s: %w", dir, err)
	}
	id, err := Generate()
	if err != nil {
		return nil, err
	}
	data, err = marshalKey(id.Key)
	if err != nil {
		return nil, fmt.Errorf("identity: encode key for %s: %w", path, err)
	}
	if err := writeAtomic(dir, path, data); err != nil {
		return nil, fmt.Errorf("identity: write %s: %w", path, err)
	}
	return id, nil
}

// writeAtomic puts data at path so that a crash leaves either no file or
// the whole file: write a temp file beside it, fsync, rename over, fsync
// the directory so the rename itself is durable.
func writeAtomic(dir, path string, data []byte) (err error) {
	// CreateTemp makes the file 0600, so the key is never readable by
	// others, not even for a moment.
	f, err := os.CreateTemp(dir, "."+KeyFile+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// marshalKey encodes key as a PEM PKCS#8 block, the form openssl and
// ssh-keygen read, so an operator can inspect a node's key with them.
func marshalKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// parseKey decodes a key file. It is strict (one block, nothing but
// whitespace around it, no PEM headers) so that a file edited by hand or
// truncated is reported rather than half understood.
func parseKey(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type != pemType {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemType)
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("PEM block has headers (an encrypted key?)")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, not ed25519", k)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	return key, nil
}

// certValidity is how long a certificate lasts. Peers check the key, not
// a CA chain, so expiry protects nothing here; it is long so a node
// never stops talking because its clock or its uptime ran far.
const certValidity = 10 * 365 * 24 * time.Hour

// Certificate is a self-signed certificate for the node's key, for mutual
// TLS. Its CommonName is the node's ID. Its validity starts an hour in the
// past so that a peer whose clock is a little behind accepts it.
func (id *Identity) Certificate() (tls.Certificate, error) {
	if len(id.Key) != ed25519.PrivateKeySize {
		return tls.Certificate{}, fmt.Errorf("identity: certificate: key has %d bytes, want %d", len(id.Key), ed25519.PrivateKeySize)
	}
	// A random serial, as RFC 5280 asks, kept positive and under 20 bytes.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity: certificate serial: %w", err)
	}
	serial.Add(serial, big.NewInt(1))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.ID()},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public(), id.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity: certificate for %s: %w", id.ID(), err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity: certificate for %s: %w", id.ID(), err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.Key, Leaf: leaf}, nil
}
