#!/usr/bin/env bash
# Stateful stop and start of a busybox container through ferryd, as its
# users meet them, against the memory the container has dirtied:
# - api: an API client's wait, from PUT /1.0/instances/NAME/state to the
#   end of its operation, on a keep-alive unix-socket connection
#   (bench/api_stateful.py);
# - cli: `ferry stop NAME --stateful` and `ferry start NAME` as typed (the
#   client's own start included);
# - ferryd: ferryd's own account in its log (the checkpoint and stop; the
#   restore), without the HTTP request and the operation around it.
# Size 0 is the container as launched (idle busybox: init and a shell);
# the others add tests/checkpoint's memhog, which dirties N MiB and idles.
# Targets (issue 3): idle, stop under 60 ms and start under 80; 256 MiB,
# 250 and 150 (the api columns).
#
# Usage: bench/stateful.sh [SIZES_MIB...]   (default: 0 16 64 256 1024)
# BENCH_RUNS (5): runs per size and way; medians are reported.
# Writes bench/results/stateful.{txt,dat,png}.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/tests/lib.sh"
source "$top/bench/lib.sh"
MEMHOG=${MEMHOG:-$BUILD/tests/checkpoint/memhog}
[ -x "$MEMHOG" ] || { echo "$MEMHOG not built" >&2; exit 1; }
runs=${BENCH_RUNS:-5}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(0 16 64 256 1024)
out=${BENCH_OUT:-$top/bench/results}
mkdir -p "$out"

median() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "%.0f\n", a[int((NR+1)/2)]; else print "-"}'; }
now_us() { echo $(($(date +%s%N) / 1000)); }

ferry_setup || exit 1
ferry_busybox_image
SOCK=$FERRY_DIR/unix.socket
LOG=$FERRY_DIR/logs/ferryd.log

# setup MIB NAME: launched, its memory dirtied (MIB > 0).
setup() {
	local mib=$1 name=$2 i
	ferry init busybox "$name" >/dev/null || return 1
	if [ "$mib" -gt 0 ]; then
		ferry file push -p --mode 0755 --uid 0 --gid 0 "$MEMHOG" "$name/usr/local/bin/memhog" || return 1
		ferry file pull "$name/etc/inittab" - >"$TEST_DIR/inittab" || return 1
		printf '::once:/usr/local/bin/memhog %s\n' "$mib" >>"$TEST_DIR/inittab"
		ferry file push --mode 0644 --uid 0 --gid 0 "$TEST_DIR/inittab" "$name/etc/inittab" || return 1
	fi
	ferry start "$name" || return 1
	for i in $(seq 600); do
		if [ "$mib" -eq 0 ]; then
			ferry exec "$name" -- true 2>/dev/null && break
		else
			[ "$(ferry exec "$name" -- cat /tmp/memhog.ready 2>/dev/null)" = "$mib" ] && break
		fi
		sleep 0.2
	done
	sleep 1
}

# ferryd's account of the last N stateful stops and restores of NAME.
ferryd_times() {
	local name=$1 n=$2
	grep -h "instance $name: checkpointed and stopped in" "$LOG" | tail -n "$n" | sed 's/.* in \([0-9]*\) ms.*/\1/' | median
	grep -h "instance $name: restored from .* in [0-9]* ms" "$LOG" | tail -n "$n" | sed 's/.* in \([0-9]*\) ms.*/\1/' | median
}

data=$out/stateful.dat
echo "# MiB api_stop_ms api_start_ms cli_stop_ms cli_start_ms ferryd_stop_ms ferryd_restore_ms state_MiB" >"$data"
table=()
for mib in "${sizes[@]}"; do
	echo "# $mib MiB ..." >&2
	name=s$mib
	setup "$mib" "$name" || { echo "setup failed at $mib MiB" >&2; exit 1; }
	api=$(python3 "$top/bench/api_stateful.py" "$SOCK" "$name" "$runs" 0.5) || exit 1
	read -r fstop frestore <<<"$(ferryd_times "$name" "$runs" | tr '\n' ' ')"
	cli= sizes_b=
	for run in $(seq "$runs"); do
		t0=$(now_us)
		ferry stop "$name" --stateful || { echo "ferry stop --stateful failed at $mib MiB" >&2; exit 1; }
		t1=$(now_us)
		sizes_b+="$(du -sb "$FERRY_DIR/containers/$name/state" | cut -f1)"$'\n'
		sleep 0.5
		t2=$(now_us)
		ferry start "$name" || { echo "ferry start failed at $mib MiB" >&2; exit 1; }
		t3=$(now_us)
		cli+="$(((t1 - t0) / 1000)) $(((t3 - t2) / 1000))"$'\n'
		sleep 0.5
	done
	ferry delete --force "$name" >/dev/null
	echo "# api runs: $(tr '\n' '|' <<<"$api")  cli runs: $(tr '\n' '|' <<<"$cli")" >&2
	as=$(awk '{print $1}' <<<"$api" | median) ar=$(awk '{print $2}' <<<"$api" | median)
	cs=$(awk 'NF {print $1}' <<<"$cli" | median) cr=$(awk 'NF {print $2}' <<<"$cli" | median)
	sm=$(awk 'NF' <<<"$sizes_b" | median | awk '{printf "%.1f", $1 / 1048576}')
	target=-
	case $mib in
	0) [ "$as" -lt 60 ] && [ "$ar" -lt 80 ] && target=met || target=MISS ;;
	256) [ "$as" -lt 250 ] && [ "$ar" -lt 150 ] && target=met || target=MISS ;;
	esac
	echo "$mib $as $ar $cs $cr $fstop $frestore $sm" >>"$data"
	table+=("$(printf '%6s %9s %9s %9s %9s %9s %9s %9s %7s' "$mib" "$as" "$ar" "$cs" "$cr" "$fstop" "$frestore" "$sm" "$target")")
done

commit=$(bench_commit)
{
	echo "stateful stop and start through ferryd vs dirtied memory: median of $runs, $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $commit"
	echo "api: request to the operation's end (keep-alive unix socket); cli: ferry stop --stateful / ferry start as typed; ferryd: its log's account"
	echo "targets: idle (0) stop < 60 ms, start < 80; 256 MiB stop < 250, start < 150 (api)"
	printf '%6s %9s %9s %9s %9s %9s %9s %9s %7s\n' "MiB" "api stop" "api start" "cli stop" "cli start" "ferryd" "ferryd" "state" "target"
	printf '%6s %9s %9s %9s %9s %9s %9s %9s %7s\n' "" "ms" "ms" "ms" "ms" "stop ms" "rst ms" "MiB" ""
	printf '%s\n' "${table[@]}"
} | tee "$out/stateful.txt"

gnuplot <<GP
set terminal png size 900,500
set output "$out/stateful.png"
set title "stateful stop and start through ferryd vs dirtied memory (median of $runs, commit $commit)"
set xlabel "dirtied memory (MiB; idle busybox at 8)"
set ylabel "ms"
set key top left
set logscale x 2
set xrange [6:*]
plot "$data" using (\$1 > 0 ? \$1 : 8):2 with linespoints title "stop --stateful (api)", \
     "$data" using (\$1 > 0 ? \$1 : 8):3 with linespoints title "start (api)", \
     "$data" using (\$1 > 0 ? \$1 : 8):4 with linespoints title "stop --stateful (cli)", \
     "$data" using (\$1 > 0 ? \$1 : 8):5 with linespoints title "start (cli)"
GP
echo "results: $out/stateful.txt, $out/stateful.png" >&2
