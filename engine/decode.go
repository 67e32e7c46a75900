package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DecodePlan reads a plan as `rime plan --format json` writes it, for
// nodes given a plan made elsewhere. Decoding is strict: an unknown field
// or a missing app or class name means the file is not a plan (or was
// edited by hand), and the error says where, as name:line:column.
func DecodePlan(name string, data []byte) (*Plan, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: not a rime plan: %w", jsonPos(name, data, dec.InputOffset(), err), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: not a rime plan: more data after the plan", jsonPos(name, data, dec.InputOffset(), nil))
	}
	if p.App == "" {
		return nil, fmt.Errorf("%s: not a rime plan: it names no app (write one with `rime plan --format json APP.cue`)", name)
	}
	seen := map[string]bool{}
	for i, c := range p.Classes {
		if c.Name == "" {
			return nil, fmt.Errorf("%s: not a rime plan: class %d has no name", name, i+1)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("%s: not a rime plan: class %q appears twice", name, c.Name)
		}
		seen[c.Name] = true
		for j, l := range c.Stack {
			if l.Protocol == "" {
				return nil, fmt.Errorf("%s: not a rime plan: class %q layer %d names no protocol", name, c.Name, j+1)
			}
		}
	}
	return &p, nil
}

// jsonPos turns a decoder error into name:line:column, using the error's
// own offset where it has one.
func jsonPos(name string, data []byte, off int64, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	off = min(max(off, 0), int64(len(data)))
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("%s:%d:%d", name, line, col)
}
