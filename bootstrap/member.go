package bootstrap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/cluster"
	"github.com/aetcd/aetcd/cluster/raft"
	"github.com/aetcd/aetcd/cluster/remoting"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/aetcd/aetcd/persistence/wal"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// Member is one running aetcd member.
type Member struct {
	cfg    Config
	log    zerolog.Logger
	state  *actors.MemberState
	system *actor.ActorSystem
	root   *actor.RootContext
	remote *remote.Remote
	wal    *wal.WAL
	store  *mvcc.Store

	raftPID, walPID, applierPID, gatewayPID, snapPID, watchdogPID *actor.PID
	lessorPID                                                     *actor.PID
	hubPIDs                                                       []*actor.PID
	watches                                                       *actors.WatchRegistry

	peerWatchMu   sync.Mutex
	stopPeerWatch func()
	stopping      atomic.Bool
	// joinMembers is the membership a joining member was told about.
	joinMembers []*messages.Member

	grpcSrv   *grpc.Server
	httpSrv   *http.Server
	listeners []*splitListener

	clientAddrs []string
	stopOnce    sync.Once
	fatalOnce   sync.Once
	done        chan struct{}
	err         error
}

// Start opens cfg.DataDir and starts a member. cfg must have passed
// Validate. A data dir that cannot be trusted (a corrupt WAL record, a
// backend ahead of the WAL, another member's data) is an error: the member
// does not start.
func Start(cfg Config, log zerolog.Logger) (_ *Member, err error) {
	if cfg.FaultInjection && cfg.Faults == nil {
		cfg.Faults = NewFaultInjector(uint64(time.Now().UnixNano()))
	}
	m := &Member{cfg: cfg, log: log, done: make(chan struct{})}
	defer func() {
		if err != nil {
			m.shutdown()
		}
	}()
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "member", "snap"), 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	w, replay, err := wal.Open(filepath.Join(cfg.DataDir, "member", "wal"), wal.Options{SegmentSizeBytes: cfg.WALSegmentBytes, SyncFault: cfg.Faults.syncFault()})
	if err != nil {
		return nil, err
	}
	m.wal = w
	if replay.TornTailRepaired {
		log.Warn().Msg("WAL had a torn last record (unacknowledged write); truncated it")
	}
	if err := m.startSystem(); err != nil {
		return nil, err
	}
	if err := m.bindDataDir(replay); err != nil {
		return nil, err
	}
	store, err := mvcc.Open(filepath.Join(cfg.DataDir, "member", "snap", "db"), mvcc.Options{MinLeaseTTL: minLeaseTTL(cfg)})
	if err != nil {
		return nil, err
	}
	m.store = store
	if err := m.finishSnapshotInstall(replay.Snapshot); err != nil {
		return nil, err
	}
	lastIndex := uint64(0)
	if n := len(replay.Entries); n > 0 {
		lastIndex = replay.Entries[n-1].Index
	}
	if replay.Snapshot != nil {
		lastIndex = max(lastIndex, replay.Snapshot.Index)
		if ci := store.ConsistentIndex(); ci < replay.Snapshot.Index {
			return nil, fmt.Errorf("data dir %s: the WAL was released through index %d but the backend holds only %d: backend lost or rolled back; refusing to start", cfg.DataDir, replay.Snapshot.Index, ci)
		}
	}
	if hs := replay.HardState; hs != nil && hs.Commit > lastIndex {
		return nil, fmt.Errorf("data dir %s: the WAL's hard state has index %d committed but the log ends at %d: durable entries were lost; refusing to start", cfg.DataDir, hs.Commit, lastIndex)
	}
	if ci := store.ConsistentIndex(); ci > lastIndex {
		return nil, fmt.Errorf("data dir %s: backend has applied through index %d but the WAL ends at %d: WAL lost or truncated; refusing to start", cfg.DataDir, ci, lastIndex)
	}
	m.state = &actors.MemberState{MemberID: m.cfg.MemberID, ClusterID: m.cfg.ClusterID}
	members, err := store.Members()
	if err != nil {
		return nil, err
	}
	removed, err := store.RemovedMembers()
	if err != nil {
		return nil, err
	}
	if removed[m.cfg.MemberID] {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, actors.ErrRemoved)
	}
	if len(members) == 0 && m.cfg.InitialClusterState == "existing" {
		// A member joining a running cluster: the members it was told about
		// route its first Raft messages until its log or a snapshot says
		// more. One restarted before applying anything asks again.
		if m.joinMembers == nil {
			_, cid, err := m.askMembers()
			if err != nil {
				return nil, err
			}
			if cid != m.cfg.ClusterID {
				return nil, fmt.Errorf("data dir %s belongs to cluster %x; the members in --initial-cluster are of cluster %x", cfg.DataDir, m.cfg.ClusterID, cid)
			}
		}
		members = m.joinMembers
	}
	for _, mem := range members {
		if mem.ID == m.cfg.MemberID {
			m.state.IsLearner.Store(mem.IsLearner)
		}
	}
	if cfg.InitialCorruptCheck && replay.Metadata != nil { // a restart: there is data to compare
		if err := m.initialCorruptCheck(members); err != nil {
			return nil, err
		}
	}
	// From startActors on, the store belongs to the applier actor.
	applied, rev := store.ConsistentIndex(), store.Rev()
	if err := m.startActors(replay, applied, members, removed); err != nil {
		return nil, err
	}
	if err := m.serveClients(); err != nil {
		return nil, err
	}
	log.Info().Str("name", cfg.Name).Str("member-id", fmt.Sprintf("%x", m.cfg.MemberID)).
		Str("cluster-id", fmt.Sprintf("%x", m.cfg.ClusterID)).Strs("client-urls", m.clientAddrs).
		Str("remoting-addr", m.system.Address()).Str("data-dir", cfg.DataDir).
		Uint64("consistent-index", applied).Int64("revision", rev).
		Msg("ready to serve client requests")
	return m, nil
}

// finishSnapshotInstall completes the install of a snapshot received from
// the leader that the WAL recorded (its marker is durable) but the backend
// does not hold yet (a crash came between the two): the verified file
// db.snap-<index> replaces the backend. Stray files of other transfers are
// removed. Without such a file the backend check that follows refuses to
// start.
func (m *Member) finishSnapshotInstall(snap *messages.SnapshotMeta) error {
	dir := filepath.Join(m.cfg.DataDir, "member", "snap")
	keep := ""
	if snap != nil && snap.Index > m.store.ConsistentIndex() {
		path := filepath.Join(dir, actors.SnapshotFileName(snap.Index))
		switch ci, err := mvcc.Verify(path); {
		case err != nil:
			m.log.Error().Err(err).Str("file", path).Msg("received snapshot the WAL records cannot be installed")
		case ci != snap.Index:
			m.log.Error().Str("file", path).Uint64("consistent-index", ci).Uint64("want", snap.Index).Msg("received snapshot has the wrong consistent index")
		default:
			if err := m.store.Restore(path); err != nil {
				return fmt.Errorf("data dir %s: installing received snapshot %s: %w", m.cfg.DataDir, path, err)
			}
			m.log.Info().Uint64("index", snap.Index).Int64("revision", m.store.Rev()).Msg("finished installing a received snapshot interrupted by a crash")
		}
		keep = path
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	removed := false
	for _, e := range entries {
		name := e.Name()
		if name == actors.IncomingSnapshotName || strings.HasPrefix(name, "db.snap-") {
			if p := filepath.Join(dir, name); p != keep {
				if err := os.Remove(p); err != nil {
					return fmt.Errorf("data dir: %w", err)
				}
				removed = true
			}
		}
	}
	if removed {
		return mvcc.SyncDir(dir)
	}
	return nil
}

// bindDataDir binds the data dir to this member and cluster. A fresh WAL
// records the IDs: on a new cluster those --initial-cluster derives, and
// the WAL starts with the conf changes that make up the initial membership
// (term 1, committed, as etcd's bootstrap); a member joining a running
// cluster (--initial-cluster-state existing) learns its IDs from the
// members it was added to. An existing WAL holds the IDs: on a new cluster
// they must be the derived ones, a joined member takes them from the WAL.
func (m *Member) bindDataDir(replay *wal.Replay) error {
	md := replay.Metadata
	if md == nil {
		var ents []*messages.Entry
		var hs *messages.HardState
		if m.cfg.InitialClusterState == "existing" {
			if err := m.join(); err != nil {
				return err
			}
		} else {
			var err error
			if ents, hs, err = bootstrapEntries(m.cfg.Members); err != nil {
				return err
			}
		}
		want := make([]byte, 16)
		binary.BigEndian.PutUint64(want[0:], m.cfg.MemberID)
		binary.BigEndian.PutUint64(want[8:], m.cfg.ClusterID)
		if err := m.wal.SaveMetadata(want); err != nil {
			return err
		}
		if ents != nil {
			if err := m.wal.Save(hs, ents); err != nil {
				return err
			}
			replay.Entries, replay.HardState = ents, hs
		}
		return m.wal.Sync()
	}
	if len(md) != 16 {
		return fmt.Errorf("data dir %s: WAL metadata is %d bytes, want 16: not an aetcd data dir", m.cfg.DataDir, len(md))
	}
	gotMember, gotCluster := binary.BigEndian.Uint64(md[0:]), binary.BigEndian.Uint64(md[8:])
	if m.cfg.InitialClusterState == "new" && (gotMember != m.cfg.MemberID || gotCluster != m.cfg.ClusterID) {
		return fmt.Errorf("data dir %s belongs to member %x of cluster %x, not member %x of cluster %x (check --name, --initial-advertise-peer-urls, --initial-cluster and --initial-cluster-token; a member added with member add restarts with --initial-cluster-state existing)",
			m.cfg.DataDir, gotMember, gotCluster, m.cfg.MemberID, m.cfg.ClusterID)
	}
	m.cfg.MemberID, m.cfg.ClusterID = gotMember, gotCluster
	return nil
}

// bootstrapEntries are the first entries of a new cluster's log: one
// committed conf change adding each initial member as a voter, in ID order,
// in term 1. Every member writes the same ones.
func bootstrapEntries(members []cluster.Member) ([]*messages.Entry, *messages.HardState, error) {
	ents := make([]*messages.Entry, 0, len(members))
	for i, mem := range members {
		cctx, err := proto.Marshal(&messages.ConfChangeContext{Member: &messages.Member{ID: mem.ID, Name: mem.Name, PeerURLs: mem.PeerURLs}})
		if err != nil {
			return nil, nil, err
		}
		data, err := proto.Marshal(&messages.ConfChange{Type: messages.ConfChangeType_CONF_ADD_NODE, NodeId: mem.ID, Context: cctx})
		if err != nil {
			return nil, nil, err
		}
		ents = append(ents, &messages.Entry{Term: 1, Index: uint64(i + 1), Type: messages.EntryType_ENTRY_CONF_CHANGE, Data: data})
	}
	return ents, &messages.HardState{Term: 1, Commit: uint64(len(ents))}, nil
}

// join takes this member's ID (the one member add assigned to its peer
// URLs) and the cluster ID from the running cluster's member list, and
// refuses to join as a member that has started before (its data is lost).
func (m *Member) join() error {
	self, cid, err := m.askMembers()
	if err != nil {
		return err
	}
	if self.Name != "" {
		return fmt.Errorf("--initial-cluster-state existing: member %x with peer URLs %s has already been bootstrapped (its data dir was lost: remove it and add it again)",
			self.ID, strings.Join(self.PeerURLs, ","))
	}
	m.cfg.MemberID, m.cfg.ClusterID = self.ID, cid
	m.log.Info().Str("member-id", fmt.Sprintf("%x", self.ID)).Str("cluster-id", fmt.Sprintf("%x", m.cfg.ClusterID)).
		Msg("joining a running cluster")
	return nil
}

// askMembers asks the other members named in --initial-cluster for the
// cluster's membership (a linearizable member list through their
// gateways) and returns this member's record (the one with its peer URLs)
// and the cluster ID. It sets joinMembers.
func (m *Member) askMembers() (*messages.Member, uint64, error) {
	self := slices.Clone(m.cfg.InitialAdvertisePeerURLs)
	slices.Sort(self)
	var addrs []string
	for _, mem := range m.cfg.Members {
		if mem.Name == m.cfg.Name {
			continue
		}
		for _, u := range mem.PeerURLs {
			addr, err := hostPort(u)
			if err != nil {
				return nil, 0, err
			}
			addrs = append(addrs, addr)
		}
	}
	if len(addrs) == 0 {
		return nil, 0, fmt.Errorf("--initial-cluster-state existing: --initial-cluster names no other member to join")
	}
	deadline := time.Now().Add(m.cfg.RequestTimeout)
	var lastErr error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		addr := addrs[attempt%len(addrs)]
		resp, err := m.askPeerGateway(addr,
			&messages.ClientRequest{Request: &messages.ClientRequest_MemberList{MemberList: &messages.MemberListRequest{Linearizable: true}}},
			time.Second)
		switch {
		case err != nil:
			lastErr = err
		case resp.GetError() != nil:
			lastErr = fmt.Errorf("%s: %s", addr, resp.GetError().Message)
		case resp.GetMemberList() == nil:
			lastErr = fmt.Errorf("%s: unexpected answer to member list", addr)
		default:
			list := resp.GetMemberList()
			for _, mem := range list.Members {
				urls := slices.Clone(mem.PeerURLs)
				slices.Sort(urls)
				if slices.Equal(urls, self) {
					m.joinMembers = list.Members
					return mem, list.Header.GetClusterId(), nil
				}
			}
			return nil, 0, fmt.Errorf("--initial-cluster-state existing: the cluster has no member with peer URLs %s (add it first: etcdctl member add %s --peer-urls=%s)",
				strings.Join(self, ","), m.cfg.Name, strings.Join(self, ","))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, 0, fmt.Errorf("--initial-cluster-state existing: no member of --initial-cluster answered: %w", lastErr)
}

// askPeerGateway sends req to the gateway of the member whose remoting
// address is addr and waits up to timeout for its answer. The error is the
// transport's (no answer, wrapped with addr); an etcd error is in the
// answer.
func (m *Member) askPeerGateway(addr string, req *messages.ClientRequest, timeout time.Duration) (*messages.ClientResponse, error) {
	res, err := m.system.Root.RequestFuture(m.peerPID(addr, actors.GatewayName), req, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	resp, ok := res.(*messages.ClientResponse)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected answer %T", addr, res)
	}
	return resp, nil
}

// fatalStrategy turns an actor panic into a member fail-stop: the member
// cannot be sure an actor restarted from scratch agrees with its data. An
// actor stopped or poisoned outside Member.Stop fail-stops the member too
// (the watchdog, Err wraps ErrActorStopped): it cannot serve without it.
// Either way Err names the actor, and recovery is a restart on the data dir
// (Run's supervisor restart). A raft node panicking because its log lost
// durable entries (raft.ErrLogLost) is not an actor failure: Err wraps
// that instead, and no restart can help.
type fatalStrategy struct{ m *Member }

func (s fatalStrategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	if err, ok := reason.(error); ok && errors.Is(err, raft.ErrLogLost) {
		// Not an actor failure a restart can mend: the data is wrong.
		s.m.fatal(fmt.Errorf("actor %s: %w", child.Id, err))
	} else {
		s.m.fatal(fmt.Errorf("%w: %s: %v", ErrActorFailed, child.Id, reason))
	}
	sup.StopChildren(child)
}

// startSystem starts the member's actor system and its remoting, or, in
// process, joins the shared system.
func (m *Member) startSystem() error {
	if ip := m.cfg.InProcess; ip != nil {
		m.system = ip.System
	} else {
		m.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(SlogHandler(m.log, slog.LevelWarn))
		}))
		// Remoting starts before any gRPC server of the member: protoactor's
		// Start replaces gRPC's global logger, which gRPC goroutines read.
		r, err := remoting.Start(m.system, remoting.Config{Address: m.cfg.ListenRemotingAddr, AllowTarget: actors.AllowRemote, Faults: m.cfg.Faults.net()})
		if err != nil {
			return err
		}
		m.remote = r
	}
	m.root = actor.NewRootContext(m.system, nil).WithGuardian(fatalStrategy{m})
	return nil
}

// watchPeers (re)starts probing the other members' remoting addresses.
func (m *Member) watchPeers(addrs []string) {
	m.peerWatchMu.Lock()
	defer m.peerWatchMu.Unlock()
	if m.stopPeerWatch != nil {
		m.stopPeerWatch()
		m.stopPeerWatch = nil
	}
	if len(addrs) > 0 && !m.stopping.Load() && m.cfg.InProcess == nil {
		m.stopPeerWatch = remoting.WatchPeers(m.system, addrs, m.cfg.HeartbeatInterval)
	}
}

func (m *Member) startActors(replay *wal.Replay, applied uint64, members []*messages.Member, removed map[uint64]bool) error {
	env := &actors.Env{Logger: m.log, State: m.state, Fatal: m.fatal}
	var err error
	if m.walPID, err = m.spawn(actors.NewWALWriterProps(env, m.wal), actors.WALName); err != nil {
		return err
	}
	raftPID := actor.NewPID(m.system.Address(), m.localName(actors.RaftName))
	// The watch hubs start before the applier applies anything: each
	// takes the store's revision as where its events begin.
	m.watches = actors.NewWatchRegistry(watchHubShards)
	m.hubPIDs = nil
	for i := range watchHubShards {
		pid, err := m.spawn(actors.NewWatchHubProps(env, actors.WatchHubConfig{ProgressInterval: m.cfg.WatchProgressNotifyInterval},
			m.store, m.watches), fmt.Sprintf("%s%d", actors.WatchHubPrefix, i))
		if err != nil {
			return err
		}
		m.hubPIDs = append(m.hubPIDs, pid)
	}
	if m.lessorPID, err = m.spawn(actors.NewLessorProps(env, actors.LessorConfig{
		ElectionTimeout: m.cfg.ElectionTimeout, CheckpointInterval: m.cfg.LeaseCheckpointInterval,
		RequestTimeout: m.cfg.RequestTimeout, PeerPID: m.peerPID,
	}, m.store, raftPID), actors.LessorName); err != nil {
		return err
	}
	if m.applierPID, err = m.spawn(actors.NewApplierProps(env, m.store, raftPID, actors.ApplierConfig{
		CommitInterval: m.cfg.BackendCommitInterval,
		WaiterTimeout:  2 * m.cfg.RequestTimeout,
		SnapshotDir:    filepath.Join(m.cfg.DataDir, "member", "snap"),
		Lessor:         m.lessorPID,
		WatchHubs:      m.hubPIDs,
	}), actors.ApplierName); err != nil {
		return err
	}
	if m.snapPID, err = m.spawn(actors.NewSnapshotReceiverProps(env, filepath.Join(m.cfg.DataDir, "member", "snap"), raftPID),
		actors.SnapshotReceiverName); err != nil {
		return err
	}
	electionTicks := int(m.cfg.ElectionTimeout / m.cfg.HeartbeatInterval)
	if m.raftPID, err = m.spawn(actors.NewRaftNodeProps(env, actors.RaftNodeConfig{
		Core: raft.Config{
			ID: m.cfg.MemberID, ElectionTicks: electionTicks, HeartbeatTicks: 1,
			PreVote: true, CheckQuorum: true, Rand: newRand(m.cfg.MemberID),
		},
		Restore: raft.RestoreState{HardState: replay.HardState, Entries: replay.Entries, Snapshot: replay.Snapshot,
			Applied: applied},
		HeartbeatInterval: m.cfg.HeartbeatInterval,
		ProposalTimeout:   m.cfg.RequestTimeout,
		SnapshotCount:     m.cfg.SnapshotCount,
		CatchUpEntries:    m.cfg.CatchUpEntries,
		Attributes: &messages.Member{ID: m.cfg.MemberID, Name: m.cfg.Name,
			PeerURLs: m.cfg.InitialAdvertisePeerURLs, ClientURLs: m.cfg.AdvertiseClientURLs},
		Members: members, Removed: removed, MaxLearners: 1,
		PeerPID: m.peerPID,
		OnPeers: m.watchPeers,
		WAL:     m.walPID,
		Applier: m.applierPID,
	}), actors.RaftName); err != nil {
		return err
	}
	if m.gatewayPID, err = m.spawn(actors.NewGatewayProps(env, actors.GatewayConfig{
		MaxTxnOps: m.cfg.MaxTxnOps, MaxRequestBytes: m.cfg.MaxRequestBytes,
		RequestTimeout: m.cfg.RequestTimeout, QuotaBytes: m.cfg.QuotaBackendBytes, PeerPID: m.peerPID,
		Watches: m.watches, WatchHubs: m.hubPIDs, WatchSinkEvents: watchSinkEvents,
	}, m.store, m.raftPID, m.applierPID, m.lessorPID), actors.GatewayName); err != nil {
		return err
	}
	watched := map[string]*actor.PID{
		actors.GatewayName: m.gatewayPID, actors.RaftName: m.raftPID, actors.WALName: m.walPID,
		actors.ApplierName: m.applierPID, actors.SnapshotReceiverName: m.snapPID, actors.LessorName: m.lessorPID,
	}
	for i, pid := range m.hubPIDs {
		watched[fmt.Sprintf("%s%d", actors.WatchHubPrefix, i)] = pid
	}
	m.watchdogPID, err = m.root.SpawnNamed(newWatchdogProps(m.fatal, watched), m.localName(watchdogName))
	return err
}

func (m *Member) serveClients() error {
	m.grpcSrv = grpc.NewServer(
		grpc.MaxRecvMsgSize(m.cfg.MaxRequestBytes+512*1024),
		grpc.MaxSendMsgSize(1<<31-1),
		grpc.MaxConcurrentStreams(1<<31-1),
	)
	api := &etcdAPI{root: m.system.Root, gateway: m.gatewayPID, timeout: m.cfg.RequestTimeout,
		hasLeader: func() bool { return m.state.Leader.Load() != 0 },
		isLearner: m.state.IsLearner.Load,
		election:  m.cfg.ElectionTimeout,
		watches: &watchFront{registry: m.watches, hubs: m.hubPIDs, store: m.store,
			maxBytes: m.cfg.MaxRequestBytes + 512*1024, sinkEvents: watchSinkEvents}}
	api.register(m.grpcSrv)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(m.grpcSrv, hs)
	m.httpSrv = &http.Server{Handler: m.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	for _, u := range m.cfg.ListenClientURLs {
		hp, err := hostPort(u)
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp", hp)
		if err != nil {
			return fmt.Errorf("listen on client URL %s: %w", u, err)
		}
		sl := newSplitListener(l)
		m.listeners = append(m.listeners, sl)
		m.clientAddrs = append(m.clientAddrs, l.Addr().String())
		go func() { _ = m.grpcSrv.Serve(sl.grpc) }()
		go func() { _ = m.httpSrv.Serve(sl.http) }()
	}
	return nil
}

func (m *Member) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if m.state.Leader.Load() == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"health":"false","reason":"RAFT NO LEADER"}`))
			return
		}
		_, _ = w.Write([]byte(`{"health":"true","reason":""}`))
	})
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("/livez", ok)
	mux.HandleFunc("/readyz", ok)
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"etcdserver":"` + actors.APIVersion + `","etcdcluster":"3.6.0"}`))
	})
	if m.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if m.cfg.Faults != nil {
		m.serveFaults(mux)
	}
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		st := m.state
		fmt.Fprintf(w, "# HELP aetcd_wal_fsyncs_total fdatasync calls on the WAL.\n# TYPE aetcd_wal_fsyncs_total counter\naetcd_wal_fsyncs_total %d\n", st.WALSyncs.Load())
		fmt.Fprintf(w, "# HELP aetcd_wal_entries_total Raft entries made durable in the WAL.\n# TYPE aetcd_wal_entries_total counter\naetcd_wal_entries_total %d\n", st.WALEntries.Load())
		fmt.Fprintf(w, "# HELP aetcd_server_has_leader Whether a leader exists.\n# TYPE aetcd_server_has_leader gauge\naetcd_server_has_leader %d\n", b2i(st.Leader.Load() != 0))
		fmt.Fprintf(w, "# HELP aetcd_raft_commit_index Raft commit index.\n# TYPE aetcd_raft_commit_index gauge\naetcd_raft_commit_index %d\n", st.CommitIndex.Load())
		fmt.Fprintf(w, "# HELP aetcd_raft_applied_index Raft applied index.\n# TYPE aetcd_raft_applied_index gauge\naetcd_raft_applied_index %d\n", st.AppliedIndex.Load())
	})
	return mux
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ClientAddrs returns the host:port addresses serving etcd's gRPC API.
func (m *Member) ClientAddrs() []string { return m.clientAddrs }

// RemotingAddr returns the host:port of the member's actor remoting.
func (m *Member) RemotingAddr() string { return m.system.Address() }

// ID returns the member ID.
func (m *Member) ID() uint64 { return m.cfg.MemberID }

// Done is closed when the member has stopped, by Stop or by a fatal error.
func (m *Member) Done() <-chan struct{} { return m.done }

// Err returns the fatal error that stopped the member, or nil.
func (m *Member) Err() error {
	select {
	case <-m.done:
		return m.err
	default:
		return nil
	}
}

// fatal stops the member because it can no longer be sure of its data. It
// returns at once; the stop runs on its own goroutine.
func (m *Member) fatal(err error) {
	m.fatalOnce.Do(func() {
		m.log.Error().Err(err).Msg("member stopping on a fatal error")
		go m.stop(err)
	})
}

// Stop stops the member cleanly: clients are cut off, queued work drains,
// the WAL is synced and closed, the backend committed and closed.
func (m *Member) Stop() error {
	m.stop(nil)
	return m.err
}

func (m *Member) stop(cause error) {
	m.stopOnce.Do(func() {
		m.err = cause
		if err := m.shutdown(); err != nil && m.err == nil {
			m.err = err
		}
		close(m.done)
	})
	<-m.done
}

// transferLeadership hands leadership to the most caught-up follower before
// a leader of a multi-member cluster stops, so the cluster does not wait out
// an election timeout (etcd does the same on graceful shutdown).
func (m *Member) transferLeadership() {
	// A removed member hands leadership over too: the others learn from
	// the new leader that the removal committed.
	if m.raftPID == nil || m.state.Leader.Load() != m.cfg.MemberID || (m.err != nil && !errors.Is(m.err, actors.ErrRemoved)) {
		return
	}
	if p := m.state.Members.Load(); p == nil || len(*p) < 2 {
		return
	}
	res, err := m.system.Root.RequestFuture(m.raftPID, &messages.TransferLeadership{}, 3*m.cfg.ElectionTimeout).Result()
	if err != nil {
		m.log.Warn().Err(err).Msg("leadership transfer on shutdown did not finish")
		return
	}
	if e := res.(*messages.ClientResponse).GetError(); e != nil {
		m.log.Warn().Str("error", e.Message).Msg("leadership transfer on shutdown failed")
	}
}

// shutdown releases whatever Start acquired, in reverse order.
func (m *Member) shutdown() error {
	if m.grpcSrv != nil {
		// A clean stop lets requests in flight finish; a fatal one cuts
		// them (and watch streams) off at once: the member cannot answer.
		stopped := make(chan struct{})
		go func() { m.grpcSrv.GracefulStop(); close(stopped) }()
		grace := 2 * time.Second
		if m.err != nil {
			grace = 0
		}
		select {
		case <-stopped:
		case <-time.After(grace):
			m.grpcSrv.Stop()
		}
	}
	if m.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = m.httpSrv.Shutdown(ctx)
		cancel()
	}
	for _, l := range m.listeners {
		_ = l.Close()
	}
	m.transferLeadership()
	m.stopping.Store(true)
	m.watchPeers(nil)
	if m.remote != nil {
		m.remote.Shutdown(false)
	}
	if m.system != nil {
		// The watchdog goes first: the actors it watches stop on purpose.
		pids := []*actor.PID{m.watchdogPID, m.gatewayPID, m.lessorPID, m.snapPID, m.raftPID, m.walPID, m.applierPID}
		for _, pid := range append(pids, m.hubPIDs...) {
			if pid != nil {
				_ = m.system.Root.PoisonFuture(pid).Wait()
			}
		}
		if m.cfg.InProcess == nil {
			m.system.Shutdown()
		}
	}
	var errs []error
	if m.wal != nil {
		errs = append(errs, m.wal.Close())
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	if err := errors.Join(errs...); err != nil {
		m.log.Error().Err(err).Msg("closing the data dir")
		return err
	}
	m.log.Info().Msg("member stopped")
	return nil
}

const (
	// watchHubShards is the number of watch hubs per member: streams are
	// spread over them, so one busy stream holds up only its shard.
	watchHubShards = 4
	// watchSinkEvents bounds the event responses queued per watch stream
	// before its watchers fall back to catching up from the backend.
	watchSinkEvents = 1024
)

// minLeaseTTL is etcd's minimum lease TTL in seconds: 1.5 election
// timeouts, rounded up (2 s at the default 1 s).
func minLeaseTTL(cfg Config) int64 {
	return int64(math.Ceil((3 * cfg.ElectionTimeout / 2).Seconds()))
}
