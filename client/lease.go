package client

import (
	"context"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
)

// ErrLeaseNotFound is what KeepAliveOnce returns for a lease the member
// does not hold (etcd's rpctypes.ErrLeaseNotFound).
var ErrLeaseNotFound = errorFrom(rpcerr.LeaseNotFound)

// Grant creates a lease of ttl seconds. id 0 lets the member choose the
// lease's ID. A member error (a TTL too large, an ID in use) is an *Error.
func (c *Client) Grant(ctx context.Context, ttl, id int64) (*messages.LeaseGrantResponse, error) {
	req := &messages.LeaseGrantRequest{TTL: ttl, ID: id}
	return call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseGrant{LeaseGrant: req}}, "lease_grant", (*messages.ClientResponse).GetLeaseGrant)
}

// Revoke revokes a lease and deletes the keys attached to it; an unknown
// lease is etcd's "requested lease not found" *Error.
func (c *Client) Revoke(ctx context.Context, id int64) (*messages.LeaseRevokeResponse, error) {
	req := &messages.LeaseRevokeRequest{ID: id}
	return call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseRevoke{LeaseRevoke: req}}, "lease_revoke", (*messages.ClientResponse).GetLeaseRevoke)
}

// KeepAliveOnce renews a lease once. As clientv3's, it returns
// ErrLeaseNotFound when the member answers TTL ≤ 0 (no such lease).
func (c *Client) KeepAliveOnce(ctx context.Context, id int64) (*messages.LeaseKeepAliveResponse, error) {
	req := &messages.LeaseKeepAliveRequest{ID: id}
	resp, err := call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseKeepAlive{LeaseKeepAlive: req}}, "lease_keep_alive", (*messages.ClientResponse).GetLeaseKeepAlive)
	if err != nil {
		return nil, err
	}
	if resp.GetTTL() <= 0 {
		return nil, ErrLeaseNotFound
	}
	return resp, nil
}

// TimeToLive returns a lease's granted and remaining TTL, and with keys the
// keys attached to it. An unknown lease is not an error: its TTL is -1.
func (c *Client) TimeToLive(ctx context.Context, id int64, keys bool) (*messages.LeaseTimeToLiveResponse, error) {
	req := &messages.LeaseTimeToLiveRequest{ID: id, Keys: keys}
	return call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseTimeToLive{LeaseTimeToLive: req}}, "lease_time_to_live", (*messages.ClientResponse).GetLeaseTimeToLive)
}

// Leases lists the leases the member holds.
func (c *Client) Leases(ctx context.Context) (*messages.LeaseLeasesResponse, error) {
	req := &messages.ClientRequest{Request: &messages.ClientRequest_LeaseLeases{LeaseLeases: &messages.LeaseLeasesRequest{}}}
	return call(c, ctx, req, "lease_leases", (*messages.ClientResponse).GetLeaseLeases)
}

// keepAliveRetry is how long KeepAlive waits after a failed keep-alive.
const keepAliveRetry = 500 * time.Millisecond

// KeepAlive renews lease id until ctx is done: at once, then every third
// of the TTL the member last answered. Every answer is sent on the
// returned channel (which blocks renewals until it is read). The channel
// is closed when ctx is done, the client is closed, the lease is gone (an
// answer with TTL ≤ 0, which is not sent), or no renewal succeeded within
// the lease's last TTL (failed renewals are retried every 500 ms). It
// returns ErrClosed on a closed client.
func (c *Client) KeepAlive(ctx context.Context, id int64) (<-chan *messages.LeaseKeepAliveResponse, error) {
	select {
	case <-c.done:
		return nil, ErrClosed
	default:
	}
	out := make(chan *messages.LeaseKeepAliveResponse)
	go c.keepAlive(ctx, id, out)
	return out, nil
}

func (c *Client) keepAlive(ctx context.Context, id int64, out chan<- *messages.LeaseKeepAliveResponse) {
	defer close(out)
	req := &messages.ClientRequest{Request: &messages.ClientRequest_LeaseKeepAlive{LeaseKeepAlive: &messages.LeaseKeepAliveRequest{ID: id}}}
	// Until the first answer, the lease is assumed to last clientv3's
	// default TTL.
	ttl, lastOK := 5*time.Second, time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		case <-c.done:
			return
		}
		resp, err := call(c, ctx, req, "lease_keep_alive", (*messages.ClientResponse).GetLeaseKeepAlive)
		next := keepAliveRetry
		switch {
		case err != nil:
			if ctx.Err() != nil || time.Since(lastOK) > ttl {
				return
			}
		case resp.GetTTL() <= 0:
			return
		default:
			ttl, lastOK = time.Duration(resp.GetTTL())*time.Second, time.Now()
			next = max(ttl/3, keepAliveRetry)
			select {
			case out <- resp:
			case <-ctx.Done():
				return
			case <-c.done:
				return
			}
		}
		timer.Reset(next)
	}
}
