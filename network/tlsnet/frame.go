package tlsnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/rime-dev/rime/network"
)

// The wire format, inside TLS. Every connection starts with a header from
// the dialling side and one status byte from the accepting side:
//
//	header  = version:1 kind:1 fromLen:1 from serviceLen:1 service
//	status  = 0 (ok) | 1 (refused)
//
// from is the dialler's listen address (its TCP source port is
// ephemeral, so the receiver could not answer it otherwise); service is
// empty on a carrier. After an ok, a carrier carries datagram frames one
// way, dialler to acceptor, and a stream is the stream's bytes:
//
//	frame   = serviceLen:1 service payloadLen:4 (big endian) payload
//
// Every length is checked before anything is allocated for it.
//
// The framing is written by hand rather than taken from a multiplexer
// (yamux, gRPC): crypto/tls does the hard part, the format is five
// fields, and one TCP connection per stream keeps a bulk transfer from
// holding back datagrams or other streams behind it.

const (
	version = 1

	// kindCarrier: the connection carries datagrams, one way.
	kindCarrier byte = 1
	// kindStream: the connection is one stream to one service.
	kindStream byte = 2

	statusOK      byte = 0
	statusRefused byte = 1

	// MaxService bounds a service name (and an address in a header): its
	// length is one byte on the wire.
	MaxService = 255

	// readChunk is how much a payload buffer grows by at first: a length
	// field alone never buys more memory than the bytes that follow it.
	readChunk = 64 << 10
)

// errFrame marks bytes that are not a well-formed header or frame.
var errFrame = errors.New("tlsnet: malformed frame")

type header struct {
	kind    byte
	from    string
	service string
}

func writeHeader(w io.Writer, h header) error {
	if len(h.from) > MaxService || len(h.service) > MaxService {
		return fmt.Errorf("%w: header field above %d bytes", errFrame, MaxService)
	}
	b := make([]byte, 0, 5+len(h.from)+len(h.service))
	b = append(b, version, h.kind, byte(len(h.from)))
	b = append(b, h.from...)
	b = append(b, byte(len(h.service)))
	b = append(b, h.service...)
	_, err := w.Write(b)
	return err
}

// readHeader reads exactly one header and nothing beyond it, since on a
// stream the bytes after it belong to the application.
func readHeader(r io.Reader) (header, error) {
	var b [3]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return header{}, err
	}
	if b[0] != version {
		return header{}, fmt.Errorf("%w: version %d, want %d", errFrame, b[0], version)
	}
	h := header{kind: b[1]}
	if h.kind != kindCarrier && h.kind != kindStream {
		return header{}, fmt.Errorf("%w: kind %d", errFrame, h.kind)
	}
	from, err := readShort(r, int(b[2]))
	if err != nil {
		return header{}, err
	}
	h.from = from
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return header{}, unexpected(err)
	}
	if h.service, err = readShort(r, int(b[0])); err != nil {
		return header{}, err
	}
	return h, nil
}

func writeFrame(w io.Writer, service string, payload []byte) error {
	if len(service) > MaxService {
		return fmt.Errorf("%w: service name of %d bytes", errFrame, len(service))
	}
	if len(payload) > network.MaxDatagram {
		return fmt.Errorf("%w: %d-byte payload", network.ErrTooLarge, len(payload))
	}
	var b [1 + MaxService + 4]byte
	n := copy(b[1:], service)
	b[0] = byte(n)
	binary.BigEndian.PutUint32(b[1+n:], uint32(len(payload)))
	if _, err := w.Write(b[:1+n+4]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readFrame reads one datagram frame. io.EOF means the carrier ended
// cleanly between frames; a frame cut short is io.ErrUnexpectedEOF.
func readFrame(r io.Reader) (service string, payload []byte, err error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return "", nil, err
	}
	if service, err = readShort(r, int(b[0])); err != nil {
		return "", nil, err
	}
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", nil, unexpected(err)
	}
	n := binary.BigEndian.Uint32(b[:])
	if n > network.MaxDatagram {
		return "", nil, fmt.Errorf("%w: payload of %d bytes for %q: %w", errFrame, n, service, network.ErrTooLarge)
	}
	payload, err = readPayload(r, int(n))
	if err != nil {
		return "", nil, err
	}
	return service, payload, nil
}

// readShort reads a length-prefixed name; n < 256 by construction.
func readShort(r io.Reader, n int) (string, error) {
	if n == 0 {
		return "", nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", unexpected(err)
	}
	return string(b), nil
}

// readPayload reads n bytes, growing its buffer as they arrive (at most
// doubling), so a peer that announces 16 MiB and sends 10 bytes costs
// readChunk, not 16 MiB.
func readPayload(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, readChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, unexpected(err)
		}
	}
	return buf, nil
}

// unexpected turns an EOF inside a header or frame into
// io.ErrUnexpectedEOF: only a clean end between frames is io.EOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
