package bootstrap

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// Supervisor restart intensity: more than MaxRestarts restarts within
// RestartWindow and Run gives up (a member that keeps failing is not
// helped by restarting it again).
const (
	MaxRestarts   = 5
	RestartWindow = time.Minute
)

// Run runs a member on cfg until ctx is done (then stops it cleanly and
// returns its Stop error) or it fails for good, and supervises it: a member
// that fail-stops because one of its actors failed (a panic) or stopped
// outside Stop is started again on its data dir — everything is rebuilt
// from the WAL and the backend, which is what makes the restart safe.
// Any other fatal error (a failed WAL write or fdatasync, a backend
// failure, a removed member) is returned: the member cannot be sure of its
// data, and only an operator may restart it. So is a failed (re)start, and
// a restart beyond MaxRestarts within RestartWindow. started, if not nil, is
// called with each member once it serves.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, started func(*Member)) error {
	var restarts []time.Time
	for {
		m, err := Start(cfg, log)
		if err != nil {
			log.Error().Err(err).Msg("member failed to start")
			return err
		}
		// Restarts share the first member's fault injector: injected link
		// faults outlive a restart.
		cfg.Faults = m.cfg.Faults
		if started != nil {
			started(m)
		}
		select {
		case <-ctx.Done():
			log.Info().Msg("received signal; stopping")
			return m.Stop()
		case <-m.Done():
		}
		err = m.Err()
		if !restartable(err) {
			return err
		}
		now := time.Now()
		for len(restarts) > 0 && now.Sub(restarts[0]) > RestartWindow {
			restarts = restarts[1:]
		}
		if len(restarts) >= MaxRestarts {
			log.Error().Err(err).Int("restarts", len(restarts)).Dur("window", RestartWindow).Msg("member keeps failing; not restarting it again")
			return err
		}
		restarts = append(restarts, now)
		log.Warn().Err(err).Int("restart", len(restarts)).Msg("supervisor: restarting the member from its data dir")
		// The data dir is what this process wrote a moment ago, not a
		// disk that may have rotted while the member was down: the
		// initial corruption check (which waits for every peer) is for
		// process starts only.
		cfg.InitialCorruptCheck = false
	}
}

// restartable reports whether a member that stopped with err may be
// restarted by its supervisor.
func restartable(err error) bool {
	return errors.Is(err, ErrActorFailed) || errors.Is(err, ErrActorStopped)
}
