package swim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/protocols"
)

// Name is the protocol's name in specs and plans.
const Name = "swim"

func init() {
	protocols.Default.MustRegister(NewModule(DefaultConfig()))
}

// NewModule is the swim module with timing c, for a registry of one's
// own (tests, or a node tuned for its network); the default registry
// holds NewModule(DefaultConfig()).
func NewModule(c Config) protocols.Module {
	return protocols.Module{
		Name:     Name,
		Provides: []string{"membership"},
		New:      func() protocols.Instance { return New(c) },
	}
}

// Join backoff while no join address answers: a node started together
// with its peers finds them within a fraction of a second, and a lone one
// does not keep hammering the network.
const (
	joinBackoffMin = 50 * time.Millisecond
	joinBackoffMax = 5 * time.Second
)

type phase int

const (
	phaseNew phase = iota
	phaseProvisioned
	phaseStarting
	phaseRunning
	phaseClosed
)

// Swim is one swim instance: hashicorp/memberlist run over the Transport
// layer below it, offering protocols.Membership. See the package
// documentation for its lifecycle.
type Swim struct {
	cfg Config

	// Set by Provision, read-only afterwards.
	id        string // the node's ID, memberlist's node name
	nodeClass string
	dataClass string
	service   string // "swim/" + data class
	joins     []string
	below     protocols.Transport
	key       []byte
	envLog    *slog.Logger // env.Logger, possibly nil
	log       *slog.Logger // never nil

	// queue gossips leave intents (see intent); numAlive sizes it.
	queue    *memberlist.TransmitLimitedQueue
	numAlive atomic.Int32

	// meta is set before memberlist is created and never changes, so
	// memberlist's goroutines read it without a lock.
	meta []byte

	// life ends at Close: it stops the join loop and the reconnect loop.
	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	phase   phase
	stopped bool // after Close: no more events
	ml      *memberlist.Memberlist
	addr    string
	session string
	view    map[string]*entry
	intents map[intent]time.Time // leave intents known, and when learnt
	subs    map[*subscriber]struct{}
	// now is the view's clock (time.Now; tests move it), for state-change
	// times and retention.
	now func() time.Time
}

// entry is one member of the view.
type entry struct {
	m       protocols.Member
	session string
	since   time.Time // of the last state change
}

// New returns an unprovisioned instance with timing c (copied).
func New(c Config) *Swim {
	life, cancel := context.WithCancel(context.Background())
	s := &Swim{
		cfg:     c,
		life:    life,
		cancel:  cancel,
		view:    map[string]*entry{},
		intents: map[intent]time.Time{},
		subs:    map[*subscriber]struct{}{},
		log:     slog.New(slog.DiscardHandler),
		now:     time.Now,
	}
	s.queue = &memberlist.TransmitLimitedQueue{
		// As memberlist's own queue: a broadcast is sent
		// RetransmitMult * ceil(log10(N+1)) times. N comes from an atomic
		// rather than from memberlist, because the queue is consulted on
		// memberlist's goroutines, some of which hold its node lock.
		NumNodes:       func() int { return int(max(s.numAlive.Load(), 1)) },
		RetransmitMult: memberlist.DefaultLANConfig().RetransmitMult,
	}
	return s
}

// Provision takes the Transport below and the group's gossip key from
// env. Swim takes no parameters: its timing is the module's Config.
func (s *Swim) Provision(env *protocols.Env) error {
	if env == nil {
		return errors.New("swim: provision: no environment")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase != phaseNew {
		return errors.New("swim: provisioned twice")
	}
	if len(env.Params) > 0 {
		names := make([]string, 0, len(env.Params))
		for n := range env.Params {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("swim: unknown parameter %q: swim takes none", names[0])
	}
	below, err := protocols.Need[protocols.Transport](env, Name, "transport")
	if err != nil {
		return err
	}
	// Per group, not per class: every class's stack of one group admits
	// the same nodes. The Label below keeps the classes apart.
	key, err := env.DeriveKey("swim/gossip", 32)
	if err != nil {
		return fmt.Errorf("swim: gossip key: %w", err)
	}
	s.id = env.Node.ID
	s.nodeClass = env.Node.NodeClass
	s.dataClass = env.Class
	s.service = Name + "/" + env.Class
	s.joins = slices.Clone(env.Node.Join)
	s.below = below
	s.key = key
	s.envLog = env.Logger
	if env.Logger != nil {
		s.log = env.Logger
	}
	s.phase = phaseProvisioned
	return nil
}

// Validate checks the configuration and what Provision took from env.
func (s *Swim) Validate() error {
	s.mu.Lock()
	p := s.phase
	s.mu.Unlock()
	if p == phaseNew {
		return errors.New("swim: validate before provision")
	}
	return s.validate()
}

func (s *Swim) validate() error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	if s.id == "" {
		return errors.New("swim: env.Node.ID is empty: memberlist needs a unique node name")
	}
	if s.dataClass == "" {
		return errors.New("swim: env.Class is empty")
	}
	if len(s.service) > memberlist.LabelMaxSize {
		return fmt.Errorf("swim: env.Class %q: longer than memberlist's label limit (%d bytes)", s.dataClass, memberlist.LabelMaxSize)
	}
	if _, err := encodeMeta(meta{Class: s.nodeClass, Session: rand.Text()}); err != nil {
		return fmt.Errorf("swim: %w", err)
	}
	for _, a := range s.joins {
		if identity.IsID(a) {
			continue // resolved by the transport (joinAddrs)
		}
		// memberlist resolves a host name itself, with DNS outside rime's
		// Network; only addresses keep every byte on the Network.
		if _, _, err := splitAddr(a); err != nil {
			return fmt.Errorf("swim: env.Node.Join: %w", err)
		}
	}
	return nil
}

// joinAddrs are the join entries as the transport below addresses them:
// resolved by a protocols.Resolver, or, without one, the entries that
// are addresses (node IDs need a transport that resolves them).
func (s *Swim) joinAddrs() []string {
	r, resolves := s.below.(protocols.Resolver)
	var out []string
	for _, a := range s.joins {
		switch {
		case resolves:
			if addr, ok := r.Resolve(a); ok {
				out = append(out, addr)
			}
		case !identity.IsID(a):
			out = append(out, a)
		}
	}
	return out
}

// Start creates the memberlist on the Transport's endpoint and joins the
// group through env.Node.Join, retrying with backoff until one of them
// answers or ctx ends (then the instance is closed and the error says
// why). A node without join addresses starts a group of its own.
func (s *Swim) Start(ctx context.Context) error {
	s.mu.Lock()
	switch s.phase {
	case phaseNew:
		s.mu.Unlock()
		return errors.New("swim: start before provision")
	case phaseClosed:
		s.mu.Unlock()
		return fmt.Errorf("swim: start: %w", protocols.ErrClosed)
	case phaseStarting, phaseRunning:
		s.mu.Unlock()
		return errors.New("swim: started twice")
	}
	s.phase = phaseStarting
	s.mu.Unlock()

	ml, err := s.create()
	if err != nil {
		s.closeWith(false)
		return err
	}
	s.mu.Lock()
	if s.phase == phaseClosed { // Close ran while memberlist was being created
		s.mu.Unlock()
		ml.Shutdown()
		return fmt.Errorf("swim: start: %w", protocols.ErrClosed)
	}
	s.ml = ml
	s.mu.Unlock()

	if err := s.join(ctx, ml); err != nil {
		s.closeWith(false)
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase == phaseClosed {
		return fmt.Errorf("swim: start: %w", protocols.ErrClosed)
	}
	s.phase = phaseRunning
	s.wg.Add(1)
	go s.reconnect(ml)
	return nil
}

// create builds memberlist's configuration and the memberlist itself.
func (s *Swim) create() (*memberlist.Memberlist, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	ep := s.below.Endpoint()
	if ep == nil {
		return nil, errors.New("swim: the transport below has no endpoint (not started?)")
	}
	session := rand.Text()
	m, err := encodeMeta(meta{Class: s.nodeClass, Session: session})
	if err != nil {
		return nil, fmt.Errorf("swim: %w", err)
	}
	s.meta = m
	s.mu.Lock()
	s.addr, s.session = ep.Addr(), session
	s.mu.Unlock()

	tr, err := NewEndpointTransport(ep, s.service)
	if err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(s.memberlistConfig(tr))
	if err != nil {
		tr.Shutdown()
		return nil, fmt.Errorf("swim: create memberlist: %w", err)
	}
	return ml, nil
}

// memberlistConfig is memberlist's LAN profile with these changes.
func (s *Swim) memberlistConfig(tr memberlist.NodeAwareTransport) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	// Its default is the host name: every in-process node would collide,
	// and the group knows its nodes by their key-derived IDs anyway.
	c.Name = s.id
	// Every byte through rime's Network, so faults reach failure detection
	// and there is one seam for sockets, relays and tests. BindAddr,
	// BindPort and AdvertiseAddr are then unused: the transport advertises
	// the endpoint's address.
	c.Transport = tr
	// The key is per group (all classes share it); the label is
	// authenticated with each message, so one class's gossip can never be
	// taken for another's.
	c.Label = s.service
	// Without the group's key a node can neither read the gossip nor be
	// heard: it cannot join. Verifying both ways (memberlist's default,
	// set here so it stays so) refuses plaintext.
	c.SecretKey = slices.Clone(s.key)
	c.GossipVerifyIncoming = true
	c.GossipVerifyOutgoing = true
	// The node class rides in the metadata; the view is kept from events.
	c.Delegate = delegate{s}
	c.Events = events{s}
	// Never stderr: through the layer's logger, or nowhere.
	c.Logger = memberlistLogger(s.envLog)
	c.LogOutput = nil
	// Timing from Config.
	c.ProbeInterval = s.cfg.ProbeInterval
	c.ProbeTimeout = s.cfg.ProbeTimeout
	c.SuspicionMult = s.cfg.SuspicionMult
	c.GossipInterval = s.cfg.GossipInterval
	c.PushPullInterval = s.cfg.PushPullInterval
	// memberlist ties these two (both 30 s in the LAN profile): a dead
	// member still hears gossip, and so a chance to refute, for as long as
	// one anti-entropy round.
	c.GossipToTheDeadTime = s.cfg.PushPullInterval
	// A node that comes back at another address (a phone that changed
	// networks) is refused as a conflict by default for as long as the old
	// address is remembered; the group key already keeps impostors out,
	// so let it reclaim its name once it has been dead a protocol period.
	c.DeadNodeReclaimTime = s.cfg.ProbeInterval
	return c
}

// join joins the group through the configured addresses other than our
// own, retrying with backoff until one answers, ctx ends or Close.
func (s *Swim) join(ctx context.Context, ml *memberlist.Memberlist) error {
	var addrs []string
	for _, a := range s.joinAddrs() {
		if a != s.addr {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	wait := joinBackoffMin
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("swim: join %s: %w", strings.Join(addrs, ","), err)
		}
		n, err := ml.Join(addrs)
		if n > 0 {
			s.log.Info("swim: joined", "via", n, "of", addrs)
			return nil
		}
		if err == nil {
			err = errors.New("no address answered")
		}
		s.log.Debug("swim: join failed; retrying", "addrs", addrs, "in", wait, "err", err)
		// Jitter, so nodes started together do not retry in lockstep.
		t := time.NewTimer(wait/2 + mrand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("swim: join %s: %w: %w", strings.Join(addrs, ","), ctx.Err(), err)
		case <-s.life.Done():
			t.Stop()
			return fmt.Errorf("swim: join: %w", protocols.ErrClosed)
		case <-t.C:
		}
		wait = min(2*wait, joinBackoffMax)
	}
}

// reconnect tries, every ReconnectInterval, one member believed dead:
// memberlist never probes a dead member again, so the two sides of a
// healed partition, or a crashed node that came back at its address but
// whose join addresses are all gone, would otherwise never merge. A
// push/pull with it, which is what Join is, carries each side's news.
func (s *Swim) reconnect(ml *memberlist.Memberlist) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		dead := deadAddrs(s.view, s.id)
		s.mu.Unlock()
		if len(dead) == 0 {
			continue
		}
		addr := dead[mrand.N(len(dead))]
		if _, err := ml.Join([]string{addr}); err != nil {
			s.log.Debug("swim: reconnect failed", "addr", addr, "err", err)
		} else {
			s.log.Info("swim: reconnected", "addr", addr)
		}
	}
}

// deadAddrs lists the addresses of dead members worth trying again:
// not one where a live member now is, since that is a node that came back
// with a new identity (a lost disk), and joining it again and again
// would never revive the old one.
func deadAddrs(view map[string]*entry, self string) []string {
	taken := map[string]bool{}
	for _, e := range view {
		if e.m.State != protocols.MemberDead {
			taken[e.m.Addr] = true
		}
	}
	var dead []string
	for id, e := range view {
		if id != self && e.m.State == protocols.MemberDead && !taken[e.m.Addr] {
			dead = append(dead, e.m.Addr)
		}
	}
	return dead
}

// Close leaves the group (gossiping a leave intent, then memberlist's
// Leave, each within LeaveTimeout), shuts memberlist down and ends every
// subscription. It is idempotent.
func (s *Swim) Close() error {
	s.closeWith(true)
	return s.closeErr
}

func (s *Swim) closeWith(leave bool) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.phase = phaseClosed
		ml := s.ml
		s.mu.Unlock()
		s.cancel()
		var errs []error
		if ml != nil {
			if leave {
				s.leave(ml)
			}
			if err := ml.Shutdown(); err != nil {
				errs = append(errs, fmt.Errorf("swim: shutdown: %w", err))
			}
		}
		s.wg.Wait()
		s.mu.Lock()
		s.stopped = true
		for sub := range s.subs {
			sub.end()
		}
		s.mu.Unlock()
		s.closeErr = errors.Join(errs...)
	})
}

// leave says goodbye: first swim's intent, so others will know the
// coming death is a leave, then memberlist's own leave message. Half of
// LeaveTimeout each at most. Running out of time is not an error: the
// members not told will see this node as dead instead.
func (s *Swim) leave(ml *memberlist.Memberlist) {
	start := time.Now()
	s.mu.Lock()
	in := intent{ID: s.id, Session: s.session}
	s.learnLocked(in, start)
	s.mu.Unlock()
	if s.numAlive.Load() > 1 {
		done := make(chan struct{})
		s.queue.QueueBroadcast(&intentBroadcast{in: in, msg: encodeIntent(in), done: done})
		t := time.NewTimer(s.cfg.LeaveTimeout / 2)
		select {
		case <-done:
		case <-t.C:
			s.log.Warn("swim: leave intent not fully sent before timeout")
		}
		t.Stop()
	}
	// A zero timeout would make Leave wait forever.
	rest := max(s.cfg.LeaveTimeout-time.Since(start), time.Millisecond)
	if err := ml.Leave(rest); err != nil {
		s.log.Warn("swim: leave", "err", err)
	}
}

// Self is this node. Its address is known once Start has run.
func (s *Swim) Self() protocols.Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.view[s.id]; ok {
		return e.m
	}
	st := protocols.MemberAlive
	if s.phase == phaseClosed {
		st = protocols.MemberLeft
	}
	return protocols.Member{ID: s.id, Addr: s.addr, NodeClass: s.nodeClass, State: st}
}

// Members is the view, this node included, sorted by ID. A member is
// alive, dead or left; memberlist v0.7.0 does not say when it suspects
// a member (see intent), so MemberSuspect never appears: a suspect stays
// alive until it is declared dead. Dead and left members stay for
// Config.Retention.
func (s *Swim) Members() []protocols.Member {
	s.mu.Lock()
	s.pruneLocked(s.now())
	out := make([]protocols.Member, 0, len(s.view)+1)
	for _, e := range s.view {
		out = append(out, e.m)
	}
	_, self := s.view[s.id]
	s.mu.Unlock()
	if !self {
		out = append(out, s.Self())
	}
	slices.SortFunc(out, func(a, b protocols.Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Subscribe delivers every later change of the view: a member that
// joins or comes back (alive), changes its metadata (alive), or goes
// (dead or left; a member first seen dead may be reported again as left
// when its leave intent arrives late). Each subscriber has its own
// unbounded queue, so a slow one never holds back memberlist or the
// others. After Close the channel is closed once the queued events are
// read; cancel closes it at once and frees the queue.
func (s *Swim) Subscribe() (<-chan protocols.MemberEvent, func()) {
	sub := newSubscriber()
	s.mu.Lock()
	if s.stopped {
		sub.end()
	} else {
		s.subs[sub] = struct{}{}
	}
	s.mu.Unlock()
	go sub.run()
	return sub.out, func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		sub.cancel()
	}
}

// observe records what memberlist reported of node n. It runs on
// memberlist's goroutines under memberlist's node lock, so it must not
// call memberlist.
func (s *Swim) observe(n *memberlist.Node, st protocols.MemberState) {
	m, err := decodeMeta(n.Meta)
	if err != nil {
		s.log.Warn("swim: member without readable metadata", "member", n.Name, "err", err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if _, ok := s.intents[intent{ID: n.Name, Session: m.Session}]; ok && st == protocols.MemberDead {
		st = protocols.MemberLeft
	}
	mem := protocols.Member{ID: n.Name, Addr: n.Address(), NodeClass: m.Class, State: st}
	if e, ok := s.view[n.Name]; ok && e.m == mem && e.session == m.Session {
		return
	}
	s.view[n.Name] = &entry{m: mem, session: m.Session, since: now}
	s.changedLocked(mem, now)
}

// learnLocked records a leave intent and reports whether it is news. A
// member already seen dead in that session has in fact left.
func (s *Swim) learnLocked(in intent, now time.Time) bool {
	if _, ok := s.intents[in]; ok {
		return false
	}
	s.intents[in] = now
	if e, ok := s.view[in.ID]; ok && e.session == in.Session && e.m.State == protocols.MemberDead && !s.stopped {
		e.m.State = protocols.MemberLeft
		e.since = now
		s.changedLocked(e.m, now)
	}
	return true
}

// changedLocked follows a change of the view: recount, tell subscribers,
// forget what is past retention.
func (s *Swim) changedLocked(m protocols.Member, now time.Time) {
	var n int32
	for _, e := range s.view {
		if e.m.State == protocols.MemberAlive {
			n++
		}
	}
	s.numAlive.Store(n)
	ev := protocols.MemberEvent{Member: m}
	for sub := range s.subs {
		sub.push(ev)
	}
	s.pruneLocked(now)
}

func (s *Swim) pruneLocked(now time.Time) {
	for id, e := range s.view {
		gone := e.m.State == protocols.MemberDead || e.m.State == protocols.MemberLeft
		if id != s.id && gone && now.Sub(e.since) > s.cfg.Retention {
			delete(s.view, id)
		}
	}
	for in, at := range s.intents {
		if now.Sub(at) > s.cfg.Retention {
			delete(s.intents, in)
		}
	}
}

// events is memberlist's EventDelegate. memberlist reports joins (and
// returns from the dead), metadata updates, and deaths; whether a death
// was a leave is decided by the intents.
type events struct{ s *Swim }

func (e events) NotifyJoin(n *memberlist.Node)   { e.s.observe(n, protocols.MemberAlive) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.s.observe(n, protocols.MemberAlive) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.s.observe(n, protocols.MemberDead) }

// delegate is memberlist's Delegate: metadata, and the gossip and
// push/pull state that carry leave intents.
type delegate struct{ s *Swim }

func (d delegate) NodeMeta(limit int) []byte {
	if len(d.s.meta) > limit { // validate() keeps it below MetaMaxSize
		return nil
	}
	return d.s.meta
}

// NotifyMsg takes a leave intent from gossip and passes it on the first
// time: a broadcast the sender alone repeats reaches only part of the
// group (see LIBRARIES.md).
func (d delegate) NotifyMsg(b []byte) {
	in, err := decodeIntent(b)
	if err != nil {
		d.s.log.Warn("swim: unreadable gossip", "err", err)
		return
	}
	d.s.mu.Lock()
	news := d.s.learnLocked(in, d.s.now())
	d.s.mu.Unlock()
	if news {
		d.s.queue.QueueBroadcast(&intentBroadcast{in: in, msg: encodeIntent(in)})
	}
}

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.s.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(bool) []byte {
	var st state
	d.s.mu.Lock()
	for in := range d.s.intents {
		st.Leaving = append(st.Leaving, in)
	}
	d.s.mu.Unlock()
	b, err := encodeState(st)
	if err != nil {
		d.s.log.Error("swim: encode push/pull state", "err", err)
		return nil
	}
	return b
}

func (d delegate) MergeRemoteState(b []byte, _ bool) {
	st, err := decodeState(b)
	if err != nil {
		d.s.log.Warn("swim: unreadable push/pull state", "err", err)
		return
	}
	now := d.s.now()
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	for _, in := range st.Leaving {
		if in.ID != "" && in.Session != "" {
			d.s.learnLocked(in, now)
		}
	}
}

// subscriber is one Subscribe: an unbounded queue drained into out by
// its own goroutine.
type subscriber struct {
	out  chan protocols.MemberEvent
	wake chan struct{} // a push or an end happened
	stop chan struct{} // cancel
	once sync.Once

	mu    sync.Mutex
	queue []protocols.MemberEvent
	ended bool
}

func newSubscriber() *subscriber {
	return &subscriber{
		out:  make(chan protocols.MemberEvent),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
}

func (u *subscriber) push(ev protocols.MemberEvent) {
	u.mu.Lock()
	u.queue = append(u.queue, ev)
	u.mu.Unlock()
	u.signal()
}

// end says no event will follow those queued.
func (u *subscriber) end() {
	u.mu.Lock()
	u.ended = true
	u.mu.Unlock()
	u.signal()
}

func (u *subscriber) cancel() { u.once.Do(func() { close(u.stop) }) }

func (u *subscriber) signal() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *subscriber) run() {
	defer close(u.out)
	for {
		u.mu.Lock()
		if len(u.queue) == 0 {
			u.queue = nil // let a burst's backing array go
			ended := u.ended
			u.mu.Unlock()
			if ended {
				return
			}
			select {
			case <-u.wake:
				continue
			case <-u.stop:
				return
			}
		}
		ev := u.queue[0]
		u.queue = u.queue[1:]
		u.mu.Unlock()
		select {
		case u.out <- ev:
		case <-u.stop:
			return
		}
	}
}

// memberlistLogger turns memberlist's "[LEVEL] memberlist: ..." lines
// into records of l at that level; with no l, into nothing.
func memberlistLogger(l *slog.Logger) *log.Logger {
	if l == nil {
		return log.New(io.Discard, "", 0)
	}
	return log.New(slogWriter{l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	level := slog.LevelInfo
	if tag, rest, ok := strings.Cut(msg, "] "); ok && strings.HasPrefix(tag, "[") {
		switch tag[1:] {
		case "DEBUG":
			msg, level = rest, slog.LevelDebug
		case "INFO":
			msg, level = rest, slog.LevelInfo
		case "WARN":
			msg, level = rest, slog.LevelWarn
		case "ERR", "ERROR":
			msg, level = rest, slog.LevelError
		}
	}
	ctx := context.Background()
	if w.l.Enabled(ctx, level) {
		w.l.Log(ctx, level, strings.TrimPrefix(msg, "memberlist: "), "lib", "memberlist")
	}
	return len(p), nil
}

var (
	_ protocols.Instance       = (*Swim)(nil)
	_ protocols.Membership     = (*Swim)(nil)
	_ memberlist.EventDelegate = events{}
	_ memberlist.Delegate      = delegate{}
	_ memberlist.Broadcast     = (*intentBroadcast)(nil)
)
