// Package checkpointedchannel is the "checkpointed-channel" layer: the
// channel of Live Distributed Objects (seed 001) over a totally ordered
// Log (raft consensus, or any layer that provides "log"). A component
// connects to its node's proxy, is initialized with the latest
// checkpoint, then receives every committed update in order; one
// connected component is asked for checkpoints now and then, which the
// proxy records through the log so the log can be compacted.
//
// Each session has its own queue of events. The channel's feed
// (feed.go) reads the log once for every session that keeps up; a
// session that falls behind reads the log by itself until it has caught
// up, so a slow component never holds the others back.
package checkpointedchannel
