package bootstrap

import (
	"context"
	"time"

	"github.com/aetcd/aetcd/messages/rpcerr"
	"google.golang.org/grpc/metadata"
)

// maxNoLeaderChecks is how many election timeouts in a row a member may be
// without a leader before it ends the streams that require one (etcd's
// maxNoLeaderCnt).
const maxNoLeaderChecks = 3

// errNoLeader is what a stream that required a leader ends with.
var errNoLeader = rpcerr.Status(rpcerr.NoLeader)

// requireLeader applies etcd's "hasleader" stream metadata: a stream that
// asks for it is refused when the member has no leader, and ended (its
// context canceled with cause errNoLeader) once the member has had no
// leader for maxNoLeaderChecks election timeouts in a row. Streams without
// it get ctx back unchanged.
func (a *etcdAPI) requireLeader(ctx context.Context) (context.Context, context.CancelFunc, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("hasleader"); len(v) == 0 || v[0] != "true" {
		return ctx, func() {}, nil
	}
	if !a.hasLeader() {
		return nil, nil, errNoLeader
	}
	sctx, cancel := context.WithCancelCause(ctx)
	every := a.election
	if every <= 0 {
		every = time.Second
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		missed := 0
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				if a.hasLeader() {
					missed = 0
					continue
				}
				if missed++; missed >= maxNoLeaderChecks {
					cancel(errNoLeader)
					return
				}
			}
		}
	}()
	return sctx, func() { cancel(context.Canceled) }, nil
}

// streamEnded returns the error a stream ends with once ctx is done: the
// cause it was canceled with by requireLeader, or ctx's own error.
func streamEnded(ctx context.Context) error {
	if cause := context.Cause(ctx); cause == errNoLeader {
		return errNoLeader
	}
	return ctx.Err()
}
