// Package swim is rime's gossip membership layer: SWIM failure detection
// and dissemination (Das, Gupta & Motivala, DSN 2002), as implemented by
// hashicorp/memberlist, offered to the layers above as
// protocols.Membership ("membership"). It tells every node of a class's
// stack who else is in the group, of which node class, and whether each
// is alive, dead (failed, as far as failure detection can tell) or left
// (said goodbye).
//
// # memberlist over rime's Network
//
// memberlist is given an EndpointTransport instead of its own sockets.
// The transport wraps the network.Endpoint of the Transport layer below
// (protocols.Transport.Endpoint) and claims one service on it,
// "swim/" + the data class:
//
//   - memberlist's packets (probes, acks, gossip) are the service's
//     datagrams: WriteTo is Endpoint.Send, PacketCh is fed from
//     Port.Packets, stamped as they leave the port's queue;
//   - its streams (push/pull state exchange, fallback probes) are the
//     service's streams: DialTimeout is Endpoint.Dial under a timeout,
//     StreamCh is fed from Port.Accept;
//   - the address it advertises is the endpoint's ("ip:port").
//
// So every gossip byte crosses rime's Network, and the faults memnet
// injects (partitions, loss, delay, crashes) reach failure detection as
// they reach every other layer. Join addresses must be "ip:port":
// memberlist would resolve a host name itself, off the Network.
//
// # Per-group encryption
//
// Gossip is encrypted and authenticated with AES-256-GCM under
// env.DeriveKey("swim/gossip", 32), a key derived from the group's
// secret, and memberlist refuses anything not under it. A node without
// the group's secret can neither read the gossip nor be heard, so it
// cannot join. The key is the same for every class of a group; the
// data class is bound into every message as memberlist's label
// (authenticated data), so one class's gossip is never taken for
// another's.
//
// # The view
//
// Each node's metadata carries its node class and a random session, new
// at each Start. The view is kept from memberlist's events (join, update,
// leave). memberlist v0.7.0 does not tell a leave from a failure in its
// events (the Node it passes has State left at alive), so before leaving
// a node gossips a leave intent for its session, passed on by each node
// that learns it and carried by push/pull too; a death is "left" when its
// session's intent is known, "dead" otherwise, and a dead member whose
// intent arrives late becomes left. memberlist does not report suspicion
// either, so MemberSuspect is never reported: a suspect member stays
// alive until declared dead. Dead and left members stay in the view for
// Config.Retention.
//
// memberlist never probes a member again once it is dead, so each node
// also tries one member it believes dead every Config.ReconnectInterval:
// that is how the two sides of a healed partition merge again, and how a
// crashed node that came back is found even if its join addresses are
// gone.
//
// # Lifecycle
//
//  1. New (or the module's constructor, NewModule(Config)): an instance
//     with its timing; the default registry holds
//     NewModule(DefaultConfig()).
//  2. Provision(env): take the Transport below and derive the gossip key;
//     no I/O. Swim takes no plan parameters.
//  3. Validate: the Config, the node ID, the join addresses.
//  4. Start(ctx): claim the service, create the memberlist, and join
//     through env.Node.Join, retrying with backoff until one answers or
//     ctx ends (a node without join addresses starts a group). Then the
//     reconnect loop runs until Close.
//  5. Close: gossip the leave intent, memberlist's Leave (together within
//     Config.LeaveTimeout), Shutdown, end the subscriptions. Idempotent.
//     A node that is shut down without Close (a crash) is seen as dead.
package swim
