package hubrelay

import (
	"fmt"
	"time"
)

// Config is the timing and sizing of one hub-relay transport. The
// default registry holds NewModule(DefaultConfig()); tests and nodes on
// unusual networks register their own. A Config is copied into the
// instance, so changing it afterwards changes nothing.
type Config struct {
	// AttachTimeout bounds how long Start waits for the first attachment
	// to a hub replica (within the caller's ctx): a node that cannot reach
	// any hub cannot reach any peer either, and says so at start.
	AttachTimeout time.Duration
	// ReattachMin and ReattachMax bound the backoff between attach
	// attempts after the attachment broke: the first retry comes quickly
	// (the next replica is likely up), later ones at most ReattachMax
	// apart, so a node cut off from every hub does not hammer them.
	ReattachMin, ReattachMax time.Duration
	// Heartbeat and HeartbeatTimeout find an attachment that went silent
	// without breaking (a replica that lost power keeps its TCP
	// connection open for minutes): when nothing came through the relay
	// for Heartbeat, the node sends itself a frame through it; when
	// nothing came for HeartbeatTimeout, it reattaches elsewhere.
	Heartbeat, HeartbeatTimeout time.Duration
	// HandshakeTimeout bounds a QUIC handshake (two relay round trips):
	// Dial to a peer that does not answer fails after it.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a QUIC connection, and fails its streams, when
	// nothing arrived from the peer for this long. It must be longer than
	// a reattach to another replica takes, which streams ride out.
	IdleTimeout time.Duration
	// KeepAlive is how often an idle connection is pinged, so that a
	// stream idle longer than IdleTimeout survives while its peer lives,
	// and a dead peer's streams fail within IdleTimeout. Below IdleTimeout.
	KeepAlive time.Duration
	// MaxStreams bounds the streams a peer may have open to this node at
	// once over one connection; more wait in Dial.
	MaxStreams int
	// PacketQueue is how many QUIC packets wait for quic-go to read them;
	// more are dropped, which QUIC repairs.
	PacketQueue int
}

// DefaultConfig suits a node behind NAT talking over the WAN: an attach
// within 10 s or a clear failure; retries from 10 ms up to 2 s; a silent
// replica given up after 15 s, half of IdleTimeout, so streams survive
// the move (heartbeats only when idle, every 5 s); a
// handshake of up to 10 s (a mobile link through the hub); connections
// that outlive 30 s of silence, which covers a replica failover, and
// keepalives every 10 s.
func DefaultConfig() Config {
	return Config{
		AttachTimeout:    10 * time.Second,
		ReattachMin:      10 * time.Millisecond,
		ReattachMax:      2 * time.Second,
		Heartbeat:        5 * time.Second,
		HeartbeatTimeout: 15 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		IdleTimeout:      30 * time.Second,
		KeepAlive:        10 * time.Second,
		MaxStreams:       256,
		PacketQueue:      1024,
	}
}

// Validate names the first field that cannot work and its value.
func (c Config) Validate() error {
	switch {
	case c.AttachTimeout <= 0:
		return fmt.Errorf("hub-relay: config: AttachTimeout %v must be positive", c.AttachTimeout)
	case c.ReattachMin <= 0 || c.ReattachMax < c.ReattachMin:
		return fmt.Errorf("hub-relay: config: ReattachMin %v and ReattachMax %v: want 0 < min <= max", c.ReattachMin, c.ReattachMax)
	case c.Heartbeat <= 0 || c.HeartbeatTimeout <= c.Heartbeat:
		return fmt.Errorf("hub-relay: config: Heartbeat %v and HeartbeatTimeout %v: want 0 < Heartbeat < HeartbeatTimeout", c.Heartbeat, c.HeartbeatTimeout)
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("hub-relay: config: HandshakeTimeout %v must be positive", c.HandshakeTimeout)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("hub-relay: config: IdleTimeout %v must be positive", c.IdleTimeout)
	case c.KeepAlive <= 0 || c.KeepAlive >= c.IdleTimeout:
		return fmt.Errorf("hub-relay: config: KeepAlive %v must be positive and below IdleTimeout %v", c.KeepAlive, c.IdleTimeout)
	case c.MaxStreams < 1:
		return fmt.Errorf("hub-relay: config: MaxStreams %d must be at least 1", c.MaxStreams)
	case c.PacketQueue < 1:
		return fmt.Errorf("hub-relay: config: PacketQueue %d must be at least 1", c.PacketQueue)
	}
	return nil
}
