package client

import (
	"context"
	"fmt"

	"github.com/rime-dev/rime/protocols"
)

// Replica is an application's state kept in step with a channel: the
// common pattern Run drives. Its methods are called from Run's goroutine
// only, one at a time.
type Replica interface {
	// Apply applies one update, in the channel's order.
	Apply(update []byte)
	// Checkpoint returns the state after every update applied so far.
	Checkpoint() []byte
	// Restore replaces the state with a checkpoint (nil: the empty state,
	// before any update).
	Restore(checkpoint []byte)
}

// Run keeps r in step with ch until ch ends or ctx is done:
//
//  1. Initialize restores r from the checkpoint it carries;
//  2. each Update is applied, after checking that its Seq follows the
//     last one's (a gap would leave r silently wrong, so it is an error);
//  3. RequestCheckpoint is answered with r.Checkpoint(), at the Seq of
//     the last update applied, which is the state r.Checkpoint() holds.
//
// Run returns nil when the application closed ch, ctx.Err() when ctx is
// done, and otherwise why ch ended. It does not close ch: whoever opened
// it does. Nothing else may read ch.Events() meanwhile.
func Run(ctx context.Context, ch *Channel, r Replica) error {
	var (
		next        uint64 // Seq of the next update to apply
		initialized bool
	)
	for {
		var (
			ev protocols.Event
			ok bool
		)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok = <-ch.Events():
		}
		if !ok {
			if ch.closed.Load() {
				return nil
			}
			return fmt.Errorf("client: class %s: channel ended: %w", ch.class, ch.Err())
		}
		if !initialized && ev.Kind != protocols.Initialize {
			return fmt.Errorf("client: class %s: %s event %d before initialize", ch.class, ev.Kind, ev.Seq)
		}
		switch ev.Kind {
		case protocols.Initialize:
			if initialized {
				return fmt.Errorf("client: class %s: a second initialize (at %d) after update %d", ch.class, ev.Seq, next-1)
			}
			r.Restore(ev.Data)
			next, initialized = ev.Seq+1, true
		case protocols.Update:
			if ev.Seq != next {
				return fmt.Errorf("client: class %s: update %d where %d was due: the stream is not contiguous", ch.class, ev.Seq, next)
			}
			r.Apply(ev.Data)
			next++
		case protocols.RequestCheckpoint:
			if err := ch.Checkpoint(next-1, r.Checkpoint()); err != nil && ch.Err() == nil {
				// A session that ended says so by closing Events; any
				// other refusal means the replica and the channel disagree.
				return err
			}
		default:
			return fmt.Errorf("client: class %s: event of unknown kind %d", ch.class, ev.Kind)
		}
	}
}
