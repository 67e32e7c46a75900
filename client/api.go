package client

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rime-dev/rime/protocols"
)

// MaxBodyBytes bounds a request body. An update or a checkpoint is at
// most 12 MiB once base64 is undone.
const MaxBodyBytes = 16 << 20

const (
	// DefaultIdleTimeout is how long a session may go without a reader of
	// its events before the handler disconnects it. An application that
	// dies without DELETE would otherwise hold its session forever, and
	// the channel may keep asking that dead session for checkpoints.
	DefaultIdleTimeout = time.Minute
	// keepAlive is how often an idle event stream carries a comment, so
	// that proxies keep it open and a vanished reader is noticed.
	keepAlive = 15 * time.Second
	// maxGone is how many ended sessions the handler remembers, to answer
	// 410 with the reason rather than 404.
	maxGone = 4096
)

// HandlerOption tunes NewHandler.
type HandlerOption func(*handler)

// WithIdleTimeout sets how long a session may have no event reader
// before it is disconnected (DefaultIdleTimeout without this option).
func WithIdleTimeout(d time.Duration) HandlerOption {
	return func(h *handler) {
		if d > 0 {
			h.idle = d
		}
	}
}

// NewHandler serves the HTTP/JSON API of doc.go over the channels lookup
// finds, for applications that are not written in Go. lookup's errors
// are answered as 404 unknown_class; an *UnknownClassError lets the
// answer list the classes that exist. logger may be nil.
func NewHandler(lookup func(class string) (protocols.Channel, error), logger *slog.Logger, opts ...HandlerOption) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		lookup:   lookup,
		lg:       logger,
		idle:     DefaultIdleTimeout,
		mux:      http.NewServeMux(),
		sessions: map[string]*serverSession{},
		gone:     map[string]goneSession{},
	}
	for _, o := range opts {
		o(h)
	}
	h.mux.HandleFunc("POST /v1/classes/{class}/sessions", h.open)
	h.mux.HandleFunc("GET /v1/sessions/{id}/events", h.events)
	h.mux.HandleFunc("POST /v1/sessions/{id}/updates", h.submit)
	h.mux.HandleFunc("POST /v1/sessions/{id}/checkpoint", h.checkpoint)
	h.mux.HandleFunc("POST /v1/sessions/{id}/sync", h.sync)
	h.mux.HandleFunc("DELETE /v1/sessions/{id}", h.disconnect)
	return h
}

type handler struct {
	lookup func(class string) (protocols.Channel, error)
	lg     *slog.Logger
	idle   time.Duration
	mux    *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*serverSession
	gone     map[string]goneSession
	goneFIFO []string // ids in gone, oldest first
}

// serverSession is one session opened over HTTP. Its fields after s are
// guarded by handler.mu.
type serverSession struct {
	id, class string
	s         protocols.Session

	// reading: a request streams the events; one at a time, since two
	// readers would each see half of the stream.
	reading bool
	// pending is an event taken from s.Events whose write failed; the
	// next reader gets it first, so a reader that reconnects misses
	// nothing the handler knows it did not send.
	pending *protocols.Event
	// idle disconnects the session when it has no reader for too long;
	// idleGen tells a timer that fired late that it is stale.
	idle    *time.Timer
	idleGen uint64
}

// goneSession is what is remembered of an ended session.
type goneSession struct {
	class string
	err   error
}

// ServeHTTP answers every request in JSON, including the mux's own 404
// and 405, which it would otherwise answer in plain text.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fallback, pattern := h.mux.Handler(r)
	if pattern != "" {
		h.mux.ServeHTTP(w, r)
		return
	}
	rec := &statusRecorder{header: http.Header{}}
	fallback.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		writeError(w, http.StatusMethodNotAllowed, CodeMethod, fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
		return
	}
	writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("%s %s: no such endpoint", r.Method, r.URL.Path))
}

// statusRecorder keeps the status and headers of the mux's fallback
// answer and drops its text body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }

// open connects a new session to the class's channel.
func (h *handler) open(w http.ResponseWriter, r *http.Request) {
	class := r.PathValue("class")
	if err := decodeEmpty(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		writeDecodeError(w, err)
		return
	}
	ch, err := h.lookup(class)
	if err == nil && ch == nil {
		err = &UnknownClassError{Class: class}
	}
	if err != nil {
		var uce *UnknownClassError
		if errors.As(err, &uce) {
			writeErrorBody(w, http.StatusNotFound, errorBody{Error: uce.Error(), Code: CodeUnknownClass, Known: uce.Known})
			return
		}
		writeError(w, http.StatusNotFound, CodeUnknownClass, fmt.Sprintf("unknown class %q: %v", class, err))
		return
	}
	s, err := ch.Connect(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, fmt.Sprintf("class %q: connect: %v", class, err))
		return
	}
	ss := &serverSession{id: rand.Text(), class: class, s: s}
	h.mu.Lock()
	h.sessions[ss.id] = ss
	h.armIdleLocked(ss)
	h.mu.Unlock()
	h.lg.Info("session opened", "class", class, "session", ss.id)
	w.Header().Set("Location", "/v1/sessions/"+ss.id)
	writeJSON(w, http.StatusCreated, map[string]string{"session": ss.id})
}

// armIdleLocked starts the session's idle timer: it has no reader now.
func (h *handler) armIdleLocked(ss *serverSession) {
	ss.idleGen++
	gen := ss.idleGen
	ss.idle = time.AfterFunc(h.idle, func() { h.abandon(ss, gen) })
}

// disarmIdleLocked stops the idle timer: a reader attached.
func (h *handler) disarmIdleLocked(ss *serverSession) {
	ss.idleGen++
	if ss.idle != nil {
		ss.idle.Stop()
		ss.idle = nil
	}
}

// abandon disconnects a session nobody has read for the idle timeout.
func (h *handler) abandon(ss *serverSession, gen uint64) {
	h.mu.Lock()
	if ss.idleGen != gen || ss.reading || h.sessions[ss.id] != ss {
		h.mu.Unlock()
		return
	}
	err := fmt.Errorf("abandoned after %s without a reader of its events: %w", h.idle, protocols.ErrDisconnected)
	h.forgetLocked(ss, err)
	h.mu.Unlock()
	ss.s.Disconnect()
	h.lg.Info("session abandoned", "class", ss.class, "session", ss.id, "idle", h.idle)
}

// forgetLocked drops an ended session, remembering why it ended.
func (h *handler) forgetLocked(ss *serverSession, err error) {
	if h.sessions[ss.id] != ss {
		return
	}
	h.disarmIdleLocked(ss)
	delete(h.sessions, ss.id)
	if len(h.goneFIFO) >= maxGone {
		delete(h.gone, h.goneFIFO[0])
		h.goneFIFO = h.goneFIFO[1:]
	}
	h.gone[ss.id] = goneSession{class: ss.class, err: err}
	h.goneFIFO = append(h.goneFIFO, ss.id)
}

// session finds the request's session, or answers 404 or 410.
func (h *handler) session(w http.ResponseWriter, r *http.Request) (*serverSession, bool) {
	id := r.PathValue("id")
	h.mu.Lock()
	ss, ok := h.sessions[id]
	g, gone := h.gone[id]
	h.mu.Unlock()
	switch {
	case ok:
		return ss, true
	case gone:
		writeGone(w, id, g.class, g.err)
	default:
		writeError(w, http.StatusNotFound, CodeUnknownSession, fmt.Sprintf("session %q: no such session", id))
	}
	return nil, false
}

// events streams the session's events as server-sent events until the
// session ends and its events are drained, then sends a disconnect event
// and forgets the session.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	ss, ok := h.session(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodHead {
		// The GET pattern also takes HEAD; a HEAD must not take the
		// reader's place for a stream it will never read.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	h.mu.Lock()
	if ss.reading {
		h.mu.Unlock()
		writeError(w, http.StatusConflict, CodeReaderBusy, fmt.Sprintf("session %s of class %q: another request is reading its events", ss.id, ss.class))
		return
	}
	ss.reading = true
	h.disarmIdleLocked(ss)
	pending := ss.pending
	ss.pending = nil
	h.mu.Unlock()

	finished := false
	defer func() {
		if finished {
			return
		}
		// The reader went away with the session still on: keep what it
		// did not get for the next one, and start counting idleness.
		h.mu.Lock()
		ss.reading = false
		ss.pending = pending
		if h.sessions[ss.id] == ss {
			h.armIdleLocked(ss)
		}
		h.mu.Unlock()
	}()

	rc := http.NewResponseController(w)
	// The stream lasts as long as the session: a write timeout the
	// server sets for ordinary requests must not cut it.
	_ = rc.SetWriteDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // ask reverse proxies not to buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, ": session "+ss.id+"\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	events := ss.s.Events()
	for {
		if pending == nil {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return
				}
				continue
			case ev, ok := <-events:
				if !ok {
					finished = true
					h.finish(w, rc, ss)
					return
				}
				pending = &ev
			}
		}
		if err := writeEvent(w, *pending); err != nil {
			h.lg.Debug("event stream write failed", "class", ss.class, "session", ss.id, "err", err)
			return
		}
		pending = nil
		// Flush once the session has nothing more queued, so a burst
		// goes out in few packets.
		if len(events) == 0 {
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// finish ends a drained stream: the disconnect event, then forget.
func (h *handler) finish(w http.ResponseWriter, rc *http.ResponseController, ss *serverSession) {
	err := ss.s.Err()
	if err == nil {
		// A channel closes Events only once the session ended; say so
		// rather than send an empty reason.
		err = protocols.ErrDisconnected
	}
	h.mu.Lock()
	ss.reading = false
	h.forgetLocked(ss, err)
	h.mu.Unlock()
	b, _ := json.Marshal(disconnectJSON{Kind: "disconnect", Error: err.Error(), Code: endCode(err)})
	if werr := writeSSE(w, "disconnect", "", string(b)); werr == nil {
		_ = rc.Flush()
	}
	h.lg.Info("session ended", "class", ss.class, "session", ss.id, "err", err)
}

// eventJSON is the data of an initialize, update or request_checkpoint
// event. Data is base64 (standard alphabet, padded), "" when empty.
type eventJSON struct {
	Kind string `json:"kind"`
	Seq  uint64 `json:"seq"`
	Data string `json:"data"`
}

// disconnectJSON is the data of the final disconnect event.
type disconnectJSON struct {
	Kind  string `json:"kind"`
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeEvent(w io.Writer, ev protocols.Event) error {
	kind := ev.Kind.String()
	b, err := json.Marshal(eventJSON{Kind: kind, Seq: ev.Seq, Data: base64.StdEncoding.EncodeToString(ev.Data)})
	if err != nil {
		return err
	}
	return writeSSE(w, kind, strconv.FormatUint(ev.Seq, 10), string(b))
}

// submit hands an update to the session.
func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	ss, ok := h.session(w, r)
	if !ok {
		return
	}
	data, err := decodeUpdate(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeDecodeError(w, err)
		return
	}
	if err := ss.s.Submit(r.Context(), data); err != nil {
		h.writeSessionError(w, r, ss, "submit", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// checkpoint answers a request_checkpoint event.
func (h *handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	ss, ok := h.session(w, r)
	if !ok {
		return
	}
	seq, state, err := decodeCheckpoint(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeDecodeError(w, err)
		return
	}
	if err := ss.s.Checkpoint(seq, state); err != nil {
		if ss.s.Err() == nil {
			writeError(w, http.StatusConflict, CodeCheckpoint, fmt.Sprintf("session %s of class %q: checkpoint at %d: %v", ss.id, ss.class, seq, err))
			return
		}
		h.writeSessionError(w, r, ss, "checkpoint", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sync is the linearizable read barrier.
func (h *handler) sync(w http.ResponseWriter, r *http.Request) {
	ss, ok := h.session(w, r)
	if !ok {
		return
	}
	if err := decodeEmpty(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		writeDecodeError(w, err)
		return
	}
	seq, err := ss.s.Sync(r.Context())
	if err != nil {
		h.writeSessionError(w, r, ss, "sync", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"seq": seq})
}

// disconnect ends the session. A reader of its events gets what was
// queued and the disconnect event; with no reader it is forgotten now.
func (h *handler) disconnect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.mu.Lock()
	ss, ok := h.sessions[id]
	_, gone := h.gone[id]
	if ok && !ss.reading {
		h.forgetLocked(ss, protocols.ErrDisconnected)
	}
	h.mu.Unlock()
	switch {
	case ok:
		ss.s.Disconnect()
		h.lg.Info("session disconnected", "class", ss.class, "session", ss.id)
	case !gone:
		writeError(w, http.StatusNotFound, CodeUnknownSession, fmt.Sprintf("session %q: no such session", id))
		return
	}
	// Disconnecting twice is not an error, as in the Go interface.
	w.WriteHeader(http.StatusNoContent)
}

// writeSessionError answers a failed call on a session: 410 if it ended,
// else the request's own failure.
func (h *handler) writeSessionError(w http.ResponseWriter, r *http.Request, ss *serverSession, op string, err error) {
	if end := ss.s.Err(); end != nil {
		writeGone(w, ss.id, ss.class, end)
		return
	}
	if r.Context().Err() != nil {
		writeError(w, http.StatusServiceUnavailable, CodeCanceled, fmt.Sprintf("session %s of class %q: %s: %v", ss.id, ss.class, op, err))
		return
	}
	writeError(w, http.StatusServiceUnavailable, CodeUnavailable, fmt.Sprintf("session %s of class %q: %s: %v", ss.id, ss.class, op, err))
}

func writeGone(w http.ResponseWriter, id, class string, err error) {
	writeError(w, http.StatusGone, endCode(err), fmt.Sprintf("session %s of class %q ended: %v", id, class, err))
}

// errorBody is every error's JSON.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Known lists the node's classes with an unknown_class error, when
	// the node says.
	Known []string `json:"known,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeErrorBody(w, status, errorBody{Error: msg, Code: code})
}

func writeErrorBody(w http.ResponseWriter, status int, body errorBody) {
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the handler's own types reach here; they always marshal.
		status, b = http.StatusInternalServerError, []byte(`{"error":"response not encodable","code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeDecodeError(w http.ResponseWriter, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body over %d bytes", tooLarge.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
}

// Request bodies. Pointers tell a missing field from a zero one.
type updateRequest struct {
	Data *string `json:"data"`
}

type checkpointRequest struct {
	Seq  *uint64 `json:"seq"`
	Data *string `json:"data"`
}

type emptyRequest struct{}

// decodeUpdate reads {"data":"<base64>"}.
func decodeUpdate(r io.Reader) ([]byte, error) {
	var req updateRequest
	if err := decodeStrict(r, &req, false); err != nil {
		return nil, err
	}
	if req.Data == nil {
		return nil, errors.New(`request body: field "data" is required`)
	}
	return decodeBase64("data", *req.Data)
}

// decodeCheckpoint reads {"seq":N,"data":"<base64>"}.
func decodeCheckpoint(r io.Reader) (uint64, []byte, error) {
	var req checkpointRequest
	if err := decodeStrict(r, &req, false); err != nil {
		return 0, nil, err
	}
	if req.Seq == nil {
		return 0, nil, errors.New(`request body: field "seq" is required`)
	}
	if req.Data == nil {
		return 0, nil, errors.New(`request body: field "data" is required`)
	}
	data, err := decodeBase64("data", *req.Data)
	return *req.Seq, data, err
}

// decodeEmpty reads a body that carries nothing (yet): empty, or {}.
func decodeEmpty(r io.Reader) error {
	return decodeStrict(r, &emptyRequest{}, true)
}

func decodeBase64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("request body: field %q: not base64 (standard alphabet, padded): %w", field, err)
	}
	return b, nil
}

// decodeStrict decodes one JSON object into dst, refusing unknown
// fields and anything after the object, with errors that name the field.
// The body is read only up to the end of the object and one more value,
// so a MaxBytesReader's error surfaces as itself.
func decodeStrict(r io.Reader, dst any, allowEmpty bool) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if err == io.EOF {
			if allowEmpty {
				return nil
			}
			return errors.New("request body is empty; want a JSON object")
		}
		return jsonError(err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
		return nil
	case err != nil:
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
	}
	return errors.New("request body: data after the JSON object")
}

// jsonError rewords encoding/json's errors for an API caller.
func jsonError(err error) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.As(err, &syntax):
		return fmt.Errorf("request body: invalid JSON at byte %d: %w", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Errorf("request body: want a JSON object, have a JSON %s", typ.Value)
		}
		return fmt.Errorf("request body: field %q: want a JSON %s, have %s", typ.Field, jsonKind(typ.Type.String()), typ.Value)
	case err == io.ErrUnexpectedEOF:
		return errors.New("request body: truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error; its text is stable
		// and names the field.
		return fmt.Errorf("request body: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return fmt.Errorf("request body: %w", err)
}

// jsonKind names a Go field type as the JSON the caller should send.
func jsonKind(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "string":
		return "string"
	case "uint64":
		return "non-negative integer"
	}
	return goType
}

var _ http.Handler = (*handler)(nil)
