package checkpointedchannel

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/rime-dev/rime/protocols"
)

// feed reads the log once for all the channel's sessions that are level
// with it, and queues each entry on each of them.
//
// Every session sees every update, so a channel with n sessions does n
// deliveries per update whatever it does. What the feed saves is the rest:
// without it each session had its own reader that woke, locked the log
// and copied every batch of entries, so that at 64 sessions the channel
// spent more on n readers than on the deliveries themselves.
//
// A session is fed while it keeps up. When its queue is full the feed
// does not wait for it (that would hold every other session back): it
// hands the session back the Seq it stopped at, and the session reads on
// by itself (catchUp) until it is level with the feed again and rejoins.
// The feed never waits on a session, so one slow component slows only
// itself, as before.
type feed struct {
	c *Channel

	mu sync.Mutex
	// next is the Seq the feed hands out next; every session in subs has
	// been queued every update before it.
	next uint64
	subs []*session
	// started: the feed's reader is running (it starts with the first
	// session and runs until the channel closes).
	started bool
	stopped bool
}

// start runs the reader from the log's latest checkpoint, once.
func (f *feed) start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started || f.stopped {
		return
	}
	f.started = true
	upTo, _ := f.c.log.Snapshot()
	f.next = upTo + 1
	go f.run(ctx)
}

// run follows the log and fans each entry out until ctx ends or the log
// closes.
func (f *feed) run(ctx context.Context) {
	for {
		f.mu.Lock()
		from := f.next
		f.mu.Unlock()
		fl := f.c.log.Follow(from)
		err := f.follow(ctx, fl)
		fl.Close()
		// The feed lost its place (the log compacted past it, or closed):
		// every fed session goes back to reading by itself, which either
		// carries on or ends the session with the log's error, exactly as
		// a session without a feed would.
		f.mu.Lock()
		f.dropAll()
		if ctx.Err() != nil || errors.Is(err, protocols.ErrClosed) {
			f.stopped = true
			f.mu.Unlock()
			return
		}
		upTo, _ := f.c.log.Snapshot()
		f.next = max(f.next, upTo+1)
		f.mu.Unlock()
		f.c.lg.Debug("channel feed restarts", "class", f.c.env.Class, "from", f.next, "err", err)
	}
}

func (f *feed) follow(ctx context.Context, fl protocols.Follower) error {
	for {
		e, err := fl.Next(ctx)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.fanOut(e)
		f.mu.Unlock()
	}
}

// fanOut queues e on every fed session; one whose queue is full is
// dropped back to reading by itself from e.Seq. Called with f.mu held.
func (f *feed) fanOut(e protocols.Entry) {
	if e.Seq != f.next {
		// Follow hands out contiguous entries from f.next, so this cannot
		// happen; if it did, skipping or repeating an update would break
		// every session's contiguous stream, so drop them all instead.
		f.dropAll()
		f.next = e.Seq + 1
		return
	}
	f.next++
	ev := protocols.Event{Kind: protocols.Update, Seq: e.Seq, Data: e.Data}
	kept := f.subs[:0]
	for _, s := range f.subs {
		if e.Seq < s.next {
			// It read ahead of the feed by itself before joining.
			kept = append(kept, s)
			continue
		}
		if !s.offer(ev) {
			s.drop(e.Seq)
			continue
		}
		s.next = e.Seq + 1
		kept = append(kept, s)
		if f.c.isAsker(s) {
			s.maybeAskNow(e.Seq)
		}
	}
	clear(f.subs[len(kept):])
	f.subs = kept
}

// dropAll hands every fed session back its place. Called with f.mu held.
func (f *feed) dropAll() {
	for _, s := range f.subs {
		s.drop(s.next)
	}
	clear(f.subs)
	f.subs = f.subs[:0]
}

// connect queues a new session's Initialize event with the log's latest
// checkpoint, and makes it a fed session if the feed has handed out no
// update after that checkpoint, all in one step, so that no update
// committed after Connect returns can be missed by the session. It
// returns the Seq the session needs next and whether the feed holds it.
func (f *feed) connect(s *session) (next uint64, fed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	upTo, state := f.c.log.Snapshot()
	// The queue is new and holds at least one event.
	s.offer(protocols.Event{Kind: protocols.Initialize, Seq: upTo, Data: state})
	next = upTo + 1
	if !f.started || f.stopped || next < f.next {
		return next, false
	}
	s.next = next
	f.subs = append(f.subs, s)
	return next, true
}

// join makes s a fed session if it is level with (or ahead of) the feed,
// whose next update it then needs: next is the Seq s needs next.
func (f *feed) join(s *session, next uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started || f.stopped || s.ctx.Err() != nil || next < f.next {
		return false
	}
	s.next = next
	f.subs = append(f.subs, s)
	return true
}

// remove stops feeding s; after it returns the feed never touches s
// again (so its event queue may be closed).
func (f *feed) remove(s *session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.subs {
		if o == s {
			f.subs = slices.Delete(f.subs, i, i+1)
			return
		}
	}
}

// stop ends the feed's reader (the channel is closing).
func (f *feed) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
}
