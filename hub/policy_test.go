package hub_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rime-dev/rime/hub"
	"github.com/rime-dev/rime/policy"
)

// The OPA-backed authorizer decides as policies/trust.rego says and logs
// each decision.
func TestPolicyAuthorizer(t *testing.T) {
	ctx := context.Background()
	var log bytes.Buffer
	cfg := policy.DefaultConfig()
	cfg.DecisionLog = &log
	e, err := policy.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := hub.PolicyAuthorizer(e)
	stranger := hub.Input{Action: "join", Group: "g", Node: hub.NodeInput{ID: "nstranger0000000", Class: "phone", Trust: hub.TrustMember}}
	d, err := a.Decide(ctx, stranger)
	if err != nil || d.Allow || len(d.Reasons) == 0 || d.DecisionID == "" {
		t.Fatalf("an uninvited node's join: %+v %v", d, err)
	}
	invited := stranger
	invited.Node.Invited = true
	if d, err := a.Decide(ctx, invited); err != nil || !d.Allow {
		t.Fatalf("an invited node's join: %+v %v", d, err)
	}
	place := hub.Input{Action: "place", Group: "g", Node: hub.NodeInput{ID: "ncloud0000000000", Class: "cloud", Trust: hub.TrustHonestButCurious, Member: true},
		Data: hub.DataInput{Class: "photos", Confidential: true}}
	if d, err := a.Decide(ctx, place); err != nil || d.Allow {
		t.Fatalf("a confidential class placed unencrypted on an honest-but-curious node: %+v %v", d, err)
	}
	if n := strings.Count(log.String(), "\n"); n != 3 {
		t.Fatalf("decision log has %d lines, want 3:\n%s", n, log.String())
	}
}
