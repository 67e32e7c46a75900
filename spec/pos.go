package spec

import (
	"cuelang.org/go/cue"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
	"github.com/rime-dev/rime/diag"
)

// PosOf returns where a value is written, or the zero Pos.
func PosOf(v cue.Value) diag.Pos { return fromToken(v.Pos()) }

func fromToken(p token.Pos) diag.Pos {
	if !p.IsValid() {
		return diag.Pos{}
	}
	return diag.Pos{File: p.Filename(), Line: p.Line(), Col: p.Column()}
}

// Diagnose turns a CUE error into diagnostics, one per underlying error,
// each at its first position and listing the others, as `cue vet` does.
func Diagnose(code string, err error) diag.Diagnostics {
	if err == nil {
		return nil
	}
	var ds diag.Diagnostics
	seen := map[string]bool{}
	for _, e := range errors.Errors(err) {
		format, args := e.Msg()
		msg := fmtMsg(format, args)
		if p := e.Path(); len(p) > 0 {
			msg = joinPath(p) + ": " + msg
		}
		var positions []diag.Pos
		for _, p := range errors.Positions(e) {
			if dp := fromToken(p); dp.IsValid() {
				positions = append(positions, dp)
			}
		}
		d := diag.Diagnostic{Severity: diag.Error, Code: code, Summary: msg}
		if len(positions) > 0 {
			d.Pos = positions[0]
			d.Related = positions[1:]
		}
		key := d.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		ds = append(ds, d)
	}
	// CUE heads a group of errors with a summary that has no position of
	// its own ("3 errors in empty disjunction"); place it where the first
	// error after it is, so every line the user sees has one.
	for i := range ds {
		if ds[i].Pos.IsValid() {
			continue
		}
		for j := i + 1; j < len(ds); j++ {
			if ds[j].Pos.IsValid() {
				ds[i].Pos = ds[j].Pos
				break
			}
		}
	}
	return ds
}
