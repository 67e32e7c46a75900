// Package loadgen measures a closed-loop workload: Clients goroutines each
// run one operation at a time, back to back, for a Duration after a
// Warmup, and every completed operation's latency goes into a Histogram.
// It is the measuring core shared by the benchmarks under bench/ and by
// `rime bench`, so that both report the same thing the same way.
//
// A run proceeds in order:
//
//  1. every client starts and runs operations while the warmup lasts;
//     those are not recorded (leader election settling, connections
//     opening, caches filling);
//  2. the measured window of Duration opens: every operation that starts
//     and completes inside it is counted and its latency recorded in the
//     client's own Histogram (no shared lock on the hot path);
//  3. when the window closes, clients finish the operation in hand and
//     stop; operations that straddle the end are not counted;
//  4. the clients' histograms are merged into the Result: throughput is
//     counted operations over the window, latencies are its quantiles.
//
// The first operation error stops the run and is returned: a closed loop
// whose client failed would otherwise measure fewer clients than asked.
//
// ChannelLoad is the workload of a checkpointed channel: one session per
// client, and an operation is one Submit acknowledged by the update's
// arrival in the client's own event stream (and, optionally, in the
// streams of observer sessions on other nodes), the only acknowledgement
// the channel gives.
package loadgen
