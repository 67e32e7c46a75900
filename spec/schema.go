package spec

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"
)

//go:embed cue/*.cue
var schemaFS embed.FS

// schemaDir is how embedded schema files are named in positions, relative
// to the repository root so that a user can open them.
const schemaDir = "spec/cue/"

// Loader compiles the schema once and loads apps and protocols against it.
type Loader struct {
	ctx    *cue.Context
	schema cue.Value

	Lattice    *Lattice
	Dimensions map[string]Dimension
	// DimensionOrder lists the dimensions in the order models.cue
	// declares them, the order relaxations are tried in.
	DimensionOrder []string
	Layers         []string
	Weights        map[string]float64
	Theorems       []Theorem

	// check is what an InstanceChecker checks instances against.
	check instanceSchema
	// ruleBatch and goalBatch are what RuleBatch and GoalBatch return,
	// compiled once.
	ruleBatch, goalBatch cue.Value
}

// NewLoader compiles the embedded schema. It fails only if the schema
// itself is broken, which a test guards against.
func NewLoader() (*Loader, error) {
	ctx := cuecontext.New()
	bi := build.NewContext().NewInstance("rime", nil)
	names, err := fs.Glob(schemaFS, "cue/*.cue")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		src, err := schemaFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(schemaDir+n[len("cue/"):], src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("spec: schema %s: %w", n, err)
		}
		if err := bi.AddSyntax(f); err != nil {
			return nil, fmt.Errorf("spec: schema %s: %w", n, err)
		}
	}
	v := ctx.BuildInstance(bi)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("spec: schema: %w", err)
	}
	l := &Loader{ctx: ctx, schema: v}
	if err := l.decodeSchema(); err != nil {
		return nil, fmt.Errorf("spec: schema: %w", err)
	}
	return l, nil
}

// Context returns the CUE context every value of this loader belongs to.
func (l *Loader) Context() *cue.Context { return l.ctx }

// Schema returns the compiled schema package.
func (l *Loader) Schema() cue.Value { return l.schema }

// Rules returns the theorem rules, with `s` still to be filled.
func (l *Loader) Rules() cue.Value { return l.schema.LookupPath(Path("rules")) }

// GoalBatch returns a value that evaluates the goals of many classes at
// once: fill batchIn with {kind: "data" | "compute", class: ...} by key
// and read batchOut[key] as goals[kind] with that class.
func (l *Loader) GoalBatch() cue.Value { return l.goalBatch }

// RuleBatch returns a value that evaluates many theorems on many
// situations at once: fill batchEnv with the environment's facts and
// batchIn with {theorem: NAME, s: {class: ..., stack: ...}} by key, and
// read batchOut[key] as rules.theorems[NAME] with that situation.
// Evaluating one rule costs CUE little more than setting up an
// evaluation, so one evaluation of many is far cheaper than many.
func (l *Loader) RuleBatch() cue.Value { return l.ruleBatch }

// SchemaFiles returns the embedded schema sources by name, for tools that
// evaluate them outside the loader (the benchmark's bare CUE baseline).
func SchemaFiles() map[string][]byte {
	out := map[string][]byte{}
	names, _ := fs.Glob(schemaFS, "cue/*.cue")
	for _, n := range names {
		b, _ := schemaFS.ReadFile(n)
		out[schemaDir+n[len("cue/"):]] = b
	}
	return out
}

func (l *Loader) decodeSchema() error {
	var err error
	if l.Lattice, err = decodeLattice(l.schema.LookupPath(Path("models"))); err != nil {
		return err
	}
	if err := l.schema.LookupPath(Path("layers")).Decode(&l.Layers); err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	if err := l.schema.LookupPath(Path("costWeights")).Decode(&l.Weights); err != nil {
		return fmt.Errorf("costWeights: %w", err)
	}
	l.Dimensions = map[string]Dimension{}
	if err := l.schema.LookupPath(Path("dimensions")).Decode(&l.Dimensions); err != nil {
		return fmt.Errorf("dimensions: %w", err)
	}
	for name, d := range l.Dimensions {
		d.Name = name
		l.Dimensions[name] = d
	}
	it, err := l.schema.LookupPath(Path("dimensions")).Fields()
	if err != nil {
		return fmt.Errorf("dimensions: %w", err)
	}
	for it.Next() {
		l.DimensionOrder = append(l.DimensionOrder, it.Selector().Unquoted())
	}
	l.check = newInstanceSchema(l.schema)
	if err := l.compileGoalBatch(); err != nil {
		return err
	}
	if err := l.decodeTheorems(); err != nil {
		return err
	}
	return l.compileRuleBatch()
}

// LayerIndex returns the position of a layer kind, bottom first, or -1.
func (l *Loader) LayerIndex(kind string) int {
	for i, k := range l.Layers {
		if k == kind {
			return i
		}
	}
	return -1
}
