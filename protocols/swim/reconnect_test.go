package swim

import (
	"slices"
	"testing"

	"github.com/rime-dev/rime/protocols"
)

// A node that came back at a dead member's address with a new identity
// holds that address: reconnecting to it cannot revive the old member.
func TestDeadAddrsSkipsAddressesALiveMemberHolds(t *testing.T) {
	view := map[string]*entry{
		"self":  {m: protocols.Member{ID: "self", Addr: "a:1", State: protocols.MemberAlive}},
		"old":   {m: protocols.Member{ID: "old", Addr: "b:1", State: protocols.MemberDead}},
		"new":   {m: protocols.Member{ID: "new", Addr: "b:1", State: protocols.MemberAlive}},
		"gone":  {m: protocols.Member{ID: "gone", Addr: "c:1", State: protocols.MemberDead}},
		"left":  {m: protocols.Member{ID: "left", Addr: "d:1", State: protocols.MemberLeft}},
		"dead2": {m: protocols.Member{ID: "dead2", Addr: "c:1", State: protocols.MemberDead}},
	}
	got := deadAddrs(view, "self")
	slices.Sort(got)
	if want := []string{"c:1", "c:1"}; !slices.Equal(got, want) {
		t.Fatalf("deadAddrs = %v, want %v", got, want)
	}
}
