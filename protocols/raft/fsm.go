package raft

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/rime-dev/rime/network"
	"github.com/rime-dev/rime/protocols"
)

// Commands in the Raft log. Every command starts with its kind byte.
const (
	cmdAppend  = 'A' // data: one log entry, numbered Seq = previous + 1
	cmdCompact = 'C' // uvarint upTo, then the state covering 1..upTo
)

func encodeAppend(data []byte) []byte {
	return append([]byte{cmdAppend}, data...)
}

func encodeCompact(upTo uint64, state []byte) []byte {
	b := binary.AppendUvarint([]byte{cmdCompact}, upTo)
	return append(b, state...)
}

// logState is the replicated state machine behind a Log: the compaction
// point with its state, and the entries after it. One Raft replica owns
// one logState; dragonboat calls Update from its apply goroutine while
// followers read under mu.
//
// A compaction keeps up to keep entries behind the compaction point in
// memory (base < snapSeq), so that a follower a little behind it, such as
// a session that had not yet read the entry a checkpoint was taken at,
// carries on contiguously instead of failing with ErrCompacted. They are
// a local read cache only: replicas need not agree on them, and
// snapshots do not hold them.
type logState struct {
	mu       sync.Mutex
	keep     uint64   // entries kept behind the compaction point
	seq      uint64   // last data entry applied
	snapSeq  uint64   // entries 1..snapSeq are covered by snapState
	snap     []byte   // state after entry snapSeq
	base     uint64   // entries 1..base are gone; base <= snapSeq
	retained [][]byte // entries base+1 .. seq
	changed  chan struct{}
	closed   bool
	// recovered counts snapshots installed, for status and for tests
	// that must show a replica caught up from a snapshot, not a replay.
	recovered int
}

func newLogState(keep uint64) *logState { return &logState{keep: keep, changed: make(chan struct{})} }

// notifyLocked wakes every follower waiting for a change.
func (s *logState) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// apply executes one command and returns the Seq it produced (for an
// append) or the current Seq.
func (s *logState) apply(cmd []byte) (uint64, error) {
	if len(cmd) == 0 {
		return 0, errors.New("raft log: empty command")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cmd[0] {
	case cmdAppend:
		s.seq++
		s.retained = append(s.retained, append([]byte(nil), cmd[1:]...))
		s.notifyLocked()
		return s.seq, nil
	case cmdCompact:
		upTo, n := binary.Uvarint(cmd[1:])
		if n <= 0 {
			return 0, errors.New("raft log: bad compaction command")
		}
		// A compaction behind the current snapshot, or ahead of the log
		// (a proposer that had not seen the entries), changes nothing.
		if upTo <= s.snapSeq || upTo > s.seq {
			return s.seq, nil
		}
		s.snapSeq = upTo
		if upTo > s.base+s.keep {
			drop := upTo - s.keep - s.base
			s.retained = append([][]byte(nil), s.retained[drop:]...)
			s.base += drop
		}
		s.snap = append([]byte(nil), cmd[1+n:]...)
		s.notifyLocked()
		return s.seq, nil
	}
	return 0, fmt.Errorf("raft log: unknown command %q", cmd[0])
}

func (s *logState) current() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

func (s *logState) recoveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovered
}

func (s *logState) snapshot() (uint64, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapSeq, s.snap
}

// entry returns entry seq, or waits for it.
func (s *logState) entry(ctx context.Context, seq uint64) (protocols.Entry, error) {
	es, err := s.entries(ctx, seq, nil, 1)
	if err != nil {
		return protocols.Entry{}, err
	}
	return es[0], nil
}

// entries appends to buf the entries from seq on that are applied, at
// least one and at most max, waiting for entry seq if it is not yet.
func (s *logState) entries(ctx context.Context, seq uint64, buf []protocols.Entry, limit int) ([]protocols.Entry, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, protocols.ErrClosed
		}
		if seq <= s.base {
			snapSeq := s.snapSeq
			s.mu.Unlock()
			return nil, fmt.Errorf("entry %d, compacted up to %d: %w", seq, snapSeq, protocols.ErrCompacted)
		}
		if seq <= s.seq {
			for ; seq <= s.seq && len(buf) < limit; seq++ {
				buf = append(buf, protocols.Entry{Seq: seq, Data: s.retained[seq-s.base-1]})
			}
			s.mu.Unlock()
			return buf, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *logState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.notifyLocked()
	}
}

// The snapshot format: magic, seq, snapSeq, len+snap, count, then
// len+entry for each retained entry. Lengths are uvarints and bounded,
// so a corrupt snapshot is an error, never a huge allocation.
const snapMagic = "rime-log-1"

func (s *logState) save(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	bw := bufio.NewWriter(w)
	bw.WriteString(snapMagic)
	var b []byte
	b = binary.AppendUvarint(b, s.seq)
	b = binary.AppendUvarint(b, s.snapSeq)
	b = binary.AppendUvarint(b, uint64(len(s.snap)))
	bw.Write(b)
	bw.Write(s.snap)
	// Only the entries after the compaction point: those kept behind it
	// are a local cache (see logState).
	after := s.retained[s.snapSeq-s.base:]
	bw.Write(binary.AppendUvarint(nil, uint64(len(after))))
	for _, e := range after {
		bw.Write(binary.AppendUvarint(nil, uint64(len(e))))
		bw.Write(e)
	}
	return bw.Flush()
}

// decodeSnapshot parses what save wrote.
func decodeSnapshot(r io.Reader) (seq, snapSeq uint64, snap []byte, retained [][]byte, err error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(snapMagic))
	if _, err = io.ReadFull(br, magic); err != nil || string(magic) != snapMagic {
		return 0, 0, nil, nil, fmt.Errorf("raft log snapshot: bad header")
	}
	readN := func() (uint64, error) { return binary.ReadUvarint(br) }
	readBytes := func() ([]byte, error) {
		n, err := readN()
		if err != nil {
			return nil, err
		}
		if n > network.MaxDatagram*4 {
			return nil, fmt.Errorf("raft log snapshot: item of %d bytes", n)
		}
		// Read what is there rather than allocate what the header
		// claims: a corrupt length costs only the bytes that exist.
		b, err := io.ReadAll(io.LimitReader(br, int64(n)))
		if err == nil && uint64(len(b)) != n {
			err = io.ErrUnexpectedEOF
		}
		return b, err
	}
	if seq, err = readN(); err != nil {
		return
	}
	if snapSeq, err = readN(); err != nil {
		return
	}
	if snap, err = readBytes(); err != nil {
		return
	}
	count, err := readN()
	if err != nil {
		return
	}
	if snapSeq > seq || count != seq-snapSeq {
		return 0, 0, nil, nil, fmt.Errorf("raft log snapshot: %d entries after %d do not end at %d", count, snapSeq, seq)
	}
	for range count {
		e, err := readBytes()
		if err != nil {
			return 0, 0, nil, nil, fmt.Errorf("raft log snapshot: %w", err)
		}
		retained = append(retained, e)
	}
	return seq, snapSeq, snap, retained, nil
}

func (s *logState) recover(r io.Reader) error {
	seq, snapSeq, snap, retained, err := decodeSnapshot(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq, s.snapSeq, s.snap, s.base, s.retained = seq, snapSeq, snap, snapSeq, retained
	s.recovered++
	s.notifyLocked()
	return nil
}

// fsm adapts logState to dragonboat's regular state machine.
type fsm struct{ s *logState }

func (f fsm) Update(e sm.Entry) (sm.Result, error) {
	seq, err := f.s.apply(e.Cmd)
	if err != nil {
		// A command this replica cannot parse would be as unparseable on
		// every replica: reject it in the result rather than halting the
		// shard.
		return sm.Result{Value: 0, Data: []byte(err.Error())}, nil
	}
	return sm.Result{Value: seq}, nil
}

// Lookup answers the linearizable read of the log's end.
func (f fsm) Lookup(any) (any, error) { return f.s.current(), nil }

func (f fsm) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	return f.s.save(w)
}

func (f fsm) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	return f.s.recover(r)
}

func (f fsm) Close() error { return nil }

var _ sm.IStateMachine = fsm{}
