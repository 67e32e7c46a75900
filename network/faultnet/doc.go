// Package faultnet wraps a network.Network with faults injected on the
// way out of each endpoint: datagrams lost, duplicated, delayed and so
// reordered; stream writes delayed, in order. memnet has its own faults;
// faultnet is for the real network (tlsnet), where this kernel has no
// netem: `rime node --faults` serves a control endpoint that sets them,
// which `rime verify --netns` uses for WAN latency and message loss.
package faultnet
