package client_test

import (
	"bytes"
	"fmt"
	"os"
	"sort"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/asynkron/protoactor-go/actor"
)

// The fake member's leases (which never expire) and watch streams.

// lease answers the lease requests; nil for any other.
func (f *fakeStore) lease(req *messages.ClientRequest) *messages.ClientResponse {
	switch r := req.Request.(type) {
	case *messages.ClientRequest_LeaseGrant:
		id := r.LeaseGrant.ID
		if id == 0 {
			id = 0x100 + int64(len(f.leases))
		}
		if f.leases[id] != 0 {
			return rpcerr.Response(rpcerr.LeaseExist)
		}
		f.leases[id] = r.LeaseGrant.TTL
		return &messages.ClientResponse{Response: &messages.ClientResponse_LeaseGrant{LeaseGrant: &messages.LeaseGrantResponse{
			Header: header(f.rev), ID: id, TTL: r.LeaseGrant.TTL}}}
	case *messages.ClientRequest_LeaseRevoke:
		if f.leases[r.LeaseRevoke.ID] == 0 {
			return rpcerr.Response(rpcerr.LeaseNotFound)
		}
		delete(f.leases, r.LeaseRevoke.ID)
		return &messages.ClientResponse{Response: &messages.ClientResponse_LeaseRevoke{LeaseRevoke: &messages.LeaseRevokeResponse{Header: header(f.rev)}}}
	case *messages.ClientRequest_LeaseKeepAlive:
		id := r.LeaseKeepAlive.ID
		return &messages.ClientResponse{Response: &messages.ClientResponse_LeaseKeepAlive{LeaseKeepAlive: &messages.LeaseKeepAliveResponse{
			Header: header(f.rev), ID: id, TTL: f.leases[id]}}}
	case *messages.ClientRequest_LeaseTimeToLive:
		id := r.LeaseTimeToLive.ID
		resp := &messages.LeaseTimeToLiveResponse{Header: header(f.rev), ID: id, TTL: -1}
		if ttl := f.leases[id]; ttl != 0 {
			resp.TTL, resp.GrantedTTL = ttl, ttl
			if r.LeaseTimeToLive.Keys {
				for _, kv := range f.sortedKVs() {
					if kv.Lease == id {
						resp.Keys = append(resp.Keys, kv.Key)
					}
				}
			}
		}
		return &messages.ClientResponse{Response: &messages.ClientResponse_LeaseTimeToLive{LeaseTimeToLive: resp}}
	case *messages.ClientRequest_LeaseLeases:
		resp := &messages.LeaseLeasesResponse{Header: header(f.rev)}
		var ids []int64
		for id := range f.leases {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			resp.Leases = append(resp.Leases, &messages.LeaseStatus{ID: id})
		}
		return &messages.ClientResponse{Response: &messages.ClientResponse_LeaseLeases{LeaseLeases: resp}}
	}
	return nil
}

func (f *fakeStore) sortedKVs() []*messages.KeyValue {
	var kvs []*messages.KeyValue
	for _, kv := range f.kvs {
		kvs = append(kvs, kv)
	}
	sort.Slice(kvs, func(i, j int) bool { return bytes.Compare(kvs[i].Key, kvs[j].Key) < 0 })
	return kvs
}

// fakeStream is a client's watch stream with at most one watcher.
type fakeStream struct {
	to       *actor.PID
	key, end []byte
	prevKV   bool
}

// watch serves a stream message as the gateway does, logging
// "watch create|heartbeat|close". A create's key chooses the answer:
// "error" a member error, "refused" a failed create, "compacted" a
// create canceled at once for a compacted revision; any other key a
// watcher of [key, range_end) that sees later puts.
func (f *fakeStore) watch(ctx actor.Context, req *messages.WatchStreamRequest) {
	from := ctx.Sender()
	id := from.Address + "/" + from.Id
	send := func(r *messages.WatchResponse) {
		ctx.Send(from, &messages.ClientResponse{Response: &messages.ClientResponse_Watch{Watch: r}})
	}
	switch {
	case req.Close:
		fmt.Fprintln(os.Stderr, "watch close")
		delete(f.streams, id)
	case req.Request == nil:
		fmt.Fprintln(os.Stderr, "watch heartbeat")
	default:
		cr := req.Request.GetCreateRequest()
		fmt.Fprintln(os.Stderr, "watch create")
		switch string(cr.GetKey()) {
		case "error":
			ctx.Send(from, rpcerr.Response(rpcerr.LearnerNotSupported))
		case "refused":
			send(&messages.WatchResponse{Header: header(f.rev), WatchId: -1, Created: true, Canceled: true, CancelReason: "mvcc: watcher range is empty"})
		case "compacted":
			send(&messages.WatchResponse{Header: header(f.rev), Created: true})
			send(&messages.WatchResponse{Header: header(f.rev), Canceled: true, CompactRevision: 5})
		default:
			f.streams[id] = &fakeStream{to: from, key: cr.Key, end: cr.RangeEnd, prevKV: cr.PrevKv}
			send(&messages.WatchResponse{Header: header(f.rev), Created: true})
		}
	}
	root := ctx.ActorSystem().Root
	f.send = func(to *actor.PID, r *messages.WatchResponse) {
		root.Send(to, &messages.ClientResponse{Response: &messages.ClientResponse_Watch{Watch: r}})
	}
}

// notify sends ev to the watchers whose range holds its key.
func (f *fakeStore) notify(ev *messages.Event) {
	for _, s := range f.streams {
		k := ev.Kv.Key
		if !bytes.Equal(k, s.key) && (len(s.end) == 0 || bytes.Compare(k, s.key) < 0 || bytes.Compare(k, s.end) >= 0) {
			continue
		}
		out := &messages.Event{Type: ev.Type, Kv: ev.Kv}
		if s.prevKV {
			out.PrevKv = ev.PrevKv
		}
		f.send(s.to, &messages.WatchResponse{Header: header(f.rev), Events: []*messages.Event{out}})
	}
}
