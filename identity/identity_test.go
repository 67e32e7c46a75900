package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var idPattern = regexp.MustCompile(`^n[a-z2-7]{16}$`)

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "node")
	id, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !idPattern.MatchString(id.ID()) {
		t.Fatalf("ID %q does not match %s", id.ID(), idPattern)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", dst.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only %s (a temp file left behind?)", len(entries), KeyFile)
	}

	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != id.ID() || !bytes.Equal(again.Key, id.Key) {
		t.Fatalf("reload gave %s, first start gave %s", again.ID(), id.ID())
	}
}

// The ID format is a contract (member lists and policies store IDs), so
// it is pinned to a value computed outside Go: sha256 of 32 zero bytes.
func TestIDOfIsStable(t *testing.T) {
	if got, want := IDOf(make(ed25519.PublicKey, ed25519.PublicKeySize)), "nmzuhvlpymk6xo3ep"; got != want {
		t.Fatalf("IDOf(zero key) = %q, want %q", got, want)
	}
}

func TestCorruptKeyFile(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	good, err := marshalKey(id.Key)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, data, why string
	}{
		{"empty", "", "no PEM block"},
		{"garbage", "hello\x00world", "no PEM block"},
		{"truncated", string(good[:len(good)/2]), "no PEM block"},
		{"wrong type", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), `"CERTIFICATE"`},
		{"not PKCS#8", string(pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: []byte{1, 2, 3}})), "asn1"},
		{"not ed25519", string(pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: ecDER})), "*ecdsa.PrivateKey"},
		{"trailing data", string(good) + "junk", "data after"},
		{"headers", string(pem.EncodeToMemory(&pem.Block{Type: pemType, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})), "headers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFile)
			if err := os.WriteFile(path, []byte(c.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir)
			if err == nil {
				t.Fatal("LoadOrCreate accepted a corrupt key file")
			}
			if !errors.Is(err, ErrBadKey) {
				t.Errorf("error %v is not ErrBadKey", err)
			}
			for _, want := range []string{path, "move it away", c.why} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			// The bad file is the operator's to inspect: never replaced.
			if data, _ := os.ReadFile(path); string(data) != c.data {
				t.Error("the corrupt key file was changed")
			}
		})
	}
}

func TestUnreadableDirectory(t *testing.T) {
	// A file where the directory should be: the error names the path.
	dir := filepath.Join(t.TempDir(), "notadir")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(dir)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("got %v, want an error naming %s", err, dir)
	}
}

func TestCertificate(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != id.ID() {
		t.Errorf("CommonName %q, want %q", leaf.Subject.CommonName, id.ID())
	}
	pub, ok := leaf.PublicKey.(ed25519.PublicKey)
	if !ok || !pub.Equal(id.Public()) {
		t.Fatalf("certificate key %T is not the identity's", leaf.PublicKey)
	}
	if leaf.SignatureAlgorithm != x509.PureEd25519 || !ed25519.Verify(pub, leaf.RawTBSCertificate, leaf.Signature) {
		t.Error("certificate is not self-signed by the identity's key")
	}
	now := time.Now()
	if !leaf.NotBefore.Before(now.Add(-50*time.Minute)) || !leaf.NotAfter.After(now.Add(9*365*24*time.Hour)) {
		t.Errorf("validity %v .. %v, want about now-1h .. now+10y", leaf.NotBefore, leaf.NotAfter)
	}
	if leaf.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v is not positive", leaf.SerialNumber)
	}
	other, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial")
	}
}

func TestMalformedKeyDoesNotPanic(t *testing.T) {
	id := &Identity{Key: ed25519.PrivateKey{1, 2, 3}}
	if id.Public() != nil {
		t.Error("Public of a short key is not nil")
	}
	if _, err := id.Certificate(); err == nil {
		t.Error("Certificate accepted a short key")
	}
}

func FuzzParseKey(f *testing.F) {
	id, err := Generate()
	if err != nil {
		f.Fatal(err)
	}
	good, err := marshalKey(id.Key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Add(good[:len(good)-10])
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parseKey(data)
		if err != nil {
			return
		}
		// Whatever parses is a whole key that survives a round trip.
		if len(key) != ed25519.PrivateKeySize {
			t.Fatalf("parsed a %d-byte key", len(key))
		}
		out, err := marshalKey(key)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseKey(out)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func TestIsID(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if !IsID(id.ID()) {
		t.Fatalf("IsID(%q) = false", id.ID())
	}
	for _, s := range []string{"", "n", "10.0.0.2", "10.0.0.2:7946", "x" + id.ID()[1:], id.ID() + "a", strings.ToUpper(id.ID())} {
		if IsID(s) {
			t.Errorf("IsID(%q) = true", s)
		}
	}
}
