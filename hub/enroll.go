package hub

import (
	"context"
	"errors"
	"fmt"
)

// Enrolled says how a node came to be a member of its group.
type Enrolled int

const (
	// AlreadyMember: the node was a member (a restart).
	AlreadyMember Enrolled = iota + 1
	// Joined: the node accepted its invitation.
	Joined
	// Created: the group did not exist and the node created it (and is
	// its admin).
	Created
)

func (e Enrolled) String() string {
	switch e {
	case AlreadyMember:
		return "already a member"
	case Joined:
		return "joined"
	case Created:
		return "created the group"
	}
	return "unknown"
}

// ErrNotInvited: the node is not a member and holds no invitation.
var ErrNotInvited = errors.New("hub: not invited to the group")

// Enroll makes the client's node a member of group: it registers (or
// updates the registration with reg), then, unless it is a member
// already, accepts its invitation, or, if the group does not exist and
// create is set, creates it. A node neither a member nor invited gets
// ErrNotInvited, wrapped with what to do about it.
func Enroll(ctx context.Context, c *Client, group string, reg RegisterArgs, create bool) (Enrolled, error) {
	if err := c.Register(ctx, reg); err != nil {
		return 0, fmt.Errorf("hub: register: %w", err)
	}
	if _, err := c.Group(ctx, group); err == nil {
		return AlreadyMember, nil
	} else if !errors.Is(err, ErrNotMember) && !errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("hub: read group %s: %w", group, err)
	} else if errors.Is(err, ErrNotFound) && create {
		if err := c.CreateGroup(ctx, group); err != nil && !errors.Is(err, ErrExists) {
			return 0, fmt.Errorf("hub: create group %s: %w", group, err)
		} else if err == nil {
			return Created, nil
		}
		// Created by another node meanwhile: join it like any other.
	}
	if _, err := c.Accept(ctx, group); err != nil {
		if errors.Is(err, ErrDenied) || errors.Is(err, ErrNotFound) {
			return 0, fmt.Errorf("%w %s as node %s (%v): a member must invite this node's key first", ErrNotInvited, group, c.ID(), err)
		}
		return 0, fmt.Errorf("hub: join group %s: %w", group, err)
	}
	return Joined, nil
}
