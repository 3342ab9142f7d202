package actors

import "strings"

// AllowRemote is a member's remoting.Config.AllowTarget: it admits client
// requests to the gateway, Raft traffic to the raft node, lease forwards to
// the lease ticker, snapshot chunks to the snapshot receiver and answers to
// this member's own requests, nothing else: the WAL writer and the applier
// trust their senders.
func AllowRemote(target, typeName string) bool {
	switch target {
	case GatewayName:
		return typeName == "aetcd.ClientRequest"
	case LessorName:
		// Keep-alives and time-to-live queries forwarded by a follower's
		// ticker, and the leader's answers to this member's.
		return typeName == "aetcd.LeaseForward" || typeName == "aetcd.LeaseForwardAnswer"
	case RaftName:
		return typeName == "aetcd.RaftMessage" || typeName == "aetcd.ForwardProposals" || typeName == "aetcd.MemberRemoved"
	case SnapshotReceiverName:
		return typeName == "aetcd.SnapshotChunk"
	}
	if strings.HasPrefix(target, "future$") {
		// The answer to a request this member sent another member's
		// gateway (a forwarded membership change, a join).
		return typeName == "aetcd.ClientResponse"
	}
	return typeName == "aetcd.SnapshotAck" && strings.HasPrefix(target, SnapshotSenderPrefix)
}
