package swim

import (
	"io/fs"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	"github.com/rime-dev/rime/protocols"
)

func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"c":"phone","s":"ABC"}`))
	f.Add([]byte(`{"c":1}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		enc, err := encodeMeta(m)
		if err != nil {
			return // too long for memberlist: refused, not a crash
		}
		if back, err := decodeMeta(enc); err != nil || back != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, back, err)
		}
	})
}

func FuzzDecodeIntent(f *testing.F) {
	f.Add(encodeIntent(intent{ID: "n1", Session: "S"}))
	f.Add([]byte{msgLeave})
	f.Add([]byte{2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeIntent(b)
		if err != nil {
			return
		}
		if in.ID == "" || in.Session == "" {
			t.Fatalf("accepted an incomplete intent %+v", in)
		}
		if back, err := decodeIntent(encodeIntent(in)); err != nil || back != in {
			t.Fatalf("round trip of %+v: %+v, %v", in, back, err)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"leaving":[{"id":"n1","s":"S"}]}`))
	f.Add([]byte(`{"leaving":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(fastConfig())
		delegate{s}.MergeRemoteState(b, false) // must not panic
		for in := range s.intents {
			if in.ID == "" || in.Session == "" {
				t.Fatalf("learnt an incomplete intent %+v", in)
			}
		}
	})
}

// The spec beside this code says what the registry says.
func TestSpecMatchesModule(t *testing.T) {
	src, err := fs.ReadFile(protocols.SpecFS(), "swim/spec.cue")
	if err != nil {
		t.Fatal(err)
	}
	v := cuecontext.New().CompileBytes(src, cue.Filename("protocols/swim/spec.cue"))
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Name        string   `json:"name"`
		Layer       string   `json:"layer"`
		Implemented bool     `json:"implemented"`
		Provides    []string `json:"provides"`
		Requires    []struct {
			Capability string `json:"capability"`
		} `json:"requires"`
	}
	if err := v.Decode(&spec); err != nil {
		t.Fatal(err)
	}
	mod := NewModule(DefaultConfig())
	if !spec.Implemented {
		t.Error("the spec says swim is not implemented")
	}
	if spec.Name != mod.Name || spec.Layer != "membership" {
		t.Errorf("spec is %q, layer %q; module is %q", spec.Name, spec.Layer, mod.Name)
	}
	if len(spec.Provides) != 1 || spec.Provides[0] != mod.Provides[0] || len(mod.Provides) != 1 {
		t.Errorf("spec provides %v, module %v", spec.Provides, mod.Provides)
	}
	if len(spec.Requires) != 1 || spec.Requires[0].Capability != "transport" {
		t.Errorf("spec requires %v; the code needs exactly a transport", spec.Requires)
	}
}
