package policy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeInput: no input panics the decoder; whatever it accepts is
// valid, and encodes and decodes back to itself.
func FuzzDecodeInput(f *testing.F) {
	for _, s := range []string{
		`{"action": "place", "group": "friends", "node": {"id": "n1", "class": "cloud", "trust": "honest-but-curious", "member": true}, "data": {"class": "photos", "confidential": true}}`,
		`{"action": "join", "group": "g", "node": {"id": "n", "trust": "member", "invited": true}}`,
		`{"action": "fly"}`,
		`{"action": "join", "group": "g", "node": {"id": "n", "trust": "member", "member": "yes"}}`,
		`{"action": "relay", "group": "g", "node": {"id": "n", "trust": "byzantine"}} {}`,
		`[]`, ``, `null`, `{"action": "read", "group": "\u0000", "node": {"id": "\ud800", "trust": "member"}, "data": {"class": "x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := DecodeInput(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error must say something")
			}
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("accepted an invalid input %+v: %v", in, err)
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeInput(b)
		if err != nil {
			t.Fatalf("%s re-encoded as %s no longer decodes: %v", data, b, err)
		}
		if again != in {
			t.Fatalf("round trip changed %+v into %+v", in, again)
		}
	})
}

// FuzzReadLog: no log panics the reader; every event it accepts has a
// valid input, and writing the events back gives a log that reads to the
// same events.
func FuzzReadLog(f *testing.F) {
	var log bytes.Buffer
	e, err := New(f.Context(), fixed(Config{DecisionLog: &log}))
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range universe()[:8] {
		if _, err := e.Decide(f.Context(), in); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(log.Bytes())
	lines := bytes.SplitAfter(log.Bytes(), []byte("\n"))
	f.Add(lines[0])
	f.Add(bytes.Replace(lines[1], []byte(`"version":1`), []byte(`"version":7`), 1))
	f.Add([]byte("\n\n{\"version\":1}\n"))
	f.Add([]byte(`{"version":1,"id":"x","time":"2026-01-01T00:00:00Z","input":{"action":"join","group":"g","node":{"id":"n","trust":"member"}},"result":{"allow":false,"reasons":null},"revision":"r"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := ReadLog(bytes.NewReader(data))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error must say something")
			}
			return
		}
		var out bytes.Buffer
		for _, ev := range evs {
			if err := ev.Input.Validate(); err != nil {
				t.Fatalf("accepted event %s with an invalid input: %v", ev.ID, err)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(b)
			out.WriteByte('\n')
		}
		again, err := ReadLog(&out)
		if err != nil {
			t.Fatalf("events re-encoded no longer read: %v\n%s", err, out.Bytes())
		}
		if len(again) != len(evs) {
			t.Fatalf("%d events became %d", len(evs), len(again))
		}
		for i := range evs {
			// Times compare with Equal: the monotonic reading and location
			// are not part of the log.
			if !evs[i].Time.Equal(again[i].Time) {
				t.Fatalf("event %d: time %v became %v", i, evs[i].Time, again[i].Time)
			}
			again[i].Time = evs[i].Time
			if !reflect.DeepEqual(evs[i], again[i]) {
				t.Fatalf("event %d: %+v became %+v", i, evs[i], again[i])
			}
		}
	})
}
