package raft

import (
	"sync"

	"github.com/lni/dragonboat/v4/client"
)

// sessionPool keeps dragonboat client sessions for reuse. Proposals go
// through registered sessions, never the no-op one, because a proposal
// made on a follower travels to the leader as a message, and a network
// that duplicates messages (memnet does, so do real ones on retry) would
// otherwise append the update twice: dragonboat drops a proposal whose
// session and series it has already applied, which is exactly-once.
//
// A session carries one proposal at a time, so the pool holds as many
// as there have been concurrent proposals. A session whose proposal's
// outcome is unknown (timed out) is dropped, not reused: proposing
// something else in its series could be taken for the retry of the lost
// one. Dropped sessions are evicted from the replicated session table
// by dragonboat's LRU.
type sessionPool struct {
	mu   sync.Mutex
	free []*client.Session
}

func (p *sessionPool) get() *client.Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		cs := p.free[n-1]
		p.free = p.free[:n-1]
		return cs
	}
	return nil
}

// put returns a session whose last proposal completed.
func (p *sessionPool) put(cs *client.Session) {
	cs.ProposalCompleted()
	p.mu.Lock()
	p.free = append(p.free, cs)
	p.mu.Unlock()
}
