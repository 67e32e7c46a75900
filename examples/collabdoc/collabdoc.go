// Package collabdoc is the collaborative-document example's application
// (seed 001's checkpointed channels): every editor keeps its own replica
// of the document, a list of lines; it applies the channel's updates in
// the one order every editor sees, submits its own edits, answers
// checkpoint requests with its document, and a late editor starts from a
// checkpoint. `rime up examples/collabdoc` runs it against the nodes.
package collabdoc

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rime-dev/rime/client"
	"github.com/rime-dev/rime/protocols"
)

// Class is the data class the editors share.
const Class = "document"

// Doc is one editor's replica: the lines, how many updates it reflects,
// and a running hash of them so editors can compare without shipping
// the document.
type Doc struct {
	Lines []string `json:"lines"`
	Seq   uint64   `json:"seq"`
	Hash  [32]byte `json:"hash"`
}

// Apply appends one edit (the update's bytes are the line).
func (d *Doc) Apply(seq uint64, update []byte) {
	d.Lines = append(d.Lines, string(update))
	d.Seq = seq
	d.Hash = sha256.Sum256(append(d.Hash[:], update...))
}

// Editor is one application component connected to one node's proxy.
type Editor struct {
	Name string
	ch   protocols.Channel

	mu        sync.Mutex
	doc       Doc
	hashes    map[uint64][32]byte // recent (seq -> hash), to compare with others
	reconnect int
}

// NewEditor returns an editor on ch.
func NewEditor(name string, ch protocols.Channel) *Editor {
	return &Editor{Name: name, ch: ch, hashes: map[uint64][32]byte{}}
}

// Run connects, applies events and submits one edit per interval until
// ctx ends. A disconnected session (an edit the channel could not accept)
// is reconnected: the editor starts again from the channel's checkpoint.
func (e *Editor) Run(ctx context.Context, every time.Duration) error {
	return client.Reconnect(ctx, func(ctx context.Context) error { return e.session(ctx, every) }, func() {
		e.mu.Lock()
		e.reconnect++
		e.mu.Unlock()
	})
}

func (e *Editor) session(ctx context.Context, every time.Duration) error {
	s, err := e.ch.Connect(ctx)
	if err != nil {
		return err
	}
	defer s.Disconnect()
	tick := time.NewTicker(every)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-s.Events():
			if !ok {
				return s.Err()
			}
			e.handle(s, ev)
		case <-tick.C:
			n++
			if err := s.Submit(ctx, fmt.Appendf(nil, "%s: edit %d", e.Name, n)); err != nil {
				return err
			}
		}
	}
}

func (e *Editor) handle(s protocols.Session, ev protocols.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev.Kind {
	case protocols.Initialize:
		e.doc = Doc{}
		if len(ev.Data) > 0 {
			// A checkpoint another editor wrote; a bad one is that
			// editor's bug, and this editor starts empty rather than
			// trusting it half-way.
			if err := json.Unmarshal(ev.Data, &e.doc); err != nil {
				e.doc = Doc{}
			}
		}
		e.doc.Seq = ev.Seq
		e.hashes = map[uint64][32]byte{ev.Seq: e.doc.Hash}
	case protocols.Update:
		e.doc.Apply(ev.Seq, ev.Data)
		e.hashes[ev.Seq] = e.doc.Hash
		delete(e.hashes, ev.Seq-512)
	case protocols.RequestCheckpoint:
		if b, err := json.Marshal(e.doc); err == nil {
			s.Checkpoint(e.doc.Seq, b)
		}
	}
}

// State is the editor's progress: updates applied and reconnections.
func (e *Editor) State() (seq uint64, lines, reconnects int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.doc.Seq, len(e.doc.Lines), e.reconnect
}

// Converged compares the editors at the highest Seq all of them still
// remember: the same hash means the same document, line for line. It
// returns that Seq, or an error naming the editors that differ.
func Converged(editors []*Editor) (uint64, error) {
	var common uint64 = 1<<64 - 1
	for _, e := range editors {
		seq, _, _ := e.State()
		common = min(common, seq)
	}
	var want [32]byte
	var first string
	for _, e := range editors {
		e.mu.Lock()
		h, ok := e.hashes[common]
		e.mu.Unlock()
		if !ok {
			// This editor started from a checkpoint past common or forgot
			// it: not comparable this round.
			continue
		}
		if first == "" {
			want, first = h, e.Name
			continue
		}
		if h != want {
			return common, fmt.Errorf("collabdoc: %s and %s differ after update %d", first, e.Name, common)
		}
	}
	return common, nil
}

// Node is what the example needs of a node: its channel of a class (an
// error if the node does not host the class).
type Node interface {
	Channel(class string) (protocols.Channel, error)
}

// Run is the example app on nodes: one editor per node on the document,
// each submitting an edit every interval, and, on nodes that host the
// available classes, the editor's cursor and comments. Every second it
// checks the editors agree on the document and writes what each sees of
// the cursors and comments to out. It returns when ctx ends, or at the
// first divergence of the document.
func Run(ctx context.Context, nodes []Node, every time.Duration, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var editors []*Editor
	var presences []*Presence
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, n := range nodes {
		ch, err := n.Channel(Class)
		if err != nil {
			return err
		}
		e := NewEditor(fmt.Sprintf("editor-%d", i+1), ch)
		editors = append(editors, e)
		wg.Go(func() { e.Run(ctx, every) })
		p := &Presence{Name: e.Name, Editor: e}
		if ch, err := n.Channel(CursorsClass); err == nil {
			p.Cursors = client.NewConvergent(ch)
		}
		if ch, err := n.Channel(CommentsClass); err == nil {
			p.Comments = client.NewConvergent(ch)
		}
		if p.Cursors != nil || p.Comments != nil {
			presences = append(presences, p)
			wg.Go(func() { p.Run(ctx, 4*every) })
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		seq, err := Converged(editors)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "collabdoc: %d editors agree on the document up to update %d%s\n", len(editors), seq, presenceLine(presences))
	}
}

// presenceLine says how many cursors and comments each editor sees.
func presenceLine(ps []*Presence) string {
	if len(ps) == 0 {
		return ""
	}
	var cursors, comments []int
	for _, p := range ps {
		if p.Cursors != nil {
			cursors = append(cursors, len(Cursors(p.Cursors)))
		}
		if p.Comments != nil {
			comments = append(comments, Comments(p.Comments))
		}
	}
	return fmt.Sprintf("; cursors seen per editor %v; comments seen per editor %v", cursors, comments)
}
