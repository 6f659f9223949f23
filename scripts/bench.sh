#!/usr/bin/env bash
# Benchmarks, as root (private Postfix instances). Installs Postfix if missing, prints the
# Markdown report and writes it to bench-results.md (bench-results-crypto.md).
#   scripts/bench.sh          relay: posternd pass-through against smtp-sink directly, a
#                             Postfix relay and Postfix before-queue proxies (benches/relay.rs)
#   scripts/bench.sh crypto   signing/encryption cost against openssl speed rsa2048 and
#                             msgs/s per method against pass-through and Postfix (benches/crypto.rs)
#   scripts/bench.sh cluster  committed writes/s, join and failover times in process
#                             (cluster/benches) and through posternd (tests/benches/cluster.rs)
#   scripts/bench.sh vip      VIP failover time over 20 SIGKILLs, in network namespaces
#   scripts/bench.sh federation  domain-encrypted msgs/s against S/MIME and pass-through, and
#                             the RCPT cost of a cached and a cold partner lookup (benches/federation.rs)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench.sh: needs root (private Postfix instances, smtp-sink -u nobody)" >&2
    exit 1
fi

scripts/setup.sh

bench=${1:-relay}
case "$bench" in
    relay) out=bench-results.md ;;
    crypto) out=bench-results-crypto.md ;;
    cluster) out=bench-results-cluster.md ;;
    vip) out=bench-results-vip.md ;;
    federation) out=bench-results-federation.md ;;
    *) echo "bench.sh: unknown benchmark $bench (relay, crypto, cluster, vip or federation)" >&2; exit 2 ;;
esac
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
start=$(date +%s)
# The bench prints progress on stderr and only the report on stdout.
# A failed cell still leaves a report (with its failures listed); the exit status says so.
status=0
if [ "$bench" = cluster ]; then
    # In-process Raft figures, then the operator's view through posternd processes.
    { REQUIRE_PEERS=1 cargo bench -p postern-cluster --bench cluster \
        && echo \
        && REQUIRE_PEERS=1 cargo bench -p postern-tests --bench cluster; } | tee "$tmp" || status=$?
else
    REQUIRE_PEERS=1 cargo bench -p postern-tests --bench "$bench" | tee "$tmp" || status=$?
fi
if [ -s "$tmp" ]; then
    mv "$tmp" "$out" && chmod 644 "$out"
    echo "bench.sh: wrote $out in $(( $(date +%s) - start )) s (exit status $status)" >&2
fi
exit "$status"
