#!/usr/bin/env bash
# genproto.sh: regenerates messages/*.pb.go from proto/*.proto.
# Needs protoc (Debian: protobuf-compiler); installs the pinned protoc-gen-go.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOC_GEN_GO_VERSION=v1.36.12
if ! command -v protoc >/dev/null 2>&1; then
  echo "genproto: protoc not found; install it (apt-get install -y protobuf-compiler)" >&2
  exit 1
fi
bin="$(go env GOPATH)/bin"
if [ "$("$bin/protoc-gen-go" --version 2>/dev/null)" != "protoc-gen-go $PROTOC_GEN_GO_VERSION" ]; then
  go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi
actor_dir="$(go list -m -f '{{.Dir}}' github.com/asynkron/protoactor-go)/actor"
rm -f messages/*.pb.go
# Files register as "proto/<name>.proto", not "<name>.proto": etcd's own
# packages (linked by tests and tools) register kv.proto and raft.proto.
PATH="$bin:$PATH" protoc -I . -I "$actor_dir" \
  --go_out=. --go_opt=module=github.com/aetcd/aetcd \
  --go_opt=Mactor.proto=github.com/asynkron/protoactor-go/actor \
  proto/*.proto
