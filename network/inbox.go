package network

import "sync"

// Inbox is a port's queue of incoming datagrams and its closed signal,
// shared by the implementations so they drop and close alike: a full
// queue drops, and closing never races a delivery.
type Inbox struct {
	packets chan Packet
	done    chan struct{}

	mu     sync.RWMutex
	closed bool
}

// NewInbox returns an open inbox holding up to PortQueue datagrams.
func NewInbox() *Inbox {
	return &Inbox{packets: make(chan Packet, PortQueue), done: make(chan struct{})}
}

// Packets is the queue, closed by Shut.
func (q *Inbox) Packets() <-chan Packet { return q.packets }

// Done is closed by Shut.
func (q *Inbox) Done() <-chan struct{} { return q.done }

// Deliver queues p without blocking and reports whether it was queued.
// The read lock keeps Shut from closing the channel under the send.
func (q *Inbox) Deliver(p Packet) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false
	}
	select {
	case q.packets <- p:
		return true
	default:
		return false
	}
}

// Shut closes the inbox; it is idempotent.
func (q *Inbox) Shut() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	close(q.done)
	close(q.packets)
}
