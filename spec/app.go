package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/parser"
	"github.com/rime-dev/rime/diag"
)

// App is one application's requirements, closed against #App, with every
// default filled in and every field's position kept.
type App struct {
	Name    string
	Group   string
	Env     Environment
	Classes []Class
	Compute []Compute
	// Defaults lists every field the app left out and the schema filled.
	Defaults []Default
	// Files are the files the app was loaded from.
	Files []string
	// Value is the app unified with #App; Facts is #Facts of its
	// environment, what protocols and theorems may assume.
	Value cue.Value
	Facts cue.Value
	// FactsData is Facts as Go data (counts are float64 or int64 as CUE
	// decodes them).
	FactsData map[string]any
	Pos       diag.Pos
}

// Environment is the world the app runs in.
type Environment struct {
	Nodes      []NodeClass
	Partitions bool
	Latency    string
	Failures   string
	// FieldPos maps "failures", "network.partitions", "network.latency" to
	// where each is written (or to the schema default).
	FieldPos map[string]diag.Pos
	Value    cue.Value
}

// NodeClass is one kind of node in the environment.
type NodeClass struct {
	Name         string
	Count        int
	Mobility     string
	Connectivity string
	Reachable    string
	Trust        string
	Storage      string
	Power        string
	Arch         string
	Pos          diag.Pos
	FieldPos     map[string]diag.Pos
	Value        cue.Value
}

// Class is one data class and what it requires.
type Class struct {
	Name string
	Requirement
	Pos      diag.Pos
	FieldPos map[string]diag.Pos
}

// Requirement is what a data class needs, the part the planner reasons on.
type Requirement struct {
	Consistency  string `json:"consistency"`
	Durability   int    `json:"durability"`
	Available    string `json:"available"`
	Confidential bool   `json:"confidential"`
	Type         string `json:"type"`
}

// Compute is one offloadable computation.
type Compute struct {
	Name     string
	Offload  string `json:"offload"`
	Clones   int    `json:"clones"`
	Module   string `json:"module"`
	Pos      diag.Pos
	FieldPos map[string]diag.Pos
}

// Default records one field the schema filled in.
type Default struct {
	Path  string   // e.g. "environment.nodes.phone.trust"
	Value string   // CUE syntax of the default, e.g. "\"honest-but-curious\""
	Pos   diag.Pos // where the default is declared
	Why   string   // the schema's comment on the default, if any
}

// LoadApp reads app files (CUE, one package) and returns the app.
func (l *Loader) LoadApp(paths ...string) (*App, error) {
	if len(paths) == 0 {
		return nil, diag.Diagnostics{{Code: "spec.args", Summary: "no app file given: pass the app's .cue files, e.g. examples/photoshare/app.cue"}}
	}
	srcs := make([]Source, 0, len(paths))
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			matches, _ := filepath.Glob(filepath.Join(p, "*.cue"))
			if len(matches) == 0 {
				return nil, diag.Diagnostics{{Code: "spec.args", Summary: fmt.Sprintf("%s: directory has no .cue files", p)}}
			}
			sort.Strings(matches)
			for _, m := range matches {
				b, err := os.ReadFile(m)
				if err != nil {
					return nil, diag.Diagnostics{{Code: "spec.read", Summary: err.Error()}}
				}
				srcs = append(srcs, Source{Name: m, Data: b})
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, diag.Diagnostics{{Code: "spec.read", Summary: fmt.Sprintf("cannot read app file: %v", err)}}
		}
		srcs = append(srcs, Source{Name: p, Data: b})
	}
	return l.LoadAppSource(srcs...)
}

// Source is one named CUE source.
type Source struct {
	Name string
	Data []byte
}

// LoadAppSource loads an app from sources already in memory.
func (l *Loader) LoadAppSource(srcs ...Source) (*App, error) {
	var ds diag.Diagnostics
	bi := build.NewContext().NewInstance("", nil)
	for _, s := range srcs {
		f, err := parser.ParseFile(s.Name, s.Data, parser.ParseComments)
		if err != nil {
			ds = append(ds, Diagnose("spec.syntax", err)...)
			continue
		}
		if err := bi.AddSyntax(f); err != nil {
			ds = append(ds, Diagnose("spec.package", err)...)
		}
	}
	if ds.HasErrors() {
		return nil, ds
	}
	v := l.ctx.BuildInstance(bi)
	if err := v.Err(); err != nil {
		return nil, Diagnose("spec.invalid", err)
	}
	raw := v.LookupPath(Path("app"))
	first := diag.Pos{File: srcs[0].Name, Line: 1, Col: 1}
	if !raw.Exists() {
		return nil, diag.Diagnostics{{Code: "spec.noapp", Pos: first,
			Summary: "no `app` field: an app file declares `app: {name: ..., group: ..., environment: ..., data: ...}`"}}
	}
	u := l.schema.LookupPath(Path("#App")).Unify(raw)
	if err := u.Validate(cue.Concrete(true)); err != nil {
		return nil, l.explainInvalid(err, raw)
	}
	app := &App{Value: u, Pos: PosOf(raw)}
	for _, s := range srcs {
		app.Files = append(app.Files, s.Name)
	}
	if err := l.decodeApp(app, raw, u); err != nil {
		return nil, err
	}
	return app, nil
}

// explainInvalid adds the "app." prefix CUE leaves out (we unified at the
// app value) and turns "incomplete value" into "required field missing".
func (l *Loader) explainInvalid(err error, raw cue.Value) diag.Diagnostics {
	ds := Diagnose("spec.invalid", err)
	for i := range ds {
		s := strings.ReplaceAll(ds[i].Summary, "#App.", "")
		if !strings.HasPrefix(s, "app.") && !strings.HasPrefix(s, "app:") {
			s = "app." + s
		}
		if path, rest, ok := strings.Cut(s, ": incomplete value "); ok {
			s = fmt.Sprintf("%s: required field has no value; expected %s", path, rest)
			// Point at the struct the field is missing from, in the
			// user's file, rather than at the schema.
			parent := strings.TrimPrefix(path, "app.")
			if j := strings.LastIndex(parent, "."); j >= 0 {
				if pv := raw.LookupPath(Path(parent[:j])); pv.Exists() && PosOf(pv).IsValid() {
					ds[i].Related = append([]diag.Pos{ds[i].Pos}, ds[i].Related...)
					ds[i].Pos = PosOf(pv)
				}
			}
		}
		ds[i].Summary = s
	}
	return ds
}

func (l *Loader) decodeApp(app *App, raw, u cue.Value) error {
	var ds diag.Diagnostics
	app.Name, _ = u.LookupPath(Path("name")).String()
	app.Group, _ = u.LookupPath(Path("group")).String()

	env := u.LookupPath(Path("environment"))
	app.Env.Value = env
	app.Env.FieldPos = map[string]diag.Pos{}
	app.Env.Failures, _ = env.LookupPath(Path("failures")).String()
	app.Env.Partitions, _ = env.LookupPath(Path("network.partitions")).Bool()
	app.Env.Latency, _ = env.LookupPath(Path("network.latency")).String()
	for _, f := range []string{"failures", "network.partitions", "network.latency"} {
		app.Env.FieldPos[f] = l.fieldPos(app, raw, u, "environment."+f, "#Environment."+f)
	}

	nodeDefs := l.schema.LookupPath(Path("#NodeClass"))
	it, _ := env.LookupPath(Path("nodes")).Fields()
	for it.Next() {
		name := it.Selector().Unquoted()
		nv := it.Value()
		nc := NodeClass{Name: name, Value: nv, FieldPos: map[string]diag.Pos{},
			Pos: PosOf(raw.LookupPath(cue.MakePath(cue.Str("environment"), cue.Str("nodes"), cue.Str(name))))}
		c, _ := nv.LookupPath(Path("count")).Int64()
		nc.Count = int(c)
		for f, dst := range map[string]*string{"mobility": &nc.Mobility, "connectivity": &nc.Connectivity,
			"reachable": &nc.Reachable, "trust": &nc.Trust, "storage": &nc.Storage, "power": &nc.Power, "arch": &nc.Arch} {
			*dst, _ = nv.LookupPath(Path(f)).String()
		}
		it2, _ := nodeDefs.Fields(cue.Optional(true))
		for it2.Next() {
			f := it2.Selector().Unquoted()
			path := cue.MakePath(cue.Str("environment"), cue.Str("nodes"), cue.Str(name), cue.Str(f))
			nc.FieldPos[f] = l.fieldPos(app, raw, u, path.String(), "#NodeClass."+f)
		}
		app.Env.Nodes = append(app.Env.Nodes, nc)
	}
	if len(app.Env.Nodes) == 0 {
		ds.Add("spec.nonodes", PosOf(raw.LookupPath(Path("environment"))),
			"app.environment.nodes: no node classes: say which devices run the app, e.g. nodes: phone: {count: 3, storage: \"durable\"}")
	}

	it, _ = u.LookupPath(Path("data")).Fields()
	for it.Next() {
		name := it.Selector().Unquoted()
		cv := it.Value()
		c := Class{Name: name, FieldPos: map[string]diag.Pos{},
			Pos: PosOf(raw.LookupPath(cue.MakePath(cue.Str("data"), cue.Str(name))))}
		if err := cv.Decode(&c.Requirement); err != nil {
			ds = append(ds, Diagnose("spec.invalid", err)...)
			continue
		}
		for _, f := range []string{"consistency", "durability", "available", "confidential", "type"} {
			path := cue.MakePath(cue.Str("data"), cue.Str(name), cue.Str(f))
			c.FieldPos[f] = l.fieldPos(app, raw, u, path.String(), "#DataClass."+f)
		}
		app.Classes = append(app.Classes, c)
	}
	it, _ = u.LookupPath(Path("compute")).Fields()
	for it.Next() {
		name := it.Selector().Unquoted()
		cv := it.Value()
		c := Compute{Name: name, FieldPos: map[string]diag.Pos{},
			Pos: PosOf(raw.LookupPath(cue.MakePath(cue.Str("compute"), cue.Str(name))))}
		if err := cv.Decode(&c); err != nil {
			ds = append(ds, Diagnose("spec.invalid", err)...)
			continue
		}
		c.Name = name
		for _, f := range []string{"offload", "clones", "module"} {
			path := cue.MakePath(cue.Str("compute"), cue.Str(name), cue.Str(f))
			c.FieldPos[f] = l.fieldPos(app, raw, u, path.String(), "#Compute."+f)
		}
		app.Compute = append(app.Compute, c)
	}
	if len(app.Classes) == 0 && len(app.Compute) == 0 {
		ds.Add("spec.nodata", app.Pos, "app: no data classes and no compute: add data: {name: {consistency: ..., available: ...}}")
	}

	facts := l.schema.LookupPath(Path("#Facts")).FillPath(cue.MakePath(cue.Def("#env")), env)
	if err := facts.Validate(cue.Concrete(true)); err != nil {
		ds = append(ds, Diagnose("spec.facts", err)...)
		return ds
	}
	// Export the facts to plain data once: protocols and theorems read
	// them many times, and a concrete value unifies far faster than one
	// that still carries the derivation.
	var data map[string]any
	if err := facts.Decode(&data); err != nil {
		ds = append(ds, Diagnose("spec.facts", err)...)
		return ds
	}
	app.FactsData = data
	app.Facts = l.ctx.Encode(data)
	return ds.Err()
}

// fieldPos returns where the user wrote path, or, if the schema filled it
// in, where the default is declared; in that case it records the default.
func (l *Loader) fieldPos(app *App, raw, u cue.Value, path, schemaPath string) diag.Pos {
	p := Path(path)
	if rv := raw.LookupPath(p); rv.Exists() {
		return PosOf(rv)
	}
	uv := u.LookupPath(p)
	if !uv.Exists() {
		return diag.Pos{}
	}
	sv := l.schema.LookupPath(Path(schemaPath))
	if dv, ok := uv.Default(); ok {
		uv = dv
	}
	d := Default{Path: path, Value: fmt.Sprint(uv), Pos: PosOf(sv)}
	for _, cg := range sv.Doc() {
		d.Why = strings.TrimSpace(cg.Text())
	}
	app.Defaults = append(app.Defaults, d)
	return d.Pos
}

// Node returns the node class with the given name.
func (e Environment) Node(name string) (NodeClass, bool) {
	for _, n := range e.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeClass{}, false
}
