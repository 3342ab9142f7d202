package bootstrap

import (
	"errors"
	"fmt"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
)

// ErrDataInconsistency is wrapped by the error Start returns when the
// initial corruption check finds the backend's HashKV different from a
// peer's at the same revision and compaction revision.
var ErrDataInconsistency = errors.New("found data inconsistency with peers")

// initialCorruptCheck is etcd's initial corruption check
// (--experimental-initial-corrupt-check, server/etcdserver/corrupt.go
// InitialCheck), run by a member restarting on its data dir before it
// serves peers or clients: it hashes its backend (HashKV at its revision)
// and asks every other member in members for HashKV at that revision
// through the peer's gateway. A peer whose hash differs with the same
// compaction revision is a mismatch, and any mismatch is an error
// wrapping ErrDataInconsistency ("<member ID> found data inconsistency with
// peers", etcd's message): the backend holds data the cluster never wrote,
// a corruption no local check sees (a flipped byte in a value). A peer that
// does not answer, is behind (future revision), has compacted past the
// revision, or differs only in its compaction revision proves nothing and
// is logged, as etcd does.
//
// Peer URLs are tried in order; each request waits up to the request
// timeout. The store must not yet belong to the applier.
func (m *Member) initialCorruptCheck(members []*messages.Member) error {
	id := fmt.Sprintf("%x", m.cfg.MemberID)
	log := m.log.With().Str("local-member-id", id).Logger()
	log.Info().Dur("timeout", m.cfg.RequestTimeout).Msg("starting initial corruption check")
	hash, compactRev, rev, herr := m.store.HashKV(0)
	if herr != nil {
		return fmt.Errorf("%s failed to fetch hash (%s)", id, herr.Message)
	}
	local := log.With().Int64("local-member-revision", rev).Int64("local-member-compact-revision", compactRev).
		Uint32("local-member-hash", hash).Logger()
	mismatch := 0
	for _, peer := range members {
		if peer.ID == m.cfg.MemberID || len(peer.PeerURLs) == 0 {
			continue
		}
		plog := local.With().Str("remote-peer-id", fmt.Sprintf("%x", peer.ID)).Strs("remote-peer-endpoints", peer.PeerURLs).Logger()
		resp, err := m.peerHashKV(peer, rev)
		switch {
		case err == nil && resp.Hash == hash:
		case err == nil:
			plog = plog.With().Int64("remote-peer-revision", resp.Header.GetRevision()).
				Int64("remote-peer-compact-revision", resp.CompactRevision).Uint32("remote-peer-hash", resp.Hash).Logger()
			if resp.CompactRevision == compactRev {
				plog.Warn().Msg("found different hash values from remote peer")
				mismatch++
			} else {
				plog.Warn().Msg("found different compact revision values from remote peer")
			}
		case err.Error() == rpcerr.FutureRev.Message:
			plog.Warn().Err(err).Msg("cannot fetch hash from slow remote peer")
		case err.Error() == rpcerr.Compacted.Message:
			plog.Warn().Err(err).Msg("cannot fetch hash from remote peer; local member is behind")
		default:
			plog.Warn().Err(err).Msg("failed hash kv request")
		}
	}
	if mismatch > 0 {
		return fmt.Errorf("%s %w", id, ErrDataInconsistency)
	}
	log.Info().Msg("initial corruption checking passed; no corruption")
	return nil
}

// peerHashKV asks peer's gateway for HashKV at rev, trying each of its peer
// URLs until one answers.
func (m *Member) peerHashKV(peer *messages.Member, rev int64) (*messages.HashKVResponse, error) {
	var lastErr error
	for _, u := range peer.PeerURLs {
		addr, err := hostPort(u)
		if err != nil {
			lastErr = err
			continue
		}
		resp, err := m.askPeerGateway(addr,
			&messages.ClientRequest{Request: &messages.ClientRequest_HashKv{HashKv: &messages.HashKVRequest{Revision: rev}}},
			m.cfg.RequestTimeout)
		switch {
		case err != nil:
			lastErr = err
		case resp.GetError() != nil:
			return nil, errors.New(resp.GetError().Message)
		case resp.GetHashKv() == nil:
			lastErr = fmt.Errorf("%s: unexpected answer to HashKV", addr)
		default:
			return resp.GetHashKv(), nil
		}
	}
	return nil, lastErr
}
