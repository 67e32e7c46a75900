package swim

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// What swim itself puts on the wire, inside memberlist's encrypted
// messages: each node's metadata, and leave intents. Both are small JSON
// documents, so a field can be added without breaking older nodes.

// meta is a node's memberlist metadata.
type meta struct {
	// Class is the node's class in the app ("phone").
	Class string `json:"c"`
	// Session is random and new at each Start, so a leave intent names
	// one run of a node, never the run that comes after it.
	Session string `json:"s"`
}

func encodeMeta(m meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes, above memberlist's %d (node class %q too long?)", len(b), memberlist.MetaMaxSize, m.Class)
	}
	return b, nil
}

func decodeMeta(b []byte) (meta, error) {
	var m meta
	if len(b) == 0 {
		return m, errors.New("no metadata")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return meta{}, fmt.Errorf("metadata: %w", err)
	}
	return m, nil
}

// intent says that a node's session is leaving on purpose. memberlist
// knows a leave from a failure, but v0.7.0 never tells: the Node its
// EventDelegate receives has State left at its zero value (alive),
// because memberlist's nodeState.State shadows Node.State. So swim
// gossips its own intent before Leave, as Serf does.
type intent struct {
	ID      string `json:"id"`
	Session string `json:"s"`
}

// msgLeave tags a leave intent among memberlist user messages.
const msgLeave byte = 1

func encodeIntent(in intent) []byte {
	b, _ := json.Marshal(in) // two strings cannot fail to marshal
	return append([]byte{msgLeave}, b...)
}

func decodeIntent(b []byte) (intent, error) {
	if len(b) == 0 || b[0] != msgLeave {
		return intent{}, errors.New("not a leave intent")
	}
	var in intent
	if err := json.Unmarshal(b[1:], &in); err != nil {
		return intent{}, fmt.Errorf("leave intent: %w", err)
	}
	if in.ID == "" || in.Session == "" {
		return intent{}, errors.New("leave intent: id or session missing")
	}
	return in, nil
}

// state is what a push/pull carries besides memberlist's own: the leave
// intents a node knows, so one missed by gossip still arrives.
type state struct {
	Leaving []intent `json:"leaving"`
}

func encodeState(s state) ([]byte, error) { return json.Marshal(s) }

func decodeState(b []byte) (state, error) {
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return state{}, fmt.Errorf("push/pull state: %w", err)
	}
	return s, nil
}

// intentBroadcast is a leave intent in swim's gossip queue.
type intentBroadcast struct {
	in  intent
	msg []byte
	// done, if not nil, is closed once the intent has been sent as often
	// as the queue sends anything (or was superseded).
	done chan struct{}
}

func (b *intentBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*intentBroadcast)
	return ok && ob.in == b.in
}

func (b *intentBroadcast) Message() []byte { return b.msg }

func (b *intentBroadcast) Finished() {
	if b.done != nil {
		close(b.done)
	}
}
