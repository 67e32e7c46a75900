// Package client is how applications talk to the channels of a rime
// node: the Go SDK, and the node's local HTTP/JSON API for applications
// in other languages. Both carry the checkpointed-channel events of
// protocols.Session unchanged.
//
// # The Go SDK
//
// A Client reaches one node, in its process (NewLocal, given the node's
// lookup of a class's channel) or over the node's HTTP API (NewHTTP).
// Client.Open connects to a class's channel and returns a Channel, which
// is a protocols.Session whichever way it was opened:
//
//  1. the first event is Initialize with the checkpoint to start from
//     (Seq 0 and no data before any checkpoint);
//  2. then Update events with Seq n+1, n+2, ... without gaps, the same
//     order on every session of the class (as strong as the class's
//     consistency promises);
//  3. between them, RequestCheckpoint events ask for the application's
//     state after update Seq; Channel.Checkpoint answers, and later
//     sessions start from that checkpoint instead of replaying the log;
//  4. Submit's only acknowledgement is the update's arrival as an Update;
//     an update that cannot be accepted ends the session rather than
//     vanish (over HTTP, so does a Submit whose outcome is unknown);
//  5. Sync returns a Seq s once every update up to s is in Events: every
//     update delivered to any session anywhere before the call is at or
//     below s, so reading up to s is a linearizable read (to read your
//     own write, wait for its Update first: that is its commit);
//  6. Events is closed when the session ends; Err says why
//     (protocols.ErrDisconnected after Close).
//
// Run drives the usual application, a Replica: it restores from
// Initialize, applies updates checking that they are contiguous, and
// answers checkpoint requests. Convergent is the same for a class served
// by the convergent channel: a view of the class's CRDT state, merged
// from Initialize and each update's delta, and Reconnect is the
// reconnecting loop both need.
//
// Over HTTP a broken event stream ends the Channel (and its session on
// the node): events in flight may be lost, so the stream could not go on
// contiguously. The application opens a new Channel, which starts from
// the latest checkpoint.
//
// # The HTTP API
//
// NewHandler serves it; the node agent mounts it on a loopback address.
// It has no authentication of its own: whoever can reach it can use
// every class the node hosts, so it must not be exposed beyond the
// machine (and a deployment that serves browsers should check the Host
// header against DNS rebinding). Bodies are JSON, at most MaxBodyBytes,
// decoded strictly: unknown fields, trailing data and wrong types are
// refused with a message naming the field. Binary data is base64
// (standard alphabet, padded).
//
//	POST   /v1/classes/{class}/sessions    body: none or {}
//	       201 {"session":"<id>"}, Location: /v1/sessions/<id>
//	       404 unknown_class (with "known":[...] when the node lists them)
//	       503 unavailable (the channel would not connect, e.g. closed)
//	GET    /v1/sessions/{id}/events        server-sent events, see below
//	       409 reader_busy: one reader per session at a time
//	POST   /v1/sessions/{id}/updates       body: {"data":"<base64>"}
//	       202 (queued; it arrives as an update event)
//	POST   /v1/sessions/{id}/checkpoint    body: {"seq":N,"data":"<base64>"}
//	       204; 409 checkpoint_rejected (seq ahead of the session's events)
//	POST   /v1/sessions/{id}/sync          body: none or {}
//	       200 {"seq":N}: read events up to N, then read your state
//	DELETE /v1/sessions/{id}               204 (also for a session already gone)
//
// A session's calls answer 404 unknown_session for an ID never seen and
// 410 for a session that ended, with the reason and a code saying why:
// disconnected (DELETE, or no reader of its events for the idle timeout,
// DefaultIdleTimeout unless WithIdleTimeout says otherwise), closed (the
// channel closed), compacted (the session fell behind the log's
// compaction), ended (anything else). Every error is
//
//	{"error":"<message naming the class or session>","code":"<code>"}
//
// with the codes of the Code constants; 400 bad_request and 413 too_large
// for bodies, 404 not_found and 405 method_not_allowed for the rest.
//
// The event stream (Content-Type text/event-stream) carries one event per
// channel event, the SSE type being the event's kind and the SSE ID its
// Seq:
//
//	event: initialize
//	id: 0
//	data: {"kind":"initialize","seq":0,"data":""}
//
//	event: update
//	id: 1
//	data: {"kind":"update","seq":1,"data":"aGVsbG8="}
//
//	event: request_checkpoint
//	id: 1
//	data: {"kind":"request_checkpoint","seq":1,"data":""}
//
// Comment lines (": keep-alive") come when the stream is idle. When the
// session has ended and its events are drained, a last event says why,
// and the stream closes:
//
//	event: disconnect
//	data: {"kind":"disconnect","error":"channel: disconnected","code":"disconnected"}
//
// The session is then forgotten, but for the reason its calls answer with
// 410. A reader that goes away leaves the session open for the next
// reader (the event it failed to write is sent first); events the
// network lost after they were written are gone, so a reader must check
// that Seq stays contiguous and open a new session when it does not.
//
// # Example
//
//	c, err := client.NewHTTP("http://127.0.0.1:7070", nil)
//	...
//	ch, err := c.Open(ctx, "albums")
//	...
//	defer ch.Close()
//	go client.Run(ctx, ch, myReplica)
//	err = ch.Submit(ctx, []byte("add photo 42"))
package client
