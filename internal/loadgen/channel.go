package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/rime-dev/rime/protocols"
)

// MinPayload is the smallest update ChannelLoad submits: the operation's
// id (a tag, the client, its sequence number). Larger payloads are padded
// with zeros.
const MinPayload = 16

// idTag marks the updates of a ChannelLoad, so updates that others submit
// to the same channel are told apart and ignored.
const idTag = "lgen"

type opID struct {
	client uint32
	seq    uint64
}

func encodeID(buf []byte, id opID) {
	copy(buf, idTag)
	binary.BigEndian.PutUint32(buf[4:], id.client)
	binary.BigEndian.PutUint64(buf[8:], id.seq)
}

// decodeID reads the id at the start of an update; false for an update
// that is not a ChannelLoad's.
func decodeID(b []byte) (opID, bool) {
	if len(b) < MinPayload || string(b[:4]) != idTag {
		return opID{}, false
	}
	return opID{client: binary.BigEndian.Uint32(b[4:]), seq: binary.BigEndian.Uint64(b[8:])}, true
}

// ChannelLoad is the checkpointed channel's workload: client i owns one
// session, on the channel it was given, and its operation submits one
// update and returns when the update has arrived in its own session's
// event stream and in the stream of every observer session. That arrival
// is the only acknowledgement the channel gives (protocols.Session), so
// the latency is submit-to-delivered.
//
// Every session answers the channel's checkpoint requests with a small
// state (the count of updates it has seen), as an application must for
// the log to be compacted.
type ChannelLoad struct {
	payload int
	need    int

	mu      sync.Mutex
	pending []pendingOp // by client: the one operation in flight
	err     error       // why the first session ended early
	dead    chan struct{}
	closing bool

	clients  []*loadSession
	sessions []*loadSession // clients then observers
	wg       sync.WaitGroup
}

type pendingOp struct {
	seq  uint64
	left int
	done chan struct{}
}

type loadSession struct {
	s        protocols.Session
	client   int // -1 for an observer
	observer bool
	seq      uint64 // the client's last operation (owned by its Op)
}

// NewChannelLoad connects one session per client, on clients[i], and one
// observer session on each of observers, and starts reading their
// streams. payload is the size of each update (at least MinPayload).
// Close disconnects them all.
func NewChannelLoad(ctx context.Context, clients, observers []protocols.Channel, payload int) (*ChannelLoad, error) {
	if payload < MinPayload {
		return nil, fmt.Errorf("loadgen: payload of %d bytes: want at least %d (the operation's id)", payload, MinPayload)
	}
	if len(clients) == 0 {
		return nil, errors.New("loadgen: a channel load needs at least one client")
	}
	l := &ChannelLoad{payload: payload, need: 1 + len(observers), pending: make([]pendingOp, len(clients)), dead: make(chan struct{})}
	connect := func(ch protocols.Channel, client int) error {
		s, err := ch.Connect(ctx)
		if err != nil {
			l.Close()
			return fmt.Errorf("loadgen: connect: %w", err)
		}
		ls := &loadSession{s: s, client: client, observer: client < 0}
		l.sessions = append(l.sessions, ls)
		if !ls.observer {
			l.clients = append(l.clients, ls)
		}
		l.wg.Add(1)
		go l.read(ls)
		return nil
	}
	for i, ch := range clients {
		if err := connect(ch, i); err != nil {
			return nil, err
		}
	}
	for _, ch := range observers {
		if err := connect(ch, -1); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// read consumes one session's events until it ends.
func (l *ChannelLoad) read(ls *loadSession) {
	defer l.wg.Done()
	var seen uint64
	for ev := range ls.s.Events() {
		switch ev.Kind {
		case protocols.Update:
			seen++
			if id, ok := decodeID(ev.Data); ok && (ls.observer || int(id.client) == ls.client) {
				l.arrived(id)
			}
		case protocols.RequestCheckpoint:
			// Not being able to checkpoint only delays compaction; a
			// session that ended says so through its stream closing.
			_ = ls.s.Checkpoint(ev.Seq, binary.BigEndian.AppendUint64(nil, seen))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil && !l.closing {
		who := "observer session"
		if !ls.observer {
			who = fmt.Sprintf("client %d's session", ls.client)
		}
		l.err = fmt.Errorf("loadgen: %s ended: %w", who, ls.s.Err())
		close(l.dead)
	}
}

// arrived counts one arrival of operation id.
func (l *ChannelLoad) arrived(id opID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if int(id.client) >= len(l.pending) {
		return
	}
	p := &l.pending[id.client]
	if p.done == nil || p.seq != id.seq {
		return
	}
	if p.left--; p.left == 0 {
		close(p.done)
		p.done = nil
	}
}

// Op is client i's operation, for Run.
func (l *ChannelLoad) Op(i int) (Op, error) {
	if i < 0 || i >= len(l.clients) {
		return nil, fmt.Errorf("loadgen: client %d of %d", i, len(l.clients))
	}
	ls := l.clients[i]
	return func(ctx context.Context) error {
		ls.seq++
		done := make(chan struct{})
		l.mu.Lock()
		l.pending[i] = pendingOp{seq: ls.seq, left: l.need, done: done}
		l.mu.Unlock()
		// A fresh buffer: the channel may hold the update after Submit
		// returns.
		buf := make([]byte, l.payload)
		encodeID(buf, opID{client: uint32(i), seq: ls.seq})
		if err := ls.s.Submit(ctx, buf); err != nil {
			return fmt.Errorf("loadgen: submit: %w", err)
		}
		select {
		case <-done:
			return nil
		case <-l.dead:
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

// Close disconnects every session and waits for their readers. It
// returns why a session ended early, if one did.
func (l *ChannelLoad) Close() error {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	for _, ls := range l.sessions {
		ls.s.Disconnect()
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
