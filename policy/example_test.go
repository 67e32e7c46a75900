package policy_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rime-dev/rime/policy"
)

// A hub asks the default policy whether a cloud box that joined the group
// may hold the confidential photos unencrypted, then whether it may hold
// them encrypted. Both decisions land in the decision log.
func ExampleEngine_Decide() {
	ctx := context.Background()
	var log bytes.Buffer
	e, err := policy.New(ctx, policy.Config{DecisionLog: &log})
	if err != nil {
		fmt.Println(err)
		return
	}
	in := policy.Input{
		Action: policy.Place, Group: "friends",
		Node: policy.Node{ID: "n-cloud", Class: "cloud", Trust: policy.TrustHonestButCurious, Member: true},
		Data: policy.Data{Class: "photos", Confidential: true},
	}
	for _, encrypted := range []bool{false, true} {
		in.Data.Encrypted = encrypted
		d, err := e.Decide(ctx, in)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("encrypted:", encrypted, "allow:", d.Allow)
		for _, r := range d.Reasons {
			fmt.Println(" ", r)
		}
	}
	evs, err := policy.ReadLog(&log)
	fmt.Println(len(evs), "decisions logged", err)
	// Output:
	// encrypted: false allow: false
	//   class photos is confidential and its stack does not encrypt it, so only trusted members of group friends may hold it; node n-cloud is a member, but its node class "cloud" is declared honest-but-curious, so it is not trusted with plaintext
	// encrypted: true allow: true
	// 2 decisions logged <nil>
}

// Replay answers "what would this policy change have refused?" before the
// change is deployed.
func ExampleReplay() {
	ctx := context.Background()
	var log bytes.Buffer
	e, err := policy.New(ctx, policy.Config{DecisionLog: &log})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, member := range []bool{true, false} {
		in := policy.Input{Action: policy.Relay, Group: "friends",
			Node: policy.Node{ID: fmt.Sprint("n-member-", member), Trust: policy.TrustMember, Member: member}}
		if _, err := e.Decide(ctx, in); err != nil {
			fmt.Println(err)
			return
		}
	}
	// A stricter policy: only members relay.
	dir, err := os.MkdirTemp("", "policy")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "relay.rego"), []byte(`package rime.trust

decision := {"allow": input.node.member, "reasons": r} if {
	r := [m | not input.node.member; m := "only members relay"]
}
`), 0o644)
	stricter, err := policy.New(ctx, policy.Config{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	evs, err := policy.ReadLog(&log)
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := policy.Replay(ctx, evs, stricter)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range rep.Flips {
		fmt.Println(f.Event.Input.Node.ID, "was allowed:", f.Event.Result.Allow, "now:", f.Now.Allow, f.Now.Reasons)
	}
	// Output:
	// n-member-false was allowed: true now: false [only members relay]
}
