package crdtreplication

import (
	"cmp"
	"slices"
	"time"

	"github.com/rime-dev/rime/protocols"
)

// uptime is what this node has seen of each member's availability since
// it first saw it: the placement heuristic's input.
type uptime struct {
	members map[string]*seen
}

type seen struct {
	m          protocols.Member
	first      time.Time
	aliveSince time.Time // zero while not alive
	aliveFor   time.Duration
}

func newUptime() *uptime { return &uptime{members: map[string]*seen{}} }

// observe records a member's state at now.
func (u *uptime) observe(m protocols.Member, now time.Time) {
	s := u.members[m.ID]
	if s == nil {
		s = &seen{first: now}
		u.members[m.ID] = s
	}
	s.m = m
	alive := m.State == protocols.MemberAlive
	switch {
	case alive && s.aliveSince.IsZero():
		s.aliveSince = now
	case !alive && !s.aliveSince.IsZero():
		s.aliveFor += now.Sub(s.aliveSince)
		s.aliveSince = time.Time{}
	}
}

// score is the fraction of the time since first seen that the member
// was alive.
func (s *seen) score(now time.Time) float64 {
	total := now.Sub(s.first)
	up := s.aliveFor
	if !s.aliveSince.IsZero() {
		up += now.Sub(s.aliveSince)
	}
	if total <= 0 {
		return 1
	}
	return float64(up) / float64(total)
}

// rank orders the alive members other than self for placement, most
// preferred first:
//
//  1. members of a preferred node class (Config.PreferClasses, in its
//     order: the app's classes with connectivity "always", say relays and
//     cloud nodes, which the operator names since the plan does not yet
//     carry connectivity to the layer);
//  2. then by the fraction of time membership has seen them alive since
//     this node first saw them (nodes that are more often online, as in
//     Rusta), so intermittent phones come last;
//  3. then by ID, so that every node ranks alike.
func (u *uptime) rank(self string, prefer []string, now time.Time) []protocols.Member {
	type cand struct {
		m     protocols.Member
		pref  int
		score float64
	}
	var cs []cand
	for id, s := range u.members {
		if id == self || s.m.State != protocols.MemberAlive || s.m.Addr == "" {
			continue
		}
		p := slices.Index(prefer, s.m.NodeClass)
		if p < 0 {
			p = len(prefer)
		}
		cs = append(cs, cand{m: s.m, pref: p, score: s.score(now)})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.pref, b.pref), cmp.Compare(b.score, a.score), cmp.Compare(a.m.ID, b.m.ID))
	})
	out := make([]protocols.Member, len(cs))
	for i, c := range cs {
		out[i] = c.m
	}
	return out
}
