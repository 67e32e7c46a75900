package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Action is a kind of trust decision.
type Action string

// The actions every trust decision is one of. Who Input.Node is depends
// on the action, as in policies/trust.rego: the node asking to join; the
// node asking to invite (the inviter: the invitee is only a key until it
// joins); the node chosen to hold a class; for relay, the node asking the
// hub to relay its traffic; the node a computation would be forked onto;
// the node asking to read a class.
const (
	ActionJoin    Action = "join"
	ActionInvite  Action = "invite"
	ActionPlace   Action = "place"
	ActionRelay   Action = "relay"
	ActionOffload Action = "offload"
	ActionRead    Action = "read"
)

// Trust levels an app declares of a node class.
const (
	TrustMember           = "member"
	TrustHonestButCurious = "honest-but-curious"
	TrustByzantine        = "byzantine"
)

// Input is one trust decision to take. Its JSON form is the contract of
// issue 5, shared with package policy and `rime audit --input`.
type Input struct {
	Action Action    `json:"action"`
	Group  string    `json:"group"`
	Node   NodeInput `json:"node"`
	Data   DataInput `json:"data"`
}

// NodeInput is the node an action is about, as the hub knows it.
type NodeInput struct {
	ID string `json:"id"`
	// Class is the node class the node registered with.
	Class string `json:"class"`
	// Trust is what the group declares of that class (see TrustPath).
	Trust string `json:"trust"`
	// Member: the hub lists the node as a member of the group.
	Member bool `json:"member"`
	// Invited: the hub holds an invitation of the node's key to the group.
	Invited bool `json:"invited"`
}

// DataInput is the data class an action concerns (place, read, offload).
type DataInput struct {
	Class        string `json:"class"`
	Confidential bool   `json:"confidential"`
	// Encrypted: the class's stack encrypts it end to end.
	Encrypted bool `json:"encrypted"`
}

// Decision is an Authorizer's answer. Reasons explain a denial and are
// empty when allowed; DecisionID names the decision in the decision log.
type Decision struct {
	Allow      bool     `json:"allow"`
	Reasons    []string `json:"reasons,omitempty"`
	DecisionID string   `json:"decision_id"`
}

// Authorizer takes every trust decision of the hub. The leader asks it
// before proposing a command, and the command carries the decision, so
// every replica applies the same outcome whatever its own policy says.
// An error denies.
//
// Package policy (OPA, Rego in policies/) is the intended implementation;
// its Engine has its own Input and Decision types with the same JSON
// shape, so it plugs in through a few-line AuthorizerFunc that copies the
// fields across. Until it is merged, Builtin is the default.
type Authorizer interface {
	Decide(ctx context.Context, in Input) (Decision, error)
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, in Input) (Decision, error)

// Decide calls f.
func (f AuthorizerFunc) Decide(ctx context.Context, in Input) (Decision, error) { return f(ctx, in) }

// Builtin is the default Authorizer until the OPA-backed policy package
// lands: the same rules as the default policy (policies/trust.rego on the
// policy branch), written in Go. It keeps no decision log of its own: the
// hub records decisions in its replicated state.
//
//   - join: the node is a member already, or invited;
//   - invite: the inviter is a member;
//   - place: a confidential class not encrypted by its stack only on
//     trusted members (member, and its class declared trust "member"); a
//     byzantine node holds nothing unencrypted;
//   - relay: always (relayed payloads are sealed end to end);
//   - offload: only to members, never byzantine ones, and a computation
//     over a confidential class only to trusted members;
//   - read: a confidential class only by trusted members.
type Builtin struct{}

// Decide applies the built-in rules.
func (Builtin) Decide(_ context.Context, in Input) (Decision, error) {
	var deny []string
	trusted := in.Node.Member && in.Node.Trust == TrustMember
	byz := in.Node.Trust == TrustByzantine
	switch in.Action {
	case ActionJoin:
		if !in.Node.Member && !in.Node.Invited {
			deny = append(deny, fmt.Sprintf("node %s may not join group %s: it is not a member and has not been invited; a member must invite its key first", in.Node.ID, in.Group))
		}
	case ActionInvite:
		if !in.Node.Member {
			deny = append(deny, fmt.Sprintf("node %s may not invite others to group %s: only members may invite, and it is not a member", in.Node.ID, in.Group))
		}
	case ActionPlace:
		if in.Data.Confidential && !in.Data.Encrypted && !trusted {
			deny = append(deny, fmt.Sprintf("class %s is confidential and its stack does not encrypt it, so only trusted members of group %s may hold it; node %s is not one", in.Data.Class, in.Group, in.Node.ID))
		}
		if byz && !in.Data.Encrypted {
			deny = append(deny, fmt.Sprintf("node %s is declared byzantine, so it may hold class %s only encrypted", in.Node.ID, in.Data.Class))
		}
	case ActionRelay:
	case ActionOffload:
		if !in.Node.Member {
			deny = append(deny, fmt.Sprintf("computation may be offloaded only to members of group %s, and node %s is not a member", in.Group, in.Node.ID))
		}
		if byz {
			deny = append(deny, fmt.Sprintf("node %s is declared byzantine: nothing is offloaded to it", in.Node.ID))
		}
		if in.Data.Confidential && in.Node.Member && !byz && !trusted {
			deny = append(deny, fmt.Sprintf("the computation reads confidential class %s, so it runs only on trusted members; node %s is not one", in.Data.Class, in.Node.ID))
		}
	case ActionRead:
		if in.Data.Confidential && !trusted {
			deny = append(deny, fmt.Sprintf("class %s is confidential: only trusted members of group %s may read it, and node %s is not one", in.Data.Class, in.Group, in.Node.ID))
		}
	default:
		deny = append(deny, fmt.Sprintf("%q is not an action rime decides", in.Action))
	}
	return Decision{Allow: len(deny) == 0, Reasons: deny, DecisionID: newDecisionID()}, nil
}

// AllowAll allows everything. It is for benchmarks that measure what the
// Authorizer costs, never for a running hub.
type AllowAll struct{}

// Decide allows.
func (AllowAll) Decide(context.Context, Input) (Decision, error) {
	return Decision{Allow: true, DecisionID: newDecisionID()}, nil
}

func newDecisionID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	_ Authorizer = Builtin{}
	_ Authorizer = AllowAll{}
	_ Authorizer = AuthorizerFunc(nil)
)
