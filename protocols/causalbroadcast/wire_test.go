package causalbroadcast

import (
	"bytes"
	"testing"

	"github.com/rime-dev/rime/causal"
	"github.com/rime-dev/rime/crdt/vv"
)

func TestFrameRoundTrip(t *testing.T) {
	ms := []causal.Msg{
		{ID: vv.Dot{Replica: "a.1", Seq: 1}, Deps: vv.VV{}, Payload: []byte("x")},
		{ID: vv.Dot{Replica: "b.2", Seq: 3}, Deps: vv.VV{"a.1": 1, "b.2": 2}, Payload: []byte("yz")},
	}
	b, err := encodeMsgs(ms)
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.kind != kindMsgs || len(f.msgs) != 2 || f.msgs[1].ID != ms[1].ID || !bytes.Equal(f.msgs[1].Payload, ms[1].Payload) || !f.msgs[1].Deps.Equal(ms[1].Deps) {
		t.Fatalf("round trip: %+v", f)
	}
	v := vv.VV{"a.1": 4}
	f, err = decodeFrame(encodeVec(kindDigest, v))
	if err != nil || f.kind != kindDigest || !f.vec.Equal(v) {
		t.Fatalf("digest round trip: %+v %v", f, err)
	}
	for _, bad := range [][]byte{nil, {9}, {kindMsgs}, {kindMsgs, 1}, {kindMsgs, 1, 200}, {kindDigest, 7}} {
		if _, err := decodeFrame(bad); err == nil {
			t.Errorf("decodeFrame(%v) accepted", bad)
		}
	}
}

// Whatever arrives, decoding never panics, and what it accepts
// re-encodes to the same bytes (one encoding per frame).
func FuzzDecodeFrame(f *testing.F) {
	b, _ := encodeMsgs([]causal.Msg{{ID: vv.Dot{Replica: "a", Seq: 2}, Deps: vv.VV{"a": 1, "b": 5}, Payload: []byte("p")}})
	f.Add(b)
	f.Add(encodeVec(kindDigest, vv.VV{"a": 3, "b": 1}))
	f.Add(encodeVec(kindSkip, vv.VV{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			return
		}
		var again []byte
		switch fr.kind {
		case kindMsgs:
			again, err = encodeMsgs(fr.msgs)
			if err != nil {
				t.Fatal(err)
			}
		default:
			again = encodeVec(fr.kind, fr.vec)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes as %x", b, again)
		}
	})
}
