package hubrelay

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rime-dev/rime/network"
)

func TestFrameRoundTrip(t *testing.T) {
	tg := tag{1, 2, 3, 4, 5, 6, 7, 8}
	for _, kind := range []byte{kindDatagram, kindQUIC} {
		b := append(appendHeader(nil, kind, tg), "body"...)
		k, gt, body, err := decodeFrame(b)
		if err != nil || k != kind || gt != tg || string(body) != "body" {
			t.Fatalf("kind %d: %d %v %q %v", kind, k, gt, body, err)
		}
	}
	d := datagram{from: "nabcdefghijklmnop", to: "nqrstuvwxyz234567", service: "swim/messages", payload: []byte("probe")}
	b, err := appendPlain(nil, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePlain(b)
	if err != nil || got.from != d.from || got.to != d.to || got.service != d.service || !bytes.Equal(got.payload, d.payload) {
		t.Fatalf("plain: %+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, {version}, {2, kindQUIC, 0, 0, 0, 0, 0, 0, 0, 0}, {version, 9, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, _, err := decodeFrame(bad); !errors.Is(err, errFrame) {
			t.Errorf("decodeFrame(%v): %v, want errFrame", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {3, 'a'}, {0, 0}, {0, 0, 5, 'x'}} {
		if _, err := decodePlain(bad); !errors.Is(err, errFrame) {
			t.Errorf("decodePlain(%v): %v, want errFrame", bad, err)
		}
	}
	if _, err := appendPlain(nil, datagram{service: strings.Repeat("s", 256)}); !errors.Is(err, errFrame) {
		t.Errorf("a 256-byte service name: %v", err)
	}
}

func TestBatch(t *testing.T) {
	pkts := [][]byte{{1}, bytes.Repeat([]byte{2}, 1452), {3, 3}}
	var b []byte
	for _, p := range pkts {
		b = appendPacket(b, p)
	}
	var got [][]byte
	if err := splitPackets(b, func(p []byte) { got = append(got, p) }); err != nil || len(got) != 3 {
		t.Fatalf("%d packets, %v", len(got), err)
	}
	for i := range pkts {
		if !bytes.Equal(got[i], pkts[i]) {
			t.Fatalf("packet %d: %x, want %x", i, got[i], pkts[i])
		}
	}
	for _, bad := range [][]byte{nil, {0}, {0, 0}, {0, 5, 1}} {
		if err := splitPackets(bad, func([]byte) {}); !errors.Is(err, errFrame) {
			t.Errorf("splitPackets(%v): %v, want errFrame", bad, err)
		}
	}
}

func TestStreamHeader(t *testing.T) {
	if s, err := readStreamHeader(bytes.NewReader([]byte{streamVersion, 3, 'a', 'b', 'c', 'x'})); err != nil || s != "abc" {
		t.Fatalf("%q %v", s, err)
	}
	for _, bad := range [][]byte{nil, {streamVersion}, {7, 0}, {streamVersion, 4, 'a'}} {
		if _, err := readStreamHeader(bytes.NewReader(bad)); err == nil {
			t.Errorf("readStreamHeader(%v): no error", bad)
		}
	}
}

// FuzzDecodeFrame: no input panics the frame and datagram decoders, and
// what decodes encodes back to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendPacket(appendPacket(appendHeader(nil, kindQUIC, tag{}), []byte{0xc0, 0, 0, 0, 1}), []byte{0x40, 7}))
	plain, _ := appendPlain(nil, datagram{from: "nabcdefghijklmnop", to: "nqrstuvwxyz234567", service: "svc", payload: []byte("x")})
	f.Add(append(appendHeader(nil, kindDatagram, tag{9}), plain...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, tg, body, err := decodeFrame(b)
		if err == nil {
			re := append(appendHeader(nil, kind, tg), body...)
			if !bytes.Equal(re, b) {
				t.Fatalf("re-encoded %x, read %x", re, b)
			}
		}
		var batch []byte
		if err := splitPackets(b, func(pkt []byte) { batch = appendPacket(batch, pkt) }); err == nil && !bytes.Equal(batch, b) {
			t.Fatalf("re-batched %x, read %x", batch, b)
		}
		d, err := decodePlain(b)
		if err != nil {
			return
		}
		if len(d.payload) > network.MaxDatagram {
			t.Fatalf("payload of %d bytes accepted", len(d.payload))
		}
		re, err := appendPlain(nil, d)
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("re-encoded %x (%v), read %x", re, err, b)
		}
	})
}

// FuzzReadStreamHeader: no header panics the reader or reads past itself.
func FuzzReadStreamHeader(f *testing.F) {
	f.Add([]byte{streamVersion, 3, 'a', 'b', 'c'})
	f.Add([]byte{streamVersion, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		s, err := readStreamHeader(r)
		if err == nil && len(b)-r.Len() != 2+len(s) {
			t.Fatalf("read %d bytes for a %d-byte name", len(b)-r.Len(), len(s))
		}
	})
}

// FuzzNodeID: no address panics the parser, and a parsed address is
// the one Addr writes for its ID, or the ID itself.
func FuzzNodeID(f *testing.F) {
	a, _ := Addr("nabcdefghijklmnop")
	for _, s := range []string{a, "nabcdefghijklmnop", "10.0.0.1:7946", "[fd72:696d:6500::]:1", "[::1]:1", "n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := NodeID(s)
		if err != nil {
			return
		}
		back, err := Addr(id)
		if err != nil {
			t.Fatalf("NodeID(%q) = %q, which Addr refuses: %v", s, id, err)
		}
		if again, err := NodeID(back); err != nil || again != id {
			t.Fatalf("Addr(%q) = %q reads back as %q %v", id, back, again, err)
		}
	})
}
