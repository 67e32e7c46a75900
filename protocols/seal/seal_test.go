package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, _ := New(key, "svc/a")
	b, _ := New(key, "svc/b")
	other, _ := New(bytes.Repeat([]byte{8}, 32), "svc/a")
	msg := []byte("hello")
	sealed := a.Seal(msg)
	if got, err := a.Open(sealed); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %q %v", got, err)
	}
	for name, s := range map[string]*Sealer{"another service": b, "another key": other} {
		if _, err := s.Open(sealed); !errors.Is(err, ErrOpen) {
			t.Errorf("%s opened it: %v", name, err)
		}
	}
	if _, err := a.Open(sealed[:5]); !errors.Is(err, ErrOpen) {
		t.Errorf("a short datagram: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	s, _ := New(bytes.Repeat([]byte{1}, 32), "x")
	f.Add(s.Seal([]byte("m")))
	f.Fuzz(func(t *testing.T, b []byte) { s.Open(b) })
}
