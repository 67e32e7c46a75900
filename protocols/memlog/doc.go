// Package memlog is a protocols.Log held in memory by one replica: every
// append commits at once. It is for testing the layers that sit on a
// log (channels, clients) without consensus underneath; it keeps nothing
// across a restart and replicates nothing, so no plan ever deploys it.
package memlog
