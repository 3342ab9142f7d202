// Package bootstrap builds a member from its configuration: it opens the
// data dir, starts the actor system and the member's actors, and serves
// etcd's gRPC API and actor remoting.
package bootstrap

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aetcd/aetcd/cluster"
)

// Version is aetcd's own version; APIVersion is the etcd API it speaks.
const (
	Version    = "0.1.0"
	APIVersion = "3.6.6"
)

// ErrBadConfig is wrapped by every configuration error.
var ErrBadConfig = errors.New("bootstrap: invalid configuration")

// Config is a member's configuration; field names follow etcd's flags.
type Config struct {
	Name                     string
	DataDir                  string
	ListenClientURLs         []string
	AdvertiseClientURLs      []string
	ListenPeerURLs           []string
	InitialAdvertisePeerURLs []string
	InitialCluster           string
	InitialClusterState      string
	InitialClusterToken      string
	// ListenRemotingAddr is host:port where actor remoting listens for
	// remoting clients (aetcdctl) and, later, peers.
	ListenRemotingAddr string
	MaxTxnOps          int
	MaxRequestBytes    int
	HeartbeatInterval  time.Duration
	ElectionTimeout    time.Duration
	SnapshotCount      uint64
	WALSegmentBytes    int64
	QuotaBackendBytes  int64
	LogLevel           string
	EnablePprof        bool
	// FaultInjection serves the fault-injection endpoints (see
	// FaultInjector); test clusters only.
	FaultInjection bool
	// Faults is the fault injector a member with FaultInjection uses. Nil
	// with FaultInjection: Start makes one (and Run hands it to the
	// member's restarts).
	Faults *FaultInjector
	// RequestTimeout bounds how long a client request waits for Raft.
	RequestTimeout time.Duration
	// BackendCommitInterval bounds how long applied writes stay only in
	// memory and the WAL before the backend commits them.
	BackendCommitInterval time.Duration
	// LeaseCheckpointInterval is how often the leader checkpoints leases'
	// remaining TTLs through Raft.
	LeaseCheckpointInterval time.Duration
	// WatchProgressNotifyInterval is how often watchers with
	// progress_notify hear the current revision.
	WatchProgressNotifyInterval time.Duration
	// InitialCorruptCheck makes a member restarting on its data dir compare
	// its backend's HashKV with its peers' before it serves, and refuse to
	// start on a mismatch (etcd's --experimental-initial-corrupt-check).
	InitialCorruptCheck bool
	// CatchUpEntries is how many entries the raft log keeps behind a
	// snapshot for slow followers (0: 5000, etcd's). No flag: tests only.
	CatchUpEntries uint64
	// InProcess, when set, runs the member in an actor system shared with
	// other members, without remoting. Tests only; no flag sets it.
	InProcess *InProcess

	// Resolved by Validate.
	MemberID  uint64
	ClusterID uint64
	Members   []cluster.Member
}

// ParseFlags parses etcd-style flags into a Config. It returns
// flag.ErrHelp for -h; version is true for --version.
func ParseFlags(args []string, output io.Writer) (cfg Config, version bool, err error) {
	fs := flag.NewFlagSet("aetcd", flag.ContinueOnError)
	// Errors are returned (the caller prints one line); usage is printed
	// only for -h/--help.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var listenClient, advClient, listenPeer, advPeer string
	var heartbeatMs, electionMs uint
	fs.StringVar(&cfg.Name, "name", "default", "human-readable name for this member")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "path to the data directory (default ${name}.aetcd)")
	fs.StringVar(&listenClient, "listen-client-urls", "http://localhost:2379", "URLs to listen on for client traffic (etcd gRPC API and HTTP)")
	fs.StringVar(&advClient, "advertise-client-urls", "http://localhost:2379", "client URLs to advertise to the rest of the cluster")
	fs.StringVar(&listenPeer, "listen-peer-urls", "http://localhost:2380", "URLs to listen on for peer traffic")
	fs.StringVar(&advPeer, "initial-advertise-peer-urls", "http://localhost:2380", "this member's peer URLs to advertise to the rest of the cluster")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "initial cluster configuration for bootstrapping (default ${name}=${initial-advertise-peer-urls})")
	fs.StringVar(&cfg.InitialClusterState, "initial-cluster-state", "new", "initial cluster state ('new' or 'existing')")
	fs.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "initial cluster token for the cluster during bootstrap")
	fs.StringVar(&cfg.ListenRemotingAddr, "listen-remoting-addr", "", "host:port for actor remoting clients such as aetcdctl (default: host:port of the first --listen-peer-urls)")
	fs.IntVar(&cfg.MaxTxnOps, "max-txn-ops", 128, "maximum number of operations permitted in a transaction")
	fs.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", 1572864, "maximum client request size in bytes the server will accept")
	fs.UintVar(&heartbeatMs, "heartbeat-interval", 100, "time (in milliseconds) of a heartbeat interval")
	fs.UintVar(&electionMs, "election-timeout", 1000, "time (in milliseconds) for an election to timeout")
	fs.Uint64Var(&cfg.SnapshotCount, "snapshot-count", 10000, "number of applied entries between snapshots: points where the WAL is released behind the backend")
	fs.Int64Var(&cfg.WALSegmentBytes, "wal-segment-size", 64<<20, "size in bytes of a WAL segment file (aetcd-specific)")
	fs.Int64Var(&cfg.QuotaBackendBytes, "quota-backend-bytes", 2<<30, "backend size quota reported in Status (enforcement is not implemented yet)")
	fs.DurationVar(&cfg.LeaseCheckpointInterval, "lease-checkpoint-interval", 5*time.Minute, "how often the leader checkpoints the remaining TTLs of leases through Raft, so a leader change does not reset them (aetcd-specific)")
	fs.DurationVar(&cfg.WatchProgressNotifyInterval, "watch-progress-notify-interval", 10*time.Minute, "duration of periodic watch progress notifications")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&cfg.InitialCorruptCheck, "experimental-initial-corrupt-check", false, "enable to check data corruption before serving any client/peer traffic: a restarting member compares its backend's HashKV with its peers' and refuses to start on a mismatch")
	fs.BoolVar(&cfg.EnablePprof, "enable-pprof", false, "serve runtime profiling data via HTTP at /debug/pprof/ on the client URLs")
	fs.BoolVar(&cfg.FaultInjection, "fault-injection", false, "TEST CLUSTERS ONLY: serve fault-injection endpoints under /debug/fault/ on the client URLs (kill actors, fault peer links, fail the next WAL fdatasync); anyone who can reach a client URL can then break the member")
	fs.BoolVar(&version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(output)
			fmt.Fprintln(output, "Usage: aetcd [flags]\n\nFlags:")
			fs.PrintDefaults()
			return cfg, false, err
		}
		return cfg, false, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("%w: unexpected argument %q", ErrBadConfig, fs.Arg(0))
	}
	cfg.ListenClientURLs = splitURLs(listenClient)
	cfg.AdvertiseClientURLs = splitURLs(advClient)
	cfg.ListenPeerURLs = splitURLs(listenPeer)
	cfg.InitialAdvertisePeerURLs = splitURLs(advPeer)
	cfg.HeartbeatInterval = time.Duration(heartbeatMs) * time.Millisecond
	cfg.ElectionTimeout = time.Duration(electionMs) * time.Millisecond
	return cfg, version, nil
}

func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// Validate fills defaults, checks every field and resolves IDs. It changes
// nothing on disk.
func (c *Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: --name must not be empty", ErrBadConfig)
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".aetcd"
	}
	if c.InitialCluster == "" {
		var parts []string
		for _, u := range c.InitialAdvertisePeerURLs {
			parts = append(parts, c.Name+"="+u)
		}
		c.InitialCluster = strings.Join(parts, ",")
	}
	for flagName, urls := range map[string][]string{
		"--listen-client-urls": c.ListenClientURLs, "--advertise-client-urls": c.AdvertiseClientURLs,
		"--listen-peer-urls": c.ListenPeerURLs, "--initial-advertise-peer-urls": c.InitialAdvertisePeerURLs,
	} {
		if len(urls) == 0 {
			return fmt.Errorf("%w: %s must not be empty", ErrBadConfig, flagName)
		}
		for _, u := range urls {
			if err := cluster.CheckURL(u); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrBadConfig, flagName, err)
			}
			if strings.HasPrefix(u, "https://") {
				return fmt.Errorf("%w: %s: %s: TLS is not supported yet", ErrBadConfig, flagName, u)
			}
		}
	}
	if c.InitialClusterState != "new" && c.InitialClusterState != "existing" {
		return fmt.Errorf("%w: --initial-cluster-state must be 'new' or 'existing', not %q", ErrBadConfig, c.InitialClusterState)
	}
	members, err := cluster.ParseInitialCluster(c.InitialCluster, c.InitialClusterToken)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	c.Members = members
	c.MemberID = cluster.MemberID(c.InitialAdvertisePeerURLs, c.InitialClusterToken)
	var ids []uint64
	found := false
	for _, m := range members {
		ids = append(ids, m.ID)
		if m.ID == c.MemberID {
			found = m.Name == c.Name
		}
	}
	if !found {
		return fmt.Errorf("%w: --initial-cluster has no member %q with peer URLs %s", ErrBadConfig, c.Name, strings.Join(c.InitialAdvertisePeerURLs, ","))
	}
	if c.InitialClusterState == "existing" && len(members) < 2 {
		return fmt.Errorf("%w: --initial-cluster-state existing: --initial-cluster must name the running members to join besides %q", ErrBadConfig, c.Name)
	}
	c.ClusterID = cluster.ClusterID(ids)
	if c.ListenRemotingAddr == "" {
		hp, err := cluster.HostPort(c.ListenPeerURLs[0])
		if err != nil {
			return fmt.Errorf("%w: --listen-peer-urls: %v", ErrBadConfig, err)
		}
		c.ListenRemotingAddr = hp
	}
	if c.MaxTxnOps <= 0 {
		return fmt.Errorf("%w: --max-txn-ops must be positive", ErrBadConfig)
	}
	if c.MaxRequestBytes <= 0 {
		return fmt.Errorf("%w: --max-request-bytes must be positive", ErrBadConfig)
	}
	if c.HeartbeatInterval <= 0 || c.ElectionTimeout < 5*c.HeartbeatInterval {
		return fmt.Errorf("%w: --election-timeout[%v] should be at least 5 times --heartbeat-interval[%v]", ErrBadConfig, c.ElectionTimeout, c.HeartbeatInterval)
	}
	if c.WALSegmentBytes < 64<<10 {
		return fmt.Errorf("%w: --wal-segment-size must be at least 65536", ErrBadConfig)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5*time.Second + 2*c.ElectionTimeout
	}
	if c.BackendCommitInterval == 0 {
		c.BackendCommitInterval = 100 * time.Millisecond
	}
	if c.LeaseCheckpointInterval == 0 {
		c.LeaseCheckpointInterval = 5 * time.Minute
	}
	if c.WatchProgressNotifyInterval == 0 {
		c.WatchProgressNotifyInterval = 10 * time.Minute
	}
	if c.LeaseCheckpointInterval < time.Second {
		return fmt.Errorf("%w: --lease-checkpoint-interval must be at least 1s", ErrBadConfig)
	}
	if c.WatchProgressNotifyInterval < 100*time.Millisecond {
		return fmt.Errorf("%w: --watch-progress-notify-interval must be at least 100ms", ErrBadConfig)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("%w: --log-level must be debug, info, warn or error", ErrBadConfig)
	}
	return nil
}
