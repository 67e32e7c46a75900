package crdtreplication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/rime-dev/rime/crdt"
	"github.com/rime-dev/rime/crdt/vv"
	"github.com/rime-dev/rime/protocols"
)

// The replica on disk is a snapshot in the Store plus a write-ahead log
// of what was merged since, in a file of the store's own directory:
//
//   - the snapshot, key "replica": version byte (1) | replica ID |
//     broadcast vector (vv.VV) | state (crdt encoding), each length
//     prefixed;
//   - the log, "<Store.Dir("crdt-replication")>/wal": records of
//     uvarint length | CRC-32C of the body | body, where a body is the
//     broadcast vector's new entries and the delta merged in one batch,
//     both length prefixed.
//
// A batch is one record and one fsync, so a burst of updates costs one
// disk flush, not one each. Once the log outgrows the snapshot (and
// Config.SnapshotBytes), a new snapshot replaces the old one and the log
// starts over; a crash between the two replays a log whose deltas the
// snapshot already holds, which merging ignores. A torn last record (a
// crash mid-write) fails its checksum and is cut off: its batch was
// never acknowledged.

const snapshotKey = "replica"

// startsKey counts the replica's starts: the feed numbers its updates
// from starts<<32 on, so that a session after a restart never sees at a
// Seq another update than a session before it did.
const startsKey = "starts"

// started counts one more start and returns the feed's base Seq.
func (d *disk) started(ctx context.Context) (uint64, error) {
	var n uint64
	b, ver, err := d.store.Get(ctx, startsKey)
	switch {
	case errors.Is(err, protocols.ErrNotFound):
	case err != nil:
		return 0, err
	case len(b) != 8:
		return 0, fmt.Errorf("%s: %d bytes, want 8", startsKey, len(b))
	default:
		n = binary.BigEndian.Uint64(b)
	}
	n++
	if _, err := d.store.Put(ctx, startsKey, binary.BigEndian.AppendUint64(nil, n), ver); err != nil {
		return 0, err
	}
	return n << 32, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type snapshot struct {
	rid   string
	bvec  vv.VV
	state crdt.State
}

func encodeSnapshot(s snapshot) ([]byte, error) {
	st, err := s.state.MarshalBinary()
	if err != nil {
		return nil, err
	}
	bv, _ := s.bvec.MarshalBinary()
	b := []byte{wireVersion}
	b = appendBytes(b, []byte(s.rid))
	b = appendBytes(b, bv)
	return appendBytes(b, st), nil
}

func decodeSnapshot(b []byte, t crdt.Type) (snapshot, error) {
	if len(b) < 1 || b[0] != wireVersion {
		return snapshot{}, fmt.Errorf("%w: snapshot version", errFrame)
	}
	r := &reader{b: b[1:]}
	rid, bv, st := r.bytes(), r.bytes(), r.bytes()
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the snapshot", errFrame, len(r.b))
	}
	if r.err != nil {
		return snapshot{}, r.err
	}
	s := snapshot{rid: string(rid)}
	var err error
	if s.bvec, err = vv.DecodeVV(bv); err != nil {
		return snapshot{}, err
	}
	if s.state, err = crdt.Decode(st); err != nil {
		return snapshot{}, err
	}
	if s.state.Type() != t {
		return snapshot{}, fmt.Errorf("%w: the snapshot holds a %s, the class is a %s", crdt.ErrType, s.state.Type(), t)
	}
	return s, nil
}

// wal is the write-ahead log file.
type wal struct {
	f    *os.File
	size int64
}

// openWAL opens (creating) the log in dir and returns the bodies of its
// intact records; a torn tail is cut off.
func openWAL(dir string) (*wal, [][]byte, error) {
	path := filepath.Join(dir, "wal")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, err
	}
	all, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	var recs [][]byte
	off := 0
	for off < len(all) {
		n, k := binary.Uvarint(all[off:])
		if k <= 0 || uint64(len(all)-off-k) < 4 || n > uint64(len(all)-off-k-4) {
			break
		}
		sum := binary.BigEndian.Uint32(all[off+k:])
		body := all[off+k+4 : off+k+4+int(n)]
		if crc32.Checksum(body, castagnoli) != sum {
			break
		}
		recs = append(recs, body)
		off += k + 4 + int(n)
	}
	if off < len(all) {
		if err := f.Truncate(int64(off)); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	if _, err := f.Seek(int64(off), io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &wal{f: f, size: int64(off)}, recs, nil
}

// append writes one record and flushes it to disk.
func (w *wal) append(body []byte) error {
	b := binary.AppendUvarint(nil, uint64(len(body)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	b = append(b, body...)
	if _, err := w.f.Write(b); err != nil {
		return err
	}
	w.size += int64(len(b))
	return w.f.Sync()
}

// reset empties the log once a snapshot holds everything in it.
func (w *wal) reset() error {
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w.size = 0
	return w.f.Sync()
}

func (w *wal) close() error { return w.f.Close() }

func encodeRecord(bvec vv.VV, delta []byte) []byte {
	bv, _ := bvec.MarshalBinary()
	return appendBytes(appendBytes(nil, bv), delta)
}

func decodeRecord(b []byte) (vv.VV, crdt.State, error) {
	r := &reader{b: b}
	bv, d := r.bytes(), r.bytes()
	if r.err != nil {
		return nil, nil, r.err
	}
	v, err := vv.DecodeVV(bv)
	if err != nil || len(d) == 0 {
		return v, nil, err // no delta: the batch only raised the vector
	}
	st, err := crdt.Decode(d)
	return v, st, err
}

// disk is the replica's persistence in a Store.
type disk struct {
	store   protocols.Store
	version uint64
	wal     *wal
	// snapBytes is the size of the last snapshot: the log may grow to
	// this (or Config.SnapshotBytes) before the next.
	snapBytes int64
}

// load reads the snapshot and replays the log; a replica seen for the
// first time comes back as ok == false.
func (d *disk) load(ctx context.Context, t crdt.Type) (s snapshot, ok bool, err error) {
	b, ver, err := d.store.Get(ctx, snapshotKey)
	switch {
	case errors.Is(err, protocols.ErrNotFound):
	case err != nil:
		return s, false, err
	default:
		if s, err = decodeSnapshot(b, t); err != nil {
			return s, false, fmt.Errorf("snapshot: %w", err)
		}
		ok = true
		d.version, d.snapBytes = ver, int64(len(b))
	}
	dir, err := d.store.Dir("crdt-replication")
	if err != nil {
		return s, false, err
	}
	w, recs, err := openWAL(dir)
	if err != nil {
		return s, false, err
	}
	d.wal = w
	if !ok && len(recs) > 0 {
		return s, false, fmt.Errorf("a write-ahead log of %d records without a snapshot", len(recs))
	}
	for i, rec := range recs {
		bv, delta, err := decodeRecord(rec)
		if err == nil && delta != nil {
			err = s.state.Merge(delta)
		}
		if err != nil {
			return s, false, fmt.Errorf("write-ahead log record %d: %w", i, err)
		}
		s.bvec.Merge(bv)
	}
	return s, ok, nil
}

// save writes a snapshot and empties the log.
func (d *disk) save(ctx context.Context, s snapshot) error {
	b, err := encodeSnapshot(s)
	if err != nil {
		return err
	}
	if d.version, err = d.store.Put(ctx, snapshotKey, b, d.version); err != nil {
		return err
	}
	d.snapBytes = int64(len(b))
	return d.wal.reset()
}
