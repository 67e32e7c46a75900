package hub

import (
	"encoding/json"
	"sort"
	"sync"
)

// book resolves hub replicas' node IDs (their Raft targets) to addresses.
// Two sources: signed hellos, which replicas exchange so bootstrap
// replicas find each other knowing only one another's IDs and a few
// addresses; and the addresses replicas registered in the state. A hello
// counts only if its signature checks, and a newer one replaces an older,
// so a replayed hello cannot move a replica back to an old address.
type book struct {
	self  string
	state func(id string) (string, bool)

	mu     sync.RWMutex
	hellos map[string]helloEntry
}

type helloEntry struct {
	req  Request
	addr string
}

func newBook(self string, state func(string) (string, bool)) *book {
	return &book{self: self, state: state, hellos: map[string]helloEntry{}}
}

// learn records a hello if it is signed by the key it carries and newer
// than the one known.
func (b *book) learn(req Request) bool {
	if req.Op != OpHello || req.Verify(req.Key) != nil {
		return false
	}
	var a HelloArgs
	if decodeStrict(req.Body, maxRequestSize, &a) != nil || a.Addr == "" {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.hellos[req.Signer]; ok && old.req.Time >= req.Time {
		return false
	}
	b.hellos[req.Signer] = helloEntry{req: req, addr: a.Addr}
	return true
}

func (b *book) lookup(id string) (string, bool) {
	b.mu.RLock()
	e, ok := b.hellos[id]
	b.mu.RUnlock()
	if ok {
		return e.addr, true
	}
	if a, ok := b.state(id); ok && a != "" {
		return a, true
	}
	return "", false
}

// known is every hello, for passing on.
func (b *book) known() []Request {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]Request, 0, len(b.hellos))
	for _, e := range b.hellos {
		out = append(out, e.req)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Signer < out[j].Signer })
	return out
}

// HelloReply answers a hello: the replica's own signed hello and the
// hellos it knows.
type HelloReply struct {
	Self  Request   `json:"self"`
	Known []Request `json:"known"`
}

func decodeHelloReply(b json.RawMessage) (HelloReply, error) {
	var h HelloReply
	err := decodeStrict(b, maxFrame, &h)
	return h, err
}
