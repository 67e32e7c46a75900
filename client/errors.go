package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rime-dev/rime/protocols"
)

// ErrUnknownClass: the node has no channel for the class asked for.
var ErrUnknownClass = errors.New("unknown class")

// UnknownClassError is what a lookup may return for a class the node
// does not host, so that the error can list the classes it does.
type UnknownClassError struct {
	Class string
	// Known are the classes the node hosts, if the lookup knows them.
	Known []string
}

func (e *UnknownClassError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown class %q", e.Class)
	}
	return fmt.Sprintf("unknown class %q (known: %s)", e.Class, strings.Join(e.Known, ", "))
}

// Is makes errors.Is(err, ErrUnknownClass) hold.
func (e *UnknownClassError) Is(target error) bool { return target == ErrUnknownClass }

// Error codes of the HTTP API: the "code" of an error body, and of a
// disconnect event. They are stable; messages are not.
const (
	CodeBadRequest     = "bad_request"         // 400: the body or a parameter is malformed
	CodeTooLarge       = "too_large"           // 413: the body is over the limit
	CodeNotFound       = "not_found"           // 404: no such endpoint
	CodeMethod         = "method_not_allowed"  // 405: the endpoint exists for other methods
	CodeUnknownClass   = "unknown_class"       // 404: the node has no channel for the class
	CodeUnknownSession = "unknown_session"     // 404: no such session (or forgotten long ago)
	CodeReaderBusy     = "reader_busy"         // 409: another request reads the session's events
	CodeCheckpoint     = "checkpoint_rejected" // 409: the channel refused the checkpoint
	CodeUnavailable    = "unavailable"         // 503: the channel cannot serve now
	CodeDisconnected   = "disconnected"        // 410: the session was disconnected
	CodeClosed         = "closed"              // 410: the channel was closed
	CodeCompacted      = "compacted"           // 410: the session fell behind the log's compaction
	CodeEnded          = "ended"               // 410: the session ended for another reason
	CodeCanceled       = "canceled"            // 503: the request was canceled by its client
)

// endCode classifies why a session ended. The checks go from the most
// specific cause: a channel wraps ErrDisconnected around the cause of an
// update it could not accept.
func endCode(err error) string {
	switch {
	case errors.Is(err, protocols.ErrCompacted):
		return CodeCompacted
	case errors.Is(err, protocols.ErrClosed):
		return CodeClosed
	case errors.Is(err, protocols.ErrDisconnected):
		return CodeDisconnected
	}
	return CodeEnded
}

// APIError is an error answered by a node's HTTP API. It unwraps to the
// sentinel its code stands for (ErrUnknownClass, protocols.ErrDisconnected,
// protocols.ErrClosed, protocols.ErrCompacted), so callers test HTTP and
// local errors the same way.
type APIError struct {
	// Status is the HTTP status (0 for a disconnect event).
	Status int
	// Code is one of the Code constants.
	Code string
	// Message is the server's explanation.
	Message string
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s (%s)", e.Message, e.Code)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// Unwrap returns the sentinel of e's code, if it has one.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case CodeUnknownClass:
		return ErrUnknownClass
	case CodeDisconnected:
		return protocols.ErrDisconnected
	case CodeClosed:
		return protocols.ErrClosed
	case CodeCompacted:
		return protocols.ErrCompacted
	}
	return nil
}
