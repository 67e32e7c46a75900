// Package backoff holds the waiting that retry loops share (the raft
// layer's and the hub's proposals and reads, the hub client's calls): a
// sleep that ends early when its context does, and a doubling delay with
// a cap.
package backoff
