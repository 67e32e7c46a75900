package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/rime-dev/rime/internal/backoff"
)

// Retryable reports whether dragonboat asks for a request to be tried
// again: the shard has no leader yet, is busy, or is still starting.
func Retryable(err error) bool {
	return errors.Is(err, dragonboat.ErrShardNotReady) || errors.Is(err, dragonboat.ErrSystemBusy) ||
		errors.Is(err, dragonboat.ErrShardNotInitialized)
}

// Retry calls op until it succeeds, fails in a way Retryable does not
// cover (that error is returned as is), or ctx ends (ctx's error, with
// op's last error), backing off from 1 ms to 100 ms between calls. It is
// for requests dragonboat applies at most once or that change nothing
// (reads), which are safe to send again.
func Retry[T any](ctx context.Context, op func() (T, error)) (T, error) {
	delay := backoff.Delay{Next: time.Millisecond, Max: 100 * time.Millisecond}
	for {
		v, err := op()
		if err == nil || !Retryable(err) {
			return v, err
		}
		if !delay.Wait(ctx) {
			return v, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		}
	}
}

// sleep is backoff.Sleep, for the loops here that wait a fixed time.
func sleep(ctx context.Context, d time.Duration) bool { return backoff.Sleep(ctx, d) }
