# Tests of the default trust policy, with opa test conventions: every
# test_ rule must be true. Run them with `rime policy test` (or
# `go test ./policy/...`, which runs them through the same runner).
package rime.trust_test

import data.rime.trust

# Nodes as the hub would describe them in group "friends".
phone := {"id": "n-phone", "class": "phone", "trust": "member", "member": true, "invited": false}

stranger := {"id": "n-stranger", "class": "phone", "trust": "member", "member": false, "invited": false}

newcomer := {"id": "n-new", "class": "laptop", "trust": "member", "member": false, "invited": true}

cloud := {"id": "n-cloud", "class": "cloud", "trust": "honest-but-curious", "member": true, "invited": false}

outside_cloud := {"id": "n-cdn", "class": "cloud", "trust": "honest-but-curious", "member": false, "invited": false}

byz := {"id": "n-byz", "class": "volunteer", "trust": "byzantine", "member": true, "invited": false}

photos := {"class": "photos", "confidential": true, "encrypted": false}

photos_sealed := {"class": "photos", "confidential": true, "encrypted": true}

presence := {"class": "presence", "confidential": false, "encrypted": false}

req(action, node, d) := {"action": action, "group": "friends", "node": node, "data": d}

allowed(action, node, d) if {
	d1 := trust.decision with input as req(action, node, d)
	d1.allow == true
	d1.reasons == []
}

# denied also checks that a denial always says why.
denied(action, node, d) if {
	d1 := trust.decision with input as req(action, node, d)
	d1.allow == false
	count(d1.reasons) > 0
}

reasons(action, node, d) := r if {
	r := trust.decision.reasons with input as req(action, node, d)
}

# join
test_member_may_rejoin if allowed("join", phone, {})

test_invited_node_may_join if allowed("join", newcomer, {})

test_stranger_may_not_join if denied("join", stranger, {})

test_join_denial_says_to_invite if {
	some r in reasons("join", stranger, {})
	contains(r, "must invite")
	contains(r, "n-stranger")
}

test_invited_byzantine_may_join if allowed("join", object.union(byz, {"member": false, "invited": true}), {})

# invite
test_member_may_invite if allowed("invite", phone, {})

test_cloud_member_may_invite if allowed("invite", cloud, {})

test_stranger_may_not_invite if denied("invite", stranger, {})

test_invited_but_not_joined_may_not_invite if {
	denied("invite", newcomer, {})
	some r in reasons("invite", newcomer, {})
	contains(r, "has not joined yet")
}

# place
test_confidential_on_member if allowed("place", phone, photos)

test_confidential_unencrypted_not_on_curious_member if {
	denied("place", cloud, photos)
	some r in reasons("place", cloud, photos)
	contains(r, "honest-but-curious")
}

test_confidential_unencrypted_not_on_non_member if {
	denied("place", outside_cloud, photos)
	some r in reasons("place", outside_cloud, photos)
	contains(r, "is not a member of group friends")
}

test_confidential_encrypted_on_curious if {
	allowed("place", cloud, photos_sealed)
	allowed("place", outside_cloud, photos_sealed)
}

test_plain_class_on_curious if allowed("place", cloud, presence)

test_byzantine_holds_nothing_unencrypted if {
	denied("place", byz, presence)
	denied("place", byz, photos)
}

test_byzantine_confidential_gets_both_reasons if count(reasons("place", byz, photos)) == 2

test_byzantine_holds_ciphertext if allowed("place", byz, photos_sealed)

# relay: any registered node, since relays see only ciphertext.
test_anyone_may_relay if {
	allowed("relay", phone, {})
	allowed("relay", stranger, {})
	allowed("relay", outside_cloud, {})
	allowed("relay", byz, {})
}

# offload
test_offload_to_member if allowed("offload", phone, photos)

test_offload_plain_to_curious_member if allowed("offload", cloud, presence)

test_no_offload_to_non_member if denied("offload", outside_cloud, presence)

test_no_offload_to_byzantine if {
	denied("offload", byz, presence)
	some r in reasons("offload", byz, presence)
	contains(r, "byzantine")
}

test_no_offload_of_confidential_to_curious if {
	denied("offload", cloud, photos)
	denied("offload", cloud, photos_sealed)
}

test_offload_denial_has_one_reason_per_cause if count(reasons("offload", object.union(byz, {"member": false}), photos)) == 2

# read
test_member_reads_confidential if allowed("read", phone, photos)

test_curious_member_may_not_read_confidential if {
	denied("read", cloud, photos)
	denied("read", cloud, photos_sealed)
}

test_stranger_may_not_read_confidential if denied("read", stranger, photos)

test_plain_class_readable if allowed("read", cloud, presence)

# Anything else is refused, with a reason.
test_unknown_action_denied if denied("delete", phone, photos)

test_missing_action_denied if {
	d := trust.decision with input as {"group": "friends", "node": phone}
	d.allow == false
	count(d.reasons) == 1
}

test_reasons_sorted if {
	r := reasons("place", byz, photos)
	r == sort(r)
}
