package hub

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"github.com/rime-dev/rime/network"
)

// Services a hub replica opens on its endpoint.
const (
	// Service carries request/response streams: each frame from the
	// client is an encoded Request, each frame back a Response.
	Service = "hub"
	// RelayService carries relay sessions (see Client.Relay).
	RelayService = "hub/relay"
	// relayForward carries relay frames between replicas, as datagrams.
	relayForward = "hub/relay-fwd"
	// raftService carries the hub shard's Raft messages.
	raftService = "hub/raft"
)

// Response answers one Request.
type Response struct {
	// Code names the error (see the Err* sentinels); empty is success.
	Code string `json:"code,omitempty"`
	Msg  string `json:"msg,omitempty"`
	// Leader is the leader's address, with Code "not-leader".
	Leader   string          `json:"leader,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Decision *Decision       `json:"decision,omitempty"`
}

// maxFrame bounds a frame on a hub stream.
const maxFrame = network.MaxDatagram

func writeFrame(w *bufio.Writer, b []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Flush()
}

// readFrame reads one length-prefixed frame, refusing a length above
// maxFrame before allocating anything for it.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxFrame {
		return nil, fmt.Errorf("hub: frame of %d bytes: %w", n, network.ErrTooLarge)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// DecodeResponse parses a response strictly.
func DecodeResponse(b []byte) (Response, error) {
	var r Response
	if err := decodeStrict(b, maxFrame, &r); err != nil {
		return Response{}, fmt.Errorf("hub: response: %w", err)
	}
	return r, nil
}

// A relay frame is [uvarint len(peer)][peer][payload]: peer is the
// destination from a node, the source to a node. The payload is opaque.
func encodeRelayFrame(peer string, payload []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, len(peer)+len(payload)+2), uint64(len(peer)))
	b = append(b, peer...)
	return append(b, payload...)
}

// DecodeRelayFrame splits a relay frame.
func DecodeRelayFrame(b []byte) (peer string, payload []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > 64 || uint64(len(b)-k) < n {
		return "", nil, fmt.Errorf("%w: relay frame", ErrBadRequest)
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// relayFwd is a relay frame between replicas.
type relayFwd struct {
	Group   string `json:"group"`
	From    string `json:"from"`
	To      string `json:"to"`
	Payload []byte `json:"payload"`
}

func decodeRelayFwd(b []byte) (relayFwd, error) {
	var f relayFwd
	if err := decodeStrict(b, maxFrame, &f); err != nil {
		return relayFwd{}, fmt.Errorf("hub: relay forward: %w", err)
	}
	return f, nil
}
