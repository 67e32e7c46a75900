package client

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSSEReader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []sseEvent
		end      error
	}{
		{"one", "event: update\nid: 1\ndata: x\n\n", []sseEvent{{"update", "1", "x"}}, io.EOF},
		{"crlf", "event: a\r\ndata: x\r\n\r\n", []sseEvent{{"a", "", "x"}}, io.EOF},
		{"cr", "event: a\rdata: x\r\r", []sseEvent{{"a", "", "x"}}, io.EOF},
		{"mixed ends", "data: x\r\ndata: y\rdata: z\n\r\n", []sseEvent{{"message", "", "x\ny\nz"}}, io.EOF},
		{"bom", "\xef\xbb\xbfdata: x\n\n", []sseEvent{{"message", "", "x"}}, io.EOF},
		{"no space", "data:x\ndata:  y\n\n", []sseEvent{{"message", "", "x\n y"}}, io.EOF},
		{"field only", "data\n\n", []sseEvent{{"message", "", ""}}, io.EOF},
		{"comments", ": hello\n\n: keep-alive\ndata: x\n\n", []sseEvent{{"message", "", "x"}}, io.EOF},
		{"no data, no event", "event: a\nid: 7\n\ndata: x\n\n", []sseEvent{{"message", "7", "x"}}, io.EOF},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\n", []sseEvent{{"message", "1", "a"}, {"message", "1", "b"}}, io.EOF},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", []sseEvent{{"message", "1", "a"}, {"message", "1", "b"}}, io.EOF},
		{"unknown fields", "retry: 10\nfoo: bar\ndata: a\n\n", []sseEvent{{"message", "", "a"}}, io.EOF},
		{"cut in an event", "data: a\n\ndata: b\n", []sseEvent{{"message", "", "a"}}, io.ErrUnexpectedEOF},
		{"cut in a line", "data: a\n\ndata: b", []sseEvent{{"message", "", "a"}}, io.ErrUnexpectedEOF},
		{"line too long", "data: " + strings.Repeat("x", 100) + "\n\n", nil, errSSELimit},
		{"event too long", strings.Repeat("data: "+strings.Repeat("x", 40)+"\n", 10) + "\n", nil, errSSELimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newSSEReader(strings.NewReader(tc.in), 64, 200)
			var got []sseEvent
			var err error
			for {
				var ev sseEvent
				if ev, err = p.Next(); err != nil {
					break
				}
				got = append(got, ev)
			}
			if !errors.Is(err, tc.end) {
				t.Errorf("ended with %v, want %v", err, tc.end)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("events %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzSSE feeds the reader any stream: it must not panic, must keep to
// its limits, and must read back what writeSSE wrote.
func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"event: update\nid: 1\ndata: {\"kind\":\"update\",\"seq\":1,\"data\":\"eA==\"}\n\n",
		"data: a\r\ndata: b\r\r\n:c\n\n",
		"\xef\xbb\xbfid: 1\x00\nevent\ndata\n\n",
		"data: " + strings.Repeat("x", 300) + "\n\n",
	} {
		f.Add([]byte(s), "update", "7", "line one\nline two")
	}
	f.Fuzz(func(t *testing.T, stream []byte, typ, id, data string) {
		const maxLine, maxData = 256, 1024
		p := newSSEReader(bytes.NewReader(stream), maxLine, maxData)
		for range len(stream) + 1 {
			ev, err := p.Next()
			if err != nil {
				break
			}
			if ev.Type == "" || len(ev.Data) > maxData || len(ev.ID) > maxLine {
				t.Fatalf("event %q breaks the reader's promises", ev)
			}
		}

		// Round trip: a one-line type and ID, any data.
		if strings.ContainsAny(typ+id, "\r\n\x00") || typ == "" {
			return
		}
		var b bytes.Buffer
		if err := writeSSE(&b, typ, id, data); err != nil {
			t.Fatal(err)
		}
		ev, err := newSSEReader(&b, 1<<20, 1<<20).Next()
		if err != nil {
			t.Fatalf("reading back %q: %v", b.String(), err)
		}
		want := strings.Join(splitLines(data), "\n")
		// writeSSE adds the one space after the colon that the reader
		// strips, so even leading spaces survive.
		if ev.Type != typ || ev.ID != id || ev.Data != want {
			t.Fatalf("wrote %q %q %q, read back %q %q %q", typ, id, data, ev.Type, ev.ID, ev.Data)
		}
	})
}

// FuzzDecodeRequests feeds every request decoder any body: none may
// panic, and what one accepts must survive re-encoding.
func FuzzDecodeRequests(f *testing.F) {
	for _, s := range []string{
		`{"data":"aGk="}`, `{"seq":3,"data":""}`, `{}`, ``, `{"data":"aGk=","x":1}`,
		`{"seq":-1}`, `[]`, `null`, `{"data":null}`, `{"DATA":"aGk="}`, `{"data":"aGk="} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// A small limit, so the fuzzer also crosses it.
		limited := func() io.Reader {
			return http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(body)), 64)
		}
		for _, r := range []func() io.Reader{func() io.Reader { return bytes.NewReader(body) }, limited} {
			if data, err := decodeUpdate(r()); err == nil {
				again, err := decodeUpdate(strings.NewReader(`{"data":"` + base64.StdEncoding.EncodeToString(data) + `"}`))
				if err != nil || !bytes.Equal(again, data) {
					t.Fatalf("update %q re-encoded reads back %q, %v", data, again, err)
				}
			} else if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			if seq, data, err := decodeCheckpoint(r()); err == nil {
				again, adata, err := decodeCheckpoint(strings.NewReader(fmt.Sprintf(`{"seq":%d,"data":%q}`, seq, base64.StdEncoding.EncodeToString(data))))
				if err != nil || again != seq || !bytes.Equal(adata, data) {
					t.Fatalf("checkpoint %d %q re-encoded reads back %d %q, %v", seq, data, again, adata, err)
				}
			}
			_ = decodeEmpty(r())
		}
	})
}
