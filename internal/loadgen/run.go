package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one run's shape.
type Config struct {
	// Clients is how many operations are in flight at once: each client
	// runs one at a time, back to back (a closed loop).
	Clients int
	// Warmup is run but not recorded.
	Warmup time.Duration
	// Duration is the measured window.
	Duration time.Duration
	// Progress, if set, is called every ProgressEvery during the measured
	// window with the operations counted so far and the time elapsed in
	// the window. It runs on its own goroutine and must not block long.
	Progress      func(ops uint64, elapsed time.Duration)
	ProgressEvery time.Duration
}

// DefaultConfig is 16 clients for 10 s after a 1 s warmup, progress
// every second: long enough that a few elections' worth of noise does
// not dominate, short enough to run often.
func DefaultConfig() Config {
	return Config{Clients: 16, Warmup: time.Second, Duration: 10 * time.Second, ProgressEvery: time.Second}
}

// Validate names the field and value that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("loadgen: Config.Clients %d: want at least 1", c.Clients)
	case c.Warmup < 0:
		return fmt.Errorf("loadgen: Config.Warmup %v is negative", c.Warmup)
	case c.Duration <= 0:
		return fmt.Errorf("loadgen: Config.Duration %v: want a positive window", c.Duration)
	case c.Progress != nil && c.ProgressEvery <= 0:
		return fmt.Errorf("loadgen: Config.ProgressEvery %v: want a positive interval with Progress", c.ProgressEvery)
	}
	return nil
}

// Op is one operation of one client; it returns once the operation is
// acknowledged. ctx ends when the run is abandoned.
type Op func(ctx context.Context) error

// Result is what a run measured.
type Result struct {
	Clients int
	// Ops is the number of operations counted in the window.
	Ops uint64
	// Window is the measured window's length.
	Window time.Duration
	// Latency holds every counted operation's latency.
	Latency Histogram
}

// OpsPerSec is the throughput over the window.
func (r *Result) OpsPerSec() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Window.Seconds()
}

// Summary is a Result as `rime bench --format json` prints it.
type Summary struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// Summary rounds the figures for display: ops/s to a unit, latencies to
// a microsecond.
func (r *Result) Summary() Summary {
	ms := func(d time.Duration) float64 { return float64(d.Round(time.Microsecond)) / float64(time.Millisecond) }
	return Summary{
		OpsPerSec: float64(int64(r.OpsPerSec() + 0.5)),
		P50Ms:     ms(r.Latency.Quantile(0.50)),
		P99Ms:     ms(r.Latency.Quantile(0.99)),
	}
}

// Run runs op(i) on each client i in a closed loop, as the package
// comment describes, and returns what it measured. newOp is called once
// per client before anything runs. The first error of an operation or of
// newOp ends the run and is returned, as is ctx's end.
func Run(ctx context.Context, cfg Config, newOp func(client int) (Op, error)) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	ops := make([]Op, cfg.Clients)
	for i := range ops {
		op, err := newOp(i)
		if err != nil {
			return Result{}, fmt.Errorf("loadgen: client %d: %w", i, err)
		}
		ops[i] = op
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	begin := time.Now()
	start := begin.Add(cfg.Warmup)
	end := start.Add(cfg.Duration)
	var counted atomic.Uint64
	hists := make([]Histogram, cfg.Clients)
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hists[i]
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if err := op(ctx); err != nil {
					if ctx.Err() == nil {
						cancel(fmt.Errorf("loadgen: client %d: %w", i, err))
					}
					return
				}
				t1 := time.Now()
				if !t0.Before(start) && !t1.After(end) {
					h.Record(t1.Sub(t0))
					counted.Add(1)
				}
			}
		}()
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		// The first report comes one interval into the measured window.
		next := start.Add(cfg.ProgressEvery)
		for next.Before(end) {
			t := time.NewTimer(time.Until(next))
			select {
			case <-t.C:
			case <-stopProgress:
				t.Stop()
				return
			}
			cfg.Progress(counted.Load(), next.Sub(start))
			next = next.Add(cfg.ProgressEvery)
		}
	}()
	wg.Wait()
	close(stopProgress)
	<-progressDone

	res := Result{Clients: cfg.Clients, Ops: counted.Load(), Window: cfg.Duration}
	for i := range hists {
		res.Latency.Merge(&hists[i])
	}
	// The cause is set only by a failed operation or by the caller's ctx
	// ending, since cancel(nil) is deferred.
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	return res, nil
}
