package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Kind is what an operation did.
type Kind string

const (
	// Write sets a register (the "register" model).
	Write Kind = "write"
	// Append adds Value to the end of a log or channel.
	Append Kind = "append"
	// Read returns the state the client's replica held: the whole log
	// (a prefix of the total order, in order) or the register's value.
	// It may be served locally, so it need not be linearizable.
	Read Kind = "read"
	// SyncRead is a read the client asked to be linearizable (for a
	// channel: Sync, then the stream up to the Seq Sync returned).
	SyncRead Kind = "sync-read"
	// Delivered records that the client's session received Value in its
	// stream of updates. A session's deliveries, in order of Call, are its
	// stream.
	Delivered Kind = "delivered"
	// Remove takes Value, written by an Append of the same key, out of
	// a set (an observed-remove set's remove: the client had seen the
	// value). Values are written once, so a remove is not unique and
	// writes nothing; the checkers that judge states (durability,
	// causal inclusion) account for it.
	Remove Kind = "remove"
)

// Outcome is what the client learned about an operation, as in Jepsen.
type Outcome string

const (
	// OK: the operation completed and took effect (for a read: it
	// returned Values).
	OK Outcome = "ok"
	// Fail: the operation definitely did not take effect.
	Fail Outcome = "fail"
	// Info: the client does not know; the operation may take effect at
	// any time after Call, even long after the client gave up.
	Info Outcome = "info"
)

// Op is one operation of a history. Values written (by Write and Append)
// must be unique in the whole history, so that a value read names the one
// operation that wrote it.
type Op struct {
	Client int    `json:"client"`
	Node   string `json:"node,omitempty"`
	Kind   Kind   `json:"kind"`
	// Key is the register, log or class the operation is on. Keys are
	// independent for the linearizable checker.
	Key string `json:"key,omitempty"`
	// Value is what a Write or Append wrote, or what a Delivered received.
	Value string `json:"value,omitempty"`
	// Values is what a Read or SyncRead returned: the log in order, or a
	// register's value (empty for the initial, never written, value).
	Values []string `json:"values,omitempty"`
	// Deps are explicit causal dependencies of a Write or Append: values
	// the client declares it had seen. The causal checker adds the ones it
	// derives from session order and reads-from.
	Deps []string `json:"deps,omitempty"`
	// Call and Return are when the client invoked the operation and
	// learned its outcome, in nanoseconds on one clock. For an Info
	// operation Return is when the client gave up (0 if never); checkers
	// treat it as open forever.
	Call    int64   `json:"call"`
	Return  int64   `json:"return"`
	Outcome Outcome `json:"outcome"`
	// Accepted is when the client's node took an update on its own,
	// before it was acknowledged (an available class's replica: on the
	// device's disk, queued for the others); 0 if it never did or the
	// stack has no such step. Availability counts an accepted update as
	// served: "always" promises that every live node keeps taking
	// writes, not that a partition lets them be acknowledged elsewhere.
	Accepted int64 `json:"accepted,omitempty"`
}

// Replica is the final state of one replica after the network healed and
// the system went quiet: for each key, its values in the replica's order
// (the log, a register's one value, a set's members).
type Replica struct {
	Node  string              `json:"node"`
	State map[string][]string `json:"state"`
}

// Partition is a window of the run during which the network was split
// into Sides (lists of node names). A node named on no side was cut off
// alone. End 0 means the partition never healed.
type Partition struct {
	Start int64      `json:"start"`
	End   int64      `json:"end"`
	Sides [][]string `json:"sides"`
}

// Crash is a window during which Node was down. End 0 means it never
// came back.
type Crash struct {
	Node  string `json:"node"`
	Start int64  `json:"start"`
	End   int64  `json:"end"`
}

// History is everything a run recorded: the clients' operations, the
// faults the nemesis injected, the nodes lost for good and the final
// states of the replicas.
type History struct {
	Ops        []Op        `json:"ops"`
	Final      []Replica   `json:"final,omitempty"`
	Partitions []Partition `json:"partitions,omitempty"`
	Crashes    []Crash     `json:"crashes,omitempty"`
	// Lost are nodes whose disks were lost for good; they have no final
	// state and durability does not count on them.
	Lost []string `json:"lost,omitempty"`
}

// open is the end of an operation whose outcome is unknown: it may take
// effect at any time after its call.
const open = math.MaxInt64

// end returns when op stopped possibly taking effect.
func (op Op) end() int64 {
	if op.Outcome == Info {
		return open
	}
	return op.Return
}

// isUpdate reports whether op wrote a value.
func (op Op) isUpdate() bool { return op.Kind == Write || op.Kind == Append }

// isRead reports whether op returned a state.
func (op Op) isRead() bool { return op.Kind == Read || op.Kind == SyncRead }

// String names op compactly for explanations.
func (op Op) String() string {
	var what string
	switch {
	case op.isUpdate():
		what = fmt.Sprintf("%s %q", op.Kind, op.Value)
	case op.isRead():
		what = fmt.Sprintf("%s -> %s", op.Kind, describeValues(op.Values))
	default:
		what = fmt.Sprintf("%s %q", op.Kind, op.Value)
	}
	where := fmt.Sprintf("client %d", op.Client)
	if op.Node != "" {
		where += " on " + op.Node
	}
	key := ""
	if op.Key != "" {
		key = fmt.Sprintf(" [%s]", op.Key)
	}
	ret := fmt.Sprint(op.Return)
	if op.Outcome == Info {
		ret = "?"
	}
	return fmt.Sprintf("%s: %s%s (%s, %d..%s)", where, what, key, op.Outcome, op.Call, ret)
}

// describeValues shows a read's values, eliding the middle of long ones.
func describeValues(vs []string) string {
	if len(vs) <= 4 {
		return fmt.Sprintf("%q", vs)
	}
	return fmt.Sprintf("[%q %q ... %q] (%d values)", vs[0], vs[1], vs[len(vs)-1], len(vs))
}

// Validate reports every way h is malformed, each error naming the
// operation by its index. Checkers refuse a history that does not
// validate rather than guess what it meant.
func (h History) Validate() error {
	var errs []error
	bad := func(i int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("check: op %d: %s", i, fmt.Sprintf(format, args...)))
	}
	written := map[string]int{}
	for i, op := range h.Ops {
		switch op.Kind {
		case Write, Append, Read, SyncRead, Delivered, Remove:
		default:
			bad(i, "unknown kind %q", op.Kind)
		}
		switch op.Outcome {
		case OK, Fail, Info:
		default:
			bad(i, "unknown outcome %q", op.Outcome)
		}
		if op.Call < 0 {
			bad(i, "call %d is negative", op.Call)
		}
		switch {
		case op.Outcome == Info && op.Return != 0 && op.Return < op.Call:
			bad(i, "returns at %d, before its call at %d", op.Return, op.Call)
		case op.Outcome != Info && op.Return < op.Call:
			bad(i, "returns at %d, before its call at %d", op.Return, op.Call)
		}
		if op.Accepted != 0 && (!op.isUpdate() && op.Kind != Remove || op.Accepted < op.Call) {
			bad(i, "accepted at %d: only an update is accepted, after its call at %d", op.Accepted, op.Call)
		}
		if op.isUpdate() || op.Kind == Delivered || op.Kind == Remove {
			if op.Value == "" {
				bad(i, "%s without a value", op.Kind)
			}
			if len(op.Values) > 0 {
				bad(i, "%s with read values", op.Kind)
			}
		}
		if op.isUpdate() {
			if j, dup := written[op.Value]; dup {
				bad(i, "value %q already written by op %d: values must be unique", op.Value, j)
			} else {
				written[op.Value] = i
			}
		} else if len(op.Deps) > 0 {
			bad(i, "%s with deps: only writes have causes", op.Kind)
		}
		if op.isRead() && op.Value != "" {
			bad(i, "%s with a written value", op.Kind)
		}
		if op.Kind == Delivered && op.Outcome != OK {
			bad(i, "a delivery is only recorded when it happened, outcome %q", op.Outcome)
		}
	}
	for i, op := range h.Ops {
		if op.Kind == Remove {
			if j, ok := written[op.Value]; !ok {
				bad(i, "removes %q, which no op wrote", op.Value)
			} else if h.Ops[j].Key != op.Key {
				bad(i, "removes %q from key %q, but it was written to key %q", op.Value, op.Key, h.Ops[j].Key)
			}
		}
		for _, d := range op.Deps {
			if _, ok := written[d]; !ok {
				bad(i, "dep %q is written by no op", d)
			}
			if d == op.Value {
				bad(i, "depends on itself")
			}
		}
	}
	for i, p := range h.Partitions {
		if p.End != 0 && p.End < p.Start {
			errs = append(errs, fmt.Errorf("check: partition %d: ends at %d, before it starts at %d", i, p.End, p.Start))
		}
		seen := map[string]bool{}
		for _, side := range p.Sides {
			for _, n := range side {
				if seen[n] {
					errs = append(errs, fmt.Errorf("check: partition %d: node %q on two sides", i, n))
				}
				seen[n] = true
			}
		}
	}
	for i, c := range h.Crashes {
		if c.End != 0 && c.End < c.Start {
			errs = append(errs, fmt.Errorf("check: crash %d: ends at %d, before it starts at %d", i, c.End, c.Start))
		}
	}
	nodes := map[string]bool{}
	for i, r := range h.Final {
		if nodes[r.Node] {
			errs = append(errs, fmt.Errorf("check: final state %d: node %q twice", i, r.Node))
		}
		nodes[r.Node] = true
		if slices.Contains(h.Lost, r.Node) {
			errs = append(errs, fmt.Errorf("check: final state %d: node %q is lost, so it has no final state", i, r.Node))
		}
	}
	return errors.Join(errs...)
}

// Encode returns h as JSON.
func Encode(h History) ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("check: encode history: %w", err)
	}
	return b, nil
}

// Decode parses a history from JSON, strictly (unknown fields are an
// error, so a typo does not silently drop data), and validates it.
func Decode(data []byte) (History, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var h History
	if err := dec.Decode(&h); err != nil {
		return History{}, fmt.Errorf("check: decode history: %w", err)
	}
	if dec.More() {
		return History{}, errors.New("check: decode history: trailing data after the history")
	}
	if err := h.Validate(); err != nil {
		return History{}, fmt.Errorf("check: decode history: %w", err)
	}
	return h, nil
}
