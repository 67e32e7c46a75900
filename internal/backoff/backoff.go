package backoff

import (
	"context"
	"time"
)

// Sleep waits d, or less if ctx ends first (false then).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Delay is a delay that doubles at each Wait up to Max.
type Delay struct {
	Next, Max time.Duration
}

// Wait sleeps the current delay (false if ctx ended first) and doubles it.
func (d *Delay) Wait(ctx context.Context) bool {
	ok := Sleep(ctx, d.Next)
	d.Next = min(2*d.Next, d.Max)
	return ok
}
