package bootstrap

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aetcd/aetcd/cluster/remoting"
)

// FaultInjector holds the faults a test injects into a member started with
// --fault-injection. It is served over HTTP on the member's client URLs:
//
//	POST /debug/fault/kill?actor=NAME&how=stop|poison|panic|loglost
//	    kills one of the member's actors (see Member.KillActor).
//	POST /debug/fault/net?from=HOST:PORT&drop=P&delay=D&duplicate=P&blackhole=BOOL
//	    sets the fault on peer messages arriving from the member whose
//	    remoting address (its peer URL's host:port) is HOST:PORT, replacing
//	    any earlier one (see remoting.LinkFault); GET lists the rules.
//	POST /debug/fault/net/clear[?from=HOST:PORT]
//	    clears one rule or all.
//	POST /debug/fault/fsync
//	    makes the WAL's next fdatasync fail with EIO (the member fail-stops).
//
// Success answers 200 "ok"; bad parameters 400 with the reason, changing
// nothing. Without --fault-injection none of these paths exists.
type FaultInjector struct {
	netFaults *remoting.NetFaults
	failSync  atomic.Bool
}

// NewFaultInjector returns an injector with no faults whose random choices
// (which messages a lossy link drops) come from seed.
func NewFaultInjector(seed uint64) *FaultInjector {
	return &FaultInjector{netFaults: remoting.NewNetFaults(newRand(seed))}
}

// FailNextSync makes the next fdatasync of the WAL fail with EIO.
func (f *FaultInjector) FailNextSync() { f.failSync.Store(true) }

// syncFault is the WAL's SyncFault hook; nil for a nil injector.
func (f *FaultInjector) syncFault() func() error {
	if f == nil {
		return nil
	}
	return func() error {
		if f.failSync.CompareAndSwap(true, false) {
			return fmt.Errorf("injected fault: %w", syscall.EIO)
		}
		return nil
	}
}

// net is remoting's fault layer; nil for a nil injector.
func (f *FaultInjector) net() *remoting.NetFaults {
	if f == nil {
		return nil
	}
	return f.netFaults
}

// serveFaults registers the fault endpoints on mux.
func (m *Member) serveFaults(mux *http.ServeMux) {
	f := m.cfg.Faults
	mux.HandleFunc("POST /debug/fault/kill", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := m.KillActor(q.Get("actor"), q.Get("how")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.log.Warn().Str("actor", q.Get("actor")).Str("how", q.Get("how")).Msg("fault injected: actor kill")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /debug/fault/net", func(w http.ResponseWriter, r *http.Request) {
		from, lf, err := parseLinkFault(r)
		if err == nil {
			err = f.netFaults.Set(from, lf)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.log.Warn().Str("from", from).Stringer("fault", lf).Msg("fault injected: peer link")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /debug/fault/net", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, f.netFaults.String())
	})
	mux.HandleFunc("POST /debug/fault/net/clear", func(w http.ResponseWriter, r *http.Request) {
		f.netFaults.Clear(r.URL.Query().Get("from"))
		m.log.Warn().Str("from", r.URL.Query().Get("from")).Msg("fault cleared: peer link")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /debug/fault/fsync", func(w http.ResponseWriter, _ *http.Request) {
		f.FailNextSync()
		m.log.Warn().Msg("fault injected: the next WAL fdatasync fails")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// parseLinkFault reads a /debug/fault/net request's parameters.
func parseLinkFault(r *http.Request) (string, remoting.LinkFault, error) {
	q := r.URL.Query()
	var lf remoting.LinkFault
	from := q.Get("from")
	if from == "" {
		return "", lf, errors.New("fault: from=HOST:PORT is required")
	}
	var err error
	prob := func(name string) float64 {
		v := q.Get(name)
		if v == "" || err != nil {
			return 0
		}
		p, perr := strconv.ParseFloat(v, 64)
		if perr != nil {
			err = fmt.Errorf("fault: %s=%q: not a number", name, v)
		}
		return p
	}
	lf.Drop = prob("drop")
	lf.Duplicate = prob("duplicate")
	if err != nil {
		return "", lf, err
	}
	if v := q.Get("delay"); v != "" {
		if lf.Delay, err = time.ParseDuration(v); err != nil {
			return "", lf, fmt.Errorf("fault: delay=%q: %v", v, err)
		}
	}
	if v := q.Get("blackhole"); v != "" {
		if lf.Blackhole, err = strconv.ParseBool(v); err != nil {
			return "", lf, fmt.Errorf("fault: blackhole=%q: not a boolean", v)
		}
	}
	return from, lf, nil
}
