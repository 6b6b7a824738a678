#!/usr/bin/env bash
# Launch-to-running and exec round-trip latency of a busybox container,
# over repeated runs: prints a table (median, min, p90, max) and writes a
# PNG plot (gnuplot) of each run's times. Usage: bench/launch_exec.sh [RUNS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-20}
source "$top/tests/lib.sh"
out=${BENCH_OUT:-$top/bench/results}
mkdir -p "$out"
ferry_setup >/dev/null
ferry_busybox_image

ms() { date +%s%N; }
data=$TEST_DIR/launch_exec.dat
: >"$data"
for i in $(seq "$runs"); do
	t0=$(ms)
	ferry launch busybox "b$i" >/dev/null
	t1=$(ms)
	ferry exec "b$i" -- true
	t2=$(ms)
	ferry exec "b$i" -- true
	t3=$(ms)
	echo "$i $(((t1 - t0) / 1000)) $(((t3 - t2) / 1000))" >>"$data"
	ferry delete --force "b$i" >/dev/null
done

stats() { # column -> "median min p90 max" in ms
	awk -v c="$1" '{print $c / 1000}' "$data" | sort -n | awk '{v[NR]=$1} END {
		printf "%.1f %.1f %.1f %.1f", v[int((NR+1)/2)], v[1], v[int(NR*0.9+0.5)], v[NR] }'
}
read -r lm lmin lp90 lmax <<<"$(stats 2)"
read -r em emin ep90 emax <<<"$(stats 3)"
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	echo "ferry launch/exec latency: $runs runs, busybox, $(uname -r), $(nproc) cores, commit $commit"
	printf '%-28s %10s %10s %10s %10s\n' "" "median ms" "min ms" "p90 ms" "max ms"
	printf '%-28s %10s %10s %10s %10s\n' "launch (create+start)" "$lm" "$lmin" "$lp90" "$lmax"
	printf '%-28s %10s %10s %10s %10s\n' "exec round trip (true)" "$em" "$emin" "$ep90" "$emax"
} | tee "$out/launch_exec.txt"
cp "$data" "$out/launch_exec.dat"
gnuplot <<GP
set terminal png size 800,450
set output "$out/launch_exec.png"
set title "ferry launch and exec latency (busybox, commit $commit)"
set xlabel "run"
set ylabel "ms"
set key top right
plot "$out/launch_exec.dat" using 1:(\$2/1000) with linespoints title "launch", \
     "$out/launch_exec.dat" using 1:(\$3/1000) with linespoints title "exec round trip"
GP
echo "plot: $out/launch_exec.png"
