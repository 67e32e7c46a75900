package loadgen

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunCounts: every recorded operation ran inside the window, no
// client runs two at once, and the result adds up.
func TestRunCounts(t *testing.T) {
	var calls atomic.Int64
	inFlight := make([]atomic.Int32, 4)
	var overlapped atomic.Bool
	progress := make(chan uint64, 100)
	// A window long enough that a loaded machine (the suite runs many
	// packages at once on two cores) still completes operations in it.
	cfg := Config{Clients: 4, Warmup: 20 * time.Millisecond, Duration: time.Second,
		Progress: func(ops uint64, _ time.Duration) { progress <- ops }, ProgressEvery: 50 * time.Millisecond}
	res, err := Run(context.Background(), cfg, func(i int) (Op, error) {
		return func(ctx context.Context) error {
			if inFlight[i].Add(1) != 1 {
				overlapped.Store(true)
			}
			defer inFlight[i].Add(-1)
			calls.Add(1)
			// Some work that takes time without sleeping.
			deadline := time.Now().Add(50 * time.Microsecond)
			for time.Now().Before(deadline) {
			}
			return nil
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if overlapped.Load() {
		t.Error("a client ran two operations at once")
	}
	if res.Ops == 0 || res.Ops > uint64(calls.Load()) || res.Latency.Count() != res.Ops {
		t.Errorf("ops %d, histogram %d, calls %d", res.Ops, res.Latency.Count(), calls.Load())
	}
	if res.Latency.Quantile(0.5) < 50*time.Microsecond {
		t.Errorf("p50 %v below the operation's own 50µs", res.Latency.Quantile(0.5))
	}
	if got, want := res.OpsPerSec(), float64(res.Ops)/1.0; got != want {
		t.Errorf("OpsPerSec %v, want %v", got, want)
	}
	close(progress)
	var last uint64
	n := 0
	for ops := range progress {
		if ops < last {
			t.Errorf("progress went back from %d to %d", last, ops)
		}
		last, n = ops, n+1
	}
	if n == 0 || last > res.Ops {
		t.Errorf("%d progress reports, last %d of %d ops", n, last, res.Ops)
	}
}

// TestRunStopsOnError: the first failed operation ends the run with its
// error, naming the client.
func TestRunStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Run(context.Background(), Config{Clients: 3, Duration: time.Minute}, func(i int) (Op, error) {
		n := 0
		return func(ctx context.Context) error {
			if n++; i == 1 && n == 10 {
				return boom
			}
			return nil
		}, nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if _, err := Run(context.Background(), Config{Clients: 0, Duration: time.Second}, nil); err == nil {
		t.Error("Clients 0 should be refused")
	}
}
