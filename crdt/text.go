package crdt

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rime-dev/rime/crdt/vv"
)

// Text is a sequence CRDT for collaborative text: RGA (Roh et al.,
// Replicated abstract data types, JPDC 2011), one element per character.
//
// Each character is an event with a dot and a Lamport timestamp, inserted
// after a parent (the character that was to its left when it was typed,
// or the start). The document is the tree of parents walked depth first,
// siblings newest first; a deleted character stays as a tombstone without
// its content, so characters inserted next to it still find their place.
//
// Why RGA: it is the simplest sequence CRDT whose merge is a plain set
// union of elements plus tombstones, so deltas, anti-entropy by context
// and the state encoding are the same as for the other types; typing a
// run of characters yields a chain of elements that encodes as one run
// (first id, parent, timestamp, the string), so a text costs a few bytes
// per run beyond its characters. Its known weakness is interleaving of
// concurrent inserts at the same place going backwards in some orders
// (Kleppmann et al., PaPoC 2019); Fugue avoids it at the price of a second
// (right) origin per element. Tombstones are never collected: that needs
// an agreement on the document's shape that no replica may contradict
// later, which this package leaves undone.
type Text struct {
	ctx   vv.Dots
	list  []*elem            // document order, tombstones included
	index map[vv.Dot]*elem   // integrated elements
	wait  map[vv.Dot][]*elem // elements waiting for their parent, by parent
	held  map[vv.Dot]*elem   // every waiting element
	rm    removals
	// doomed are the targets of deletions not integrated yet.
	doomed  map[vv.Dot]bool
	lamport uint64
	hint    int // a position in list worth checking first (see pos)
	live    int // characters not deleted in list
}

type elem struct {
	id      vv.Dot
	lamport uint64
	parent  vv.Dot // Seq 0: the start of the text
	r       rune   // 0 once deleted
	dead    bool
}

// NewText is an empty text.
func NewText() *Text {
	return &Text{index: map[vv.Dot]*elem{}, wait: map[vv.Dot][]*elem{}, held: map[vv.Dot]*elem{},
		rm: newRemovals(), doomed: map[vv.Dot]bool{}}
}

func (t *Text) Type() Type        { return TypeText }
func (t *Text) Context() *vv.Dots { return &t.ctx }

// String is the text.
func (t *Text) String() string {
	var sb strings.Builder
	for _, e := range t.list {
		if !e.dead {
			sb.WriteRune(e.r)
		}
	}
	return sb.String()
}

// Len is the text's length in runes.
func (t *Text) Len() int { return t.live }

// visible is the element of the i-th visible character and its position
// in list.
func (t *Text) visible(i int) (*elem, int) {
	for k, e := range t.list {
		if !e.dead {
			if i == 0 {
				return e, k
			}
			i--
		}
	}
	return nil, -1
}

func (t *Text) Apply(at Stamp, op Op) (State, error) {
	switch o := op.(type) {
	case TextInsert:
		return t.insert(at, o)
	case TextDelete:
		return t.delete(at, o)
	}
	return nil, badOp(TypeText, op)
}

func (t *Text) insert(at Stamp, o TextInsert) (State, error) {
	n := t.Len()
	if o.Pos < 0 || o.Pos > n {
		return nil, badRange(o.Pos, 0, n)
	}
	if err := checkStamp(&t.ctx, at, utf8.RuneCountInString(o.Text)); err != nil {
		return nil, err
	}
	d := NewText()
	if o.Text == "" {
		return d, nil
	}
	var parent vv.Dot
	if o.Pos > 0 {
		var e *elem
		e, t.hint = t.visible(o.Pos - 1)
		parent = e.id
	}
	next := nextDot(&t.ctx, at.Replica)
	for i, r := range []rune(o.Text) {
		e := &elem{id: vv.Dot{Replica: at.Replica, Seq: next.Seq + uint64(i)}, lamport: t.lamport + 1 + uint64(i), parent: parent, r: r}
		d.receive(e)
		d.ctx.Add(e.id)
		parent = e.id
	}
	t.merge(d)
	return d, nil
}

func (t *Text) delete(at Stamp, o TextDelete) (State, error) {
	n := t.Len()
	if o.Pos < 0 || o.Len < 0 || o.Pos > n || o.Len > n-o.Pos {
		return nil, badRange(o.Pos, o.Len, n)
	}
	if err := checkStamp(&t.ctx, at, 1); err != nil {
		return nil, err
	}
	d := NewText()
	if o.Len == 0 {
		return d, nil
	}
	targets := make([]vv.Dot, 0, o.Len)
	i := 0
	for _, e := range t.list {
		if e.dead {
			continue
		}
		if i >= o.Pos && i < o.Pos+o.Len {
			targets = append(targets, e.id)
		}
		i++
	}
	dot := nextDot(&t.ctx, at.Replica)
	d.rm.recs[dot] = targets
	d.ctx.Add(dot)
	t.merge(d)
	return d, nil
}

// after reports whether x goes before a new sibling subtree rooted at e:
// RGA orders siblings by descending (lamport, replica, seq).
func after(x, e *elem) bool {
	if x.lamport != e.lamport {
		return x.lamport > e.lamport
	}
	return x.id.Compare(e.id) > 0
}

func (t *Text) pos(e *elem) int {
	if t.hint < len(t.list) && t.list[t.hint] == e {
		return t.hint
	}
	return slices.Index(t.list, e)
}

// integrate places e, whose parent is integrated, in the list, then the
// elements that were waiting for it.
func (t *Text) integrate(e *elem) {
	i := 0
	if e.parent.Seq != 0 {
		p := t.index[e.parent]
		if e.lamport <= p.lamport {
			// Not made by any replica of this package (a child is always
			// newer than its parent): dropped, identically everywhere.
			return
		}
		i = t.pos(p) + 1
	}
	// Skip the subtrees of newer siblings: every element in them is newer
	// than its own sibling root, hence than e, and the first element that
	// is not newer than e is past them.
	for i < len(t.list) && after(t.list[i], e) {
		i++
	}
	t.list = slices.Insert(t.list, i, e)
	t.hint = i
	t.index[e.id] = e
	t.lamport = max(t.lamport, e.lamport)
	if t.doomed[e.id] {
		delete(t.doomed, e.id)
		e.dead, e.r = true, 0
	}
	if !e.dead {
		t.live++
	}
	children := t.wait[e.id]
	delete(t.wait, e.id)
	for _, c := range children {
		delete(t.held, c.id)
		t.integrate(c)
	}
}

// receive takes a copy of an element from elsewhere.
func (t *Text) receive(src *elem) {
	if x, ok := t.index[src.id]; ok {
		if src.dead && !x.dead {
			x.dead, x.r = true, 0
			t.live--
		}
		return
	}
	if x, ok := t.held[src.id]; ok {
		if src.dead && !x.dead {
			x.dead, x.r = true, 0
		}
		return
	}
	e := *src
	if e.parent.Seq == 0 || t.index[e.parent] != nil {
		t.integrate(&e)
		return
	}
	if t.doomed[e.id] {
		delete(t.doomed, e.id)
		e.dead, e.r = true, 0
	}
	t.held[e.id] = &e
	t.wait[e.parent] = append(t.wait[e.parent], &e)
	t.lamport = max(t.lamport, e.lamport)
}

func (t *Text) kill(x vv.Dot) {
	if e := t.index[x]; e != nil {
		if !e.dead {
			e.dead, e.r = true, 0
			t.live--
		}
	} else if e := t.held[x]; e != nil {
		e.dead, e.r = true, 0
	} else {
		t.doomed[x] = true
	}
}

func (t *Text) Merge(other State) error {
	o, ok := other.(*Text)
	if !ok {
		return mismatch(TypeText, other)
	}
	t.merge(o)
	return nil
}

func (t *Text) merge(o *Text) {
	for _, e := range o.list {
		t.receive(e)
	}
	for _, e := range o.heldSorted() {
		t.receive(e)
	}
	raised := t.rm.join(o.rm.stable)
	for op, ks := range o.rm.recs {
		if t.rm.learn(op, ks) {
			for _, x := range ks {
				t.kill(x)
			}
		}
	}
	t.ctx.Merge(&o.ctx)
	if raised {
		t.rm.compact(nil)
	}
}

func (t *Text) heldSorted() []*elem {
	hs := slices.Collect(maps.Values(t.held))
	slices.SortFunc(hs, func(a, b *elem) int { return a.id.Compare(b.id) })
	return hs
}

func (t *Text) DeltaSince(peer *vv.Dots) State {
	d := NewText()
	d.ctx = *t.ctx.Missing(peer)
	for _, e := range t.list {
		if !peer.Contains(e.id) {
			d.receive(e)
		}
	}
	for _, e := range t.heldSorted() {
		if !peer.Contains(e.id) {
			d.receive(e)
		}
	}
	d.rm = t.rm.since(peer)
	return d
}

// Compact drops deletion records every replica has seen, with the
// characters they delete. Tombstones stay.
func (t *Text) Compact(stable vv.VV) { t.rm.compact(stable) }

func (t *Text) Clone() State {
	c := NewText()
	c.ctx = *t.ctx.Clone()
	for _, e := range t.list {
		c.receive(e)
	}
	for _, e := range t.heldSorted() {
		c.receive(e)
	}
	c.rm = t.rm.clone()
	c.doomed = maps.Clone(t.doomed)
	c.lamport = t.lamport
	return c
}

func badRange(pos, n, length int) error {
	return fmt.Errorf("%w: text range %d+%d in a text of %d characters", ErrOp, pos, n, length)
}

// Body: context | integrated elements in document order, as runs |
// waiting elements by dot, as runs | deletion records. A run is a chain
// of elements typed in one go: each the next dot of the same replica,
// child of the previous, one Lamport tick later, all live or all deleted.
// It is written as its length, its first dot, its parent (0 for the
// start, else replica index + 1 and seq), its first Lamport timestamp, a
// deleted flag and, if live, its characters as a UTF-8 string.
func (t *Text) MarshalBinary() ([]byte, error) {
	e := newEncoder()
	e.dots(&t.ctx)
	writeRuns(e, t.list)
	writeRuns(e, t.heldSorted())
	t.rm.encode(e)
	return e.finish(TypeText), nil
}

func continues(prev, e *elem) bool {
	return e.id.Replica == prev.id.Replica && e.id.Seq == prev.id.Seq+1 && e.parent == prev.id &&
		e.lamport == prev.lamport+1 && e.dead == prev.dead
}

func writeRuns(e *encoder, es []*elem) {
	var runs [][]*elem
	for i, x := range es {
		if i > 0 && continues(es[i-1], x) {
			runs[len(runs)-1] = append(runs[len(runs)-1], x)
		} else {
			runs = append(runs, []*elem{x})
		}
	}
	e.uvarint(uint64(len(runs)))
	var sb strings.Builder
	for _, run := range runs {
		first := run[0]
		e.uvarint(uint64(len(run)))
		e.dot(first.id)
		if first.parent.Seq == 0 {
			e.uvarint(0)
		} else {
			e.uvarint(1)
			e.dot(first.parent)
		}
		e.uvarint(first.lamport)
		e.bool(first.dead)
		if !first.dead {
			sb.Reset()
			for _, x := range run {
				sb.WriteRune(x.r)
			}
			e.str(sb.String())
		}
	}
}

func readRuns(d *decoder, t *Text) {
	n := d.Count(5)
	for i := 0; i < n && d.Err() == nil; i++ {
		length := d.Count(0)
		first := d.dot()
		var parent vv.Dot
		switch d.Uvarint() {
		case 0:
		case 1:
			parent = d.dot()
		default:
			d.Failf("%w: text parent flag", ErrEncoding)
		}
		lamport := d.Uvarint()
		dead := d.bool()
		var runes []rune
		if !dead {
			s := d.String()
			if d.Err() == nil {
				runes = []rune(s)
				if !utf8.ValidString(s) || len(runes) != length || slices.Contains(runes, 0) {
					d.Failf("%w: text run of %d characters holds %q", ErrEncoding, length, s)
				}
			}
		}
		if d.Err() == nil && (length == 0 || first.Seq+uint64(length)-1 > vv.MaxSeq || lamport+uint64(length) < lamport) {
			d.Failf("%w: text run of length %d", ErrEncoding, length)
		}
		for k := 0; k < length && d.Err() == nil; k++ {
			x := &elem{id: vv.Dot{Replica: first.Replica, Seq: first.Seq + uint64(k)}, lamport: lamport + uint64(k), parent: parent, dead: dead}
			if !dead {
				x.r = runes[k]
			}
			switch {
			case x.id == x.parent:
				d.Failf("%w: character %v is its own parent", ErrEncoding, x.id)
			case t.index[x.id] != nil || t.held[x.id] != nil:
				d.Failf("%w: character %v twice", ErrEncoding, x.id)
			case !t.ctx.Contains(x.id):
				d.Failf("%w: character %v outside the context", ErrEncoding, x.id)
			default:
				t.receive(x)
			}
			parent = x.id
		}
	}
}

func decodeText(d *decoder) *Text {
	t := NewText()
	t.ctx = *d.dots()
	readRuns(d, t)
	readRuns(d, t)
	t.rm = decodeRemovals(d, &t.ctx)
	for _, op := range t.rm.sorted() {
		for _, x := range t.rm.recs[op] {
			t.kill(x)
		}
	}
	return t
}

var _ State = (*Text)(nil)
