package engine

import (
	"cuelang.org/go/cue"
	"github.com/rime-dev/rime/spec"
)

// Reading an instance as Go data. Looking up and converting each field of
// a CUE value costs about as much again as evaluating the instance, so
// finish decodes the parts it reads once (cue.Value.Decode) and reads
// them here. Anything of another shape than the CUE path accepts (an
// unknown dimension, a number too large for int64, a missing field) makes
// these functions report !ok, and the caller reads the CUE value instead,
// so the result and any error are the CUE path's.

// decodeParts decodes the guarantees, requires and cost of an instance; a
// part the spec leaves out is absent from the map.
func decodeParts(v cue.Value) (map[string]any, bool) {
	parts := make(map[string]any, 3)
	for _, f := range []string{"guarantees", "requires", "cost"} {
		fv := v.LookupPath(cue.MakePath(cue.Str(f)))
		if !fv.Exists() {
			continue
		}
		var x any
		if err := fv.Decode(&x); err != nil {
			return nil, false
		}
		parts[f] = x
	}
	return parts, true
}

// fromData builds p's instance from its decoded parts, as finish does from
// the CUE value.
func (r *run) fromData(p *spec.Protocol, params map[string]any, v cue.Value, parts map[string]any) (*instance, bool) {
	in := &instance{proto: p, params: params, value: v, costParts: map[string]float64{}}
	var ok bool
	g, has := parts["guarantees"]
	if in.guarantees, ok = r.demandData(g, has); !ok {
		return nil, false
	}
	if rq, has := parts["requires"]; has {
		list, isList := rq.([]any)
		if !isList {
			return nil, false
		}
		for i, e := range list {
			m, isMap := e.(map[string]any)
			if !isMap {
				return nil, false
			}
			var req requirement
			if req.Capability, ok = m["capability"].(string); !ok {
				return nil, false
			}
			g, has := m["guarantees"]
			if req.Demand, ok = r.demandData(g, has); !ok {
				return nil, false
			}
			if w, has := m["why"]; has {
				req.Why, _ = w.(string)
			}
			req.Pos = spec.PosOf(v.LookupPath(cue.MakePath(cue.Str("requires"), cue.Index(i))))
			in.requires = append(in.requires, req)
		}
	}
	cost, isMap := parts["cost"].(map[string]any)
	if !isMap {
		return nil, false
	}
	for _, k := range []string{"rtt", "messages", "copies"} {
		var f float64
		switch x := cost[k].(type) {
		case int64:
			f = float64(x)
		case float64:
			f = x
		default:
			return nil, false
		}
		in.costParts[k] = f
		in.cost += f * r.l.Weights[k]
	}
	return in, true
}

// demandData is decodeDemand on decoded data; has is false for
// guarantees left out, which demand nothing.
func (r *run) demandData(x any, has bool) (demand, bool) {
	d := demand{}
	if !has {
		return d, true
	}
	m, isMap := x.(map[string]any)
	if !isMap {
		return nil, false
	}
	for dim, val := range m {
		dd, known := r.l.Dimensions[dim]
		if !known {
			return nil, false
		}
		var ok bool
		switch dd.Kind {
		case "int":
			d[dim], ok = val.(int64)
		case "flag":
			d[dim], ok = val.(bool)
		case "set":
			list, isList := val.([]any)
			s := make([]string, len(list))
			ok = isList
			for i, e := range list {
				if s[i], isList = e.(string); !isList {
					ok = false
				}
			}
			d[dim] = s
		default:
			d[dim], ok = val.(string)
		}
		if !ok {
			return nil, false
		}
	}
	return d, true
}
