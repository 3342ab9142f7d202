package raft

import (
	"fmt"
	"slices"

	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

// Membership changes are single-member changes (Raft thesis §4.1), one at a
// time: the leader accepts a new ConfChange only once every earlier one in
// its log has been handed out for applying, and a new leader only once its
// whole log has been (which covers changes proposed by earlier leaders). A
// change takes effect on a member when its entry is handed out in
// Ready.CommittedEntries (at Advance), on every member at the same log
// position.

// ProposeConfChange appends an ENTRY_CONF_CHANGE entry carrying cc. The
// change takes effect when the entry commits; the host learns the outcome
// from the entry in CommittedEntries.
//
// Errors: ErrNotLeader; ErrProposalDropped while a leadership transfer is
// in progress; ErrPendingConfChange while an earlier change is not yet
// applied; ErrInvalidConfChange if cc does not apply to the current
// configuration (adding a voter twice, removing a non-member, removing the
// last voter, demoting a voter to learner).
func (c *Core) ProposeConfChange(cc *messages.ConfChange) error {
	c.mustNotBeInReady("ProposeConfChange")
	switch {
	case c.role != RoleLeader:
		return ErrNotLeader
	case c.leadTransferee != 0:
		return ErrProposalDropped
	case c.pendingConfIndex > c.log.applying:
		return ErrPendingConfChange
	}
	if err := ValidConfChange(c.trk.confState(), cc); err != nil {
		return err
	}
	data, err := proto.Marshal(cc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfChange, err)
	}
	c.appendEntries([]*messages.Entry{{Type: messages.EntryType_ENTRY_CONF_CHANGE, Data: data}})
	c.pendingConfIndex = c.log.lastIndex()
	c.bcastAppend(false)
	return nil
}

// ConfState returns a copy of the configuration in effect: the snapshot's,
// changed by every conf change handed out for applying since.
func (c *Core) ConfState() *messages.ConfState { return c.trk.confState() }

// IsLearner reports whether this member is a learner in the configuration
// in effect.
func (c *Core) IsLearner() bool { return c.trk.isLearner(c.id) }

// DecodeConfChange returns the change an ENTRY_CONF_CHANGE entry carries.
func DecodeConfChange(e *messages.Entry) (*messages.ConfChange, error) {
	if e.GetType() != messages.EntryType_ENTRY_CONF_CHANGE {
		return nil, fmt.Errorf("%w: entry %d is not a conf change", ErrInvalidConfChange, e.GetIndex())
	}
	cc := &messages.ConfChange{}
	if err := proto.Unmarshal(e.Data, cc); err != nil {
		return nil, fmt.Errorf("%w: entry %d: %v", ErrInvalidConfChange, e.Index, err)
	}
	return cc, nil
}

// ValidConfChange reports whether cc applies to configuration cs; the
// error (ErrInvalidConfChange) says why not. Changes that do not apply are
// ignored when committed.
func ValidConfChange(cs *messages.ConfState, cc *messages.ConfChange) error {
	id := cc.GetNodeId()
	voter, learner := slices.Contains(cs.Voters, id), slices.Contains(cs.Learners, id)
	bad := func(why string) error {
		return fmt.Errorf("%w: %s %x: %s", ErrInvalidConfChange, cc.GetType(), id, why)
	}
	if id == 0 {
		return bad("member ID 0")
	}
	switch cc.GetType() {
	case messages.ConfChangeType_CONF_ADD_NODE:
		if voter {
			return bad("already a voter")
		}
	case messages.ConfChangeType_CONF_ADD_LEARNER_NODE:
		if voter || learner {
			return bad("already a member")
		}
	case messages.ConfChangeType_CONF_REMOVE_NODE:
		if !voter && !learner {
			return bad("not a member")
		}
		if voter && len(cs.Voters) == 1 {
			return bad("the last voter")
		}
	case messages.ConfChangeType_CONF_UPDATE_NODE:
		if !voter && !learner {
			return bad("not a member")
		}
	default:
		return bad("unknown change type")
	}
	return nil
}

// applyConfChangeTo returns cs changed by cc. Changes that do not apply
// (validConfChange would refuse them) leave cs as it is: every member
// applies the same entries, so they still agree.
func applyConfChangeTo(cs *messages.ConfState, cc *messages.ConfChange) *messages.ConfState {
	if ValidConfChange(cs, cc) != nil {
		return cs
	}
	id := cc.NodeId
	out := &messages.ConfState{
		Voters:   slices.DeleteFunc(slices.Clone(cs.Voters), func(v uint64) bool { return v == id }),
		Learners: slices.DeleteFunc(slices.Clone(cs.Learners), func(v uint64) bool { return v == id }),
	}
	switch cc.Type {
	case messages.ConfChangeType_CONF_ADD_NODE:
		out.Voters = append(out.Voters, id)
	case messages.ConfChangeType_CONF_ADD_LEARNER_NODE:
		out.Learners = append(out.Learners, id)
	case messages.ConfChangeType_CONF_UPDATE_NODE:
		return cs
	}
	slices.Sort(out.Voters)
	slices.Sort(out.Learners)
	return out
}

// confAfter returns cs changed by every conf change entry in ents.
func confAfter(cs *messages.ConfState, ents []*messages.Entry) *messages.ConfState {
	for _, e := range ents {
		if e.Type != messages.EntryType_ENTRY_CONF_CHANGE {
			continue
		}
		if cc, err := DecodeConfChange(e); err == nil {
			cs = applyConfChangeTo(cs, cc)
		}
	}
	return cs
}

// applyConf makes cs the configuration in effect. A leader starts
// replicating to new members and recomputes its commit index (a removed
// voter may have been the one holding it back). A leader that is no longer
// a voter goes on leading without counting itself (as etcd's raft by
// default): it must tell the others that its removal committed, or, with
// two voters, the remaining one could wait forever for the removed one's
// vote. The host stops a removed member, after handing leadership over.
func (c *Core) applyConf(cs *messages.ConfState) {
	c.trk.setConf(cs, c.log.lastIndex()+1)
	if c.role != RoleLeader {
		return
	}
	if c.leadTransferee != 0 && !c.trk.isVoter(c.leadTransferee) {
		c.leadTransferee = 0
	}
	c.maybeCommit()
	// New members are probed at once; the others learn any new commit index.
	c.bcastAppend(true)
}

func cloneConf(cs *messages.ConfState) *messages.ConfState {
	return &messages.ConfState{Voters: slices.Clone(cs.GetVoters()), Learners: slices.Clone(cs.GetLearners())}
}
