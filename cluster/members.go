// Package cluster holds what members agree on about the cluster: member and
// cluster IDs, the initial membership, and (in subpackages) the Raft core and
// the remoting transport.
package cluster

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// ErrBadInitialCluster is wrapped by every --initial-cluster parsing error.
var ErrBadInitialCluster = errors.New("cluster: invalid --initial-cluster")

// Member is one member of the initial cluster.
type Member struct {
	ID       uint64
	Name     string
	PeerURLs []string
}

// MemberID derives a member's ID from its peer URLs and the cluster token
// exactly as etcd does (sha1 of the sorted URLs and the token, first 8
// bytes), so every member computes the same IDs.
func MemberID(peerURLs []string, token string) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	b := []byte(strings.Join(urls, ""))
	b = append(b, token...)
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// ClusterID derives the cluster ID from the member IDs as etcd does (sha1 of
// the sorted IDs, big-endian, first 8 bytes).
func ClusterID(memberIDs []uint64) uint64 {
	ids := append([]uint64(nil), memberIDs...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// ParseInitialCluster parses "name=url[,name=url...]" (a name may repeat
// with several URLs) into members sorted by ID.
func ParseInitialCluster(s, token string) ([]Member, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadInitialCluster)
	}
	byName := map[string][]string{}
	var names []string
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("%w: %q is not name=url", ErrBadInitialCluster, part)
		}
		if err := CheckURL(u); err != nil {
			return nil, fmt.Errorf("%w: member %q: %v", ErrBadInitialCluster, name, err)
		}
		if _, seen := byName[name]; !seen {
			names = append(names, name)
		}
		byName[name] = append(byName[name], u)
	}
	members := make([]Member, 0, len(names))
	seenID := map[uint64]string{}
	for _, name := range names {
		id := MemberID(byName[name], token)
		if other, dup := seenID[id]; dup {
			return nil, fmt.Errorf("%w: members %q and %q have the same peer URLs", ErrBadInitialCluster, other, name)
		}
		seenID[id] = name
		members = append(members, Member{ID: id, Name: name, PeerURLs: byName[name]})
	}
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	return members, nil
}

// CheckURL accepts http(s)://host:port URLs, as etcd's flags do.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: scheme must be http or https", s)
	}
	if u.Port() == "" || u.Hostname() == "" {
		return fmt.Errorf("URL %q: must be scheme://host:port", s)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("URL %q: must not have a path", s)
	}
	return nil
}

// HostPort returns the host:port of a URL accepted by CheckURL, with
// "localhost" resolved to 127.0.0.1.
func HostPort(s string) (string, error) {
	if err := CheckURL(s); err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	host := u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + u.Port(), nil
}
