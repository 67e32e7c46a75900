package hub

import (
	"context"

	"github.com/rime-dev/rime/policy"
)

// PolicyAuthorizer takes the hub's trust decisions with OPA: the Rego
// policies of e (policies/ by default), each decision written to e's
// decision log. The two Input types share one JSON shape (issue 5's
// contract); this copies one into the other.
func PolicyAuthorizer(e *policy.Engine) Authorizer {
	return AuthorizerFunc(func(ctx context.Context, in Input) (Decision, error) {
		d, err := e.Decide(ctx, policy.Input{
			Action: policy.Action(in.Action),
			Group:  in.Group,
			Node: policy.Node{ID: in.Node.ID, Class: in.Node.Class, Trust: policy.Trust(in.Node.Trust),
				Member: in.Node.Member, Invited: in.Node.Invited},
			Data: policy.Data{Class: in.Data.Class, Confidential: in.Data.Confidential, Encrypted: in.Data.Encrypted},
		})
		if err != nil {
			return Decision{}, err
		}
		return Decision{Allow: d.Allow, Reasons: d.Reasons, DecisionID: d.DecisionID}, nil
	})
}
