package tlsnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/rime-dev/rime/network"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []struct {
		service string
		payload []byte
	}{
		{"swim", []byte("ping")},
		{"", nil},
		{strings.Repeat("s", MaxService), bytes.Repeat([]byte{7}, 3*readChunk+1)},
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := writeFrame(&buf, f.service, f.payload); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range frames {
		service, payload, err := readFrame(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if service != f.service || !bytes.Equal(payload, f.payload) {
			t.Fatalf("read %q (%d bytes), wrote %q (%d bytes)", service, len(payload), f.service, len(f.payload))
		}
	}
	if _, _, err := readFrame(&buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if err := writeFrame(&buf, strings.Repeat("s", MaxService+1), nil); err == nil {
		t.Error("wrote a service name above the limit")
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []header{
		{kind: kindCarrier, from: "10.0.0.1:7000"},
		{kind: kindStream, from: "[::1]:7000", service: "raft-snapshot"},
	} {
		var buf bytes.Buffer
		if err := writeHeader(&buf, h); err != nil {
			t.Fatal(err)
		}
		buf.WriteString("application bytes")
		got, err := readHeader(&buf)
		if err != nil || got != h {
			t.Fatalf("read %+v, %v; wrote %+v", got, err, h)
		}
		// The header reader must not consume the stream's own bytes.
		if buf.String() != "application bytes" {
			t.Fatalf("readHeader consumed stream bytes: %q left", buf.String())
		}
	}
}

func TestFrameLimits(t *testing.T) {
	// A length above MaxDatagram is refused before any allocation.
	var b []byte
	b = append(b, 1, 'x')
	b = binary.BigEndian.AppendUint32(b, network.MaxDatagram+1)
	if _, _, err := readFrame(bytes.NewReader(b)); !errors.Is(err, network.ErrTooLarge) || !errors.Is(err, errFrame) {
		t.Fatalf("oversized frame: %v", err)
	}
	// A frame cut short is an unexpected EOF, not a clean end.
	b = binary.BigEndian.AppendUint32(b[:2], 100)
	if _, _, err := readFrame(bytes.NewReader(append(b, "short"...))); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v", err)
	}
	if _, err := readHeader(bytes.NewReader([]byte{9, kindStream, 0, 0})); !errors.Is(err, errFrame) {
		t.Fatalf("bad version: %v", err)
	}
	if _, err := readHeader(bytes.NewReader([]byte{version, 9, 0, 0})); !errors.Is(err, errFrame) {
		t.Fatalf("bad kind: %v", err)
	}
}

// FuzzReadFrame feeds arbitrary bytes to the header and frame decoders:
// they must not panic, must allocate in proportion to the bytes they were
// given (not to the lengths those bytes claim), and what they decode must
// encode back to the bytes they consumed.
func FuzzReadFrame(f *testing.F) {
	var seed bytes.Buffer
	writeFrame(&seed, "svc", []byte("hello"))
	writeFrame(&seed, "", nil)
	f.Add(seed.Bytes())
	var hdr bytes.Buffer
	writeHeader(&hdr, header{kind: kindStream, from: "127.0.0.1:1", service: "svc"})
	f.Add(hdr.Bytes())
	f.Add([]byte{3, 's', 'v', 'c', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0x01, 0x00, 0x00, 0x00, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := readHeader(bytes.NewReader(data)); err == nil {
			var out bytes.Buffer
			if err := writeHeader(&out, h); err != nil || !bytes.HasPrefix(data, out.Bytes()) {
				t.Fatalf("header %+v does not re-encode to its input: %v", h, err)
			}
		}

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := bytes.NewReader(data)
		var out bytes.Buffer
		for {
			service, payload, err := readFrame(r)
			if err != nil {
				break
			}
			if len(service) > MaxService || len(payload) > network.MaxDatagram {
				t.Fatalf("decoded a frame above the limits: %d, %d", len(service), len(payload))
			}
			if err := writeFrame(&out, service, payload); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		if !bytes.HasPrefix(data, out.Bytes()) {
			t.Fatal("decoded frames do not re-encode to their input")
		}
		// Decoding costs a few times the input, one first chunk for a
		// frame cut short, and slack for the runtime's own allocations.
		limit := 8*uint64(len(data)) + readChunk + 1<<20
		if used := after.TotalAlloc - before.TotalAlloc; used > limit+uint64(out.Cap()) {
			t.Fatalf("decoding %d bytes allocated %d", len(data), used)
		}
	})
}
