package hubrelay

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/rime-dev/rime/identity"
)

// TestVerifyPeer: a peer is accepted only with the key of the node the
// relay names (or that was dialled).
func TestVerifyPeer(t *testing.T) {
	bob, _ := identity.Generate()
	carol, _ := identity.Generate()
	cert, err := bob.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{parsed}}
	if err := verifyPeer(cs, bob.ID()); err != nil {
		t.Fatalf("bob's own key: %v", err)
	}
	if err := verifyPeer(cs, carol.ID()); err == nil || !strings.Contains(err.Error(), "the relay says it is") {
		t.Fatalf("bob's key claimed as carol's: %v", err)
	}
	if err := verifyPeer(tls.ConnectionState{}, bob.ID()); err == nil {
		t.Fatal("no certificate: accepted")
	}
	// A certificate for bob's key signed by another key.
	forged := *parsed
	forged.Signature = append([]byte(nil), parsed.Signature...)
	forged.Signature[0] ^= 1
	if err := verifyPeer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{&forged}}, bob.ID()); err == nil {
		t.Fatal("a certificate not signed by its key: accepted")
	}
}
