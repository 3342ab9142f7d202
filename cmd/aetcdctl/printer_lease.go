package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/aetcd/aetcd/messages"
)

// The lease and watch printers, as etcdctl 3.6.6's. Its json printer
// marshals clientv3's own structs: the lease responses embed the header
// (so its fields come first, unnested) and name their fields ID, TTL,
// Error (grant, keep-alive) or id, ttl, granted-ttl, keys (timetolive),
// leases (list); a watch response has Header, Events (never null),
// CompactRevision, Canceled and Created. Its protobuf printer marshals
// what has a Marshal method: for grant, keep-alive, timetolive and list
// that is the embedded header alone; revoke's response has none, so it
// fails; a watch response is marshalled without its watch ID and cancel
// reason.

func (p *simplePrinter) Grant(r *messages.LeaseGrantResponse) error {
	fmt.Fprintf(p.w, "lease %016x granted with TTL(%ds)\n", r.GetID(), r.GetTTL())
	return nil
}

func (p *simplePrinter) Revoke(id int64, _ *messages.LeaseRevokeResponse) error {
	fmt.Fprintf(p.w, "lease %016x revoked\n", id)
	return nil
}

func (p *simplePrinter) KeepAlive(r *messages.LeaseKeepAliveResponse) error {
	fmt.Fprintf(p.w, "lease %016x keepalived with TTL(%d)\n", r.GetID(), r.GetTTL())
	return nil
}

func (p *simplePrinter) TimeToLive(r *messages.LeaseTimeToLiveResponse, keys bool) error {
	if r.GetGrantedTTL() == 0 && r.GetTTL() == -1 {
		fmt.Fprintf(p.w, "lease %016x already expired\n", r.GetID())
		return nil
	}
	txt := fmt.Sprintf("lease %016x granted with TTL(%ds), remaining(%ds)", r.GetID(), r.GetGrantedTTL(), r.GetTTL())
	if keys {
		ks := make([]string, len(r.GetKeys()))
		for i, k := range r.GetKeys() {
			ks[i] = string(k)
		}
		txt += fmt.Sprintf(", attached keys(%v)", ks)
	}
	fmt.Fprintln(p.w, txt)
	return nil
}

func (p *simplePrinter) Leases(r *messages.LeaseLeasesResponse) error {
	fmt.Fprintf(p.w, "found %d leases\n", len(r.GetLeases()))
	for _, l := range r.GetLeases() {
		fmt.Fprintf(p.w, "%016x\n", l.GetID())
	}
	return nil
}

func (p *simplePrinter) Watch(r *messages.WatchResponse) error {
	for _, ev := range r.GetEvents() {
		fmt.Fprintln(p.w, ev.GetType())
		if ev.GetPrevKv() != nil {
			p.kv(ev.GetPrevKv())
		}
		p.kv(ev.GetKv())
	}
	return nil
}

func (p *fieldsPrinter) id(id int64) {
	if p.isHex {
		fmt.Fprintf(p.w, "\"ID\" : %016x\n", id)
	} else {
		fmt.Fprintln(p.w, `"ID" :`, id)
	}
}

func (p *fieldsPrinter) Grant(r *messages.LeaseGrantResponse) error {
	p.header(r.GetHeader())
	p.id(r.GetID())
	fmt.Fprintln(p.w, `"TTL" :`, r.GetTTL())
	return nil
}

func (p *fieldsPrinter) Revoke(_ int64, r *messages.LeaseRevokeResponse) error {
	p.header(r.GetHeader())
	return nil
}

func (p *fieldsPrinter) KeepAlive(r *messages.LeaseKeepAliveResponse) error {
	p.header(r.GetHeader())
	p.id(r.GetID())
	fmt.Fprintln(p.w, `"TTL" :`, r.GetTTL())
	return nil
}

func (p *fieldsPrinter) TimeToLive(r *messages.LeaseTimeToLiveResponse, _ bool) error {
	p.header(r.GetHeader())
	p.id(r.GetID())
	fmt.Fprintln(p.w, `"TTL" :`, r.GetTTL())
	fmt.Fprintln(p.w, `"GrantedTTL" :`, r.GetGrantedTTL())
	for _, k := range r.GetKeys() {
		fmt.Fprintf(p.w, "\"Key\" : %q\n", string(k))
	}
	return nil
}

func (p *fieldsPrinter) Leases(r *messages.LeaseLeasesResponse) error {
	p.header(r.GetHeader())
	for _, l := range r.GetLeases() {
		p.id(l.GetID())
	}
	return nil
}

func (p *fieldsPrinter) Watch(r *messages.WatchResponse) error {
	p.header(r.GetHeader())
	for _, ev := range r.GetEvents() {
		fmt.Fprintln(p.w, `"Type" :`, ev.GetType())
		if ev.GetPrevKv() != nil {
			p.kv("Prev", ev.GetPrevKv())
		}
		p.kv("", ev.GetKv())
	}
	return nil
}

// clientv3's LeaseGrantResponse and LeaseKeepAliveResponse.
type jsonLeaseGrant struct {
	*jsonResponseHeader
	ID    int64
	TTL   int64
	Error string
}

type jsonLeaseKeepAlive struct {
	*jsonResponseHeader
	ID  int64
	TTL int64
}

type jsonLeaseTimeToLive struct {
	*jsonResponseHeader
	ID         int64    `json:"id"`
	TTL        int64    `json:"ttl"`
	GrantedTTL int64    `json:"granted-ttl"`
	Keys       [][]byte `json:"keys"`
}

type jsonLeaseStatus struct {
	ID int64 `json:"id"`
}

type jsonLeaseLeases struct {
	*jsonResponseHeader
	Leases []jsonLeaseStatus `json:"leases"`
}

// jsonLeaseRevoke is etcd's LeaseRevokeResponse.
type jsonLeaseRevoke struct {
	Header *jsonResponseHeader `json:"header,omitempty"`
}

// jsonWatch is clientv3's WatchResponse.
type jsonWatch struct {
	Header          jsonResponseHeader
	Events          []*jsonEvent
	CompactRevision int64
	Canceled        bool
	Created         bool
}

type jsonEvent struct {
	Type   int32         `json:"type,omitempty"`
	Kv     *jsonKeyValue `json:"kv,omitempty"`
	PrevKv *jsonKeyValue `json:"prev_kv,omitempty"`
}

func (p *jsonPrinter) Grant(r *messages.LeaseGrantResponse) error {
	return p.print(&jsonLeaseGrant{jsonResponseHeader: jsonHeader(r.GetHeader()), ID: r.GetID(), TTL: r.GetTTL(), Error: r.GetError()})
}

func (p *jsonPrinter) Revoke(_ int64, r *messages.LeaseRevokeResponse) error {
	return p.print(&jsonLeaseRevoke{Header: jsonHeader(r.GetHeader())})
}

func (p *jsonPrinter) KeepAlive(r *messages.LeaseKeepAliveResponse) error {
	return p.print(&jsonLeaseKeepAlive{jsonResponseHeader: jsonHeader(r.GetHeader()), ID: r.GetID(), TTL: r.GetTTL()})
}

func (p *jsonPrinter) TimeToLive(r *messages.LeaseTimeToLiveResponse, _ bool) error {
	return p.print(&jsonLeaseTimeToLive{jsonResponseHeader: jsonHeader(r.GetHeader()), ID: r.GetID(), TTL: r.GetTTL(),
		GrantedTTL: r.GetGrantedTTL(), Keys: r.GetKeys()})
}

func (p *jsonPrinter) Leases(r *messages.LeaseLeasesResponse) error {
	// clientv3 makes the list, so no leases print as [].
	leases := make([]jsonLeaseStatus, len(r.GetLeases()))
	for i, l := range r.GetLeases() {
		leases[i].ID = l.GetID()
	}
	return p.print(&jsonLeaseLeases{jsonResponseHeader: jsonHeader(r.GetHeader()), Leases: leases})
}

func (p *jsonPrinter) Watch(r *messages.WatchResponse) error {
	out := &jsonWatch{Events: make([]*jsonEvent, len(r.GetEvents())), CompactRevision: r.GetCompactRevision(),
		Canceled: r.GetCanceled(), Created: r.GetCreated()}
	if h := jsonHeader(r.GetHeader()); h != nil {
		out.Header = *h
	}
	for i, ev := range r.GetEvents() {
		out.Events[i] = &jsonEvent{Type: int32(ev.GetType()), Kv: jsonKV(ev.GetKv()), PrevKv: jsonKV(ev.GetPrevKv())}
	}
	return p.print(out)
}

func (p *protobufPrinter) Grant(r *messages.LeaseGrantResponse) error { return p.header(r.GetHeader()) }
func (p *protobufPrinter) KeepAlive(r *messages.LeaseKeepAliveResponse) error {
	return p.header(r.GetHeader())
}
func (p *protobufPrinter) TimeToLive(r *messages.LeaseTimeToLiveResponse, _ bool) error {
	return p.header(r.GetHeader())
}
func (p *protobufPrinter) Leases(r *messages.LeaseLeasesResponse) error {
	return p.header(r.GetHeader())
}

// header marshals h; etcd's Marshal of a nil header is empty.
func (p *protobufPrinter) header(h *messages.ResponseHeader) error {
	if h == nil {
		return nil
	}
	return p.print(h)
}

// Revoke fails as etcdctl's does, naming the response in gogo's %v.
func (p *protobufPrinter) Revoke(_ int64, r *messages.LeaseRevokeResponse) error {
	h := "<nil>"
	if hdr := r.GetHeader(); hdr != nil {
		h = headerText(hdr)
	}
	return errorf(exitBadFeature, "marshal unsupported for type clientv3.LeaseRevokeResponse ({%s {} [] 0})", h)
}

// headerText is gogo's compact text of a ResponseHeader: every field set,
// each followed by a space.
func headerText(h *messages.ResponseHeader) string {
	var b strings.Builder
	for _, f := range []struct {
		name string
		v    uint64
	}{{"cluster_id", h.GetClusterId()}, {"member_id", h.GetMemberId()}, {"revision", uint64(h.GetRevision())}, {"raft_term", h.GetRaftTerm()}} {
		if f.v != 0 {
			if f.name == "revision" {
				b.WriteString(f.name + ":" + strconv.FormatInt(int64(f.v), 10) + " ")
			} else {
				b.WriteString(f.name + ":" + strconv.FormatUint(f.v, 10) + " ")
			}
		}
	}
	return b.String()
}

func (p *protobufPrinter) Watch(r *messages.WatchResponse) error {
	return p.print(&messages.WatchResponse{Header: r.GetHeader(), Events: r.GetEvents(),
		CompactRevision: r.GetCompactRevision(), Canceled: r.GetCanceled(), Created: r.GetCreated()})
}

func (p unsupportedPrinter) Grant(*messages.LeaseGrantResponse) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) Revoke(int64, *messages.LeaseRevokeResponse) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) KeepAlive(*messages.LeaseKeepAliveResponse) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) TimeToLive(*messages.LeaseTimeToLiveResponse, bool) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) Leases(*messages.LeaseLeasesResponse) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) Watch(*messages.WatchResponse) error { return errUnsupported(p.format) }
