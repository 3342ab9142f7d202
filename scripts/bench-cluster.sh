#!/usr/bin/env bash
# bench-cluster.sh [DURATION]: starts a 3-member aetcd cluster and a 3-member
# etcd 3.6.6 cluster on loopback (one at a time, fresh data dirs under a temp
# dir), drives each with aetcd-bench (put 1 and 1000 clients/100 conns,
# linearizable and serializable range 1 and 1000 clients) and with etcd's
# own benchmark tool (the same rows), and prints the results. etcd and its
# benchmark tool are built by ../shared/tools/etcd-reference.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
work=$(mktemp -d)
trap 'pkill -P $$ || true; sleep 1; rm -rf "$work"' EXIT
go build -o "$work/aetcd" ./cmd/aetcd
go build -o "$work/aetcd-bench" ./cmd/aetcd-bench
ref=$(bash ../shared/tools/etcd-reference.sh)
ic="m1=http://127.0.0.1:51001,m2=http://127.0.0.1:51002,m3=http://127.0.0.1:51003"
eps=127.0.0.1:52001,127.0.0.1:52002,127.0.0.1:52003

start() { # $1 = binary
  for i in 1 2 3; do
    "$1" --name m$i --data-dir "$work/data-$i" \
      --listen-client-urls http://127.0.0.1:5200$i --advertise-client-urls http://127.0.0.1:5200$i \
      --listen-peer-urls http://127.0.0.1:5100$i --initial-advertise-peer-urls http://127.0.0.1:5100$i \
      --initial-cluster "$ic" --initial-cluster-token bench --initial-cluster-state new \
      >"$work/log-$i" 2>&1 &
  done
  for _ in $(seq 60); do # up to 30 s for all three to serve with a leader
    [ -n "$(leader 2>/dev/null)" ] && [ "$("$ref/etcdctl" --endpoints "$eps" endpoint health 2>&1 | grep -c 'is healthy')" = 3 ] && return 0
    sleep 0.5
  done
  echo "cluster did not come up:" >&2; tail -n 5 "$work"/log-* >&2; return 1
}
stop() { pkill -P $$ || true; wait || true; rm -rf "$work"/data-*; }
leader() { # the client endpoint of the leader
  "$ref/etcdctl" --endpoints "$eps" endpoint status -w json | python3 -c '
import json,sys
for s in json.load(sys.stdin):
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]: print(s["Endpoint"])'
}
run() { # $1 = name
  lead=$(leader)
  echo "## $1 (leader $lead)"
  "$work/aetcd-bench" --endpoints "$lead" --metrics-url "http://$lead/metrics" --op put --clients 1 --duration "$dur"
  "$work/aetcd-bench" --endpoints "$lead" --metrics-url "http://$lead/metrics" --op put --clients 1000 --conns 100 --duration "$dur"
  for op in range-l range-s; do
    "$work/aetcd-bench" --endpoints "$lead" --metrics-url "http://$lead/metrics" --op $op --clients 1 --duration "$dur"
    "$work/aetcd-bench" --endpoints "$lead" --metrics-url "http://$lead/metrics" --op $op --clients 1000 --conns 100 --duration "$dur"
  done
}
# etcd's benchmark tool against the leader: its summary lines only.
runref() {
  lead=$(leader)
  echo "## $1, etcd's benchmark tool (leader $lead)"
  b() { echo "### $*"; "$ref/benchmark" --endpoints "$lead" "$@" 2>&1 | tr "\r" "\n" | grep -E "^ +(Requests/sec|99% in)"; }
  b --conns=1 --clients=1 put --key-size=8 --sequential-keys --total=5000 --val-size=256
  b --conns=100 --clients=1000 put --key-size=8 --sequential-keys --total=100000 --val-size=256
  b --conns=1 --clients=1 range foo --consistency=l --total=10000
  b --conns=1 --clients=1 range foo --consistency=s --total=20000
  b --conns=100 --clients=1000 range foo --consistency=l --total=100000
  b --conns=100 --clients=1000 range foo --consistency=s --total=100000
}
start "$work/aetcd"; run "aetcd 3 members"; runref "aetcd 3 members"; stop
start "$ref/etcd"; run "etcd 3.6.6 3 members"; runref "etcd 3.6.6 3 members"; stop
