package raft

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/rime-dev/rime/network"
)

// NewTransportFactory gives dragonboat rime's Network instead of its own
// TCP transport: put it in config.NodeHostConfig.Expert.TransportFactory,
// with RaftAddress set to the node's ID. Targets are node IDs, which
// resolve maps to current addresses (false: unknown, and the message is
// dropped as if lost). The hub runs its own shard with it.
func NewTransportFactory(ep network.Endpoint, service string, resolve func(nodeID string) (string, bool), log *slog.Logger) config.TransportFactory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &transportFactory{ep: ep, service: service, lookup: resolve, log: log}
}

// transportFactory gives dragonboat rime's Network instead of its own TCP
// transport, so every Raft message crosses the faults a test injects.
// Targets are node IDs, resolved to addresses by lookup (the address book).
// Message batches travel as datagrams on service (Raft tolerates loss,
// duplication and reordering by design); snapshot chunks travel on a
// stream of service+"/snap", since a snapshot is only usable whole.
type transportFactory struct {
	ep      network.Endpoint
	service string
	lookup  func(nodeID string) (string, bool)
	log     *slog.Logger
}

func (f *transportFactory) Create(_ config.NodeHostConfig, onBatch raftio.MessageHandler, onChunk raftio.ChunkHandler) raftio.ITransport {
	ctx, cancel := context.WithCancel(context.Background())
	return &transport{f: f, onBatch: onBatch, onChunk: onChunk, ctx: ctx, cancel: cancel}
}

// Validate accepts node IDs, the targets this transport is given.
func (f *transportFactory) Validate(target string) bool {
	return target != "" && !strings.ContainsAny(target, " \t\n/")
}

// resolve is the current address of the node a target names.
func (f *transportFactory) resolve(target string) (string, error) {
	addr, ok := f.lookup(target)
	if !ok {
		return "", fmt.Errorf("raft transport: node %s is not in the membership view: %w", target, network.ErrUnreachable)
	}
	return addr, nil
}

type transport struct {
	f       *transportFactory
	onBatch raftio.MessageHandler
	onChunk raftio.ChunkHandler

	msgs, snaps network.Port
	// ctx ends at Close, and with it every snapshot stream.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func (t *transport) Name() string { return "rime-network" }

func (t *transport) Start() error {
	var err error
	if t.msgs, err = t.f.ep.Open(t.f.service); err != nil {
		return fmt.Errorf("raft transport: %w", err)
	}
	if t.snaps, err = t.f.ep.Open(t.f.service + "/snap"); err != nil {
		t.msgs.Close()
		return fmt.Errorf("raft transport: %w", err)
	}
	t.wg.Add(2)
	go t.receiveBatches()
	go t.acceptSnapshots()
	return nil
}

func (t *transport) receiveBatches() {
	defer t.wg.Done()
	for p := range t.msgs.Packets() {
		var b pb.MessageBatch
		if err := b.Unmarshal(p.Payload); err != nil {
			t.f.log.Warn("raft transport: dropping a malformed batch", "from", p.From, "err", err)
			continue
		}
		t.onBatch(b)
	}
}

func (t *transport) acceptSnapshots() {
	defer t.wg.Done()
	for {
		c, err := t.snaps.Accept()
		if err != nil {
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.receiveChunks(c)
		}()
	}
}

// receiveChunks reads length-prefixed chunks until the sender closes, the
// chunk sink refuses one, or the transport closes.
func (t *transport) receiveChunks(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(t.ctx, func() { c.Close() })
	defer stop()
	r := bufio.NewReader(c)
	for {
		b, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.f.log.Debug("raft transport: snapshot stream ended", "err", err)
			}
			return
		}
		var ch pb.Chunk
		if err := ch.Unmarshal(b); err != nil {
			t.f.log.Warn("raft transport: malformed snapshot chunk", "err", err)
			return
		}
		if !t.onChunk(ch) {
			return
		}
	}
}

func (t *transport) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		if t.msgs != nil {
			t.msgs.Close()
		}
		if t.snaps != nil {
			t.snaps.Close()
		}
	})
	t.wg.Wait()
	return nil
}

func (t *transport) GetConnection(ctx context.Context, target string) (raftio.IConnection, error) {
	return &msgConn{t: t, to: target}, nil
}

func (t *transport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	addr, err := t.f.resolve(target)
	if err != nil {
		return nil, err
	}
	c, err := t.f.ep.Dial(ctx, addr, t.f.service+"/snap")
	if err != nil {
		return nil, fmt.Errorf("raft transport: snapshot to %s: %w", target, err)
	}
	return &snapConn{c: c, w: bufio.NewWriter(c)}, nil
}

// msgConn sends batches as datagrams; there is no connection to keep.
type msgConn struct {
	t  *transport
	to string
}

func (m *msgConn) Close() {}

func (m *msgConn) SendMessageBatch(b pb.MessageBatch) error {
	buf, err := b.Marshal()
	if err != nil {
		return err
	}
	addr, err := m.t.f.resolve(m.to)
	if err != nil {
		return err
	}
	return m.t.f.ep.Send(context.Background(), addr, m.t.f.service, buf)
}

type snapConn struct {
	c net.Conn
	w *bufio.Writer
}

func (s *snapConn) Close() { s.w.Flush(); s.c.Close() }

func (s *snapConn) SendChunk(ch pb.Chunk) error {
	b, err := ch.Marshal()
	if err != nil {
		return err
	}
	if err := writeFrame(s.w, b); err != nil {
		return err
	}
	return s.w.Flush()
}

func writeFrame(w io.Writer, b []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one length-prefixed frame of at most 4*MaxDatagram
// bytes (dragonboat's chunks are far smaller).
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > 4*network.MaxDatagram {
		return nil, fmt.Errorf("frame of %d bytes: %w", n, network.ErrTooLarge)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

var (
	_ config.TransportFactory    = (*transportFactory)(nil)
	_ raftio.ITransport          = (*transport)(nil)
	_ raftio.IConnection         = (*msgConn)(nil)
	_ raftio.ISnapshotConnection = (*snapConn)(nil)
)
