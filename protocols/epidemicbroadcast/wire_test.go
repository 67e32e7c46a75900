package epidemicbroadcast

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
)

func sampleMessages() []Message {
	return []Message{
		{Kind: KindPush, Data: []Data{{Origin: "n1", Epoch: 1, Seq: 1, Payload: []byte("hello")}}},
		{Kind: KindRepair, Data: []Data{
			{Origin: "n1", Epoch: 1 << 62, Seq: 7, Age: 300, Payload: []byte{}},
			{Origin: "n2", Epoch: 3, Seq: 1 << 40, Payload: bytes.Repeat([]byte{0xff}, 300)},
		}},
		{Kind: KindDigest, Digest: []StreamDigest{{Origin: "n1", Epoch: 1, Watermark: 0}, {Origin: "n2", Epoch: 9, Watermark: 10, Above: []uint64{12, 13, 200}}}},
		{Kind: KindDigestReply, Digest: []StreamDigest{}},
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b := encode(nil, m)
		got, err := decode(b)
		if err != nil {
			t.Fatalf("%v: %v", m.Kind, err)
		}
		norm := func(m Message) Message { // empty and nil slices alike
			if len(m.Data) == 0 {
				m.Data = nil
			}
			if len(m.Digest) == 0 {
				m.Digest = nil
			}
			for i := range m.Data {
				if len(m.Data[i].Payload) == 0 {
					m.Data[i].Payload = nil
				}
			}
			return m
		}
		if !reflect.DeepEqual(norm(got), norm(m)) {
			t.Fatalf("round trip of %v:\n got %+v\nwant %+v", m.Kind, got, m)
		}
		if m.Kind == KindRepair {
			size := 3
			for _, d := range m.Data {
				size += dataLen(d)
			}
			if size != len(b) {
				t.Fatalf("dataLen says %d bytes, the encoding has %d", size, len(b))
			}
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := encode(nil, sampleMessages()[1])
	for name, b := range map[string][]byte{
		"empty":          {},
		"version":        append([]byte{9}, good[1:]...),
		"kind":           {wireVersion, 77, 0},
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 0),
		"huge count":     {wireVersion, byte(KindPush), 0xff, 0xff, 0xff, 0xff, 0x0f},
		"zero epoch":     encode(nil, Message{Kind: KindPush, Data: []Data{{Origin: "a", Epoch: 0, Seq: 1}}}),
		"zero seq":       encode(nil, Message{Kind: KindPush, Data: []Data{{Origin: "a", Epoch: 1, Seq: 0}}}),
		"empty origin":   encode(nil, Message{Kind: KindPush, Data: []Data{{Origin: "", Epoch: 1, Seq: 1}}}),
		"not increasing": {wireVersion, byte(KindDigest), 1, 1, 'a', 1, 5, 2, 1, 0},
	} {
		if _, err := decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	s, _ := newSealer(key, "broadcast/chat")
	other, _ := newSealer(bytes.Repeat([]byte{2}, 32), "broadcast/chat")
	otherClass, _ := newSealer(key, "broadcast/photos")
	b := s.seal([]byte("secret"))
	if bytes.Contains(b, []byte("secret")) {
		t.Fatal("sealed datagram holds the plaintext")
	}
	if p, err := s.open(b); err != nil || string(p) != "secret" {
		t.Fatalf("open: %q %v", p, err)
	}
	if _, err := other.open(b); err == nil {
		t.Fatal("opened with another group's key")
	}
	if _, err := otherClass.open(b); err == nil {
		t.Fatal("opened as another class's datagram")
	}
	b[len(b)-1] ^= 1
	if _, err := s.open(b); err == nil {
		t.Fatal("opened a tampered datagram")
	}
	if _, err := s.open(b[:5]); err == nil {
		t.Fatal("opened a short datagram")
	}
}

// FuzzDecode: the decoder never panics, and what it accepts encodes back
// to the same bytes (there is one encoding per message).
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(encode(nil, m))
	}
	f.Add([]byte{wireVersion, byte(KindDigest), 1, 1, 'a', 1, 5, 2, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		if again := encode(nil, m); !bytes.Equal(again, b) {
			t.Fatalf("decode then encode changed the bytes:\n in %x\nout %x", b, again)
		}
	})
}

// FuzzOpen: opening never panics and accepts nothing but what the key
// sealed.
func FuzzOpen(f *testing.F) {
	s, _ := newSealer(bytes.Repeat([]byte{1}, 32), "broadcast/c")
	f.Add(s.seal([]byte("x")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := s.open(b)
		if err == nil && len(b) < sealOverhead {
			t.Fatalf("opened %d bytes to %q", len(b), p)
		}
	})
}

// FuzzStep: whatever a member sends, a Core takes it without panicking
// and stays within its bounds.
func FuzzStep(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(encode(nil, m), uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, ticks uint8) {
		m, err := decode(b)
		if err != nil {
			return
		}
		cfg := DefaultConfig()
		cfg.Window, cfg.MaxRetained, cfg.MaxOrigins, cfg.MaxEpochs, cfg.RetainTicks = 64, 4, 3, 2, 3
		c, err := NewCore("self", 1, cfg, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		c.SetPeers([]string{"p", "q"})
		for range 2 {
			c.Step("p", m)
			for range ticks % 8 {
				c.Tick()
			}
		}
		checkBounds(t, c, cfg)
		// A digest of what it has must draw nothing from a peer that has
		// the same.
		peer, _ := NewCore("peer", 1, cfg, rand.New(rand.NewPCG(3, 4)))
		peer.Step("p", m)
		if rd := c.Step("peer", Message{Kind: KindDigest, Digest: peer.Digest()}); len(rd.Deliver) != 0 {
			t.Fatalf("a digest delivered something: %+v", rd.Deliver)
		}
	})
}
