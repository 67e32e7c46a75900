package engine

import (
	"encoding/json"
	"fmt"

	"github.com/rime-dev/rime/diag"
)

// Plan is the planner's answer for one app: the contract of
// `rime plan --format json` (see DESIGN.md).
type Plan struct {
	App string `json:"app"`
	// Group is the app's group: the unit of trust its nodes belong to.
	Group   string      `json:"group,omitempty"`
	Classes []ClassPlan `json:"classes"`
	// Compute holds one entry per offloadable computation, shaped like a
	// class.
	Compute []ClassPlan `json:"compute,omitempty"`
}

// Satisfiable reports whether every class and computation has a stack.
func (p *Plan) Satisfiable() bool {
	for _, c := range append(append([]ClassPlan(nil), p.Classes...), p.Compute...) {
		if !c.Satisfiable {
			return false
		}
	}
	return true
}

// ClassPlan is the stack chosen for one class, or why there is none.
type ClassPlan struct {
	Name        string       `json:"name"`
	Satisfiable bool         `json:"satisfiable"`
	Stack       []Layer      `json:"stack"`
	Guarantees  any          `json:"guarantees,omitempty"`
	Proof       []Step       `json:"proof"`
	Unmet       []Unmet      `json:"unmet"`
	Relaxations []Relaxation `json:"relaxations"`

	// Cost is the stack's cost by the cost model.
	Cost float64 `json:"cost"`
	// Depth gives each proof step's depth in the proof tree (parallel to
	// Proof), for renderers that indent.
	Depth []int `json:"-"`
	// Why holds, for an unsatisfiable class, the planner's reasons per
	// candidate protocol, nested as a tree of lines.
	Why []WhyLine `json:"-"`
}

// Layer is one protocol instance in a stack.
type Layer struct {
	Layer       string         `json:"layer"`
	Protocol    string         `json:"protocol"`
	Params      map[string]any `json:"params"`
	Implemented bool           `json:"implemented"`
	// Provides lists the capabilities this layer serves in the stack.
	Provides []string `json:"provides"`
	// Requires lists the capabilities this layer uses from the layers
	// of the stack (which the node provisions first).
	Requires []string `json:"requires,omitempty"`
	// Hosts lists the node classes that may run this layer's replicas
	// (those its assumes.hosts admits); absent when any node may.
	Hosts []string `json:"hosts,omitempty"`
}

// DataGuarantees are what a data class's stack promises.
type DataGuarantees struct {
	Consistency  string `json:"consistency"`
	Durability   int64  `json:"durability"`
	Available    string `json:"available"`
	Confidential bool   `json:"confidential"`
}

// ComputeGuarantees are what a computation's stack promises.
type ComputeGuarantees struct {
	Offload string `json:"offload"`
	Clones  int64  `json:"clones"`
}

// Step is one step of a proof: a claim, what justifies it, and where the
// justification is written.
type Step struct {
	Claim  string `json:"claim"`
	By     string `json:"by"`
	Source string `json:"source"`
}

// Unmet says why a class has no stack: a theorem, or a missing capability.
type Unmet struct {
	Requirement string `json:"requirement"`
	Reason      string `json:"reason"`
	Theorem     string `json:"theorem"`
	// Cite and Source locate the theorem; Capability names what no
	// protocol in the catalogue could provide.
	Cite       string `json:"cite,omitempty"`
	Source     string `json:"source,omitempty"`
	Capability string `json:"capability,omitempty"`
}

// Relaxation is one weakened requirement that would make the class plan,
// with the stack it would get (protocol names, bottom to top).
type Relaxation struct {
	Change map[string]any `json:"change"`
	Stack  []string       `json:"stack"`
}

// WhyLine is one line of the reasons a class has no stack.
type WhyLine struct {
	Depth int
	Text  string
	Pos   diag.Pos
}

// DataGuarantees reads the class's guarantees, whether planned in this
// process (a DataGuarantees) or decoded from plan JSON (a map).
func (cp ClassPlan) DataGuarantees() (DataGuarantees, error) {
	switch g := cp.Guarantees.(type) {
	case DataGuarantees:
		return g, nil
	case *DataGuarantees:
		if g != nil {
			return *g, nil
		}
	case nil:
	default:
		var out DataGuarantees
		b, err := json.Marshal(g)
		if err == nil {
			err = json.Unmarshal(b, &out)
		}
		return out, err
	}
	return DataGuarantees{}, fmt.Errorf("class %s has no guarantees (is it satisfiable?)", cp.Name)
}
