package hub

import (
	"bytes"
	"testing"
	"time"
)

// fuzzSeeds are well-formed encodings to start from.
func fuzzSeeds(f *testing.F) (Request, Command) {
	id := newIdentity(f)
	req, err := NewRequest(id, OpRegister, RegisterArgs{Class: "phone", Reachability: "nat"}, time.Unix(1_700_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	return req, Command{Now: req.Time, Req: &req}
}

func FuzzDecodeRequest(f *testing.F) {
	req, _ := fuzzSeeds(f)
	b, _ := EncodeRequest(req)
	f.Add(b)
	f.Add([]byte(`{"op":"put","signer":"n","nonce":1,"time":1,"sig":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		// Whatever decodes can be checked without panicking, and
		// re-encodes to something that decodes alike.
		r.Verify(r.Key)
		enc, err := EncodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeRequest(enc)
		if err != nil || !bytes.Equal(r.SigningBytes(), r2.SigningBytes()) {
			t.Fatalf("round trip changed the request: %v", err)
		}
	})
}

// FuzzApplyCommand decodes a log entry and applies it to a state that
// holds a registered node and a group: no input may panic, and the state
// must still snapshot and restore.
func FuzzApplyCommand(f *testing.F) {
	_, cmd := fuzzSeeds(f)
	b, _ := EncodeCommand(cmd)
	f.Add(b)
	f.Add([]byte(`{"now":1,"init":["a","b"]}`))
	f.Add([]byte(`{"now":1,"req":{"op":"accept","signer":"x","nonce":1,"time":1,"body":"eyJncm91cCI6ImcifQ==","sig":""},"input":{"action":"join","group":"g","node":{"id":"x","class":"","trust":"","member":false,"invited":false},"data":{"class":"","confidential":false,"encrypted":false}},"decision":{"allow":true,"decision_id":"d"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		m := newMachine(t)
		alice := newIdentity(t)
		register(m, alice, "phone")
		if err := m.do(alice, OpCreateGroup, GroupArgs{Group: "g"}); err != nil {
			t.Fatal(err)
		}
		m.st.Apply(100, c)
		snap, err := m.st.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeState(snap); err != nil {
			t.Fatalf("a state reached by Apply does not restore: %v", err)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	st := NewState()
	b, _ := st.Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeState(enc); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
	})
}

func FuzzDecodeWire(f *testing.F) {
	f.Add([]byte(`{"code":"denied","msg":"no","decision":{"allow":false,"decision_id":"x"}}`))
	f.Add(encodeRelayFrame("nabc", []byte("payload")))
	f.Add([]byte(`{"group":"g","from":"a","to":"b","payload":"AA=="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodeResponse(b)
		decodeRelayFwd(b)
		DecodeChannelRef(b)
		if peer, payload, err := DecodeRelayFrame(b); err == nil {
			if !bytes.Equal(encodeRelayFrame(peer, payload), b) {
				t.Fatal("relay frame does not round trip")
			}
		}
	})
}
