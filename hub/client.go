package hub

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rime-dev/rime/identity"
	"github.com/rime-dev/rime/internal/backoff"
	"github.com/rime-dev/rime/network"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Identity signs every request. Required.
	Identity *identity.Identity
	// Endpoint is the node's attachment to the network. Required.
	Endpoint network.Endpoint
	// Hubs are addresses of hub replicas; the client finds the leader
	// from any of them. Required.
	Hubs []string
	// Timeout bounds a call whose context has no deadline; zero means
	// 10 s, long enough to ride out a leader election.
	Timeout time.Duration
	// Now is the clock requests are stamped with; nil means time.Now.
	Now func() time.Time
}

// Client is a node's Go API to the hub. Every call is one signed request;
// writes go to the leader (a follower answers "not leader, try X" and the
// client follows), reads to any replica. A call is retried across
// replicas until its context ends; resending is safe, since the hub
// applies a request once (see Request).
type Client struct {
	cfg ClientConfig

	mu     sync.Mutex
	leader string
	next   int
	idle   map[string][]*clientConn
	closed bool
}

type clientConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// NewClient checks cfg; it dials nothing until the first call.
func NewClient(cfg ClientConfig) (*Client, error) {
	switch {
	case cfg.Identity == nil || len(cfg.Identity.Public()) == 0:
		return nil, errors.New("hub client: ClientConfig.Identity is missing or not an ed25519 key")
	case cfg.Endpoint == nil:
		return nil, errors.New("hub client: ClientConfig.Endpoint is nil")
	case len(cfg.Hubs) == 0:
		return nil, errors.New("hub client: ClientConfig.Hubs is empty: give the address of at least one hub replica")
	}
	cfg.Hubs = append([]string(nil), cfg.Hubs...)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, idle: map[string][]*clientConn{}}, nil
}

// ID is the client's node ID.
func (c *Client) ID() string { return c.cfg.Identity.ID() }

// Close closes the client's idle streams.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, cs := range c.idle {
		for _, cc := range cs {
			cc.c.Close()
		}
	}
	c.idle = map[string][]*clientConn{}
	return nil
}

// Error is an error the hub answered, with the decision behind it when
// one was taken. errors.Is matches the Err* sentinels.
type Error struct {
	Code     string
	Msg      string
	Decision *Decision
}

func (e *Error) Error() string { return e.Msg }

// Unwrap is the sentinel of e's code.
func (e *Error) Unwrap() error {
	if s, ok := codes[e.Code]; ok {
		return s
	}
	return nil
}

func (c *Client) target(write bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if write && c.leader != "" {
		return c.leader
	}
	return c.cfg.Hubs[c.next%len(c.cfg.Hubs)]
}

// failed moves on from addr.
func (c *Client) failed(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == addr {
		c.leader = ""
	}
	if c.cfg.Hubs[c.next%len(c.cfg.Hubs)] == addr {
		c.next++
	}
}

func (c *Client) setLeader(addr string) {
	c.mu.Lock()
	c.leader = addr
	c.mu.Unlock()
}

// call sends op with args and decodes the result into out (if not nil).
func (c *Client) call(ctx context.Context, op string, args, out any) (*Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	write := isWrite(op)
	req, err := NewRequest(c.cfg.Identity, op, args, c.cfg.Now())
	if err != nil {
		return nil, err
	}
	enc, err := EncodeRequest(req)
	if err != nil {
		return nil, err
	}
	delay := backoff.Delay{Next: 5 * time.Millisecond, Max: 200 * time.Millisecond}
	wait := func(last error) error {
		if !delay.Wait(ctx) {
			return fmt.Errorf("%w: %s: %v (last: %v)", ErrUnavailable, op, ctx.Err(), last)
		}
		return nil
	}
	resent, conflicts := false, 0
	for {
		addr := c.target(write)
		resp, err := c.roundTrip(ctx, addr, enc)
		if err != nil {
			c.failed(addr)
			resent = true
			if werr := wait(err); werr != nil {
				return nil, werr
			}
			continue
		}
		switch resp.Code {
		case "":
			if out != nil && len(resp.Result) > 0 {
				if err := json.Unmarshal(resp.Result, out); err != nil {
					return resp, fmt.Errorf("hub client: %s result: %w", op, err)
				}
			}
			return resp, nil
		case "not-leader":
			if resp.Leader != "" && resp.Leader != addr {
				c.setLeader(resp.Leader)
				continue
			}
			c.failed(addr)
		case "unavailable":
			// The proposal may or may not have been applied: send the
			// same request again, which the hub applies at most once.
			resent = true
		case "conflict":
			// Not applied: the state changed under the decision. Sign
			// afresh, so the decision is taken on the new state.
			if conflicts++; conflicts > 5 {
				return resp, &Error{Code: resp.Code, Msg: resp.Msg}
			}
			if req, err = NewRequest(c.cfg.Identity, op, args, c.cfg.Now()); err != nil {
				return nil, err
			}
			if enc, err = EncodeRequest(req); err != nil {
				return nil, err
			}
			continue
		case "replay":
			if resent && strings.Contains(resp.Msg, "seen before and applied") {
				// Our own earlier copy was applied.
				return resp, nil
			}
			return resp, &Error{Code: resp.Code, Msg: resp.Msg}
		default:
			return resp, &Error{Code: resp.Code, Msg: resp.Msg, Decision: resp.Decision}
		}
		if werr := wait(errors.New(resp.Msg)); werr != nil {
			return nil, werr
		}
	}
}

// roundTrip sends one encoded request to addr and reads the response.
func (c *Client) roundTrip(ctx context.Context, addr string, enc []byte) (*Response, error) {
	cc, err := c.conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		cc.c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { cc.c.Close() })
	defer stop()
	if err := writeFrame(cc.bw, enc); err != nil {
		cc.c.Close()
		return nil, fmt.Errorf("hub client: send to %s: %w", addr, err)
	}
	b, err := readFrame(cc.br)
	if err != nil {
		cc.c.Close()
		return nil, fmt.Errorf("hub client: answer from %s: %w", addr, err)
	}
	resp, err := DecodeResponse(b)
	if err != nil {
		cc.c.Close()
		return nil, err
	}
	c.put(addr, cc)
	return &resp, nil
}

func (c *Client) conn(ctx context.Context, addr string) (*clientConn, error) {
	c.mu.Lock()
	if cs := c.idle[addr]; len(cs) > 0 {
		cc := cs[len(cs)-1]
		c.idle[addr] = cs[:len(cs)-1]
		c.mu.Unlock()
		return cc, nil
	}
	c.mu.Unlock()
	nc, err := c.cfg.Endpoint.Dial(ctx, addr, Service)
	if err != nil {
		return nil, fmt.Errorf("hub client: dial %s: %w", addr, err)
	}
	return &clientConn{c: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}, nil
}

// maxIdle streams are kept per replica.
const maxIdle = 64

func (c *Client) put(addr string, cc *clientConn) {
	cc.c.SetDeadline(time.Time{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.idle[addr]) >= maxIdle {
		cc.c.Close()
		return
	}
	c.idle[addr] = append(c.idle[addr], cc)
}

// helloTo exchanges hellos with the replica at addr (replicas use it to
// find each other).
func (c *Client) helloTo(ctx context.Context, addr string) (HelloReply, error) {
	req, err := NewRequest(c.cfg.Identity, OpHello, HelloArgs{Addr: c.cfg.Endpoint.Addr()}, c.cfg.Now())
	if err != nil {
		return HelloReply{}, err
	}
	enc, _ := EncodeRequest(req)
	resp, err := c.roundTrip(ctx, addr, enc)
	if err != nil {
		return HelloReply{}, err
	}
	if resp.Code != "" {
		return HelloReply{}, &Error{Code: resp.Code, Msg: resp.Msg}
	}
	return decodeHelloReply(resp.Result)
}

// Register registers (or updates) this node: its class, reachability and
// address. The request carries the node's public key and is signed by it.
func (c *Client) Register(ctx context.Context, a RegisterArgs) error {
	_, err := c.call(ctx, OpRegister, a, nil)
	return err
}

// CreateGroup creates group with this node as its first member and admin.
func (c *Client) CreateGroup(ctx context.Context, group string) error {
	_, err := c.call(ctx, OpCreateGroup, GroupArgs{Group: group}, nil)
	return err
}

// Invite invites the holder of key to group. Only members invite (the
// Authorizer's "invite" decision, about this node).
func (c *Client) Invite(ctx context.Context, group string, key ed25519.PublicKey) (Decision, error) {
	resp, err := c.call(ctx, OpInvite, InviteArgs{Group: group, Key: key}, nil)
	return decisionOf(resp), err
}

// Accept joins group, which this node must have been invited to (the
// Authorizer's "join" decision). It returns the group's new epoch.
func (c *Client) Accept(ctx context.Context, group string) (uint64, error) {
	var e GroupEpoch
	_, err := c.call(ctx, OpAccept, GroupArgs{Group: group}, &e)
	return e.Epoch, err
}

// Leave leaves group; it returns the group's new epoch.
func (c *Client) Leave(ctx context.Context, group string) (uint64, error) {
	var e GroupEpoch
	_, err := c.call(ctx, OpLeave, GroupArgs{Group: group}, &e)
	return e.Epoch, err
}

// Remove removes node from group (admins only), with its placements; it
// returns the group's new epoch.
func (c *Client) Remove(ctx context.Context, group, node string) (uint64, error) {
	var e GroupEpoch
	_, err := c.call(ctx, OpRemove, MemberArgs{Group: group, Node: node}, &e)
	return e.Epoch, err
}

// Put sets path in group's namespace (members only).
func (c *Client) Put(ctx context.Context, group, path string, value []byte) error {
	_, err := c.call(ctx, OpPut, PutArgs{Group: group, Path: path, Value: value}, nil)
	return err
}

// Delete removes path from group's namespace.
func (c *Client) Delete(ctx context.Context, group, path string) error {
	_, err := c.call(ctx, OpDelete, PathArgs{Group: group, Path: path}, nil)
	return err
}

// Get reads path in group's namespace.
func (c *Client) Get(ctx context.Context, group, path string) ([]byte, error) {
	var e Entry
	_, err := c.call(ctx, OpGet, PathArgs{Group: group, Path: path}, &e)
	return e.Value, err
}

// List reads the entries whose path starts with prefix, in path order
// (at most 1000).
func (c *Client) List(ctx context.Context, group, prefix string) ([]Entry, error) {
	var es []Entry
	_, err := c.call(ctx, OpList, PathArgs{Group: group, Path: prefix}, &es)
	return es, err
}

// SetClass declares what the hub's decisions know of a data class.
func (c *Client) SetClass(ctx context.Context, group, class string, info ClassInfo) error {
	b, _ := json.Marshal(info)
	return c.Put(ctx, group, ClassPrefix+class, b)
}

// SetTrust declares the trust of a node class in group.
func (c *Client) SetTrust(ctx context.Context, group, nodeClass, trust string) error {
	return c.Put(ctx, group, TrustPath(nodeClass), []byte(trust))
}

// SetChannel publishes a channel reference under /channels/name.
func (c *Client) SetChannel(ctx context.Context, group, name string, ref ChannelRef) error {
	b, err := json.Marshal(ref)
	if err != nil {
		return fmt.Errorf("hub client: channel %s: %w", name, err)
	}
	return c.Put(ctx, group, ChannelPrefix+name, b)
}

// Channel reads a channel reference; with no Nodes of its own, it is
// given the class's placement.
func (c *Client) Channel(ctx context.Context, group, name string) (ChannelRef, error) {
	b, err := c.Get(ctx, group, ChannelPrefix+name)
	if err != nil {
		return ChannelRef{}, err
	}
	ref, err := DecodeChannelRef(b)
	if err != nil {
		return ChannelRef{}, err
	}
	if len(ref.Nodes) == 0 && ref.Class != "" {
		if ref.Nodes, err = c.Placement(ctx, group, ref.Class); err != nil {
			return ChannelRef{}, err
		}
	}
	return ref, nil
}

// DecodeChannelRef parses a channel reference strictly.
func DecodeChannelRef(b []byte) (ChannelRef, error) {
	var ref ChannelRef
	if err := decodeStrict(b, maxValueSize, &ref); err != nil {
		return ChannelRef{}, fmt.Errorf("hub: channel reference: %w", err)
	}
	return ref, nil
}

// Place records that node holds class of group (the Authorizer's "place"
// decision, about node and the class).
func (c *Client) Place(ctx context.Context, group, class, node string) (Decision, error) {
	resp, err := c.call(ctx, OpPlace, PlaceArgs{Group: group, Class: class, Node: node}, nil)
	return decisionOf(resp), err
}

// Unplace records that node no longer holds class.
func (c *Client) Unplace(ctx context.Context, group, class, node string) error {
	_, err := c.call(ctx, OpUnplace, PlaceArgs{Group: group, Class: class, Node: node}, nil)
	return err
}

// Placement lists the nodes holding class of group.
func (c *Client) Placement(ctx context.Context, group, class string) ([]string, error) {
	var ns []string
	_, err := c.call(ctx, OpPlacement, PlaceArgs{Group: group, Class: class}, &ns)
	return ns, err
}

// Group reads a group (members only).
func (c *Client) Group(ctx context.Context, group string) (GroupInfo, error) {
	var g GroupInfo
	_, err := c.call(ctx, OpGetGroup, GroupArgs{Group: group}, &g)
	return g, err
}

// Node reads a registered node.
func (c *Client) Node(ctx context.Context, id string) (NodeRecord, error) {
	var n NodeRecord
	_, err := c.call(ctx, OpGetNode, NodeArgs{Node: id}, &n)
	return n, err
}

// Decisions reads the decisions recorded for group (members only).
func (c *Client) Decisions(ctx context.Context, group string) ([]DecisionRecord, error) {
	var ds []DecisionRecord
	_, err := c.call(ctx, OpDecisions, GroupArgs{Group: group}, &ds)
	return ds, err
}

// Authorize asks the hub for a read, offload or relay decision about node
// (for example: may node read class in plaintext?). A denial is a
// Decision with Allow false, not an error.
func (c *Client) Authorize(ctx context.Context, a AuthorizeArgs) (Decision, error) {
	resp, err := c.call(ctx, OpAuthorize, a, nil)
	if err != nil {
		return Decision{}, err
	}
	return decisionOf(resp), nil
}

// Status reads the status of the replica at addr.
func (c *Client) Status(ctx context.Context, addr string) (Status, error) {
	req, err := NewRequest(c.cfg.Identity, OpStatus, nil, c.cfg.Now())
	if err != nil {
		return Status{}, err
	}
	enc, _ := EncodeRequest(req)
	resp, err := c.roundTrip(ctx, addr, enc)
	if err != nil {
		return Status{}, err
	}
	var st Status
	err = json.Unmarshal(resp.Result, &st)
	return st, err
}

func decisionOf(resp *Response) Decision {
	if resp == nil || resp.Decision == nil {
		return Decision{}
	}
	return *resp.Decision
}

func asError(err error, target **Error) bool { return errors.As(err, target) }
