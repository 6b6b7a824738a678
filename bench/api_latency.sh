#!/usr/bin/env bash
# API latency over HTTPS (mutual TLS, keep-alive) against the unix socket
# as the baseline: GET /1.0/instances with 1, 8 and 64 concurrent clients,
# each back to back for a few seconds (bench/api_load.py). Prints a table
# (p50, p99, requests/s) and writes a PNG plot (gnuplot).
# Usage: bench/api_latency.sh [SECONDS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-5}
source "$top/tests/lib.sh"
source "$top/tests/daemon/api_lib.sh"
source "$top/tests/daemon/https_lib.sh"
out=${BENCH_OUT:-$top/bench/results}
mkdir -p "$out"
core_setup >/dev/null
client_cert bench
trust bench
HTTPS_PORT=$(free_port 18643)
[ -z "$(https_listen "127.0.0.1:$HTTPS_PORT")" ]
# A few instances, so the list has something in it (created, not started).
for i in 1 2 3; do
	json POST /1.0/instances "{\"name\":\"b$i\",\"source\":{\"type\":\"none\"}}" >/dev/null || true
done

data=$TEST_DIR/api_latency.dat
: >"$data"
for clients in 1 8 64; do
	read -r up50 up99 urps _ <<<"$(python3 "$top/bench/api_load.py" unix "$SOCK" /1.0/instances "$clients" "$seconds")"
	read -r tp50 tp99 trps _ <<<"$(python3 "$top/bench/api_load.py" https "$HTTPS_PORT" /1.0/instances "$clients" "$seconds" \
		"$TEST_DIR/bench.crt" "$TEST_DIR/bench.key")"
	echo "$clients $up50 $up99 $urps $tp50 $tp99 $trps" >>"$data"
done
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	echo "ferryd GET /1.0/instances latency: ${seconds}s per point, keep-alive, $(uname -r), $(nproc) cores, commit $commit"
	printf '%-8s | %-30s | %-30s\n' "" "unix socket" "HTTPS (TLS 1.3, client cert)"
	printf '%-8s | %9s %9s %10s | %9s %9s %10s\n' clients "p50 ms" "p99 ms" "req/s" "p50 ms" "p99 ms" "req/s"
	while read -r c up50 up99 urps tp50 tp99 trps; do
		printf '%-8s | %9s %9s %10s | %9s %9s %10s\n' "$c" "$up50" "$up99" "$urps" "$tp50" "$tp99" "$trps"
	done <"$data"
} | tee "$out/api_latency.txt"
cp "$data" "$out/api_latency.dat"
gnuplot <<GP
set terminal png size 800,450
set output "$out/api_latency.png"
set title "ferryd GET /1.0/instances latency (commit $commit)"
set xlabel "concurrent clients"
set ylabel "ms"
set logscale x 2
set logscale y
set xtics (1, 8, 64)
set key top left
plot "$out/api_latency.dat" using 1:2 with linespoints title "unix p50", \
     "$out/api_latency.dat" using 1:3 with linespoints title "unix p99", \
     "$out/api_latency.dat" using 1:5 with linespoints title "https p50", \
     "$out/api_latency.dat" using 1:6 with linespoints title "https p99"
GP
echo "plot: $out/api_latency.png"
