package epidemicbroadcast

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/rime-dev/rime/protocols"
)

// Envelope is one message to send, to a peer's address.
type Envelope struct {
	To  string
	Msg Message
}

// Ready is what one call into the Core asks its driver to do: send these
// messages and hand these deliveries to the application, in order.
type Ready struct {
	Send    []Envelope
	Deliver []protocols.Delivery
}

// Stats counts what a Core holds and what it has done. The first group
// is what the memory bound of doc.go is stated in.
type Stats struct {
	// Retained messages, and their bytes as counted against
	// MaxRetainedBytes.
	Retained, RetainedBytes int
	// Origins and Streams (origin incarnations) tracked, and the bits
	// of seen-above-watermark bitmaps allocated.
	Origins, Streams, WindowBits int

	// Delivered: messages delivered (own broadcasts included).
	// Duplicates: messages received again after being seen.
	// Stale: messages of an incarnation forgotten or superseded.
	// Skipped: sequence numbers given up on as a Window overflowed.
	// Expired: messages older than RetainTicks when they arrived.
	// Refused: messages of a new origin while MaxOrigins are tracked
	// and none can be forgotten yet.
	// Invalid: messages with a bad field (payload too large, say).
	Delivered, Duplicates, Stale, Skipped, Expired, Refused, Invalid uint64
}

// retainedOverhead is what one retained message costs beyond its payload
// and origin (the entry and its share of the queue), for the byte bound.
const retainedOverhead = 96

// Core is the epidemic broadcast protocol as a pure state machine: it
// owns no goroutine, reads no clock and does no I/O. Time passes only by
// Tick; messages come in by Step; the application broadcasts by
// Broadcast. Each returns a Ready, which the caller carries out. Random
// choices (which peers to push to) come from the generator it is given,
// so a seeded Core replays exactly.
//
// A Core is not safe for concurrent use.
type Core struct {
	cfg   Config
	self  string
	epoch uint64
	rng   *rand.Rand

	seq   uint64 // of our last broadcast in this epoch
	tick  uint64
	peers []string

	origins  map[string]*origin
	retained []entry // oldest first, from head
	head     int
	bytes    int

	stats Stats
}

// origin is what a Core knows of one broadcasting node.
type origin struct {
	// floor: incarnations at or below it are forgotten or superseded, and
	// their messages are refused, so they are never delivered twice.
	floor   uint64
	streams map[uint64]*stream // by epoch, at most MaxEpochs
	active  uint64             // tick of the last message accepted
}

// stream is what a Core has seen of one origin's incarnation: every Seq
// up to watermark, and those above it whose bit is set in seen (bit for
// Seq s at s mod Window; nil while none is).
type stream struct {
	watermark uint64
	seen      []uint64
	nseen     int
}

// entry is a retained message; d.Age is its age when it arrived at tick.
type entry struct {
	d    Data
	tick uint64
	size int
}

// age is e's age now.
func (c *Core) age(e *entry) uint64 { return e.d.Age + (c.tick - e.tick) }

// NewCore returns a Core for node self in its incarnation epoch (a number
// greater than any earlier incarnation of self used: the driver takes
// the wall clock at Start). cfg must be valid.
func NewCore(self string, epoch uint64, cfg Config, rng *rand.Rand) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self == "" || len(self) > maxOriginLen {
		return nil, fmt.Errorf("epidemic-broadcast: node ID %q: want 1..%d bytes", self, maxOriginLen)
	}
	if epoch == 0 {
		return nil, errors.New("epidemic-broadcast: epoch must be positive")
	}
	if rng == nil {
		return nil, errors.New("epidemic-broadcast: no random source")
	}
	c := &Core{cfg: cfg, self: self, epoch: epoch, rng: rng, origins: map[string]*origin{}}
	// Our own origin is there from the start, so it is never refused.
	c.origins[self] = &origin{streams: map[uint64]*stream{}}
	return c, nil
}

// SetPeers replaces the addresses gossip and digests go to: the alive
// members other than this node.
func (c *Core) SetPeers(addrs []string) {
	c.peers = slices.Clone(addrs)
	slices.Sort(c.peers)
	c.peers = slices.Compact(c.peers)
}

// Broadcast makes payload this node's next message: it is delivered here
// at once and pushed to Fanout peers.
func (c *Core) Broadcast(payload []byte) (Ready, error) {
	if len(payload) > c.cfg.MaxPayload {
		return Ready{}, fmt.Errorf("epidemic-broadcast: payload of %d bytes: above MaxPayload (%d)", len(payload), c.cfg.MaxPayload)
	}
	c.seq++
	d := Data{Origin: c.self, Epoch: c.epoch, Seq: c.seq, Payload: slices.Clone(payload)}
	var rd Ready
	if !c.accept(d) {
		// Only after a restart that reused this epoch: a clock gone back.
		return rd, errors.New("epidemic-broadcast: own incarnation refused: an earlier one used the same epoch")
	}
	c.retain(d)
	rd.Deliver = append(rd.Deliver, protocols.Delivery{From: d.Origin, Payload: d.Payload})
	c.stats.Delivered++
	c.push(&rd, []Data{d}, "")
	return rd, nil
}

// Step takes in one message from the peer at address from.
func (c *Core) Step(from string, m Message) Ready {
	var rd Ready
	switch m.Kind {
	case KindPush, KindRepair:
		var fresh []Data
		for _, d := range m.Data {
			if d.Origin == "" || len(d.Origin) > maxOriginLen || d.Epoch == 0 || d.Seq == 0 || len(d.Payload) > c.cfg.MaxPayload {
				c.stats.Invalid++
				continue
			}
			if d.Age > uint64(c.cfg.RetainTicks) {
				// Evicted everywhere by now, or about to be: taking it
				// could deliver it twice, after its origin was forgotten.
				c.stats.Expired++
				continue
			}
			if !c.accept(d) {
				continue
			}
			c.retain(d)
			rd.Deliver = append(rd.Deliver, protocols.Delivery{From: d.Origin, Payload: d.Payload})
			c.stats.Delivered++
			fresh = append(fresh, d)
		}
		if m.Kind == KindPush {
			c.push(&rd, fresh, from)
		}
	case KindDigest, KindDigestReply:
		c.repair(&rd, from, m.Digest)
		if m.Kind == KindDigest && c.lacks(m.Digest) {
			rd.Send = append(rd.Send, Envelope{To: from, Msg: Message{Kind: KindDigestReply, Digest: c.Digest()}})
		}
	default:
		c.stats.Invalid++
	}
	return rd
}

// Tick advances time by one tick: retained messages age out, and every
// DigestTicks ticks the digest goes to one random peer.
func (c *Core) Tick() Ready {
	c.tick++
	c.evict()
	var rd Ready
	if c.tick%uint64(c.cfg.DigestTicks) == 0 && len(c.peers) > 0 {
		to := c.peers[c.rng.IntN(len(c.peers))]
		rd.Send = append(rd.Send, Envelope{To: to, Msg: Message{Kind: KindDigest, Digest: c.Digest()}})
	}
	return rd
}

// Stats returns the counters.
func (c *Core) Stats() Stats {
	s := c.stats
	s.Retained = len(c.retained) - c.head
	s.RetainedBytes = c.bytes
	s.Origins = len(c.origins)
	s.Streams, s.WindowBits = 0, 0
	for _, o := range c.origins {
		s.Streams += len(o.streams)
		for _, st := range o.streams {
			s.WindowBits += 64 * len(st.seen)
		}
	}
	return s
}

// Digest is what this node has seen, stream by stream, sorted by origin
// and epoch.
func (c *Core) Digest() []StreamDigest {
	var out []StreamDigest
	for id, o := range c.origins {
		for ep, s := range o.streams {
			sd := StreamDigest{Origin: id, Epoch: ep, Watermark: s.watermark}
			if s.nseen > 0 {
				for q := s.watermark + 1; len(sd.Above) < maxDigestAbove && q <= s.watermark+uint64(c.cfg.Window); q++ {
					if s.has(q, c.cfg.Window) {
						sd.Above = append(sd.Above, q)
					}
				}
			}
			out = append(out, sd)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Origin != out[j].Origin {
			return out[i].Origin < out[j].Origin
		}
		return out[i].Epoch < out[j].Epoch
	})
	return out
}

// push sends each of ds to Fanout random peers other than from, batching
// what goes to the same peer.
func (c *Core) push(rd *Ready, ds []Data, from string) {
	if len(ds) == 0 {
		return
	}
	batch := map[string][]Data{}
	var order []string
	for _, d := range ds {
		for _, p := range c.pick(c.cfg.Fanout, from) {
			if _, ok := batch[p]; !ok {
				order = append(order, p)
			}
			batch[p] = append(batch[p], d)
		}
	}
	for _, p := range order {
		rd.Send = append(rd.Send, Envelope{To: p, Msg: Message{Kind: KindPush, Data: batch[p]}})
	}
}

// pick chooses up to k distinct peers other than not, uniformly.
func (c *Core) pick(k int, not string) []string {
	cand := make([]string, 0, len(c.peers))
	for _, p := range c.peers {
		if p != not {
			cand = append(cand, p)
		}
	}
	k = min(k, len(cand))
	for i := range k { // a partial Fisher-Yates shuffle
		j := i + c.rng.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
	}
	return cand[:k]
}

// accept records d as seen and reports whether it is new.
func (c *Core) accept(d Data) bool {
	o := c.origins[d.Origin]
	if o == nil {
		if len(c.origins) >= c.cfg.MaxOrigins && !c.forgetOrigin() {
			c.stats.Refused++
			return false
		}
		o = &origin{streams: map[uint64]*stream{}}
		c.origins[d.Origin] = o
	}
	if d.Epoch <= o.floor {
		c.stats.Stale++
		return false
	}
	s := o.streams[d.Epoch]
	if s == nil {
		if len(o.streams) >= c.cfg.MaxEpochs {
			// Forget the oldest incarnation, which may be this one.
			low := d.Epoch
			for ep := range o.streams {
				low = min(low, ep)
			}
			o.floor = low
			delete(o.streams, low)
			if low == d.Epoch {
				c.stats.Stale++
				return false
			}
		}
		s = &stream{}
		o.streams[d.Epoch] = s
	}
	if s.has(d.Seq, c.cfg.Window) {
		c.stats.Duplicates++
		return false
	}
	c.stats.Skipped += s.mark(d.Seq, c.cfg.Window)
	o.active = c.tick
	return true
}

// forgetOrigin drops the least recently active origin (ties broken by
// ID, so replays stay exact), if it has been silent for more than
// 2*RetainTicks: every message of it that this node accepted was then
// at least RetainTicks old (ages only grow), expired on every node, and
// is refused if it comes back, so forgetting it can never deliver
// anything twice. It reports whether it dropped one.
func (c *Core) forgetOrigin() bool {
	var victim string
	var at uint64
	for id, o := range c.origins {
		if id == c.self {
			continue
		}
		if victim == "" || o.active < at || (o.active == at && id < victim) {
			victim, at = id, o.active
		}
	}
	if victim == "" || c.tick-at <= 2*uint64(c.cfg.RetainTicks) {
		return false
	}
	delete(c.origins, victim)
	return true
}

// has reports whether seq is seen.
func (s *stream) has(seq uint64, window int) bool {
	if seq <= s.watermark {
		return true
	}
	if seq-s.watermark > uint64(window) || s.seen == nil {
		return false
	}
	i := seq % uint64(window)
	return s.seen[i/64]&(1<<(i%64)) != 0
}

// mark records seq, which is not seen, and returns how many unseen
// sequence numbers were given up on to keep within the window.
func (s *stream) mark(seq uint64, window int) (skipped uint64) {
	w := uint64(window)
	if seq > s.watermark+w {
		// Move the watermark up so that seq is the window's top.
		to := seq - w
		if to-s.watermark >= w {
			// Every remembered bit is at or below to.
			skipped = to - s.watermark - uint64(s.nseen)
			s.seen, s.nseen = nil, 0
		} else {
			for q := s.watermark + 1; q <= to; q++ {
				if s.clear(q, w) {
					s.nseen--
				} else {
					skipped++
				}
			}
		}
		s.watermark = to
	}
	if seq == s.watermark+1 {
		s.watermark++
	} else {
		if s.seen == nil {
			s.seen = make([]uint64, window/64)
		}
		i := seq % w
		s.seen[i/64] |= 1 << (i % 64)
		s.nseen++
	}
	for s.nseen > 0 && s.clear(s.watermark+1, w) {
		s.nseen--
		s.watermark++
	}
	if s.nseen == 0 {
		s.seen = nil
	}
	return skipped
}

// clear unsets seq's bit and reports whether it was set.
func (s *stream) clear(seq, w uint64) bool {
	if s.seen == nil {
		return false
	}
	i := seq % w
	bit := uint64(1) << (i % 64)
	set := s.seen[i/64]&bit != 0
	s.seen[i/64] &^= bit
	return set
}

// retain keeps d for repairs, evicting the oldest past the bounds.
func (c *Core) retain(d Data) {
	size := len(d.Payload) + len(d.Origin) + retainedOverhead
	c.retained = append(c.retained, entry{d: d, tick: c.tick, size: size})
	c.bytes += size
	c.evict()
}

// evict drops the oldest retained messages while any bound is exceeded.
func (c *Core) evict() {
	for c.head < len(c.retained) {
		e := &c.retained[c.head]
		n := len(c.retained) - c.head
		if n <= c.cfg.MaxRetained && c.bytes <= c.cfg.MaxRetainedBytes && c.age(e) <= uint64(c.cfg.RetainTicks) {
			break
		}
		c.bytes -= e.size
		*e = entry{} // let the payload go
		c.head++
	}
	// Compact once the dead prefix is half the slice, so the slice never
	// holds more than about twice the bound; shrink it when a burst made
	// it much larger than what is left.
	if c.head > 0 && c.head >= len(c.retained)/2 {
		live := c.retained[c.head:]
		if cap(c.retained) > 4*max(len(live), 64) {
			c.retained = slices.Clone(live)
		} else {
			n := copy(c.retained, live)
			clear(c.retained[n:])
			c.retained = c.retained[:n]
		}
		c.head = 0
	}
}

// repair answers a digest: the retained messages it lacks, oldest first,
// up to MaxBatchBytes.
func (c *Core) repair(rd *Ready, to string, dg []StreamDigest) {
	type key struct {
		origin string
		epoch  uint64
	}
	has := make(map[key]*StreamDigest, len(dg))
	for i := range dg {
		has[key{dg[i].Origin, dg[i].Epoch}] = &dg[i]
	}
	var batch []Data
	size := 3 + 2*uvarintLen(uint64(len(c.retained)))
	for i := c.head; i < len(c.retained); i++ {
		e := &c.retained[i]
		if c.age(e) > uint64(c.cfg.RetainTicks) {
			continue // evicted in arrival order, so older ones may linger
		}
		if sd := has[key{e.d.Origin, e.d.Epoch}]; sd != nil {
			if e.d.Seq <= sd.Watermark {
				continue
			}
			if _, found := slices.BinarySearch(sd.Above, e.d.Seq); found {
				continue
			}
		}
		d := e.d
		d.Age = c.age(e)
		n := dataLen(d)
		if size+n > c.cfg.MaxBatchBytes {
			break
		}
		size += n
		batch = append(batch, d)
	}
	if len(batch) > 0 {
		rd.Send = append(rd.Send, Envelope{To: to, Msg: Message{Kind: KindRepair, Data: batch}})
	}
}

// lacks reports whether a digest shows something this node has not seen
// and would accept.
func (c *Core) lacks(dg []StreamDigest) bool {
	w := uint64(c.cfg.Window)
	for _, sd := range dg {
		o := c.origins[sd.Origin]
		if o != nil && sd.Epoch <= o.floor {
			continue
		}
		var s *stream
		if o != nil {
			s = o.streams[sd.Epoch]
		}
		if s == nil {
			if sd.Watermark > 0 || len(sd.Above) > 0 {
				return true
			}
			continue
		}
		// Check at most a window's worth below the other's watermark:
		// anything further down would be skipped on arrival anyway.
		if sd.Watermark > s.watermark {
			lo := max(s.watermark+1, sd.Watermark-min(sd.Watermark, w)+1)
			for q := lo; q <= sd.Watermark; q++ {
				if !s.has(q, c.cfg.Window) {
					return true
				}
			}
		}
		for _, q := range sd.Above {
			if !s.has(q, c.cfg.Window) {
				return true
			}
		}
	}
	return false
}

// String describes the core's streams, for tests and debugging.
func (c *Core) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%d seq=%d tick=%d", c.self, c.epoch, c.seq, c.tick)
	for _, sd := range c.Digest() {
		fmt.Fprintf(&b, " %s/%d:%d", sd.Origin, sd.Epoch, sd.Watermark)
		if len(sd.Above) > 0 {
			fmt.Fprintf(&b, "+%v", sd.Above)
		}
	}
	return b.String()
}
