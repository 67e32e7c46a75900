package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Server-sent events (the WHATWG HTML "event stream" format) are written
// and read here by hand: the format is a few lines of text, and the
// standard library has no reader for it. The reader follows the spec's
// parsing rules (CR, LF and CRLF line ends, comments, the leading space
// of a value, the data buffer, the last event ID), with limits, since the
// stream comes from the network.

// errSSELimit is returned when a line or an event exceeds its limit; the
// stream is then unusable, since the reader cannot resynchronise inside
// a line.
var errSSELimit = errors.New("sse: limit exceeded")

// sseEvent is one dispatched event.
type sseEvent struct {
	// Type is the event's type ("message" when the stream names none).
	Type string
	// ID is the stream's last event ID when the event was dispatched.
	ID string
	// Data is the event's data lines joined by "\n".
	Data string
}

// sseReader parses an event stream.
type sseReader struct {
	r *bufio.Reader
	// maxLine bounds one line, maxData one event's data.
	maxLine, maxData int

	started bool   // the leading byte-order mark was checked
	skipLF  bool   // the last line ended in CR: a following LF is part of it
	line    []byte // the current line, reused
	lastID  string
}

// newSSEReader reads events from r with the given limits.
func newSSEReader(r io.Reader, maxLine, maxData int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), maxLine: maxLine, maxData: maxData}
}

// Next returns the next event. At the end of the stream it returns
// io.EOF if the stream ended between events and io.ErrUnexpectedEOF if
// it ended inside one (whose incomplete event the spec discards).
func (p *sseReader) Next() (sseEvent, error) {
	var (
		typ     string
		data    strings.Builder
		inEvent bool // a line of the current event was read
	)
	for {
		line, err := p.readLine()
		if err != nil {
			if err == io.EOF && (inEvent || len(line) > 0) {
				return sseEvent{}, io.ErrUnexpectedEOF
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			// A blank line dispatches; with an empty data buffer the spec
			// resets the type and dispatches nothing.
			if data.Len() == 0 {
				typ, inEvent = "", false
				continue
			}
			d := data.String()
			if typ == "" {
				typ = "message"
			}
			return sseEvent{Type: typ, ID: p.lastID, Data: d[:len(d)-1]}, nil
		}
		inEvent = true
		if line[0] == ':' {
			continue // a comment, such as a keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			typ = string(value)
		case "data":
			if data.Len()+len(value)+1 > p.maxData {
				return sseEvent{}, fmt.Errorf("%w: event data over %d bytes", errSSELimit, p.maxData)
			}
			data.Write(value)
			data.WriteByte('\n')
		case "id":
			// The spec ignores an ID with NUL in it.
			if bytes.IndexByte(value, 0) < 0 {
				p.lastID = string(value)
			}
		}
		// "retry" and unknown fields are ignored: reconnection is the
		// caller's business, and the spec ignores what it does not know.
	}
}

// readLine returns the next line without its end (CRLF, LF or CR); the
// slice is valid until the next call. At the end of the stream it
// returns io.EOF with the unterminated rest, which the caller discards.
func (p *sseReader) readLine() ([]byte, error) {
	p.line = p.line[:0]
	if !p.started {
		p.started = true
		if b, err := p.r.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
			p.r.Discard(3)
		}
	}
	if p.skipLF {
		p.skipLF = false
		if b, err := p.r.Peek(1); err == nil && b[0] == '\n' {
			p.r.Discard(1)
		}
	}
	for {
		if p.r.Buffered() == 0 {
			if _, err := p.r.Peek(1); err != nil {
				return p.line, err
			}
		}
		avail, _ := p.r.Peek(p.r.Buffered())
		i := bytes.IndexAny(avail, "\r\n")
		n := i
		if i < 0 {
			n = len(avail)
		}
		if len(p.line)+n > p.maxLine {
			return nil, fmt.Errorf("%w: line over %d bytes", errSSELimit, p.maxLine)
		}
		p.line = append(p.line, avail[:n]...)
		if i < 0 {
			p.r.Discard(n)
			continue
		}
		p.skipLF = avail[i] == '\r'
		p.r.Discard(i + 1)
		return p.line, nil
	}
}

// writeSSE writes one event. Data is split at its line ends so that the
// reader gets it back with each line end as "\n"; typ and id must be one
// line each (the callers' are fixed names and numbers).
func writeSSE(w io.Writer, typ, id, data string) error {
	var b strings.Builder
	if typ != "" {
		b.WriteString("event: " + typ + "\n")
	}
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	for _, l := range splitLines(data) {
		b.WriteString("data: " + l + "\n")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// splitLines splits s at CRLF, LF and CR, as the reader does.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}
