// Package chaos runs aetcd clusters under injected faults and checks what
// the clients saw: a linearizability check of the key-value history with
// porcupine, watch guarantees and lease guarantees.
//
// This file holds the history types shared by the recorder (the runner)
// and the checkers.
package chaos

import "time"

// Kind is the kind of a key-value operation.
type Kind uint8

const (
	KindGet    Kind = iota + 1 // Range of one key
	KindPut                    // Put of one key
	KindDelete                 // DeleteRange of one key
	KindCAS                    // Txn: compare the key's value (or absence), then put
)

func (k Kind) String() string {
	switch k {
	case KindGet:
		return "get"
	case KindPut:
		return "put"
	case KindDelete:
		return "delete"
	case KindCAS:
		return "cas"
	}
	return "unknown-kind"
}

// Op is one client operation on a single key as a client saw it. Call and
// Return are wall-clock Unix nanoseconds taken just before the request was
// sent and just after its answer arrived. An operation whose outcome the
// client cannot know (a timeout, a lost connection, "leader changed" for a
// write) is Unknown: it may have taken effect at any time after Call, or
// never; its Return and results are meaningless.
type Op struct {
	Client int // the recording client (porcupine's ClientId)
	Kind   Kind
	Key    string
	// Value is what a Put or CAS writes. Every written value is unique in a
	// history, so a read identifies the write it saw.
	Value string
	// Expect is the CAS comparison: the key's value equals Expect, or, when
	// ExpectAbsent, the key does not exist (create_revision == 0).
	Expect       string
	ExpectAbsent bool

	Call, Return int64
	Unknown      bool

	// Results of a completed operation.
	Found     bool   // Get: the key exists
	Got       string // Get: its value
	Succeeded bool   // CAS: the comparison held and the put was applied
	Deleted   int64  // Delete: keys deleted (0 or 1)
	Rev       int64  // the response header's revision
	Member    string // the endpoint the client used, for reports
}

// WatchEvent is one event of a watch response.
type WatchEvent struct {
	Put         bool // false: a DELETE
	Key, Value  string
	ModRev      int64
	CreateRev   int64
	Version     int64
	PrevPresent bool // unused unless the watch asked for prev_kv
}

// WatchLog is what one watcher received, in the order received, from its
// creation until it stopped. StartRev is the revision the watch asked to
// start from (0 = from the current revision at creation; then CreatedRev is
// the created response's header revision and events start after it).
// A watcher that was canceled (compaction, an error) or whose stream broke
// records why in End; a watcher restarted by the runner is a new WatchLog
// whose StartRev is the last revision seen + 1.
type WatchLog struct {
	ID         int
	Prefix     string // the watched prefix; "" is the whole key space
	Member     string
	StartRev   int64
	CreatedRev int64
	Events     []WatchEvent
	End        string
}

// LeaseLog is one lease the runner granted and kept alive, and the keys it
// attached. Acks are the Unix-nanosecond times of the keep-alive responses
// the client received (Granted is the grant's answer time); Revoked is when
// the runner revoked it or stopped keeping it alive (0: kept alive to the
// end of the run) and RevokedRev the revoke answer's header revision (0 if
// not revoked or the revoke's outcome is unknown).
type LeaseLog struct {
	ID         int64
	TTL        time.Duration
	Keys       []string
	Granted    int64
	Acks       []int64
	Revoked    int64
	RevokedRev int64
}

// Violation is one broken guarantee.
type Violation struct {
	Check  string // "linearizable", "watch", "lease", "durability", "convergence"
	Detail string
}

func (v Violation) String() string { return v.Check + ": " + v.Detail }
