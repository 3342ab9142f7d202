#!/usr/bin/env bash
# bench-lease-watch.sh: lease and watch benchmarks of a 3-member aetcd
# cluster and a 3-member etcd 3.6.6 cluster, on free loopback ports, one
# cluster at a time, a fresh cluster (new data dirs) for every benchmark:
#
#   1. aetcd-bench leases: LEASES leases (one key each) kept alive from
#      LEASE_CLIENTS clients spread over the 3 members for DURATION, then
#      SAMPLE of them let expire (expiry jitter);
#   2. aetcd-bench watch: WATCHERS watchers over STREAMS streams on the
#      leader, on one key and (fresh cluster) on a prefix, PUTS puts at
#      PUT_RATE per second;
#   3. etcd's `benchmark watch-latency` with the same watchers, streams and
#      puts, against the leader.
#
# Knobs (environment), defaults in brackets: STORES ["aetcd etcd"],
# BENCHES ["leases watch watch-latency"], LEASES [10000], LEASE_CLIENTS
# [100], TTL [10], DURATION [20s], SAMPLE [1000], GRANT_CONCURRENCY [100],
# WATCHERS [10000], STREAMS [100], CONNS [10], PUT_RATE [10], PUTS [200].
# The defaults take about 5 minutes on 2 cores. The issue's lease scale is
# LEASES=100000 LEASE_CLIENTS=1000 DURATION=60s (see docs/benchmarks.md:
# on this machine neither store keeps those leases alive, and the grant
# phase alone takes 5 minutes or more per store). KEEP_LOGS=DIR keeps the
# member logs.
set -euo pipefail
cd "$(dirname "$0")/.."
STORES=${STORES:-aetcd etcd}
BENCHES=${BENCHES:-leases watch watch-latency}
LEASES=${LEASES:-10000} LEASE_CLIENTS=${LEASE_CLIENTS:-100} TTL=${TTL:-10}
DURATION=${DURATION:-20s} SAMPLE=${SAMPLE:-1000} GRANT_CONCURRENCY=${GRANT_CONCURRENCY:-100}
WATCHERS=${WATCHERS:-10000} STREAMS=${STREAMS:-100} CONNS=${CONNS:-10}
PUT_RATE=${PUT_RATE:-10} PUTS=${PUTS:-200}
work=$(mktemp -d)
pids=()
trap 'stop; rm -rf "$work"' EXIT
go build -o "$work/aetcd" ./cmd/aetcd
go build -o "$work/aetcd-bench" ./cmd/aetcd-bench
ref=$(bash ../shared/tools/etcd-reference.sh)

# Six free loopback ports: 3 peer, 3 client.
read -r -a ports <<<"$(python3 -c '
import socket
ss=[socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
peer() { echo "127.0.0.1:${ports[$(($1 - 1))]}"; }
client() { echo "127.0.0.1:${ports[$(($1 + 2))]}"; }
ic="m1=http://$(peer 1),m2=http://$(peer 2),m3=http://$(peer 3)"
eps="$(client 1),$(client 2),$(client 3)"

start() { # $1 = binary; sets pids (member i's pid at index i-1)
  rm -rf "$work"/data-*
  pids=()
  for i in 1 2 3; do
    "$1" --name m$i --data-dir "$work/data-$i" \
      --listen-client-urls "http://$(client $i)" --advertise-client-urls "http://$(client $i)" \
      --listen-peer-urls "http://$(peer $i)" --initial-advertise-peer-urls "http://$(peer $i)" \
      --initial-cluster "$ic" --initial-cluster-token bench-lw --initial-cluster-state new \
      >"$work/log-$i" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 60); do # up to 30 s for all three to serve with a leader
    [ -n "$(leader 2>/dev/null)" ] && [ "$("$ref/etcdctl" --endpoints "$eps" endpoint health 2>&1 | grep -c 'is healthy')" = 3 ] && return 0
    sleep 0.5
  done
  echo "cluster did not come up:" >&2; tail -n 5 "$work"/log-* >&2; return 1
}
stop() { # stops the members started by start, keeps their logs if asked
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_LOGS:-}" ] && ls "$work"/log-* >/dev/null 2>&1; then
    mkdir -p "$KEEP_LOGS"; for f in "$work"/log-*; do cp "$f" "$KEEP_LOGS/$store-$bench-$(basename "$f")"; done
  fi
  pids=()
}
leader() { # the client endpoint of the leader
  "$ref/etcdctl" --endpoints "$eps" endpoint status -w json | python3 -c '
import json,sys
for s in json.load(sys.stdin):
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]: print(s["Endpoint"])'
}
leader_index() { # 1, 2 or 3
  local l; l=$(leader)
  for i in 1 2 3; do if [ "$(client $i)" = "$l" ]; then echo $i; fi; done
}

store=none bench=none
for store in $STORES; do
  bin=$work/aetcd; [ "$store" = etcd ] && bin=$ref/etcd
  for bench in $BENCHES; do
    start "$bin"
    li=$(leader_index); lead=$(client "$li"); lpid=${pids[$((li - 1))]}
    echo "# $(date -u +%H:%M:%S) $store $bench; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    case $bench in
    leases)
      # The leader's endpoint first: the DELETE watcher uses it.
      others='' opids=''
      for i in 1 2 3; do
        if [ "$i" != "$li" ]; then others+=",$(client $i)" opids+=",${pids[$((i - 1))]}"; fi
      done
      echo "## $store: leases (leader m$li first; RSS columns leader, then the followers)"
      "$work/aetcd-bench" leases --endpoints "$lead$others" --pids "$lpid$opids" \
        --leases "$LEASES" --clients "$LEASE_CLIENTS" --ttl "$TTL" --duration "$DURATION" --sample "$SAMPLE" \
        --grant-concurrency "$GRANT_CONCURRENCY" 2>&1 | tail -n 40 || echo "(aetcd-bench leases failed)"
      ;;
    watch)
      echo "## $store: aetcd-bench watch on the leader (m$li)"
      "$work/aetcd-bench" watch --endpoint "$lead" --pid "$lpid" --watchers "$WATCHERS" \
        --streams "$STREAMS" --conns "$CONNS" --put-rate "$PUT_RATE" --puts "$PUTS" || echo "(aetcd-bench watch failed)"
      stop; start "$bin"
      li=$(leader_index); lead=$(client "$li"); lpid=${pids[$((li - 1))]}
      echo "## $store: aetcd-bench watch --prefix on the leader (m$li)"
      "$work/aetcd-bench" watch --endpoint "$lead" --pid "$lpid" --watchers "$WATCHERS" --prefix \
        --streams "$STREAMS" --conns "$CONNS" --put-rate "$PUT_RATE" --puts "$PUTS" || echo "(aetcd-bench watch failed)"
      ;;
    watch-latency)
      echo "## $store: etcd benchmark watch-latency on the leader (m$li)"
      "$ref/benchmark" --endpoints "$lead" --conns "$CONNS" --clients "$STREAMS" watch-latency \
        --streams "$STREAMS" --watchers-per-stream $((WATCHERS / STREAMS)) \
        --put-rate "$PUT_RATE" --put-total "$PUTS" 2>&1 | tr '\r' '\n' |
        sed -n '/^Summary/,$p' | grep -vE '^ +[0-9.]+ \[' || true
      echo "(leader RSS after: $(($(grep VmRSS /proc/"$lpid"/status | awk '{print $2}') / 1024)) MiB)"
      ;;
    esac
    stop
  done
done
