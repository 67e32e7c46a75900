package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rime-dev/rime/protocols"
)

const (
	// maxSSELine bounds one line of the event stream: an event's JSON
	// with its base64 data, which for an initialize event is a whole
	// checkpoint. Larger lines end the stream.
	maxSSELine = 256 << 20
	// httpEventBuffer is how many events the HTTP mode queues ahead of
	// the application; beyond it the stream, then the node's session,
	// wait for the application, as a local session's buffer makes them.
	httpEventBuffer = 128
	// cleanupTimeout bounds the requests a Channel makes on its own
	// (DELETE on Close, Checkpoint, which has no ctx): a node that does
	// not answer must not hang the application.
	cleanupTimeout = 10 * time.Second
	// maxErrorBody bounds how much of an error response is read.
	maxErrorBody = 64 << 10
)

// Client opens channels on one rime node, in process or over the node's
// HTTP API; the Channels it returns behave the same either way.
type Client struct {
	lookup func(class string) (protocols.Channel, error) // in process
	base   string                                        // over HTTP: the URL without a trailing slash
	hc     *http.Client
}

// NewLocal returns a Client for an application in the node's own
// process: lookup finds a class's channel (say node.Node.Channel).
func NewLocal(lookup func(class string) (protocols.Channel, error)) *Client {
	return &Client{lookup: lookup}
}

// NewHTTP returns a Client for the node whose API NewHandler serves at
// baseURL ("http://127.0.0.1:7070"). httpClient may be nil; its Timeout
// must be zero, since it would bound a whole event stream (calls take a
// ctx instead).
func NewHTTP(baseURL string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http://host[:port] or https://host[:port]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q: a query or fragment has no place here", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), hc: httpClient}, nil
}

// Open connects to class's channel. The Channel's first event is
// Initialize with the checkpoint to start from, then updates in order
// (see protocols.Session). ctx bounds the opening only.
func (c *Client) Open(ctx context.Context, class string) (*Channel, error) {
	if c.lookup != nil {
		ch, err := c.lookup(class)
		if err == nil && ch == nil {
			err = &UnknownClassError{Class: class}
		}
		if err != nil {
			if errors.Is(err, ErrUnknownClass) {
				return nil, fmt.Errorf("client: %w", err)
			}
			return nil, fmt.Errorf("client: %w %q: %w", ErrUnknownClass, class, err)
		}
		s, err := ch.Connect(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: class %s: connect: %w", class, err)
		}
		return &Channel{class: class, s: s}, nil
	}
	if c.hc == nil {
		return nil, fmt.Errorf("client: class %s: a Client comes from NewLocal or NewHTTP", class)
	}
	s, err := c.openHTTP(ctx, class)
	if err != nil {
		return nil, fmt.Errorf("client: class %s: open: %w", class, err)
	}
	return &Channel{class: class, id: s.id, s: s}, nil
}

// Channel is an application's session on a class's channel: a
// protocols.Session with errors that name the class.
type Channel struct {
	class string
	id    string
	s     protocols.Session
	// closed: the application closed the channel (Run then ends without
	// an error).
	closed atomic.Bool
}

// Class is the channel's data class.
func (ch *Channel) Class() string { return ch.class }

// ID is the session's ID on the node's HTTP API ("" in process).
func (ch *Channel) ID() string { return ch.id }

// Events delivers Initialize, then updates with contiguous Seq, with
// RequestCheckpoint events in between; it is closed when the session
// ends, after which Err says why.
func (ch *Channel) Events() <-chan protocols.Event { return ch.s.Events() }

// Submit asks for update to be appended; it arrives, like everyone
// else's, as an Update event. An update that cannot be accepted ends the
// session rather than vanish; Submit fails if the session has ended.
// Over HTTP, a call whose outcome is unknown (the node did not answer)
// ends the session too, for the same reason.
func (ch *Channel) Submit(ctx context.Context, update []byte) error {
	if err := ch.s.Submit(ctx, update); err != nil {
		return fmt.Errorf("client: class %s: submit: %w", ch.class, err)
	}
	return nil
}

// Checkpoint answers a RequestCheckpoint event: state is the
// application's state after update seq.
func (ch *Channel) Checkpoint(seq uint64, state []byte) error {
	if err := ch.s.Checkpoint(seq, state); err != nil {
		return fmt.Errorf("client: class %s: checkpoint at %d: %w", ch.class, seq, err)
	}
	return nil
}

// Sync returns a Seq s such that every update delivered to any session
// anywhere before the call has Seq <= s, once every update up to s is in
// Events: reading Events up to s is then a linearizable read. An update
// this session submitted is covered once its Update has arrived.
func (ch *Channel) Sync(ctx context.Context) (uint64, error) {
	seq, err := ch.s.Sync(ctx)
	if err != nil {
		return 0, fmt.Errorf("client: class %s: sync: %w", ch.class, err)
	}
	return seq, nil
}

// Close disconnects the session; Err is then protocols.ErrDisconnected.
// Closing twice is harmless.
func (ch *Channel) Close() {
	ch.closed.Store(true)
	ch.s.Disconnect()
}

// Disconnect is Close, under protocols.Session's name.
func (ch *Channel) Disconnect() { ch.Close() }

// Err is why the session ended (nil while it is connected).
func (ch *Channel) Err() error { return ch.s.Err() }

// httpSession is a session on a node's HTTP API.
type httpSession struct {
	c         *Client
	class, id string
	events    chan protocols.Event
	// stream is the event stream's lifetime; cancel ends it.
	stream context.Context
	cancel context.CancelFunc
	done   chan struct{} // the stream reader has returned

	mu       sync.Mutex
	err      error
	received uint64        // Seq of the last Initialize or Update queued
	moved    chan struct{} // closed and replaced when received grows
	ended    chan struct{} // closed when err is set
}

// openHTTP creates a session and attaches to its event stream.
func (c *Client) openHTTP(ctx context.Context, class string) (*httpSession, error) {
	var created struct {
		Session string `json:"session"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/classes/"+url.PathEscape(class)+"/sessions", nil, http.StatusCreated, &created); err != nil {
		return nil, err
	}
	if created.Session == "" {
		return nil, errors.New("the node answered no session ID")
	}
	stream, cancel := context.WithCancel(context.Background())
	s := &httpSession{
		c: c, class: class, id: created.Session,
		events: make(chan protocols.Event, httpEventBuffer),
		stream: stream, cancel: cancel,
		done:  make(chan struct{}),
		moved: make(chan struct{}),
		ended: make(chan struct{}),
	}
	body, err := s.attach(ctx)
	if err != nil {
		cancel()
		s.delete()
		return nil, fmt.Errorf("session %s: events: %w", s.id, err)
	}
	go s.read(body)
	return s, nil
}

// attach opens the event stream. ctx bounds getting its headers; the
// stream itself lives until the session ends.
func (s *httpSession) attach(ctx context.Context) (io.ReadCloser, error) {
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	req, err := http.NewRequestWithContext(s.stream, http.MethodGet, s.c.base+s.path("/events"), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := s.c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if !stop() {
		resp.Body.Close()
		return nil, ctx.Err()
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("the node answered %q, not an event stream", resp.Header.Get("Content-Type"))
	}
	return resp.Body, nil
}

// path is the path of the session's endpoint suffix.
func (s *httpSession) path(suffix string) string {
	return "/v1/sessions/" + url.PathEscape(s.id) + suffix
}

// read turns the event stream into events until it ends.
func (s *httpSession) read(body io.ReadCloser) {
	defer close(s.done)
	defer close(s.events)
	defer body.Close()
	p := newSSEReader(body, maxSSELine, maxSSELine)
	for {
		sev, err := p.Next()
		if err != nil {
			if s.stream.Err() == nil {
				// The node or the network cut the stream: events may have
				// been lost in flight, so the session cannot go on
				// contiguously. End it here and on the node.
				s.fail(fmt.Errorf("client: class %s: session %s: event stream broken: %w", s.class, s.id, err))
			}
			return
		}
		switch sev.Type {
		case "initialize", "update", "request_checkpoint":
			ev, err := parseEvent(sev)
			if err != nil {
				s.fail(fmt.Errorf("client: class %s: session %s: %w", s.class, s.id, err))
				return
			}
			select {
			case s.events <- ev:
			case <-s.stream.Done():
				return
			}
			if ev.Kind != protocols.RequestCheckpoint {
				s.mu.Lock()
				s.received = ev.Seq
				close(s.moved)
				s.moved = make(chan struct{})
				s.mu.Unlock()
			}
		case "disconnect":
			var d disconnectJSON
			if err := json.Unmarshal([]byte(sev.Data), &d); err != nil {
				d = disconnectJSON{Error: "the node ended the session with an unreadable reason: " + sev.Data}
			}
			s.end(&APIError{Code: d.Code, Message: d.Error})
			return
		}
		// Other event types are the node's later additions: ignored.
	}
}

// parseEvent decodes one channel event.
func parseEvent(sev sseEvent) (protocols.Event, error) {
	var j eventJSON
	if err := json.Unmarshal([]byte(sev.Data), &j); err != nil {
		return protocols.Event{}, fmt.Errorf("%s event: %w", sev.Type, err)
	}
	if j.Kind != sev.Type {
		return protocols.Event{}, fmt.Errorf("%s event: its data says kind %q", sev.Type, j.Kind)
	}
	var kind protocols.EventKind
	switch j.Kind {
	case "initialize":
		kind = protocols.Initialize
	case "update":
		kind = protocols.Update
	case "request_checkpoint":
		kind = protocols.RequestCheckpoint
	}
	data, err := base64.StdEncoding.DecodeString(j.Data)
	if err != nil {
		return protocols.Event{}, fmt.Errorf("%s event %d: data: %w", j.Kind, j.Seq, err)
	}
	if len(data) == 0 {
		data = nil
	}
	return protocols.Event{Kind: kind, Seq: j.Seq, Data: data}, nil
}

// end records why the session ended; the first cause wins. It reports
// whether this call set it.
func (s *httpSession) end(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.err = err
	close(s.ended)
	return true
}

// fail ends the session for a failure on this side and tells the node.
func (s *httpSession) fail(err error) {
	if s.end(err) {
		s.delete()
	}
}

// delete asks the node to end the session, best effort.
func (s *httpSession) delete() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_ = s.c.call(ctx, http.MethodDelete, s.path(""), nil, http.StatusNoContent, nil)
}

func (s *httpSession) Events() <-chan protocols.Event { return s.events }

func (s *httpSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Disconnect ends the session on the node, then the stream.
func (s *httpSession) Disconnect() {
	if s.end(protocols.ErrDisconnected) {
		s.delete()
	}
	s.cancel()
	<-s.done
}

func (s *httpSession) Submit(ctx context.Context, update []byte) error {
	if err := s.Err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // not sent: the caller knows it was not submitted
	}
	body := map[string]string{"data": base64.StdEncoding.EncodeToString(update)}
	err := s.c.call(ctx, http.MethodPost, s.path("/updates"), body, http.StatusAccepted, nil)
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusGone {
		// The node refused the request: nothing was queued.
		return err
	}
	if errors.As(err, &ae) && ae.Status == http.StatusGone {
		s.end(err)
		return err
	}
	// The update may or may not be queued: end the session rather than
	// leave the application unsure whether its update will arrive.
	err = fmt.Errorf("session %s: update's fate unknown: %w: %w", s.id, protocols.ErrDisconnected, err)
	s.fail(err)
	return err
}

func (s *httpSession) Checkpoint(seq uint64, state []byte) error {
	if err := s.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.stream, cleanupTimeout)
	defer cancel()
	body := struct {
		Seq  uint64 `json:"seq"`
		Data string `json:"data"`
	}{seq, base64.StdEncoding.EncodeToString(state)}
	err := s.c.call(ctx, http.MethodPost, s.path("/checkpoint"), body, http.StatusNoContent, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusGone {
		s.end(err)
	}
	return err
}

// Sync asks the node for the barrier, then waits until the stream has
// brought every update up to it into Events, so that Sync means the same
// as in process.
func (s *httpSession) Sync(ctx context.Context) (uint64, error) {
	if err := s.Err(); err != nil {
		return 0, err
	}
	var res struct {
		Seq uint64 `json:"seq"`
	}
	err := s.c.call(ctx, http.MethodPost, s.path("/sync"), nil, http.StatusOK, &res)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusGone {
			s.end(err)
		}
		return 0, err
	}
	for {
		s.mu.Lock()
		got, moved, err := s.received, s.moved, s.err
		s.mu.Unlock()
		if got >= res.Seq {
			return res.Seq, nil
		}
		if err != nil {
			return 0, err
		}
		select {
		case <-moved:
		case <-s.ended:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// call makes one JSON request and decodes the answer into out, or
// returns an *APIError for any status but want.
func (c *Client) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return readAPIError(resp)
	}
	if out == nil {
		// Drain, so that the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: answer: %w", method, path, err)
	}
	return nil
}

// readAPIError turns an error response into an *APIError.
func readAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e errorBody
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		msg := strings.TrimSpace(string(b))
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return &APIError{Status: resp.StatusCode, Message: msg}
	}
	return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
}

var (
	_ protocols.Session = (*Channel)(nil)
	_ protocols.Session = (*httpSession)(nil)
)
