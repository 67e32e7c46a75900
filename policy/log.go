package policy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// EventVersion is the version of the decision-log event format written
// by this rime. A reader refuses other versions instead of misreading
// them; a future format adds a reader for its version.
const EventVersion = 1

// MaxEventBytes bounds one line of a decision log, so a corrupt log cannot
// make the reader buffer without end. Inputs are a few hundred bytes.
const MaxEventBytes = 1 << 20

// Event is one line of a decision log: a decision as it was made, enough
// to audit it and to replay it against another policy. Like OPA's
// decision-log events it is versioned and carries an ID.
type Event struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Input   Input     `json:"input"`
	Result  Result    `json:"result"`
	// Revision names the policy sources that decided (Engine.Revision).
	Revision string `json:"revision"`
}

// LogError is a problem on one line of a decision log.
type LogError struct {
	Line int
	Err  error
}

func (e *LogError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LogError) Unwrap() error { return e.Err }

// ReadLog reads a decision log: JSON lines of Events, blank lines
// ignored. Each line is decoded strictly and checked (version, ID, time,
// revision, a valid input); the first bad line stops the read with a
// *LogError naming it, since an audit that skipped lines would mislead.
func ReadLog(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxEventBytes)
	var evs []Event
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev, err := decodeEvent(b)
		if err != nil {
			return nil, &LogError{line, err}
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &LogError{line + 1, fmt.Errorf("longer than %d bytes: not a decision event", MaxEventBytes)}
		}
		return nil, fmt.Errorf("reading decision log: %w", err)
	}
	return evs, nil
}

func decodeEvent(b []byte) (Event, error) {
	// The version first, so that a newer format is reported as such rather
	// than as a pile of unknown fields.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Event{}, jsonError(b, err)
	}
	switch {
	case v.Version == nil:
		return Event{}, errors.New("no \"version\": not a rime decision event")
	case *v.Version != EventVersion:
		return Event{}, fmt.Errorf("event version %d: this rime reads version %d", *v.Version, EventVersion)
	}
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return Event{}, jsonError(b, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, errors.New("more than one JSON value on the line")
	}
	switch {
	case ev.ID == "":
		return Event{}, errors.New("id: missing")
	case ev.Time.IsZero():
		return Event{}, errors.New("time: missing")
	case ev.Revision == "":
		return Event{}, errors.New("revision: missing")
	}
	if err := ev.Input.Validate(); err != nil {
		return Event{}, fmt.Errorf("decision %s: %w", ev.ID, err)
	}
	if ev.Result.Reasons == nil {
		ev.Result.Reasons = []string{}
	}
	return ev, nil
}

// Flip is a past decision that a policy answers differently.
type Flip struct {
	Event Event `json:"event"`
	// Now is what the replayed policy answers.
	Now Result `json:"now"`
}

// ReplayReport is the outcome of replaying a decision log.
type ReplayReport struct {
	// Revision is the revision of the policy replayed against.
	Revision string `json:"revision"`
	Replayed int    `json:"replayed"`
	// Flips are the decisions whose allow changed, in log order.
	Flips []Flip `json:"flips"`
	// Reworded are decisions with the same allow but other reasons.
	Reworded []Flip `json:"reworded"`
}

// Replay evaluates every logged decision again with e, as of the time it
// was made, and reports which would flip. It writes nothing to e's
// decision log: a replay is a question about the policy, not a decision.
func Replay(ctx context.Context, events []Event, e *Engine) (ReplayReport, error) {
	rep := ReplayReport{Revision: e.Revision(), Flips: []Flip{}, Reworded: []Flip{}}
	for _, ev := range events {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("policy: replay: %w", err)
		}
		if err := ev.Input.Validate(); err != nil {
			return rep, fmt.Errorf("policy: replay: decision %s: %w", ev.ID, err)
		}
		now, err := e.eval(ctx, ev.Input, ev.Time)
		if err != nil {
			return rep, fmt.Errorf("policy: replay: decision %s: %w", ev.ID, err)
		}
		rep.Replayed++
		switch {
		case now.Allow != ev.Result.Allow:
			rep.Flips = append(rep.Flips, Flip{ev, now})
		case !slices.Equal(now.Reasons, ev.Result.Reasons):
			rep.Reworded = append(rep.Reworded, Flip{ev, now})
		}
	}
	return rep, nil
}
