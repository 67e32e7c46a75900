package hub

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rime-dev/rime/identity"
)

// ReplayWindow bounds how far a request's Time may be from the hub's
// clock, and so how long the state remembers a signer's nonces. It is a
// constant, not configuration, because every replica must apply the same
// rule to the same log.
const ReplayWindow = 2 * time.Minute

// HubGroup is the group whose members are the hub's own replicas. It is
// created by the first leader from the bootstrap list; a new replica joins
// the hub by being invited to it and accepting, and is removed like any
// member. The leader keeps the Raft shard's voters equal to its members.
const HubGroup = "_hub"

// MaxDecisions is how many decisions the state keeps (the newest).
const MaxDecisions = 1024

// Namespace conventions the hub itself reads.
const (
	// ClassPrefix+class holds a ClassInfo (JSON): what placement and read
	// decisions know of a data class. Absent, a class is taken as
	// confidential and unencrypted, the cautious reading.
	ClassPrefix = "/classes/"
	// ChannelPrefix+name holds a ChannelRef (JSON).
	ChannelPrefix = "/channels/"
	// ProcessPrefix+name: a process's entry (opaque to the hub).
	ProcessPrefix = "/processes/"
	// NodeClassPrefix+nodeClass+"/trust" holds the trust the group
	// declares of a node class ("member", "honest-but-curious",
	// "byzantine"). Absent, DefaultTrust.
	NodeClassPrefix = "/env/nodes/"
	// DefaultTrust of a node class the group declares nothing of: such a
	// node may hold encrypted or non-confidential data, never plaintext
	// of a confidential class.
	DefaultTrust = TrustHonestButCurious
)

// TrustPath is where a group declares the trust of a node class.
func TrustPath(nodeClass string) string { return NodeClassPrefix + nodeClass + "/trust" }

// ClassInfo is what the hub knows of a data class of a group.
type ClassInfo struct {
	Confidential bool `json:"confidential"`
	Encrypted    bool `json:"encrypted"`
}

// ChannelRef is a channel reference (checkpointed channels, section 2.3):
// enough for a client to connect to a class's channel: the stack, bottom
// up, with each layer's parameters, and the nodes that serve it.
type ChannelRef struct {
	Class string       `json:"class"`
	Stack []StackLayer `json:"stack"`
	// Nodes serve the channel; empty means: look up the class's placement.
	Nodes []string `json:"nodes,omitempty"`
}

// StackLayer is one protocol instance of a channel's stack.
type StackLayer struct {
	Layer    string          `json:"layer"`
	Protocol string          `json:"protocol"`
	Params   json.RawMessage `json:"params,omitempty"`
}

// NodeRecord is a registered node.
type NodeRecord struct {
	ID           string `json:"id"`
	Key          []byte `json:"key"`
	Class        string `json:"class"`
	Reachability string `json:"reachability"`
	Addr         string `json:"addr,omitempty"`
	Registered   int64  `json:"registered"`
}

// MemberRecord is a node's membership of a group.
type MemberRecord struct {
	Admin  bool  `json:"admin,omitempty"`
	Joined int64 `json:"joined"`
}

// InviteRecord is a pending invitation.
type InviteRecord struct {
	Key  []byte `json:"key"`
	By   string `json:"by"`
	Time int64  `json:"time"`
}

// GroupRecord is one group.
type GroupRecord struct {
	Name string `json:"name"`
	// Epoch counts membership changes; group keys rotate with it.
	Epoch     uint64                  `json:"epoch"`
	Members   map[string]MemberRecord `json:"members"`
	Invites   map[string]InviteRecord `json:"invites"`
	Namespace map[string][]byte       `json:"namespace"`
	// Placement: data class -> IDs of the nodes holding it, sorted.
	Placement map[string][]string `json:"placement"`
}

type nonceRecord struct {
	Time   int64  `json:"time"`
	Digest string `json:"digest"`
	Code   string `json:"code,omitempty"`
	Msg    string `json:"msg,omitempty"`
}

// DecisionRecord is a decision as the log applied it.
type DecisionRecord struct {
	Index    uint64   `json:"index"`
	Time     int64    `json:"time"`
	Signer   string   `json:"signer"`
	Op       string   `json:"op"`
	Input    Input    `json:"input"`
	Decision Decision `json:"decision"`
}

// State is the hub's replicated state. Apply is its only mutator; it is
// pure (no clock, no I/O, no randomness: the time is the command's), so
// every replica that applies the same log holds the same State.
type State struct {
	Initialized bool `json:"initialized"`
	// Clock is the largest command time applied: the hub's time, which
	// never goes back even when a new leader's clock is behind.
	Clock  int64                             `json:"clock"`
	Index  uint64                            `json:"index"`
	Nodes  map[string]*NodeRecord            `json:"nodes"`
	Groups map[string]*GroupRecord           `json:"groups"`
	Nonces map[string]map[uint64]nonceRecord `json:"nonces"`
	// PrunedAt is the Clock at which nonces out of the window were last
	// forgotten; pruning every quarter window keeps Apply O(1) amortized.
	PrunedAt  int64            `json:"pruned_at"`
	Decisions []DecisionRecord `json:"decisions"`
}

// NewState is the empty state.
func NewState() *State {
	return &State{Nodes: map[string]*NodeRecord{}, Groups: map[string]*GroupRecord{}, Nonces: map[string]map[uint64]nonceRecord{}}
}

// Command is one entry of the hub's log.
type Command struct {
	// Now is the proposing leader's clock, Unix nanoseconds.
	Now int64 `json:"now"`
	// Init, in the first command only: the bootstrap replicas' IDs.
	Init []string `json:"init,omitempty"`
	// Req is the signed request (nil for Init).
	Req *Request `json:"req,omitempty"`
	// Input and Decision: the trust decision the leader took, for ops
	// that need one. Apply refuses the command if the state no longer
	// gives the same Input.
	Input    *Input    `json:"input,omitempty"`
	Decision *Decision `json:"decision,omitempty"`
}

// Outcome is what applying a command produced.
type Outcome struct {
	Code     string          `json:"code,omitempty"`
	Msg      string          `json:"msg,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Decision *Decision       `json:"decision,omitempty"`
}

// Err is the outcome's error, or nil.
func (o Outcome) Err() error {
	if o.Code == "" {
		return nil
	}
	return errorOf(o.Code, o.Msg)
}

func fail(err error) Outcome { return Outcome{Code: codeOf(err), Msg: err.Error()} }

// maxCommandSize bounds one log entry.
const maxCommandSize = 2 * maxRequestSize

// EncodeCommand is a command's log form.
func EncodeCommand(c Command) ([]byte, error) { return json.Marshal(c) }

// DecodeCommand parses a log entry strictly.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := decodeStrict(b, maxCommandSize, &c); err != nil {
		return Command{}, fmt.Errorf("hub: command: %w", err)
	}
	if (c.Req == nil) == (c.Init == nil) {
		return Command{}, fmt.Errorf("hub: command: %w: want exactly one of init and req", ErrBadRequest)
	}
	if (c.Input == nil) != (c.Decision == nil) {
		return Command{}, fmt.Errorf("hub: command: %w: input and decision go together", ErrBadRequest)
	}
	return c, nil
}

// Apply applies one command at log index idx.
func (s *State) Apply(idx uint64, c Command) Outcome {
	s.Index = idx
	if c.Now > s.Clock {
		s.Clock = c.Now
	}
	if c.Init != nil {
		return s.applyInit(c.Init)
	}
	req := c.Req
	if err := s.admit(req); err != nil {
		return fail(err)
	}
	o := s.applyRequest(idx, c)
	// Remember the nonce and the outcome, so a second copy is refused
	// and can say what happened to the first.
	s.Nonces[req.Signer][req.Nonce] = nonceRecord{Time: req.Time, Digest: req.digest(), Code: o.Code, Msg: o.Msg}
	return o
}

func (s *State) applyInit(ids []string) Outcome {
	if s.Initialized {
		return fail(fmt.Errorf("%w: the hub is initialized", ErrExists))
	}
	s.Initialized = true
	g := newGroup(HubGroup)
	for _, id := range ids {
		g.Members[id] = MemberRecord{Admin: true, Joined: s.Clock}
	}
	s.Groups[HubGroup] = g
	return Outcome{}
}

// admit checks a request's signature, time and nonce against the state,
// and forgets the signer's nonces that have left the window.
func (s *State) admit(req *Request) error {
	key, err := s.keyOf(req)
	if err != nil {
		return err
	}
	if err := req.Verify(key); err != nil {
		return err
	}
	w := int64(ReplayWindow)
	if req.Time < s.Clock-w || req.Time > s.Clock+w {
		return fmt.Errorf("%w: request time %s, hub time %s", ErrStale, time.Unix(0, req.Time).UTC().Format(time.RFC3339), time.Unix(0, s.Clock).UTC().Format(time.RFC3339))
	}
	if s.Clock-s.PrunedAt > w/4 {
		s.PrunedAt = s.Clock
		for signer, ns := range s.Nonces {
			for n, r := range ns {
				if r.Time < s.Clock-w {
					delete(ns, n)
				}
			}
			if len(ns) == 0 {
				delete(s.Nonces, signer)
			}
		}
	}
	ns := s.Nonces[req.Signer]
	if ns == nil {
		ns = map[uint64]nonceRecord{}
		s.Nonces[req.Signer] = ns
	}
	if r, ok := ns[req.Nonce]; ok {
		if r.Digest == req.digest() {
			outcome := "applied"
			if r.Code != "" {
				outcome = "refused: " + r.Msg
			}
			return fmt.Errorf("%w: this request was seen before and %s", ErrReplay, outcome)
		}
		return fmt.Errorf("%w: nonce %d of %s already used", ErrReplay, req.Nonce, req.Signer)
	}
	return nil
}

// keyOf is the key a request must be signed with: its own for register
// (the hub learns it there), the registered one otherwise.
func (s *State) keyOf(req *Request) (ed25519.PublicKey, error) {
	if n, ok := s.Nodes[req.Signer]; ok {
		if req.Key != nil && !bytes.Equal(req.Key, n.Key) {
			return nil, fmt.Errorf("%w: key differs from %s's registered key", ErrBadSignature, req.Signer)
		}
		return n.Key, nil
	}
	if req.Op == OpRegister || req.Op == OpHello {
		return req.Key, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnregistered, req.Signer)
}

func (s *State) applyRequest(idx uint64, c Command) Outcome {
	req := c.Req
	want, err := s.InputFor(req)
	if err != nil {
		return fail(err)
	}
	if want != nil {
		if c.Input == nil {
			return fail(fmt.Errorf("%w: %s needs a decision", ErrBadRequest, req.Op))
		}
		if !reflect.DeepEqual(*want, *c.Input) {
			return fail(fmt.Errorf("%w: decided on %+v, state now gives %+v", ErrConflict, *c.Input, *want))
		}
		s.record(idx, req, *c.Input, *c.Decision)
		if !c.Decision.Allow {
			return Outcome{Code: codeOf(ErrDenied), Msg: fmt.Sprintf("%s: %s", ErrDenied, strings.Join(c.Decision.Reasons, "; ")), Decision: c.Decision}
		}
	}
	o := s.mutate(req)
	o.Decision = c.Decision
	return o
}

func (s *State) record(idx uint64, req *Request, in Input, d Decision) {
	s.Decisions = append(s.Decisions, DecisionRecord{Index: idx, Time: s.Clock, Signer: req.Signer, Op: req.Op, Input: in, Decision: d})
	if n := len(s.Decisions); n > MaxDecisions {
		s.Decisions = append([]DecisionRecord(nil), s.Decisions[n-MaxDecisions:]...)
	}
}

// InputFor is the trust decision an op needs, computed from the state,
// or nil for ops that need none. Structural problems (no such group, not
// a member where membership is required) are errors: no decision is
// taken for a request that cannot apply.
func (s *State) InputFor(req *Request) (*Input, error) {
	switch req.Op {
	case OpInvite:
		var a InviteArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return nil, err
		}
		g, err := s.group(a.Group)
		if err != nil {
			return nil, err
		}
		if len(a.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: invitee key of %d bytes", ErrBadRequest, len(a.Key))
		}
		if _, ok := g.Members[identity.IDOf(a.Key)]; ok {
			return nil, fmt.Errorf("%w: %s is a member of %s", ErrExists, identity.IDOf(a.Key), a.Group)
		}
		in := s.nodeInput(ActionInvite, g, req.Signer)
		return &in, nil
	case OpAccept:
		var a GroupArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return nil, err
		}
		g, err := s.group(a.Group)
		if err != nil {
			return nil, err
		}
		if _, ok := s.Nodes[req.Signer]; !ok {
			return nil, fmt.Errorf("%w: %s must register before joining", ErrUnregistered, req.Signer)
		}
		if _, ok := g.Members[req.Signer]; ok {
			return nil, fmt.Errorf("%w: %s is a member of %s", ErrExists, req.Signer, a.Group)
		}
		in := s.nodeInput(ActionJoin, g, req.Signer)
		return &in, nil
	case OpPlace:
		var a PlaceArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return nil, err
		}
		g, err := s.memberGroup(a.Group, req.Signer)
		if err != nil {
			return nil, err
		}
		if a.Class == "" || len(a.Class) > 128 {
			return nil, fmt.Errorf("%w: class %q", ErrBadRequest, a.Class)
		}
		if _, ok := s.Nodes[a.Node]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrUnregistered, a.Node)
		}
		in := s.nodeInput(ActionPlace, g, a.Node)
		in.Data = s.classInput(g, a.Class)
		return &in, nil
	}
	return nil, nil
}

// DecisionInput is the input of a decision the hub only answers (read,
// offload, relay), about node in group for class.
func (s *State) DecisionInput(action Action, group, node, class string) (Input, error) {
	g, err := s.group(group)
	if err != nil {
		return Input{}, err
	}
	if _, ok := s.Nodes[node]; !ok {
		return Input{}, fmt.Errorf("%w: %s", ErrUnregistered, node)
	}
	in := s.nodeInput(action, g, node)
	if class != "" {
		in.Data = s.classInput(g, class)
	}
	return in, nil
}

func (s *State) nodeInput(a Action, g *GroupRecord, id string) Input {
	n := NodeInput{ID: id, Trust: DefaultTrust}
	if rec, ok := s.Nodes[id]; ok {
		n.Class = rec.Class
		if t, ok := g.Namespace[TrustPath(rec.Class)]; ok {
			switch string(t) {
			case TrustMember, TrustHonestButCurious, TrustByzantine:
				n.Trust = string(t)
			}
		}
	}
	_, n.Member = g.Members[id]
	_, n.Invited = g.Invites[id]
	return Input{Action: a, Group: g.Name, Node: n}
}

func (s *State) classInput(g *GroupRecord, class string) DataInput {
	d := DataInput{Class: class, Confidential: true}
	if b, ok := g.Namespace[ClassPrefix+class]; ok {
		var ci ClassInfo
		if json.Unmarshal(b, &ci) == nil {
			d.Confidential, d.Encrypted = ci.Confidential, ci.Encrypted
		}
	}
	return d
}

func (s *State) group(name string) (*GroupRecord, error) {
	g, ok := s.Groups[name]
	if !ok {
		return nil, fmt.Errorf("%w: group %q", ErrNotFound, name)
	}
	return g, nil
}

func (s *State) memberGroup(name, id string) (*GroupRecord, error) {
	g, err := s.group(name)
	if err != nil {
		return nil, err
	}
	if _, ok := g.Members[id]; !ok {
		return nil, fmt.Errorf("%w: %s is not a member of %s", ErrNotMember, id, name)
	}
	return g, nil
}

func newGroup(name string) *GroupRecord {
	return &GroupRecord{Name: name, Epoch: 1, Members: map[string]MemberRecord{}, Invites: map[string]InviteRecord{},
		Namespace: map[string][]byte{}, Placement: map[string][]string{}}
}

// mutate applies an op whose decision (if any) allowed it.
func (s *State) mutate(req *Request) Outcome {
	switch req.Op {
	case OpRegister:
		var a RegisterArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return fail(err)
		}
		if err := a.validate(); err != nil {
			return fail(err)
		}
		n, ok := s.Nodes[req.Signer]
		if !ok {
			n = &NodeRecord{ID: req.Signer, Key: append([]byte(nil), req.Key...), Registered: s.Clock}
			s.Nodes[req.Signer] = n
		}
		n.Class, n.Reachability, n.Addr = a.Class, a.Reachability, a.Addr
		return Outcome{}
	case OpCreateGroup:
		var a GroupArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return fail(err)
		}
		if err := validGroupName(a.Group); err != nil {
			return fail(err)
		}
		if _, ok := s.Nodes[req.Signer]; !ok {
			return fail(fmt.Errorf("%w: %s must register before creating a group", ErrUnregistered, req.Signer))
		}
		if _, ok := s.Groups[a.Group]; ok {
			return fail(fmt.Errorf("%w: group %q", ErrExists, a.Group))
		}
		g := newGroup(a.Group)
		g.Members[req.Signer] = MemberRecord{Admin: true, Joined: s.Clock}
		s.Groups[a.Group] = g
		return result(GroupEpoch{Epoch: g.Epoch})
	case OpInvite:
		var a InviteArgs
		decodeStrict(req.Body, maxRequestSize, &a) // checked by InputFor
		g := s.Groups[a.Group]
		g.Invites[identity.IDOf(a.Key)] = InviteRecord{Key: append([]byte(nil), a.Key...), By: req.Signer, Time: s.Clock}
		return Outcome{}
	case OpAccept:
		var a GroupArgs
		decodeStrict(req.Body, maxRequestSize, &a)
		g := s.Groups[a.Group]
		if _, ok := g.Invites[req.Signer]; !ok {
			// The policy admitted a node without an invitation; the
			// hub still requires one, since an invitation is the only
			// way a group names the keys it wants.
			return fail(fmt.Errorf("%w: %s has no invitation to %s", ErrDenied, req.Signer, a.Group))
		}
		delete(g.Invites, req.Signer)
		// Every replica is an admin of the hub's group: replicas are peers.
		g.Members[req.Signer] = MemberRecord{Admin: a.Group == HubGroup, Joined: s.Clock}
		g.Epoch++
		return result(GroupEpoch{Epoch: g.Epoch})
	case OpLeave:
		var a GroupArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return fail(err)
		}
		g, err := s.memberGroup(a.Group, req.Signer)
		if err != nil {
			return fail(err)
		}
		s.dropMember(g, req.Signer)
		return result(GroupEpoch{Epoch: g.Epoch})
	case OpRemove:
		var a MemberArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return fail(err)
		}
		g, err := s.memberGroup(a.Group, req.Signer)
		if err != nil {
			return fail(err)
		}
		if !g.Members[req.Signer].Admin {
			return fail(fmt.Errorf("%w: %s may not remove members of %s", ErrNotAdmin, req.Signer, a.Group))
		}
		if _, ok := g.Members[a.Node]; !ok {
			if _, inv := g.Invites[a.Node]; inv {
				delete(g.Invites, a.Node)
				return result(GroupEpoch{Epoch: g.Epoch})
			}
			return fail(fmt.Errorf("%w: %s is not a member of %s", ErrNotFound, a.Node, a.Group))
		}
		s.dropMember(g, a.Node)
		return result(GroupEpoch{Epoch: g.Epoch})
	case OpPut, OpDelete:
		var a PutArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return fail(err)
		}
		g, err := s.memberGroup(a.Group, req.Signer)
		if err != nil {
			return fail(err)
		}
		if err := validPath(a.Path); err != nil {
			return fail(err)
		}
		if req.Op == OpDelete {
			if _, ok := g.Namespace[a.Path]; !ok {
				return fail(fmt.Errorf("%w: %s in %s", ErrNotFound, a.Path, a.Group))
			}
			delete(g.Namespace, a.Path)
			return Outcome{}
		}
		if len(a.Value) > maxValueSize {
			return fail(fmt.Errorf("%w: value of %d bytes, limit %d", ErrBadRequest, len(a.Value), maxValueSize))
		}
		g.Namespace[a.Path] = append([]byte{}, a.Value...)
		return Outcome{}
	case OpPlace:
		var a PlaceArgs
		decodeStrict(req.Body, maxRequestSize, &a)
		g := s.Groups[a.Group]
		nodes := g.Placement[a.Class]
		if i, found := slices.BinarySearch(nodes, a.Node); !found {
			g.Placement[a.Class] = slices.Insert(nodes, i, a.Node)
		}
		return Outcome{}
	case OpUnplace:
		var a PlaceArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return fail(err)
		}
		g, err := s.memberGroup(a.Group, req.Signer)
		if err != nil {
			return fail(err)
		}
		s.unplace(g, a.Class, a.Node)
		return Outcome{}
	}
	return fail(fmt.Errorf("%w: %q is not an operation that changes the hub", ErrBadRequest, req.Op))
}

// GroupEpoch is the result of a membership change.
type GroupEpoch struct {
	Epoch uint64 `json:"epoch"`
}

func result(v any) Outcome {
	b, _ := json.Marshal(v)
	return Outcome{Result: b}
}

// dropMember removes id from g and from every placement of g (a node out
// of the group holds none of its data), moves the epoch on, and keeps an
// admin while members remain.
func (s *State) dropMember(g *GroupRecord, id string) {
	delete(g.Members, id)
	delete(g.Invites, id)
	for class := range g.Placement {
		s.unplace(g, class, id)
	}
	g.Epoch++
	for _, m := range g.Members {
		if m.Admin {
			return
		}
	}
	if ids := sortedKeys(g.Members); len(ids) > 0 {
		m := g.Members[ids[0]]
		m.Admin = true
		g.Members[ids[0]] = m
	}
}

func (s *State) unplace(g *GroupRecord, class, id string) {
	nodes := g.Placement[class]
	if i, found := slices.BinarySearch(nodes, id); found {
		nodes = slices.Delete(nodes, i, i+1)
		if len(nodes) == 0 {
			delete(g.Placement, class)
		} else {
			g.Placement[class] = nodes
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (a RegisterArgs) validate() error {
	switch {
	case a.Class == "" || len(a.Class) > 64:
		return fmt.Errorf("%w: node class %q", ErrBadRequest, a.Class)
	case a.Reachability != "public" && a.Reachability != "nat":
		return fmt.Errorf("%w: reachability %q: want public or nat", ErrBadRequest, a.Reachability)
	case len(a.Addr) > 256:
		return fmt.Errorf("%w: address of %d bytes", ErrBadRequest, len(a.Addr))
	}
	return nil
}

func validGroupName(name string) error {
	if name == "" || len(name) > 128 || strings.HasPrefix(name, "_") {
		return fmt.Errorf("%w: group name %q: 1 to 128 characters, not starting with _", ErrBadRequest, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%w: group name %q: letters, digits, '-', '_' and '.' only", ErrBadRequest, name)
		}
	}
	return nil
}

// validPath accepts /a/b/c: absolute, segments non-empty and not . or ..,
// printable, at most 512 bytes.
func validPath(p string) error {
	if len(p) < 2 || len(p) > 512 || p[0] != '/' || strings.HasSuffix(p, "/") {
		return fmt.Errorf("%w: path %q: want /segment[/segment...], at most 512 bytes", ErrBadRequest, p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: path %q: empty, . or .. segment", ErrBadRequest, p)
		}
		for _, r := range seg {
			if r <= ' ' || r == 0x7f {
				return fmt.Errorf("%w: path %q: control or space character", ErrBadRequest, p)
			}
		}
	}
	return nil
}

// Encode is the state's snapshot: JSON, whose map keys encoding/json
// sorts, so equal states encode to equal bytes.
func (s *State) Encode() ([]byte, error) { return json.Marshal(s) }

// maxSnapshot bounds a snapshot decode.
const maxSnapshot = 1 << 30

// DecodeState parses a snapshot strictly and checks it is whole.
func DecodeState(b []byte) (*State, error) {
	s := NewState()
	if err := decodeStrict(b, maxSnapshot, s); err != nil {
		return nil, fmt.Errorf("hub: snapshot: %w", err)
	}
	if s.Nodes == nil || s.Groups == nil || s.Nonces == nil {
		return nil, fmt.Errorf("hub: snapshot: %w: missing tables", ErrBadRequest)
	}
	for id, n := range s.Nodes {
		if n == nil || n.ID != id || len(n.Key) != ed25519.PublicKeySize || identity.IDOf(n.Key) != id {
			return nil, fmt.Errorf("hub: snapshot: %w: node %q", ErrBadRequest, id)
		}
	}
	for name, g := range s.Groups {
		if g == nil || g.Name != name || g.Members == nil || g.Invites == nil || g.Namespace == nil || g.Placement == nil {
			return nil, fmt.Errorf("hub: snapshot: %w: group %q", ErrBadRequest, name)
		}
	}
	for id, ns := range s.Nonces {
		if ns == nil {
			return nil, fmt.Errorf("hub: snapshot: %w: nonces of %q", ErrBadRequest, id)
		}
	}
	return s, nil
}

// GroupInfo is a group as members see it.
type GroupInfo struct {
	Name      string              `json:"name"`
	Epoch     uint64              `json:"epoch"`
	Members   []MemberInfo        `json:"members"`
	Invites   []string            `json:"invites,omitempty"`
	Placement map[string][]string `json:"placement,omitempty"`
}

// MemberInfo is one member with what the hub knows of its node.
type MemberInfo struct {
	ID           string `json:"id"`
	Admin        bool   `json:"admin,omitempty"`
	Key          []byte `json:"key,omitempty"`
	Class        string `json:"class,omitempty"`
	Reachability string `json:"reachability,omitempty"`
	Addr         string `json:"addr,omitempty"`
}

// Entry is one namespace path and its value.
type Entry struct {
	Path  string `json:"path"`
	Value []byte `json:"value"`
}

// maxList bounds one List answer.
const maxList = 1000

// Read answers a read op. It checks the signature and, against now (the
// answering replica's clock: reads are not in the log), the time; reads
// spend no nonce, so a read replayed within the window is answered again,
// to whoever holds the stream the request came on.
func (s *State) Read(req *Request, now int64) (any, error) {
	key, err := s.keyOf(req)
	if err != nil {
		return nil, err
	}
	if err := req.Verify(key); err != nil {
		return nil, err
	}
	if w := int64(ReplayWindow); req.Time < now-w || req.Time > now+w {
		return nil, fmt.Errorf("%w: request time %d, replica time %d", ErrStale, req.Time, now)
	}
	switch req.Op {
	case OpGetNode:
		var a NodeArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return nil, err
		}
		n, ok := s.Nodes[a.Node]
		if !ok {
			return nil, fmt.Errorf("%w: node %s", ErrNotFound, a.Node)
		}
		return *n, nil
	case OpGetGroup, OpDecisions:
		var a GroupArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return nil, err
		}
		g, err := s.memberGroup(a.Group, req.Signer)
		if err != nil {
			return nil, err
		}
		if req.Op == OpDecisions {
			out := []DecisionRecord{}
			for _, d := range s.Decisions {
				if d.Input.Group == a.Group {
					out = append(out, d)
				}
			}
			return out, nil
		}
		return s.groupInfo(g), nil
	case OpGet, OpList:
		var a PathArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return nil, err
		}
		g, err := s.memberGroup(a.Group, req.Signer)
		if err != nil {
			return nil, err
		}
		if req.Op == OpGet {
			v, ok := g.Namespace[a.Path]
			if !ok {
				return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, a.Path, a.Group)
			}
			return Entry{Path: a.Path, Value: v}, nil
		}
		out := []Entry{}
		for _, p := range sortedKeys(g.Namespace) {
			if strings.HasPrefix(p, a.Path) && len(out) < maxList {
				out = append(out, Entry{Path: p, Value: g.Namespace[p]})
			}
		}
		return out, nil
	case OpPlacement:
		var a PlaceArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return nil, err
		}
		g, err := s.memberGroup(a.Group, req.Signer)
		if err != nil {
			return nil, err
		}
		return append([]string{}, g.Placement[a.Class]...), nil
	case OpAuthorize:
		var a AuthorizeArgs
		if err := decodeStrict(req.Body, maxRequestSize, &a); err != nil {
			return nil, err
		}
		switch a.Action {
		case ActionRead, ActionOffload, ActionRelay:
		default:
			return nil, fmt.Errorf("%w: the hub answers only read, offload and relay decisions here, not %q", ErrBadRequest, a.Action)
		}
		if _, err := s.memberGroup(a.Group, req.Signer); err != nil {
			return nil, err
		}
		return s.DecisionInput(a.Action, a.Group, a.Node, a.Class)
	}
	return nil, fmt.Errorf("%w: %q is not a read", ErrBadRequest, req.Op)
}

func (s *State) groupInfo(g *GroupRecord) GroupInfo {
	gi := GroupInfo{Name: g.Name, Epoch: g.Epoch, Invites: sortedKeys(g.Invites), Placement: map[string][]string{}}
	for _, id := range sortedKeys(g.Members) {
		mi := MemberInfo{ID: id, Admin: g.Members[id].Admin}
		if n, ok := s.Nodes[id]; ok {
			mi.Key, mi.Class, mi.Reachability, mi.Addr = n.Key, n.Class, n.Reachability, n.Addr
		}
		gi.Members = append(gi.Members, mi)
	}
	for c, ns := range g.Placement {
		gi.Placement[c] = append([]string{}, ns...)
	}
	return gi
}

// Replicas are the hub's replicas as the state names them: the members of
// HubGroup, with the addresses they registered (empty if not yet).
func (s *State) Replicas() map[string]string {
	out := map[string]string{}
	if g, ok := s.Groups[HubGroup]; ok {
		for id := range g.Members {
			addr := ""
			if n, ok := s.Nodes[id]; ok {
				addr = n.Addr
			}
			out[id] = addr
		}
	}
	return out
}
