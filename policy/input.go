package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Action is a kind of trust decision.
type Action string

// The actions rime decides. The node of an Input is, per action: the node
// asking to join; the node asking to invite (the inviter); the node chosen
// to hold a class; the node asked to relay; the node a computation would be
// forked onto; the node asking to read a class.
const (
	Join    Action = "join"
	Invite  Action = "invite"
	Place   Action = "place"
	Relay   Action = "relay"
	Offload Action = "offload"
	Read    Action = "read"
)

// Actions lists every action, in the order users read them.
var Actions = []Action{Join, Invite, Place, Relay, Offload, Read}

// Trust is what an app's environment declares of a node class.
type Trust string

// The trust levels of the app spec's node classes.
const (
	TrustMember           Trust = "member"
	TrustHonestButCurious Trust = "honest-but-curious"
	TrustByzantine        Trust = "byzantine"
)

// Trusts lists every trust level, most trusted first.
var Trusts = []Trust{TrustMember, TrustHonestButCurious, TrustByzantine}

// Input is one trust decision to make. Its JSON form is the contract of
// issue 5 and of `rime audit --input`:
//
//	{"action": "join"|"invite"|"place"|"relay"|"offload"|"read",
//	 "group": "...",
//	 "node": {"id", "class", "trust": "member"|"honest-but-curious"|"byzantine",
//	          "member": bool, "invited": bool},
//	 "data": {"class", "confidential": bool, "encrypted": bool}}
//
// Booleans left out are false, the cautious reading: a node not said to be
// a member is not one, and data not said to be encrypted is not.
type Input struct {
	Action Action `json:"action"`
	Group  string `json:"group"`
	Node   Node   `json:"node"`
	Data   Data   `json:"data"`
}

// Node is the node an action is about, as the hub knows it.
type Node struct {
	ID string `json:"id"`
	// Class is the node class of the app's environment the node belongs to.
	Class string `json:"class"`
	// Trust is what the environment declares of that class.
	Trust Trust `json:"trust"`
	// Member says the hub lists the node as a member of the group.
	Member bool `json:"member"`
	// Invited says the hub holds an invitation of the node's key to the group.
	Invited bool `json:"invited"`
}

// Data is the data class an action concerns (place, read, offload).
type Data struct {
	Class        string `json:"class"`
	Confidential bool   `json:"confidential"`
	// Encrypted says the class's stack encrypts it end to end.
	Encrypted bool `json:"encrypted"`
}

// Problem is one thing wrong with an input, at a field path such as
// "node.trust".
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// InputError collects every problem of an input, so a user fixes them
// all at once instead of one per run.
type InputError struct {
	Problems []Problem
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString("invalid input: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Validate reports every problem of in as an *InputError, or nil.
func (in Input) Validate() error {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{field, fmt.Sprintf(format, args...)})
	}
	switch {
	case in.Action == "":
		add("action", "missing: expected one of %s", list(Actions))
	case !slices.Contains(Actions, in.Action):
		add("action", "unknown action %q: expected one of %s", in.Action, list(Actions))
	}
	if in.Group == "" {
		add("group", "missing: expected the group's name")
	}
	if in.Node.ID == "" {
		add("node.id", "missing: expected the node's ID")
	}
	switch {
	case in.Node.Trust == "":
		add("node.trust", "missing: expected one of %s", list(Trusts))
	case !slices.Contains(Trusts, in.Node.Trust):
		add("node.trust", "unknown trust %q: expected one of %s", in.Node.Trust, list(Trusts))
	}
	if (in.Action == Place || in.Action == Read) && in.Data.Class == "" {
		add("data.class", "missing: a %s decision is about a data class; name it", in.Action)
	}
	if ps != nil {
		return &InputError{ps}
	}
	return nil
}

func list[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// DecodeInput decodes and validates one Input from its JSON form. It is
// strict: unknown fields (a misspelt "confidental" would otherwise be read
// as false) and trailing data are errors. Syntax errors give the line and
// column.
func DecodeInput(data []byte) (Input, error) {
	var in Input
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Input{}, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		l, c := lineCol(data, dec.InputOffset())
		return Input{}, fmt.Errorf("line %d, column %d: expected one JSON object, found more after it", l, c)
	}
	if err := in.Validate(); err != nil {
		return Input{}, err
	}
	return in, nil
}

// jsonError turns encoding/json's errors into messages that say where and
// what was expected, without Go type names.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		l, c := lineCol(data, syn.Offset-1)
		return fmt.Errorf("line %d, column %d: %s", l, c, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		l, c := lineCol(data, typ.Offset-1) // Offset is just past the value
		field := ""
		if typ.Field != "" {
			field = typ.Field + ": "
		}
		return fmt.Errorf("line %d, column %d: %sexpected %s, found %s", l, c, field, kind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.EOF):
		return errors.New("empty: expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("ends in the middle of a JSON value")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func kind(k string) string {
	switch k {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "struct":
		return "an object"
	}
	return k
}

// lineCol converts a 0-based byte offset into 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// value is in as an OPA value, built directly so that each decision skips
// the reflection round trip of rego.EvalInput.
func (in Input) value() ast.Value {
	s, b := ast.StringTerm, ast.BooleanTerm
	return ast.NewObject(
		ast.Item(s("action"), s(string(in.Action))),
		ast.Item(s("group"), s(in.Group)),
		ast.Item(s("node"), ast.NewTerm(ast.NewObject(
			ast.Item(s("id"), s(in.Node.ID)),
			ast.Item(s("class"), s(in.Node.Class)),
			ast.Item(s("trust"), s(string(in.Node.Trust))),
			ast.Item(s("member"), b(in.Node.Member)),
			ast.Item(s("invited"), b(in.Node.Invited)),
		))),
		ast.Item(s("data"), ast.NewTerm(ast.NewObject(
			ast.Item(s("class"), s(in.Data.Class)),
			ast.Item(s("confidential"), b(in.Data.Confidential)),
			ast.Item(s("encrypted"), b(in.Data.Encrypted)),
		))),
	)
}
