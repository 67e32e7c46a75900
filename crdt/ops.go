package crdt

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/rime-dev/rime/crdt/internal/wire"
)

// Op is an operation a replica applies locally. Each convergent type has
// its own: LogAppend; RegisterSet; MapPut and MapDelete; SetAdd and
// SetRemove; CounterAdd; TextInsert and TextDelete.
type Op interface {
	opCode() byte
}

// LogAppend appends Data to a Log.
type LogAppend struct{ Data []byte }

// RegisterSet writes Value to a Register.
type RegisterSet struct{ Value []byte }

// MapPut writes Value under Key.
type MapPut struct {
	Key   string
	Value []byte
}

// MapDelete removes Key. A write the deleting replica had not seen
// survives the delete (observed-remove).
type MapDelete struct{ Key string }

// SetAdd adds Elem; an add concurrent with a remove wins.
type SetAdd struct{ Elem string }

// SetRemove removes Elem as far as the replica has seen it added.
type SetRemove struct{ Elem string }

// CounterAdd adds Delta (negative to decrement).
type CounterAdd struct{ Delta int64 }

// TextInsert inserts Text before the Pos-th visible character (counted
// in runes from 0; Pos equal to the length appends).
type TextInsert struct {
	Pos  int
	Text string
}

// TextDelete deletes Len visible characters from Pos on.
type TextDelete struct{ Pos, Len int }

func (LogAppend) opCode() byte   { return 1 }
func (RegisterSet) opCode() byte { return 2 }
func (MapPut) opCode() byte      { return 3 }
func (MapDelete) opCode() byte   { return 4 }
func (SetAdd) opCode() byte      { return 5 }
func (SetRemove) opCode() byte   { return 6 }
func (CounterAdd) opCode() byte  { return 7 }
func (TextInsert) opCode() byte  { return 8 }
func (TextDelete) opCode() byte  { return 9 }

// maxPos bounds text positions on the wire so they fit an int everywhere.
const maxPos = 1 << 31

// MarshalOp encodes op: a version byte (1), the op's code and its fields
// (varints and length-prefixed bytes). Clients use it to submit updates
// through a channel, which carries opaque bytes.
func MarshalOp(op Op) ([]byte, error) {
	b := []byte{version, op.opCode()}
	switch o := op.(type) {
	case LogAppend:
		b = wire.AppendBytes(b, o.Data)
	case RegisterSet:
		b = wire.AppendBytes(b, o.Value)
	case MapPut:
		b = wire.AppendString(b, o.Key)
		b = wire.AppendBytes(b, o.Value)
	case MapDelete:
		b = wire.AppendString(b, o.Key)
	case SetAdd:
		b = wire.AppendString(b, o.Elem)
	case SetRemove:
		b = wire.AppendString(b, o.Elem)
	case CounterAdd:
		b = wire.AppendUvarint(b, uint64(o.Delta<<1)^uint64(o.Delta>>63))
	case TextInsert:
		if o.Pos < 0 || o.Pos >= maxPos {
			return nil, fmt.Errorf("%w: text position %d", ErrOp, o.Pos)
		}
		b = wire.AppendUvarint(b, uint64(o.Pos))
		b = wire.AppendString(b, o.Text)
	case TextDelete:
		if o.Pos < 0 || o.Pos >= maxPos || o.Len < 0 || o.Len >= maxPos {
			return nil, fmt.Errorf("%w: text range %d+%d", ErrOp, o.Pos, o.Len)
		}
		b = wire.AppendUvarint(b, uint64(o.Pos))
		b = wire.AppendUvarint(b, uint64(o.Len))
	default:
		return nil, fmt.Errorf("%w: unknown op %T", ErrOp, op)
	}
	return b, nil
}

// UnmarshalOp decodes what MarshalOp wrote.
func UnmarshalOp(b []byte) (Op, error) {
	r := wire.NewReader(b)
	ver, code := r.Byte(), r.Byte()
	if r.Err() == nil && ver != version {
		return nil, fmt.Errorf("%w: op version %d, this build reads %d", ErrEncoding, ver, version)
	}
	var op Op
	switch code {
	case 1:
		op = LogAppend{Data: r.Bytes()}
	case 2:
		op = RegisterSet{Value: r.Bytes()}
	case 3:
		k := r.String()
		op = MapPut{Key: k, Value: r.Bytes()}
	case 4:
		op = MapDelete{Key: r.String()}
	case 5:
		op = SetAdd{Elem: r.String()}
	case 6:
		op = SetRemove{Elem: r.String()}
	case 7:
		u := r.Uvarint()
		op = CounterAdd{Delta: int64(u>>1) ^ -int64(u&1)}
	case 8:
		pos := r.Uvarint()
		text := r.String()
		if r.Err() == nil && pos >= maxPos {
			r.Failf("text position %d", pos)
		}
		if r.Err() == nil && !utf8.ValidString(text) {
			r.Fail(errors.New("text is not UTF-8"))
		}
		op = TextInsert{Pos: int(pos), Text: text}
	case 9:
		pos, n := r.Uvarint(), r.Uvarint()
		if r.Err() == nil && (pos >= maxPos || n >= maxPos) {
			r.Failf("text range %d+%d", pos, n)
		}
		op = TextDelete{Pos: int(pos), Len: int(n)}
	default:
		if r.Err() == nil {
			r.Failf("unknown op code %d", code)
		}
	}
	r.End()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: op: %w", ErrEncoding, err)
	}
	return op, nil
}
