// Package etcddiff is a differential test of package mvcc against etcd
// 3.6.6's own store (go.etcd.io/etcd/server/v3/storage/mvcc) and request
// layer (etcdserver/txn): the same random Put, DeleteRange, Txn, Compaction
// and Range requests go to both, and every response, error, revision and
// HashKV must be identical.
//
// It is a separate module so that etcd's server does not become a
// dependency of aetcd. aetcd's proto files are registered under the same
// names as etcd's ("kv.proto", "raft.proto"), so run it with
//
//	GOLANG_PROTOBUF_REGISTRATION_CONFLICT=warn go test ./...
//
// from this directory (it needs the module proxy for etcd's dependencies).
package etcddiff
