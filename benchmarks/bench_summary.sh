# Sourced by the server benchmark scripts (compare_server.sh, cluster_scaling.sh): one line from
# `morphserve bench`'s summary table.

# From bench's summary: req/s, completed/sent, TTFT P50/P95 and TPOT P50/P99 in ms, output tok/s.
summarize() {
  awk '/^Requests/ { sent = $2; done = $4 }
       /^Throughput/ { rps = $2; out = $4 }
       $1 == "TTFT" { t50 = $4; t95 = $6 }
       $1 == "TPOT" { p50 = $4; p99 = $7 }
       END { printf "%s %s/%s %s %s %s %s %s\n", rps, done, sent, t50, t95, p50, p99, out }' "$1"
}
