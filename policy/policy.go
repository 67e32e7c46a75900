package policy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/rime-dev/rime/policies"
)

// DefaultQuery is the document rime asks of a policy. It must be an object
// {"allow": bool, "reasons": [string]}.
const DefaultQuery = "data.rime.trust.decision"

// Config configures an Engine. Zero fields take the defaults of
// DefaultConfig; New never changes the caller's Config.
type Config struct {
	// Dir is a directory of Rego v1 policies (*.rego, searched
	// recursively). Files ending in _test.rego are tests: they are not
	// loaded for decisions and do not change the revision.
	Dir string
	// FS holds the policies when Dir is empty. Nil (and Dir empty) means
	// rime's embedded default policies (package policies).
	FS fs.FS
	// Query is the document evaluated per decision; default DefaultQuery.
	Query string
	// DecisionLog, if set, receives every decision as one JSON line (an
	// Event). A decision that cannot be logged is not given: Decide
	// returns an error, and the caller denies.
	DecisionLog io.Writer
	// Logger receives one debug record per decision and the policy
	// revision at start; default: discard.
	Logger *slog.Logger
	// Clock gives each decision its time, which is logged and is also the
	// time policies see (time.now_ns); default time.Now.
	Clock func() time.Time
	// NewID names each decision; default a random UUID (version 4), as
	// OPA's decision IDs are.
	NewID func() string
}

// DefaultConfig is the embedded default policy, no decision log, and
// real time.
func DefaultConfig() Config {
	return Config{
		Query:  DefaultQuery,
		Logger: slog.New(slog.DiscardHandler),
		Clock:  time.Now,
		NewID:  newUUID,
	}
}

// Validate reports a configuration that cannot work, naming the field.
func (c Config) Validate() error {
	if c.Dir != "" && c.FS != nil {
		return fmt.Errorf("policy: config: Dir %q and FS are both set; set one", c.Dir)
	}
	if c.Query != "" {
		if _, err := ast.ParseRef(c.Query); err != nil {
			return fmt.Errorf("policy: config: Query %q is not a Rego reference: %w", c.Query, err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Query == "" {
		c.Query = d.Query
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.NewID == nil {
		c.NewID = d.NewID
	}
	return c
}

// Result is what a policy answers for one input.
type Result struct {
	Allow bool `json:"allow"`
	// Reasons explain a denial; empty (never nil) when allowed.
	Reasons []string `json:"reasons"`
}

// Decision is a Result with the ID under which it was logged.
type Decision struct {
	Allow      bool     `json:"allow"`
	Reasons    []string `json:"reasons"`
	DecisionID string   `json:"decision_id"`
}

// Engine evaluates one set of policies. Its query is prepared once, in
// New, and reused by every decision; it is safe for concurrent use.
type Engine struct {
	cfg      Config
	query    rego.PreparedEvalQuery
	revision string
	sources  []string

	mu sync.Mutex // serialises writes to cfg.DecisionLog, one line each
}

// New loads and compiles the policies of cfg and prepares the query.
// Errors in the policies come back with their file:line:column.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	srcs, err := loadSources(cfg.Dir, cfg.FS)
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){
		rego.Query(cfg.Query),
		rego.SetRegoVersion(ast.RegoV1),
		// A builtin that fails (say sprintf on a bad argument) must not
		// quietly make a rule undefined: for a deny rule that would allow.
		rego.StrictBuiltinErrors(true),
	}
	var names []string
	for _, s := range srcs {
		if s.test {
			continue
		}
		opts = append(opts, rego.Module(s.name, s.text))
		names = append(names, s.name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("policy: no policies (.rego files other than tests) in %s", where(cfg.Dir, cfg.FS))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: compiling %s: %w", where(cfg.Dir, cfg.FS), err)
	}
	e := &Engine{cfg: cfg, query: pq, revision: revision(srcs), sources: names}
	cfg.Logger.Info("policy loaded", "revision", e.revision, "files", names, "query", cfg.Query)
	return e, nil
}

// Revision names the policy sources: "sha256:" and the hex SHA-256 of
// every policy file's path and contents, in path order. Tests are left out,
// so adding a test does not change the revision of the decisions.
func (e *Engine) Revision() string { return e.revision }

// Files lists the policy files the engine loaded, in path order.
func (e *Engine) Files() []string { return slices.Clone(e.sources) }

// Decide validates in, evaluates it, logs the decision and returns it.
// An invalid input is an *InputError (wrapped); the caller must treat
// every error as a denial.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	if err := in.Validate(); err != nil {
		return Decision{}, fmt.Errorf("policy: %w", err)
	}
	now := e.cfg.Clock().UTC()
	res, err := e.eval(ctx, in, now)
	if err != nil {
		return Decision{}, err
	}
	ev := Event{Version: EventVersion, ID: e.cfg.NewID(), Time: now, Input: in, Result: res, Revision: e.revision}
	if e.cfg.DecisionLog != nil {
		line, err := json.Marshal(ev)
		if err != nil {
			return Decision{}, fmt.Errorf("policy: encoding decision %s: %w", ev.ID, err)
		}
		line = append(line, '\n')
		e.mu.Lock()
		_, err = e.cfg.DecisionLog.Write(line)
		e.mu.Unlock()
		if err != nil {
			return Decision{}, fmt.Errorf("policy: decision %s could not be logged, so it is not given: %w", ev.ID, err)
		}
	}
	e.cfg.Logger.Debug("policy decision", "id", ev.ID, "action", in.Action, "group", in.Group,
		"node", in.Node.ID, "class", in.Data.Class, "allow", res.Allow, "reasons", res.Reasons)
	return Decision{Allow: res.Allow, Reasons: res.Reasons, DecisionID: ev.ID}, nil
}

// eval asks the prepared query about in, as of time now, without logging.
func (e *Engine) eval(ctx context.Context, in Input, now time.Time) (Result, error) {
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(in.value()), rego.EvalTime(now))
	if err != nil {
		return Result{}, fmt.Errorf("policy: evaluating %s: %w", e.cfg.Query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Result{}, fmt.Errorf("policy: %s is undefined for this input: the policy must always define it", e.cfg.Query)
	}
	return decodeResult(e.cfg.Query, rs[0].Expressions[0].Value)
}

// decodeResult checks the shape a policy answered with; anything else is
// an error rather than a guess, since a guess could allow.
func decodeResult(query string, v any) (Result, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return Result{}, fmt.Errorf("policy: %s is %T, expected an object {\"allow\": bool, \"reasons\": [string]}", query, v)
	}
	allow, ok := obj["allow"].(bool)
	if !ok {
		return Result{}, fmt.Errorf("policy: %s.allow is %v, expected a boolean", query, obj["allow"])
	}
	res := Result{Allow: allow, Reasons: []string{}}
	rs, ok := obj["reasons"].([]any)
	if !ok && obj["reasons"] != nil {
		return Result{}, fmt.Errorf("policy: %s.reasons is %T, expected an array of strings", query, obj["reasons"])
	}
	for _, r := range rs {
		s, ok := r.(string)
		if !ok {
			return Result{}, fmt.Errorf("policy: %s.reasons holds %v, expected strings", query, r)
		}
		res.Reasons = append(res.Reasons, s)
	}
	return res, nil
}

type source struct {
	rel  string // slash path inside the policy file system: what the revision hashes
	name string // rel prefixed with the directory: what errors show
	text string
	test bool
}

// loadSources reads every .rego file of dir (or fsys, or the embedded
// default), in path order. Names are dir-relative paths prefixed with dir,
// so that compile errors point at files the user can open.
func loadSources(dir string, fsys fs.FS) ([]source, error) {
	prefix := ""
	switch {
	case dir != "":
		st, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("policy: %s does not exist: expected a directory of .rego files", dir)
		}
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("policy: %s is not a directory of .rego files", dir)
		}
		fsys, prefix = os.DirFS(dir), dir
	case fsys == nil:
		fsys, prefix = policies.FS(), "policies"
	}
	var srcs []source
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".rego" {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := p
		if prefix != "" {
			name = filepath.Join(prefix, filepath.FromSlash(p))
		}
		srcs = append(srcs, source{rel: p, name: name, text: string(b), test: strings.HasSuffix(p, "_test.rego")})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: reading %s: %w", where(dir, fsys), err)
	}
	return srcs, nil // WalkDir visits in lexical order
}

func where(dir string, fsys fs.FS) string {
	switch {
	case dir != "":
		return dir
	case fsys == nil:
		return "the embedded default policies"
	}
	return "the given policy file system"
}

func revision(srcs []source) string {
	h := sha256.New()
	for _, s := range srcs {
		if s.test {
			continue
		}
		// Length-prefixed, so that moving text between files changes it;
		// the relative path, so that the same policies loaded from another
		// directory (or embedded) have the same revision.
		fmt.Fprintf(h, "%d:%s%d:", len(s.rel), s.rel, len(s.text))
		io.WriteString(h, s.text)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never returns an error since Go 1.24: it crashes instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
