# METADATA
# title: rime group trust
# description: |
#   The default trust policy of a rime group. The hub asks it at every
#   trust decision and logs the answer. rime evaluates one query,
#   data.rime.trust.decision, which must be an object
#   {"allow": bool, "reasons": [string]}; reasons explain a denial in words
#   the person running the group can act on, and are empty when allowed.
#
#   Input (checked by package policy before it reaches here):
#     action: "join" | "invite" | "place" | "relay" | "offload" | "read"
#     group:  the group's name
#     node:   {id, class, trust, member, invited}: the node the action is
#             about. trust is what the app's environment declares of the
#             node's class ("member" | "honest-but-curious" | "byzantine");
#             member and invited are the hub's record for this group.
#     data:   {class, confidential, encrypted}: the data class concerned
#             (place, read, offload); encrypted says the class's stack has
#             the end-to-end encryption layer.
#
#   Who the node is, per action:
#     join     the node asking to join the group.
#     invite   the node asking to issue an invitation (the inviter). The
#              invitee is only a public key: the input does not describe
#              it, and need not, because an invitation admits nothing by
#              itself; the invitee is judged when it asks to join.
#     place    the node chosen to hold replicas of data.class.
#     relay    the node asked to relay traffic between two nodes that
#              cannot reach each other.
#     offload  the node a computation would be forked onto; data is the
#              class the computation reads, when it reads one.
#     read     the node asking to read data.class in plaintext.
#
#   "Trusted member" below means the hub lists the node as a member AND
#   the app declares the node's class trust: "member". A member whose class
#   the app declares honest-but-curious (a cloud box that joined the group
#   to store replicas) is in the group but is not trusted with plaintext:
#   that is exactly what the app said about it.
package rime.trust

actions := {"join", "invite", "place", "relay", "offload", "read"}

# decision is the one document rime queries.
decision := {"allow": allow, "reasons": reasons}

# Deny by default: an action is allowed only if rime knows it and no rule
# below objects.
default allow := false

allow if {
	known_action
	count(deny) == 0
}

# A helper rather than `not input.action in actions` inline: with no action
# at all the inline form is not true, and the denial would be lost.
known_action if input.action in actions

# Sorted, so the same input always gives the same reasons in the same
# order (the decision log is replayed and compared).
reasons := sort(deny)

is_member if input.node.member == true

is_invited if input.node.invited == true

is_encrypted if input.data.encrypted == true

is_confidential if input.data.confidential == true

is_byzantine if input.node.trust == "byzantine"

trusted_member if {
	is_member
	input.node.trust == "member"
}

node := object.get(input, ["node", "id"], "(unnamed)")

group := object.get(input, "group", "(unnamed)")

class := object.get(input, ["data", "class"], "(unnamed)")

# why_untrusted completes "node X ..." when a node is not a trusted member.
why_untrusted := sprintf("is not a member of group %s", [group]) if {
	not is_member
} else := sprintf("is a member, but its node class %q is declared %s, so it is not trusted with plaintext", [
	object.get(input, ["node", "class"], ""),
	object.get(input, ["node", "trust"], "of unknown trust"),
])

deny contains msg if {
	not known_action
	msg := sprintf("%v is not an action rime decides; the actions are join, invite, place, relay, offload and read", [object.get(input, "action", null)])
}

# join: members (rejoining after a restart) or invited nodes only.
deny contains msg if {
	input.action == "join"
	not is_member
	not is_invited
	msg := sprintf("node %s may not join group %s: it is not a member and has not been invited; a member must invite its key first", [node, group])
}

# invite: only members may invite. An invitation is not membership: an
# invited node must join before it can invite others, so a chain of
# invitations cannot grow outside the group.
deny contains msg if {
	input.action == "invite"
	not is_member
	is_invited
	msg := sprintf("node %s may not invite others to group %s: it has been invited but has not joined yet, and only members may invite", [node, group])
}

deny contains msg if {
	input.action == "invite"
	not is_member
	not is_invited
	msg := sprintf("node %s may not invite others to group %s: only members may invite, and it is not a member", [node, group])
}

# place: a confidential class is stored in plaintext only on trusted
# members; anywhere else it must be encrypted end to end.
deny contains msg if {
	input.action == "place"
	is_confidential
	not is_encrypted
	not trusted_member
	msg := sprintf("class %s is confidential and its stack does not encrypt it, so only trusted members of group %s may hold it; node %s %s", [class, group, node, why_untrusted])
}

# place: a byzantine node may leak or alter what it stores, so it holds no
# data in plaintext, confidential or not.
deny contains msg if {
	input.action == "place"
	is_byzantine
	not is_encrypted
	msg := sprintf("node %s is declared byzantine, so it may hold class %s only encrypted, and its stack does not encrypt it", [node, class])
}

# relay: allowed for any registered node (the hub evaluates policy only for
# nodes whose signed registration it holds, so every node here is one).
# This relies on relayed traffic being end-to-end encrypted between the two
# endpoints (node-to-node TLS bound to the group's keys): a relay sees only
# ciphertext. A byzantine relay can drop or delay what it forwards, which
# the endpoints see as loss; it cannot read or forge it. So no rule denies
# relay.

# offload: computation runs only on members, never on byzantine nodes.
deny contains msg if {
	input.action == "offload"
	not is_member
	msg := sprintf("computation may be offloaded only to members of group %s, and node %s is not a member", [group, node])
}

deny contains msg if {
	input.action == "offload"
	is_byzantine
	msg := sprintf("node %s is declared byzantine: it could return wrong results or leak the computation's state, so nothing is offloaded to it", [node])
}

# offload: a forked VM holds its memory in plaintext, so a computation
# over a confidential class runs only on trusted members, encrypted stack
# or not.
deny contains msg if {
	input.action == "offload"
	is_confidential
	is_member
	not is_byzantine
	not trusted_member
	msg := sprintf("the computation reads confidential class %s and a forked VM holds it in plaintext, so it runs only on trusted members; node %s %s", [class, node, why_untrusted])
}

# read: reading is seeing plaintext, so a confidential class is read only
# by trusted members, whether or not its stack encrypts it.
deny contains msg if {
	input.action == "read"
	is_confidential
	not trusted_member
	msg := sprintf("class %s is confidential: only trusted members of group %s may read it, and node %s %s", [class, group, node, why_untrusted])
}
