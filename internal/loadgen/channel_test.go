package loadgen

import (
	"testing"
)

func TestOpIDRoundTrip(t *testing.T) {
	buf := make([]byte, 40)
	want := opID{client: 7, seq: 1<<40 + 3}
	encodeID(buf, want)
	if got, ok := decodeID(buf); !ok || got != want {
		t.Fatalf("decode = %v %v, want %v", got, ok, want)
	}
	for _, b := range [][]byte{nil, []byte("lgen"), make([]byte, 16), []byte("editor-1: edit 12")} {
		if _, ok := decodeID(b); ok {
			t.Errorf("decodeID(%q) accepted an update that is not a load's", b)
		}
	}
}

// FuzzDecodeID: any update another application submits to the channel
// passes through decodeID; it must never panic, and what it accepts
// re-encodes to the same prefix.
func FuzzDecodeID(f *testing.F) {
	buf := make([]byte, MinPayload)
	encodeID(buf, opID{client: 1, seq: 2})
	f.Add(buf)
	f.Add([]byte("lgen\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := decodeID(b)
		if !ok {
			return
		}
		again := make([]byte, MinPayload)
		encodeID(again, id)
		if string(again) != string(b[:MinPayload]) {
			t.Fatalf("decode(%x) = %v re-encodes as %x", b, id, again)
		}
	})
}
