package client_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/protocols"
)

// api is a node's HTTP API as a non-Go application sees it.
type api struct {
	t   *testing.T
	srv *httptest.Server
}

func newAPI(t *testing.T, n *testNode, opts ...client.HandlerOption) *api {
	return newAPIWith(t, n.lookup, opts...)
}

func newAPIWith(t *testing.T, lookup func(string) (protocols.Channel, error), opts ...client.HandlerOption) *api {
	srv := httptest.NewServer(client.NewHandler(lookup, slog.New(slog.DiscardHandler), opts...))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return &api{t: t, srv: srv}
}

// do sends a request and returns the status and the decoded JSON body
// (nil without one).
func (a *api) do(method, path, body string) (int, map[string]any) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if len(b) == 0 {
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Fatalf("%s %s: %d with Content-Type %q: %s", method, path, resp.StatusCode, ct, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		a.t.Fatalf("%s %s: %d with a body that is not JSON: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// expect checks a status, and for an error its code and that its
// message mentions each of mention.
func (a *api) expect(method, path, body string, status int, code string, mention ...string) map[string]any {
	a.t.Helper()
	got, out := a.do(method, path, body)
	if got != status {
		a.t.Fatalf("%s %s %s: %d %v, want %d", method, path, body, got, out, status)
	}
	if code != "" {
		if out["code"] != code {
			a.t.Fatalf("%s %s %s: code %v, want %s (%v)", method, path, body, out["code"], code, out)
		}
		msg, _ := out["error"].(string)
		for _, m := range mention {
			if !strings.Contains(msg, m) {
				a.t.Errorf("%s %s %s: error %q does not mention %q", method, path, body, msg, m)
			}
		}
	}
	return out
}

func (a *api) open(class string) string {
	a.t.Helper()
	out := a.expect("POST", "/v1/classes/"+class+"/sessions", "", http.StatusCreated, "")
	id, _ := out["session"].(string)
	if id == "" {
		a.t.Fatalf("no session in %v", out)
	}
	return id
}

// stream is an event stream read the plain way, line by line.
type stream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

type sse struct {
	typ, id string
	data    map[string]any
}

func (a *api) events(id string) *stream {
	a.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", a.srv.URL+"/v1/sessions/"+id+"/events", nil)
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		cancel()
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		a.t.Fatalf("GET events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &stream{t: a.t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads one event, skipping comments, within waitFor.
func (s *stream) next() (sse, error) {
	s.t.Helper()
	type result struct {
		ev  sse
		err error
	}
	done := make(chan result, 1)
	go func() {
		var ev sse
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				done <- result{err: err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if ev.data != nil {
					done <- result{ev: ev}
					return
				}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event: "):
				ev.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
					done <- result{err: err}
					return
				}
			default:
				done <- result{err: io.ErrUnexpectedEOF}
				return
			}
		}
	}()
	select {
	case r := <-done:
		return r.ev, r.err
	case <-time.After(waitFor):
		s.t.Fatalf("no event within %s", waitFor)
	}
	return sse{}, nil
}

func (s *stream) expect(typ, id string, seq float64, data string) {
	s.t.Helper()
	ev, err := s.next()
	if err != nil {
		s.t.Fatal(err)
	}
	want := base64.StdEncoding.EncodeToString([]byte(data))
	if ev.typ != typ || ev.id != id || ev.data["kind"] != typ || ev.data["seq"] != seq || ev.data["data"] != want {
		s.t.Fatalf("event %s id %s %v, want %s id %s seq %v data %q", ev.typ, ev.id, ev.data, typ, id, seq, want)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestHTTPEventStream(t *testing.T) {
	n := newTestNode(t, testConfig(2), "albums")
	a := newAPI(t, n)
	id := a.open("albums")
	s := a.events(id)
	s.expect("initialize", "0", 0, "")
	a.expect("GET", "/v1/sessions/"+id+"/events", "", http.StatusConflict, client.CodeReaderBusy, id)
	a.expect("HEAD", "/v1/sessions/"+id+"/events", "", http.StatusOK, "")

	a.expect("POST", "/v1/sessions/"+id+"/updates", `{"data":"`+b64("one")+`"}`, http.StatusAccepted, "")
	s.expect("update", "1", 1, "one")
	a.expect("POST", "/v1/sessions/"+id+"/updates", `{"data":"`+b64("two")+`"}`, http.StatusAccepted, "")
	s.expect("update", "2", 2, "two")
	s.expect("request_checkpoint", "2", 2, "")
	a.expect("POST", "/v1/sessions/"+id+"/checkpoint", `{"seq":2,"data":"`+b64("onetwo")+`"}`, http.StatusNoContent, "")
	a.expect("POST", "/v1/sessions/"+id+"/checkpoint", `{"seq":9,"data":""}`, http.StatusConflict, client.CodeCheckpoint, id, "albums")
	out := a.expect("POST", "/v1/sessions/"+id+"/sync", "", http.StatusOK, "")
	if out["seq"] != 2.0 {
		t.Fatalf("sync = %v, want seq 2", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := n.logs["albums"].WaitSnapshot(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// A second session starts from the checkpoint given over HTTP.
	other := a.events(a.open("albums"))
	other.expect("initialize", "2", 2, "onetwo")

	a.expect("DELETE", "/v1/sessions/"+id, "", http.StatusNoContent, "")
	ev, err := s.next()
	if err != nil || ev.typ != "disconnect" || ev.data["code"] != client.CodeDisconnected || !strings.Contains(fmt.Sprint(ev.data["error"]), "disconnected") {
		t.Fatalf("after DELETE: %v %v, want a disconnect event", ev, err)
	}
	if _, err := s.next(); err != io.EOF {
		t.Fatalf("after the disconnect event: %v, want the end of the stream", err)
	}
	// Ended and drained, the session is forgotten but for why it ended.
	a.expect("GET", "/v1/sessions/"+id+"/events", "", http.StatusGone, client.CodeDisconnected, id, "disconnected")
	a.expect("DELETE", "/v1/sessions/"+id, "", http.StatusNoContent, "")
}

func TestHTTPUnknownClass(t *testing.T) {
	n := newTestNode(t, testConfig(1000), "albums", "photos")
	a := newAPI(t, n)
	out := a.expect("POST", "/v1/classes/nope/sessions", "", http.StatusNotFound, client.CodeUnknownClass, `"nope"`, "albums, photos")
	if known, _ := out["known"].([]any); !slices.Equal(known, []any{"albums", "photos"}) {
		t.Errorf("known = %v", out["known"])
	}
	// A lookup that does not list the classes still names the one asked.
	b := newAPIWith(t, func(class string) (protocols.Channel, error) {
		return nil, io.ErrUnexpectedEOF
	})
	b.expect("POST", "/v1/classes/nope/sessions", "", http.StatusNotFound, client.CodeUnknownClass, `"nope"`, "unexpected EOF")
}

func TestHTTPBadRequests(t *testing.T) {
	n := newTestNode(t, testConfig(1000), "albums")
	a := newAPI(t, n)
	id := a.open("albums")
	up, cp := "/v1/sessions/"+id+"/updates", "/v1/sessions/"+id+"/checkpoint"
	for _, tc := range []struct {
		path, body string
		mention    string
	}{
		{up, `{"data":"aGk=","extra":1}`, `"extra"`},
		{up, `{"data":12}`, `"data"`},
		{up, `{"data":"not base64!"}`, `"data"`},
		{up, `{"data":"aGk"}`, `"data"`}, // unpadded
		{up, `{}`, `"data"`},
		{up, ``, "empty"},
		{up, `[1]`, "object"},
		{up, `{"data":"aGk="} {}`, "after the JSON object"},
		{up, `{"data":"aGk="`, "truncated"},
		{up, `{"data" "aGk="}`, "invalid JSON"},
		{cp, `{"data":""}`, `"seq"`},
		{cp, `{"seq":-1,"data":""}`, `"seq"`},
		{cp, `{"seq":1.5,"data":""}`, `"seq"`},
		{cp, `{"seq":1}`, `"data"`},
		{cp, `{"seq":1,"data":"","state":""}`, `"state"`},
		{"/v1/sessions/" + id + "/sync", `{"wait":true}`, `"wait"`},
		{"/v1/classes/albums/sessions", `{"from":3}`, `"from"`},
	} {
		a.expect("POST", tc.path, tc.body, http.StatusBadRequest, client.CodeBadRequest, tc.mention)
	}
	big := `{"data":"` + strings.Repeat("A", client.MaxBodyBytes) + `"}`
	a.expect("POST", up, big, http.StatusRequestEntityTooLarge, client.CodeTooLarge)
	// None of it reached the channel or ended the session.
	a.expect("POST", up, `{"data":""}`, http.StatusAccepted, "")
}

func TestHTTPSubmitAfterDisconnect(t *testing.T) {
	n := newTestNode(t, testConfig(1000), "albums")
	a := newAPI(t, n)
	id := a.open("albums")
	a.expect("DELETE", "/v1/sessions/"+id, "", http.StatusNoContent, "")
	for _, path := range []string{"/updates", "/checkpoint", "/sync", "/events"} {
		body := `{"data":""}`
		if path == "/checkpoint" {
			body = `{"seq":0,"data":""}`
		}
		method := "POST"
		if path == "/events" {
			method = "GET"
		}
		a.expect(method, "/v1/sessions/"+id+path, body, http.StatusGone, client.CodeDisconnected, id, "albums", "disconnected")
	}
	a.expect("POST", "/v1/sessions/nosuch/updates", `{"data":""}`, http.StatusNotFound, client.CodeUnknownSession, "nosuch")
	a.expect("DELETE", "/v1/sessions/nosuch", "", http.StatusNotFound, client.CodeUnknownSession, "nosuch")
}

func TestHTTPSessionEndedByItsChannel(t *testing.T) {
	n := newTestNode(t, testConfig(1000), "albums")
	a := newAPI(t, n)
	id := a.open("albums")
	s := a.events(id)
	s.expect("initialize", "0", 0, "")
	n.chans["albums"].Close()
	ev, err := s.next()
	if err != nil || ev.typ != "disconnect" || ev.data["code"] != client.CodeClosed {
		t.Fatalf("%v %v, want a disconnect event for a closed channel", ev, err)
	}
	a.expect("POST", "/v1/sessions/"+id+"/updates", `{"data":""}`, http.StatusGone, client.CodeClosed, id, "layer closed")
	a.expect("POST", "/v1/classes/albums/sessions", "", http.StatusServiceUnavailable, client.CodeUnavailable, "albums", "closed")
}

// recording hands out a channel's sessions and tells the test about each.
type recording struct {
	protocols.Channel
	sessions chan protocols.Session
}

func (r recording) Connect(ctx context.Context) (protocols.Session, error) {
	s, err := r.Channel.Connect(ctx)
	if err == nil {
		r.sessions <- s
	}
	return s, err
}

func TestHTTPAbandonedSessionIsDisconnected(t *testing.T) {
	n := newTestNode(t, testConfig(1000), "albums")
	rec := recording{n.chans["albums"], make(chan protocols.Session, 1)}
	a := newAPIWith(t, func(string) (protocols.Channel, error) { return rec, nil }, client.WithIdleTimeout(20*time.Millisecond))
	id := a.open("albums")
	s := <-rec.sessions
	deadline := time.After(waitFor)
	for open := true; open; {
		select {
		case _, open = <-s.Events():
		case <-deadline:
			t.Fatal("a session with no reader was not disconnected")
		}
	}
	a.expect("POST", "/v1/sessions/"+id+"/updates", `{"data":""}`, http.StatusGone, client.CodeDisconnected, "abandoned")
}

func TestHTTPNotFoundAndMethods(t *testing.T) {
	n := newTestNode(t, testConfig(1000), "albums")
	a := newAPI(t, n)
	a.expect("GET", "/v1/nothing", "", http.StatusNotFound, client.CodeNotFound, "/v1/nothing")
	a.expect("GET", "/v1/classes/albums/sessions", "", http.StatusMethodNotAllowed, client.CodeMethod, "POST")
	a.expect("PUT", "/v1/sessions/x", "", http.StatusMethodNotAllowed, client.CodeMethod, "DELETE")
}

func TestHTTPBrokenStreamEndsTheChannel(t *testing.T) {
	n := newTestNode(t, testConfig(1000), "albums")
	a := newAPI(t, n)
	c, err := client.NewHTTP(a.srv.URL+"/", a.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ch := open(t, c, "albums")
	expectInit(t, ch, 0, "")
	// Events in flight would be lost with the connection, so the
	// Channel ends, and ends its session on the node too.
	a.srv.CloseClientConnections()
	waitClosed(t, ch)
	if err := ch.Err(); err == nil || !strings.Contains(err.Error(), "event stream broken") || !strings.Contains(err.Error(), ch.ID()) {
		t.Fatalf("Err = %v, want the broken stream, naming the session", err)
	}
	a.expect("POST", "/v1/sessions/"+ch.ID()+"/updates", `{"data":""}`, http.StatusGone, client.CodeDisconnected, ch.ID())
	if err := ch.Submit(context.Background(), nil); err == nil {
		t.Fatal("Submit on a broken channel succeeded")
	}
}

func TestNewHTTPRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:7070", "ftp://x", "http://", "http://x/?q=1", "http://x/#f", "http://x%zz"} {
		if _, err := client.NewHTTP(u, nil); err == nil {
			t.Errorf("NewHTTP(%q) succeeded", u)
		}
	}
	if _, err := new(client.Client).Open(context.Background(), "albums"); err == nil {
		t.Error("Open on a zero Client succeeded")
	}
}
