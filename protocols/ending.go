package protocols

import "sync"

// Ending is how a channel session ends, for the channels' sessions to
// embed: the first cause is kept (Err), and Ended is closed then. The
// zero value is a session that has not ended.
type Ending struct {
	once  sync.Once
	mu    sync.Mutex
	err   error
	ended chan struct{}
}

func (e *Ending) init() { e.once.Do(func() { e.ended = make(chan struct{}) }) }

// Err is why the session ended, nil while it has not.
func (e *Ending) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Ended is closed when the session ends.
func (e *Ending) Ended() <-chan struct{} {
	e.init()
	return e.ended
}

// End ends the session with err, unless it has ended already; it
// reports whether this call ended it.
func (e *Ending) End(err error) bool {
	e.init()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return false
	}
	e.err = err
	close(e.ended)
	return true
}
