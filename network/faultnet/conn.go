package faultnet

import (
	"net"
	"sync"
	"time"
)

// slowConn delays its writes: each Write is queued with a release time
// (now plus the network's delay, never before the previous write's, so
// the stream keeps its order) and a goroutine writes it when due. Write
// returns once queued, as a socket's buffer would let it; a write error
// surfaces on a later Write or on Close. Reads are untouched: the peer's
// own faultnet delays what comes this way.
type slowConn struct {
	net.Conn
	n *Network

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []chunk
	queued  int // bytes in queue
	last    time.Time
	err     error
	closing bool
	done    chan struct{}
}

type chunk struct {
	at   time.Time
	data []byte
}

// closeGrace bounds how long Close waits for queued writes to leave
// beyond their delay.
const closeGrace = 5 * time.Second

// maxQueued bounds the bytes a stream holds back; past it Write waits.
const maxQueued = 4 << 20

func newSlowConn(c net.Conn, n *Network) net.Conn {
	s := &slowConn{Conn: c, n: n, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.run()
	return s
}

func (s *slowConn) Write(b []byte) (int, error) {
	d := s.n.delay()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.err == nil && !s.closing && s.queued >= maxQueued {
		s.cond.Wait()
	}
	if s.err != nil {
		return 0, s.err
	}
	if s.closing {
		return 0, net.ErrClosed
	}
	if d == 0 && len(s.queue) == 0 {
		// No delay and nothing ahead of it: write in place.
		s.mu.Unlock()
		n, err := s.Conn.Write(b)
		s.mu.Lock()
		if err != nil && s.err == nil {
			s.err = err
		}
		return n, err
	}
	at := time.Now().Add(d)
	if at.Before(s.last) {
		at = s.last
	}
	s.last = at
	s.queue = append(s.queue, chunk{at: at, data: append([]byte(nil), b...)})
	s.queued += len(b)
	s.cond.Broadcast()
	return len(b), nil
}

// run writes queued chunks when they are due, until Close has drained
// the queue or a write fails.
func (s *slowConn) run() {
	defer close(s.done)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(s.queue) == 0 && !s.closing && s.err == nil {
			s.cond.Wait()
		}
		if s.err != nil || len(s.queue) == 0 {
			return
		}
		c := s.queue[0]
		s.mu.Unlock()
		if wait := time.Until(c.at); wait > 0 {
			time.Sleep(wait)
		}
		_, err := s.Conn.Write(c.data)
		s.mu.Lock()
		s.queue = s.queue[1:]
		s.queued -= len(c.data)
		if err != nil && s.err == nil {
			s.err = err
		}
		s.cond.Broadcast()
	}
}

// Close lets what is queued leave (it is at most one delay away), then
// closes the stream.
func (s *slowConn) Close() error {
	// A peer that stopped reading must not hold Close forever.
	s.Conn.SetWriteDeadline(time.Now().Add(closeGrace))
	s.mu.Lock()
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.done
	return s.Conn.Close()
}
