package causal

import (
	"fmt"
	"maps"
	"slices"

	"github.com/rime-dev/rime/crdt/vv"
)

// ViolationKind is what a delivery did wrong.
type ViolationKind int

const (
	// Early: a message was delivered before one of its causes.
	Early ViolationKind = iota + 1
	// Duplicate: a message was delivered twice by one node.
	Duplicate
	// Unknown: a node delivered a message no one broadcast.
	Unknown
)

func (k ViolationKind) String() string {
	switch k {
	case Early:
		return "early"
	case Duplicate:
		return "duplicate"
	case Unknown:
		return "unknown"
	}
	return "?"
}

// Violation is one delivery that breaks causal order.
type Violation struct {
	Node string
	// Index is the delivery's position in the node's order.
	Index int
	Msg   MsgID
	Kind  ViolationKind
	// Missing, for Early, is the first cause (by ID) not delivered before.
	Missing MsgID
}

func (v Violation) String() string {
	s := fmt.Sprintf("%s delivered %v (#%d): %s", v.Node, v.Msg, v.Index, v.Kind)
	if v.Kind == Early {
		s += fmt.Sprintf(", before %v", v.Missing)
	}
	return s
}

// CheckCausal checks every node's delivery order against the messages'
// causal pasts: deps[m] is m's vector clock as sent (Msg.Deps: m depends
// on the first deps[m][r] messages of each node r, and on its sender's
// earlier messages). It returns the violations, nodes in name order, each
// node's in delivery order; none means every node delivered each message
// at most once and after all its causes. Whether every message was
// delivered everywhere is a separate question (liveness), left to the
// caller.
func CheckCausal(deliveries map[string][]MsgID, deps map[MsgID]vv.VV) []Violation {
	var out []Violation
	for _, node := range slices.Sorted(maps.Keys(deliveries)) {
		seen := map[MsgID]bool{}
		prefix := vv.VV{} // per sender: 1..prefix[s] all delivered
		covered := func(r string, k uint64) (vv.Dot, bool) {
			for prefix[r] < k && seen[vv.Dot{Replica: r, Seq: prefix[r] + 1}] {
				prefix[r]++
			}
			return vv.Dot{Replica: r, Seq: prefix[r] + 1}, prefix[r] >= k
		}
		for i, m := range deliveries[node] {
			d, known := deps[m]
			switch {
			case !known:
				out = append(out, Violation{Node: node, Index: i, Msg: m, Kind: Unknown})
			case seen[m]:
				out = append(out, Violation{Node: node, Index: i, Msg: m, Kind: Duplicate})
			default:
				need := d.Clone()
				need[m.Replica] = max(need[m.Replica], m.Seq-1)
				for _, r := range need.Replicas() {
					if first, ok := covered(r, need[r]); !ok {
						out = append(out, Violation{Node: node, Index: i, Msg: m, Kind: Early, Missing: first})
						break
					}
				}
			}
			seen[m] = true
		}
	}
	return out
}
