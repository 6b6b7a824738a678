#!/usr/bin/env bash
# Downtime and total time of moving a running container between two hosts
# of the test bed (scripts/testbed.sh), against the memory it has dirtied,
# for each memory mode of a live move (`ferry move c1 h2: --memory MODE`).
#
# Each point: a busybox container on h1 whose init starts bench/udp_echo
# (a UDP echo server) and tests/checkpoint's memhog (dirties SIZE MiB of
# anonymous memory, then idles). From the LAN (10.X.Y.254) bench/udp_probe
# sends it a datagram every millisecond; `ferry move c1 h2: ARGS` runs,
# timed (the total time); a second after it returns the probe stops. The
# downtime is the probe's largest gap between two replies. Then: is c1 on
# h2, and is the udp_echo there the same process (same pid, and the same
# token, drawn at its start and held only in its memory; the kernel's start
# time of a process CRIU restored is new, so it can't tell)? A mode the
# move refuses (c1 still on h1) is reported as "refused: <error>".
#
# The bound a move is held to: the memory size divided by the TCP
# throughput between h1 and h2, measured first in the same run (socat,
# /dev/zero from h1's namespace to h2's LAN address, 1 MiB writes).
#
# Usage: bench/migrate_downtime.sh [--quick]
#   --quick          sizes 16 64 256 (default: 16 64 256 1024 2048 MiB)
#   SIZES="16 64"    sizes in MiB (overrides --quick)
#   MODES="..."      the modes, rows of the table (default: stop-and-copy post-copy)
#   MOVE_ARGS="..."  the move's arguments, {mode} replaced by the mode
#                    (default: --memory {mode}); e.g. MOVE_ARGS=--stateless
#   OUT=DIR          where the results go (default bench/results, or BENCH_OUT)
#   PRE_MS (1000), POST_MS (1000): probing before the move and after it returns
#   MOVE_TIMEOUT (600 s), THROUGHPUT_MIB (512), THROUGHPUT_RUNS (5, the median)
# Writes OUT/migrate_downtime.{txt,dat,png}.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/tests/lib.sh"
source "$top/tests/migrate/bed_lib.sh"

usage() { sed -n '/^# Usage:/,/^# Writes/s/^# \{0,1\}//p' "$0"; }
quick=
for arg in "$@"; do
	case $arg in
	--quick) quick=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
if [ -n "${SIZES:-}" ]; then
	read -ra sizes <<<"$SIZES"
elif [ -n "$quick" ]; then
	sizes=(16 64 256)
else
	sizes=(16 64 256 1024 2048)
fi
read -ra modes <<<"${MODES:-stop-and-copy post-copy}"
move_args_template=${MOVE_ARGS:-"--memory {mode}"}
out=${OUT:-${BENCH_OUT:-$top/bench/results}}
PRE_MS=${PRE_MS:-1000}
POST_MS=${POST_MS:-1000}
MOVE_TIMEOUT=${MOVE_TIMEOUT:-600}
THROUGHPUT_MIB=${THROUGHPUT_MIB:-512}
THROUGHPUT_RUNS=${THROUGHPUT_RUNS:-5}
ECHO_PORT=7777
THROUGHPUT_PORT=5201
PROBE_INTERVAL_US=1000
# The targets of the live-migration issue.
POSTCOPY_DOWNTIME_MS=50
STOPCOPY_RATIO=1.3
STOPCOPY_FROM_MIB=256

UDP_ECHO=${UDP_ECHO:-$BUILD/bench/udp_echo}
UDP_PROBE=${UDP_PROBE:-$BUILD/bench/udp_probe}
MEMHOG=${MEMHOG:-$BUILD/tests/checkpoint/memhog}
for f in "$UDP_ECHO" "$UDP_PROBE" "$MEMHOG" "$FERRY" "$FERRYD"; do
	[ -x "$f" ] || { echo "$f not built (ninja -C $BUILD)" >&2; exit 1; }
done
for cmd in socat gnuplot ss; do
	command -v "$cmd" >/dev/null || { echo "$cmd is needed" >&2; exit 1; }
done
for s in "${sizes[@]}"; do
	[[ $s =~ ^[0-9]+$ ]] && [ "$s" -gt 0 ] || { echo "bad size: $s (MiB)" >&2; exit 2; }
done
mkdir -p "$out" || exit 1
# The probe under real-time scheduling: under the load of a move (two cores
# here) a normal one wakes up late for a third of its 1 ms slots and skips
# them; it sleeps nearly all the time, so this takes nothing from the rest.
PROBE_SCHED=(chrt -f 1)
"${PROBE_SCHED[@]}" true 2>/dev/null || PROBE_SCHED=(nice -n -10)

# Everything this script starts goes on exit, even on failure or ^C: the
# probe and the throughput receiver by pid, the containers with the bed.
PROBE_PID='' RECEIVER_PID='' WORK=''
cleanup() {
	set +e
	local pid
	for pid in $PROBE_PID $RECEIVER_PID; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	PROBE_PID='' RECEIVER_PID=''
	bed_down
	[ -z "$WORK" ] || rm -rf "$WORK"
}
bed_up 2 || { echo "testbed up failed" >&2; exit 1; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
WORK=$(mktemp -d /tmp/ferry-bench-downtime.XXXXXX) || exit 1

lan() { "$TESTBED" lan-exec "$BED_DIR" "$@"; }
first_line() { printf '%s\n' "$1" | sed -e '/^[[:space:]]*$/d' -e 's/^Error: //' | head -1; }
# kv KEY LINE: the value of KEY in a line of key=value.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# on_timed H CMD...: CMD as host H, timed inside the namespace (without
# testbed.sh's own start-up): its wall time in ms goes to $WORK/timed.ms,
# the time it began (ms since 1970) to $WORK/timed.start_ms.
on_timed() {
	local h=$1
	shift
	on "$h" bash -c 's=$(date +%s%N); echo $((s / 1000000)) >"$0.start_ms"; "$@"; rc=$?
		echo $((($(date +%s%N) - s) / 1000000)) >"$0.ms"; exit $rc' "$WORK/timed" "$@"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
has_c1() { fy "$1" list --format csv -c n 2>/dev/null | grep -qx c1; }

# --- TCP throughput between the hosts --------------------------------------
# throughput_once: MiB/s of one transfer of THROUGHPUT_MIB from h1 to h2,
# appended to tput_runs (not in a subshell: the receiver's pid stays known
# to cleanup).
throughput_once() {
	local i
	# Not through a function: $! must be socat's pid (testbed.sh execs it).
	"$TESTBED" exec "$BED_DIR" h2 socat -b 1048576 -u TCP-LISTEN:$THROUGHPUT_PORT,reuseaddr CREATE:/dev/null &
	RECEIVER_PID=$!
	for i in $(seq 100); do
		on h2 ss -Hltn "sport = :$THROUGHPUT_PORT" | grep -q . && break
		sleep 0.05
	done
	on_timed h1 socat -b 1048576 -u OPEN:/dev/zero,readbytes=$((THROUGHPUT_MIB << 20)) \
		TCP:"$(bed_addr h2)":$THROUGHPUT_PORT || { echo "throughput: the transfer failed" >&2; return 1; }
	# The sender is done once the last bytes are in its socket buffer: wait
	# for the receiver (the few MiB in flight are under 2% of the transfer).
	wait "$RECEIVER_PID"
	RECEIVER_PID=''
	tput_runs+=("$(awk -v m="$THROUGHPUT_MIB" -v ms="$(cat "$WORK/timed.ms")" \
		'BEGIN {printf "%.0f", m * 1000 / (ms > 0 ? ms : 1)}')")
}
echo "# TCP throughput h1 -> h2 ..." >&2
tput_runs=()
for i in $(seq "$THROUGHPUT_RUNS"); do
	throughput_once || exit 1
done
tput=$(printf '%s\n' "${tput_runs[@]}" | median)
echo "# TCP throughput h1 -> h2: $tput MiB/s (runs: ${tput_runs[*]})" >&2

# --- one point ----------------------------------------------------------------
fy h1 image build busybox --alias busybox >/dev/null || { echo "image build failed" >&2; exit 1; }

# echo_identity ADDR: udp_echo's answer to "?" ("udp_echo pid=.. token=.. echoed=..").
echo_identity() {
	local i answer
	for i in $(seq 10); do
		answer=$(printf '?' | lan socat -t 0.5 - "UDP:$1:$ECHO_PORT" 2>/dev/null)
		[ -n "$answer" ] && { printf '%s\n' "$answer"; return 0; }
	done
	return 1
}

# container_up MIB: c1 on h1, running udp_echo and memhog MIB, both started
# by its init: so a stateless move restarts them as a reboot does, and a
# live move must carry them. Prints c1's address.
container_up() {
	local mib=$1 i ip
	fy h1 init busybox c1 >/dev/null || return 1
	fy h1 file push -p --mode 0755 --uid 0 --gid 0 "$UDP_ECHO" c1/usr/local/bin/udp_echo &&
		fy h1 file push -p --mode 0755 --uid 0 --gid 0 "$MEMHOG" c1/usr/local/bin/memhog || return 1
	{
		fy h1 file pull c1/etc/inittab - || return 1
		printf '::once:/usr/local/bin/udp_echo %s\n::once:/usr/local/bin/memhog %s\n' "$ECHO_PORT" "$mib"
	} >"$WORK/inittab"
	fy h1 file push --mode 0644 --uid 0 --gid 0 "$WORK/inittab" c1/etc/inittab &&
		fy h1 start c1 || return 1
	# Dirtying 2 GiB takes seconds on a loaded machine.
	for i in $(seq 600); do
		[ "$(fy h1 exec c1 -- cat /tmp/memhog.ready 2>/dev/null)" = "$mib" ] && break
		sleep 0.2
	done
	[ "$i" -lt 600 ] || { echo "memhog did not report $mib MiB" >&2; return 1; }
	ip=$(fy h1 list c1 --format csv -c 4 | cut -d' ' -f1)
	[ -n "$ip" ] || { echo "c1 has no address" >&2; return 1; }
	echo "$ip"
}

container_gone() {
	local h
	for h in h1 h2; do
		has_c1 "$h" && fy "$h" delete --force c1 >/dev/null 2>&1
	done
	return 0
}

# measure MIB MODE: one row of the table, and its line of data (R_* globals).
measure() {
	local mib=$1 mode=$2 ip args ident_before ident_after pid_before pid_after rc err probe
	R_TOTAL='?' R_DOWN='?' R_LOST='?' R_RATE='?' R_RATIO='?' R_SAME=- R_NOTE='' R_DOWN_SHOWN='?' R_GAP_AT='?'
	args=${move_args_template//\{mode\}/$mode}
	if ! ip=$(container_up "$mib" 2>"$WORK/err"); then
		R_NOTE="error: setup: $(first_line "$(cat "$WORK/err")")"
		container_gone
		return
	fi
	# c1 may have an address an earlier c1 had, with another MAC: the LAN
	# would keep sending to the old one until its ARP entry times out.
	lan ip neigh flush to "$ip" 2>/dev/null
	ident_before=$(echo_identity "$ip")
	pid_before=$(fy h1 exec c1 -- pidof udp_echo 2>/dev/null)
	if [ -z "$ident_before" ] || [ -z "$pid_before" ]; then
		R_NOTE="error: udp_echo does not answer at $ip:$ECHO_PORT"
		container_gone
		return
	fi

	# The probe outlives the longest move; it is stopped by pid, so it is
	# started without a function around it ($! is the probe: testbed.sh
	# execs nsenter, which execs chrt, which execs it).
	"$TESTBED" lan-exec "$BED_DIR" "${PROBE_SCHED[@]}" "$UDP_PROBE" "$ip" "$ECHO_PORT" $(((MOVE_TIMEOUT + 60) * 1000 + PRE_MS + POST_MS)) \
		"$PROBE_INTERVAL_US" >"$WORK/probe.out" 2>&1 &
	PROBE_PID=$!
	sleep "$(awk -v ms="$PRE_MS" 'BEGIN {print ms / 1000}')"
	# shellcheck disable=SC2086 # the arguments are words
	err=$(on_timed h1 timeout "$MOVE_TIMEOUT" "$FERRY" move c1 h2: $args 2>&1 >/dev/null)
	rc=$?
	R_TOTAL=$(cat "$WORK/timed.ms")
	sleep "$(awk -v ms="$POST_MS" 'BEGIN {print ms / 1000}')"
	kill -TERM "$PROBE_PID" 2>/dev/null
	wait "$PROBE_PID"
	PROBE_PID=
	probe=$(grep '^sent=' "$WORK/probe.out")
	echo "#   move: rc $rc, ${R_TOTAL} ms; probe: ${probe:-$(cat "$WORK/probe.out")}" >&2

	if [ "$rc" -ne 0 ]; then
		[ "$rc" -ne 124 ] || err="timed out after $MOVE_TIMEOUT s"
		if has_c1 h1 && ! has_c1 h2; then
			R_NOTE="refused: $(first_line "$err")"
		else
			R_NOTE="failed: $(first_line "$err")"
		fi
		R_TOTAL='?'
		container_gone
		return
	fi
	if [ -n "$probe" ]; then
		R_LOST=$(kv lost "$probe")
		R_DOWN=$(kv max_gap_ms "$probe")
		R_DOWN_SHOWN=$(printf '%.1f' "$R_DOWN")
		# Where in the move the gap began.
		R_GAP_AT=$(awk -v g="$(kv gap_start_epoch_ms "$probe")" -v s="$(cat "$WORK/timed.start_ms")" \
			'BEGIN {print (g > 0) ? g - s : "?"}')
		# No reply since the move: the service did not come back, and the
		# downtime is at least that long (not plotted).
		if awk -v t="$(kv tail_ms "$probe")" -v p="$POST_MS" 'BEGIN {exit !(t > p / 2)}'; then
			R_DOWN_SHOWN=">$(printf '%.0f' "$(kv tail_ms "$probe")")"
			R_DOWN='?' R_GAP_AT='?'
			R_NOTE="no reply after the move"
		fi
	fi
	R_RATE=$(awk -v m="$mib" -v ms="$R_TOTAL" 'BEGIN {printf "%.1f", m * 1000 / (ms > 0 ? ms : 1)}')
	R_RATIO=$(awk -v m="$mib" -v ms="$R_TOTAL" -v t="$tput" 'BEGIN {printf "%.2f", ms / (m * 1000 / t)}')

	if ! has_c1 h2 || has_c1 h1; then
		R_SAME=no
		R_NOTE="c1 is not (only) on h2 after the move"
	else
		pid_after=$(fy h2 exec c1 -- pidof udp_echo 2>/dev/null)
		ident_after=$(echo_identity "$ip")
		if [ -z "$pid_after" ]; then
			R_SAME=gone
		elif [ "$pid_after" = "$pid_before" ] && [ -n "$ident_after" ] &&
			[ "$(kv token "$ident_after")" = "$(kv token "$ident_before")" ] &&
			[ "$(kv echoed "$ident_after")" -gt "$(kv echoed "$ident_before")" ]; then
			R_SAME=yes
		else
			R_SAME=restarted
		fi
		echo "#   udp_echo before: pid $pid_before, ${ident_before}; after: pid ${pid_after:-none}, ${ident_after:-no answer}" >&2
	fi
	container_gone
}

# target MIB MODE: whether the row meets the issue's target ("-": none for it).
target() {
	local mib=$1 mode=$2
	# Only the real modes are held to them (not MOVE_ARGS=--stateless).
	[[ " ${move_args_template//\{mode\}/$mode} " == *" --memory $mode "* ]] || { echo -; return; }
	[ "$R_SAME" = yes ] || { [ "$R_TOTAL" = "?" ] && echo - || echo MISS; return; }
	case $mode in
	post-copy)
		awk -v d="$R_DOWN" -v t="$POSTCOPY_DOWNTIME_MS" 'BEGIN {print (d != "?" && d < t) ? "ok" : "MISS"}' ;;
	stop-and-copy)
		[ "$mib" -ge "$STOPCOPY_FROM_MIB" ] || { echo -; return; }
		awk -v r="$R_RATIO" -v t="$STOPCOPY_RATIO" 'BEGIN {print (r <= t) ? "ok" : "MISS"}' ;;
	*) echo - ;;
	esac
}

data=$out/migrate_downtime.dat
{
	echo "# TCP throughput h1 -> h2: $tput MiB/s"
	echo "# one block per mode; MiB total_ms downtime_ms lost MiB_per_s ratio_to_bound bound_ms (?: none)"
} >"$data"
rows=()
row_format='%7s  %-14s %9s %11s %7s %7s %8s %7s  %-9s %-6s %s'
for mode in "${modes[@]}"; do
	# Blocks apart by two blank lines: gnuplot's "index".
	[ "$mode" = "${modes[0]}" ] || printf '\n\n' >>"$data"
	echo "# $mode" >>"$data"
	for mib in "${sizes[@]}"; do
		echo "# $mib MiB, $mode: ferry move c1 h2: ${move_args_template//\{mode\}/$mode}" >&2
		measure "$mib" "$mode"
		bound=$(awk -v m="$mib" -v t="$tput" 'BEGIN {printf "%.0f", m * 1000 / t}')
		echo "$mib $R_TOTAL $R_DOWN $R_LOST $R_RATE $R_RATIO $bound" >>"$data"
		# shellcheck disable=SC2059 # one format for the header and the rows
		rows+=("$(printf "$row_format" "$mib" "$mode" "$R_TOTAL" "$R_DOWN_SHOWN" "$R_GAP_AT" "$R_LOST" "$R_RATE" "$R_RATIO" \
			"$R_SAME" "$(target "$mib" "$mode")" "$R_NOTE")")
	done
done

commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$top" status --porcelain -- src scripts 2>/dev/null | grep -q . && echo "+changes" || true)
mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
{
	echo "live move h1 -> h2 vs dirtied memory: $(nproc) cores, $mem, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), commit $commit$dirty"
	echo "TCP h1 -> h2: $tput MiB/s (median of $THROUGHPUT_RUNS x $THROUGHPUT_MIB MiB: ${tput_runs[*]}); bound = MiB / throughput, ratio = total / bound"
	echo "move: ferry move c1 h2: $move_args_template; downtime: largest gap in UDP echo replies, probed every $((PROBE_INTERVAL_US / 1000)) ms from the LAN (${PROBE_SCHED[*]}), gap beginning (at ms) after the move began"
	echo "targets: post-copy downtime < $POSTCOPY_DOWNTIME_MS ms; stop-and-copy total <= $STOPCOPY_RATIO x bound from $STOPCOPY_FROM_MIB MiB"
	# shellcheck disable=SC2059
	{
		printf "$row_format\n" MiB mode "total ms" "downtime ms" "at ms" lost "MiB/s" ratio "same proc" target ""
		printf '%s\n' "${rows[@]}"
	} | sed 's/ *$//'
} | tee "$out/migrate_downtime.txt"

if ! awk '!/^#/ && NF && ($2 != "?" || $3 != "?") {found = 1} END {exit !found}' "$data"; then
	echo "no move succeeded: no plot" >&2
	rm -f "$out/migrate_downtime.png"
	exit 0
fi
titles=${modes[*]}
# (Its warnings, such as a mode without a point, only when it fails.)
gnuplot 2>"$WORK/gnuplot.err" <<GP || { cat "$WORK/gnuplot.err" >&2; echo "gnuplot failed" >&2; }
set terminal png size 1200,500
set output "$out/migrate_downtime.png"
set datafile missing "?"
set multiplot layout 1,2 title "live move h1 -> h2: ferry move c1 h2: ${move_args_template//\{mode\}/MODE} (commit $commit$dirty, TCP $tput MiB/s)"
set xlabel "dirtied memory (MiB)"
set logscale x 2
set xrange [$(printf '%s\n' "${sizes[@]}" | sort -n | head -1) / 1.5 : $(printf '%s\n' "${sizes[@]}" | sort -n | tail -1) * 1.5]
set logscale y 10
set key below
set title "downtime (largest gap in UDP echo replies)"
set ylabel "ms"
plot for [i=1:words("$titles")] "$data" index (i - 1) using 1:3 with linespoints title word("$titles", i), \
     $POSTCOPY_DOWNTIME_MS with lines dashtype 2 title "post-copy target"
set title "total time of the move"
set ylabel "ms"
plot for [i=1:words("$titles")] "$data" index (i - 1) using 1:2 with linespoints title word("$titles", i), \
     x * 1000 / $tput with lines dashtype 2 title "MiB / TCP throughput", \
     $STOPCOPY_RATIO * x * 1000 / $tput with lines dashtype 3 title "$STOPCOPY_RATIO x that"
unset multiplot
GP
echo "results: $out/migrate_downtime.txt, $out/migrate_downtime.png" >&2
