package check

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Model is the sequential specification the linearizable checker holds
// each key to. The names are the app spec's `type`s it covers.
type Model string

const (
	// LogModel: a totally ordered log (a channel, or a "state-machine"
	// class's input): updates append, reads return the whole log.
	LogModel Model = "log"
	// RegisterModel: one register per key: writes replace the value,
	// reads return it (no values for the initial one).
	RegisterModel Model = "register"
)

// LinearizableConfig configures Linearizable.
type LinearizableConfig struct {
	// Model is the sequential specification of every key.
	Model Model
	// Timeout bounds porcupine's search. Past it the result is Unknown,
	// never OK. 0 means no limit.
	Timeout time.Duration
	// HTMLDir, if set, receives porcupine's visualization of a history
	// that is not linearizable, as linearizable.html (the directory is
	// created if needed).
	HTMLDir string
	// SyncReadsOnly leaves plain reads out of the check, for stacks that
	// serve them locally and promise linearizability only through Sync.
	SyncReadsOnly bool
}

// DefaultLinearizableConfig checks logs and allows a minute: with the log
// model a history of a few thousand operations takes well under a
// second, so a minute only runs out on a pathological history.
func DefaultLinearizableConfig() LinearizableConfig {
	return LinearizableConfig{Model: LogModel, Timeout: time.Minute}
}

// Validate reports a config Linearizable cannot use.
func (c LinearizableConfig) Validate() error {
	var errs []error
	if c.Model != LogModel && c.Model != RegisterModel {
		errs = append(errs, fmt.Errorf("check: linearizable config: Model %q is not %q or %q", c.Model, LogModel, RegisterModel))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("check: linearizable config: Timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Linearizable checks that the writes and reads of every key can be put
// in one order that respects real time (an operation that returned before
// another was invoked comes first) and the model's sequential
// specification. Keys are checked independently (porcupine's Partition):
// linearizability is local, so the history is linearizable if and only
// if every key's is.
//
// Failed operations are left out (they did not happen); an operation
// whose outcome is unknown may take effect at any time after its call, or
// not at all if nothing ever read its value. Deliveries are not
// operations of the sequential specification and are ignored.
//
// porcupine decides; the explanations come from direct checks that name
// the operations involved (stale read, lost write, order against real
// time, read from the future, reads that disagree).
func Linearizable(h History, cfg LinearizableConfig) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if err := h.Validate(); err != nil {
		return Result{}, fmt.Errorf("check: linearizable: %w", err)
	}
	reads := func(op Op) bool { return !cfg.SyncReadsOnly || op.Kind == SyncRead }
	keys, groups := byKey(h.Ops, func(op Op) bool { return op.isUpdate() || op.isRead() && reads(op) })
	writers := updatesByValue(h.Ops)
	clients := denseClients(h.Ops)

	var (
		c     collector
		ops   []porcupine.Operation
		model porcupine.Model
	)
	add := func(op Op, in linInput) {
		ops = append(ops, porcupine.Operation{ClientId: clients[op.Client], Input: in, Call: op.Call, Return: op.end()})
	}
	switch cfg.Model {
	case LogModel:
		model = logModel
		for _, k := range keys {
			lk := prepareLog(k, groups[k], writers, reads, nil, &c)
			if c.empty() {
				lk.realTime(&c)
			}
			for _, a := range lk.appends {
				p, seen := lk.pos[a.Value]
				if !seen {
					p = -1
				}
				add(a, linInput{key: k, update: true, value: a.Value, pos: p, refLen: len(lk.ref)})
			}
			for i, r := range lk.reads {
				p := len(r.Values)
				if !lk.prefix[i] {
					p = -1
				}
				add(r, linInput{key: k, pos: p, values: r.Values})
			}
		}
	case RegisterModel:
		model = registerModel
		for _, k := range keys {
			rk, err := prepareRegister(k, groups[k], writers, reads, &c)
			if err != nil {
				return Result{}, err
			}
			for _, w := range rk.writes {
				v := w.Value
				if !rk.seen[v] {
					v = unread
				}
				add(w, linInput{key: k, update: true, value: v})
			}
			for _, r := range rk.reads {
				add(r, linInput{key: k, values: r.Values})
			}
		}
	}

	res := c.result(CheckLinearizable)
	switch porcupine.CheckOperationsTimeout(model, ops, cfg.Timeout) {
	case porcupine.Ok:
		if !c.empty() {
			// The direct checks only report what no linearization can
			// have; if porcupine found one, one of the two is wrong.
			res.OK, res.Unknown = false, true
			res.Note = "porcupine found a linearization but the direct checks found the violations listed: a checker bug, please report it"
		}
		return res, nil
	case porcupine.Unknown:
		res.OK, res.Unknown = false, true
		res.Note = fmt.Sprintf("porcupine timed out after %v on %d operations", cfg.Timeout, len(ops))
		if !c.empty() {
			res.Note += "; the direct checks found the violations listed"
		}
		return res, nil
	}
	res.OK = false
	if c.empty() {
		res.Violations = []Violation{{Explain: "porcupine found no order of these operations that the " + string(cfg.Model) +
			" model accepts; the direct checks name no culprit (see the visualization)"}}
	}
	if cfg.HTMLDir == "" {
		return res, nil
	}
	path, err := visualize(model, ops, cfg)
	res.HTML = path
	return res, err
}

// visualize runs porcupine again, keeping what it needs to draw the
// partial linearizations, and writes the HTML.
func visualize(model porcupine.Model, ops []porcupine.Operation, cfg LinearizableConfig) (string, error) {
	verdict, info := porcupine.CheckOperationsVerbose(model, ops, cfg.Timeout)
	if verdict != porcupine.Illegal {
		return "", fmt.Errorf("check: linearizable: visualization run ended %v", verdict)
	}
	if err := os.MkdirAll(cfg.HTMLDir, 0o755); err != nil {
		return "", fmt.Errorf("check: linearizable: visualization: %w", err)
	}
	path := filepath.Join(cfg.HTMLDir, "linearizable.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return "", fmt.Errorf("check: linearizable: visualization: %w", err)
	}
	return path, nil
}

// denseClients numbers clients 0..n-1 in order of id, since porcupine's
// visualization draws one row per client index.
func denseClients(ops []Op) map[int]int {
	var ids []int
	m := map[int]int{}
	for _, op := range ops {
		if _, ok := m[op.Client]; !ok {
			m[op.Client] = 0
			ids = append(ids, op.Client)
		}
	}
	sort.Ints(ids)
	for i, id := range ids {
		m[id] = i
	}
	return m
}

// linInput is an operation as the porcupine models see it. Everything a
// step needs is computed beforehand, so a step is a comparison.
type linInput struct {
	key    string
	update bool
	value  string
	// Log model: for an append, its position in the longest read (-1 if
	// no read saw it); for a read, its length (-1 if it is not a prefix of
	// the longest read, so no state accepts it).
	pos int
	// refLen is the length of the longest read of the key: appends no
	// read saw can only come after that many.
	refLen int
	values []string
}

// partitionByKey splits a history by key for porcupine.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	idx := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range history {
		k := op.Input.(linInput).key
		i, ok := idx[k]
		if !ok {
			i = len(parts)
			idx[k] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

// logModel's state is how many appends have taken effect: an int, so
// porcupine's cache compares and hashes it for free, and two orders of
// appends that no read tells apart reach the same state. (A model whose
// state is the log itself, or a hash of it, keeps every such order
// apart and makes the search exponential in the appends nobody has read
// yet.)
var logModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return 0 },
	Step: func(state, input, _ any) (bool, any) {
		n, in := state.(int), input.(linInput)
		if in.update {
			if in.pos >= 0 {
				return n == in.pos, n + 1
			}
			return n >= in.refLen, n + 1
		}
		return in.pos >= 0 && n == in.pos, n
	},
	Hash: func(state any) uint64 { return uint64(state.(int)) },
	DescribeOperation: func(input, _ any) string {
		in := input.(linInput)
		if in.update {
			return "append " + in.value
		}
		return "read -> " + describeValues(in.values)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%d appends", state.(int)) },
}

// unread stands for every value no read returned: the model cannot tell
// them apart, so orders of writes that differ only in them reach the
// same state and porcupine's cache prunes all but one. (Validate refuses
// an empty written value, so no real value is "".)
const unread = "\x00unread"

// registerModel's state is the register's value ("" before any write).
var registerModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return "" },
	Step: func(state, input, _ any) (bool, any) {
		s, in := state.(string), input.(linInput)
		if in.update {
			return true, in.value
		}
		if len(in.values) == 0 {
			return s == "", s
		}
		return s == in.values[0], s
	},
	DescribeOperation: func(input, _ any) string {
		in := input.(linInput)
		if in.update && in.value == unread {
			return "write (a value no read returned)"
		}
		if in.update {
			return "write " + in.value
		}
		if len(in.values) == 0 {
			return "read -> (initial)"
		}
		return "read -> " + in.values[0]
	},
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeState: func(state any) string {
		switch state.(string) {
		case "":
			return "(initial)"
		case unread:
			return "(a value no read returned)"
		}
		return state.(string)
	},
}
