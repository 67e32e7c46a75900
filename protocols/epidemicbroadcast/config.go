package epidemicbroadcast

import (
	"fmt"
	"time"
)

// Config is the tuning of one epidemic broadcast instance. The core reads
// every field but TickInterval, which only the driver uses: the core
// counts time in ticks. A Config is copied into the instance, so changing
// it afterwards changes nothing.
//
// The fields whose names start with Max, with Window, bound the memory of
// a node; doc.go states the bound they add up to.
type Config struct {
	// Fanout is how many random alive members a node pushes a message to
	// the first time it has it. The plan's `fanout` parameter overrides
	// it. With fanout f a push alone misses each node with probability
	// about e^-f; anti-entropy repairs the rest.
	Fanout int
	// TickInterval is the length of one tick, the core's unit of time.
	TickInterval time.Duration
	// DigestTicks: every DigestTicks ticks a node sends its digest (what
	// it has seen) to one random member, which answers with what the
	// digest lacks and, if it lacks something itself, with its own
	// digest. This bounds how long a message gossip missed stays missing
	// once the two sides can talk.
	DigestTicks int
	// RetainTicks is how long a node keeps a message it has seen, to
	// repair other nodes from. A node that comes back after longer can
	// no longer catch up on it.
	RetainTicks int
	// MaxRetained and MaxRetainedBytes bound the retention buffer: the
	// oldest messages go first when either is exceeded. Bytes count each
	// message's payload and origin plus retainedOverhead.
	MaxRetained      int
	MaxRetainedBytes int
	// MaxPayload is the largest payload Broadcast accepts and the largest
	// a node takes off the wire.
	MaxPayload int
	// MaxBatchBytes bounds the encoded size of one repair datagram.
	MaxBatchBytes int
	// Window is how far above its contiguous watermark a node remembers
	// which sequence numbers of one origin it has seen (one bit each). A
	// message more than Window above the watermark moves the watermark
	// up, giving up on the older gaps: with Window >= MaxRetained no
	// node could repair them anyway, since every node that had them has
	// since retained Window newer messages. A multiple of 64.
	Window int
	// MaxOrigins bounds how many originating nodes a node tracks, and
	// MaxEpochs how many incarnations (restarts) of each. Past either,
	// the least recently active is forgotten (see doc.go for what that
	// costs).
	MaxOrigins int
	MaxEpochs  int
	// DeliveryBuffer is the capacity of the Deliveries channel. When the
	// application falls that far behind, the node stops taking messages
	// off the network (they are dropped there and repaired later) and
	// Broadcast blocks.
	DeliveryBuffer int
}

// DefaultConfig suits a group of up to a few hundred nodes on a LAN or a
// good WAN: messages reach most nodes within milliseconds by push, the
// rest within a digest round (100 ms), and a node that was away for up
// to a minute catches up.
func DefaultConfig() Config {
	return Config{
		Fanout:           4,                     // e^-4: under 2% of nodes missed by push alone
		TickInterval:     50 * time.Millisecond, // the unit of the tick counts below
		DigestTicks:      2,                     // a digest every 100 ms, as memberlist's gossip every 200 ms
		RetainTicks:      1200,                  // one minute
		MaxRetained:      4096,
		MaxRetainedBytes: 16 << 20,
		MaxPayload:       256 << 10,
		MaxBatchBytes:    512 << 10, // fits two maximal payloads
		Window:           4096,      // = MaxRetained, see Window
		MaxOrigins:       1024,
		MaxEpochs:        4,
		DeliveryBuffer:   256,
	}
}

// Validate checks c; an error names the field and its value.
func (c Config) Validate() error {
	if c.Fanout < 1 || c.Fanout > 64 {
		return fmt.Errorf("epidemic-broadcast: config: Fanout = %d: want 1..64", c.Fanout)
	}
	if c.TickInterval <= 0 {
		return fmt.Errorf("epidemic-broadcast: config: TickInterval = %v: must be positive", c.TickInterval)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"DigestTicks", c.DigestTicks},
		{"RetainTicks", c.RetainTicks},
		{"MaxRetained", c.MaxRetained},
		{"MaxRetainedBytes", c.MaxRetainedBytes},
		{"MaxPayload", c.MaxPayload},
		{"MaxOrigins", c.MaxOrigins},
		{"MaxEpochs", c.MaxEpochs},
		{"DeliveryBuffer", c.DeliveryBuffer},
	} {
		if f.v < 1 {
			return fmt.Errorf("epidemic-broadcast: config: %s = %d: must be at least 1", f.name, f.v)
		}
	}
	if c.Window < 64 || c.Window%64 != 0 {
		return fmt.Errorf("epidemic-broadcast: config: Window = %d: want a positive multiple of 64", c.Window)
	}
	if c.MaxBatchBytes < c.MaxPayload+maxDataOverhead {
		return fmt.Errorf("epidemic-broadcast: config: MaxBatchBytes = %d: must hold one maximal message (MaxPayload %d + %d)", c.MaxBatchBytes, c.MaxPayload, maxDataOverhead)
	}
	if c.MaxPayload+maxDataOverhead+sealOverhead > maxDatagram {
		return fmt.Errorf("epidemic-broadcast: config: MaxPayload = %d: above what one datagram carries", c.MaxPayload)
	}
	if c.MaxBatchBytes+sealOverhead > maxDatagram {
		return fmt.Errorf("epidemic-broadcast: config: MaxBatchBytes = %d: above what one datagram carries", c.MaxBatchBytes)
	}
	return nil
}
