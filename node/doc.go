// Package node is the agent on each device: given a plan, its identity
// and a network, it builds and runs the stack of every class it hosts and
// serves each stack's top layer (the class's channel) to applications.
//
// Start does, in order:
//
//  1. load or create the node's ed25519 identity in DataDir/identity;
//  2. check the plan: every hosted class must be satisfiable and every
//     layer's protocol implemented in the registry, or Start refuses the
//     whole plan with one error naming each missing protocol;
//  3. attach to the network at Listen;
//  4. per class, bottom up: New, Provision (with the layers below, the
//     plan's params, the layer's host classes, its own data directory),
//     Validate; then Start bottom up;
//  5. on any failure, close what was started, top down.
//
// Close closes every stack top down, then leaves the network. A node
// that restarts with the same DataDir keeps its identity and its disk;
// with a fresh DataDir it is a new node to the group.
package node
