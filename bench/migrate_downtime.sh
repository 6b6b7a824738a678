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
# downtime is the probe's largest gap between two replies. ferry's own
# account of the move comes from the source's operation (its metadata's
# migration_times): how long the instance was stopped (checkpoint, transfer,
# restore, resume) and, after a post-copy move, how long its pages took to
# follow (pages_ms, from the resume to the last page) and how many bytes
# they were (pages_bytes). Then: is c1 on h2, and is the udp_echo there the
# same process (same pid, and the same token, drawn at its start and held
# only in its memory; the kernel's start time of a process CRIU restored is
# new, so it can't tell)? Beside the UDP probe, bench/tcp_rr_probe.py asks a TCP echo
# server in c1 (busybox nc), one request at a time every 5 ms: the longest
# it waited for an answer ("tcp rr") is what a request/response client
# feels, TCP's retransmission included. And is memhog's memory intact: memhog can't check
# itself, so bench/memhog_check reads it through /proc/PID/mem, in the
# container, before the move and after it (every word, and at the same
# address: a restarted memhog would refill it elsewhere). A mode the move
# refuses (c1 still on h1) is reported as "refused: <error>"; a failed move
# shows the error lines of c1's CRIU logs on both hosts (also in
# OUT/migrate_downtime.errors).
#
# The bound a move is held to: the memory size divided by the TCP
# throughput between h1 and h2, measured first in the same run (socat,
# /dev/zero from h1's namespace to h2's LAN address, 1 MiB writes).
#
# Usage: bench/migrate_downtime.sh [--quick]
#   --quick          sizes 16 64 256 (default: 16 64 256 1024 2048 MiB)
#   SIZES="16 64"    sizes in MiB (overrides --quick)
#   BENCH_MODES="..." the memory modes, each measured at every size (default:
#                    stop-and-copy post-copy; MODES is its older name)
#   MOVE_ARGS="..."  the move's arguments, {mode} replaced by the mode
#                    (default: --memory {mode}); e.g. MOVE_ARGS=--stateless
#   OUT=DIR          where the results go (default bench/results, or BENCH_OUT)
#   FERRY_BUILD=DIR  the meson build to take ferry, ferryd and the helpers from
#                    (default: build/)
#   PRE_MS (1000), POST_MS (1000): probing before the move and after it returns
#   MOVE_TIMEOUT (600 s), THROUGHPUT_MIB (512), THROUGHPUT_RUNS (5, the median)
# Writes OUT/migrate_downtime.{txt,dat,png} (and .errors when a move failed).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/tests/lib.sh"
source "$top/bench/lib.sh"
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
read -ra modes <<<"${BENCH_MODES:-${MODES:-stop-and-copy post-copy}}"
[ "${#modes[@]}" -gt 0 ] || { echo "no modes (BENCH_MODES)" >&2; exit 2; }
move_args_template=${MOVE_ARGS:-"--memory {mode}"}
out=${OUT:-${BENCH_OUT:-$top/bench/results}}
PRE_MS=${PRE_MS:-1000}
POST_MS=${POST_MS:-1000}
MOVE_TIMEOUT=${MOVE_TIMEOUT:-600}
THROUGHPUT_MIB=${THROUGHPUT_MIB:-512}
THROUGHPUT_RUNS=${THROUGHPUT_RUNS:-5}
ECHO_PORT=7777
TCP_ECHO_PORT=7001
TCP_INTERVAL_MS=${TCP_INTERVAL_MS:-5}
THROUGHPUT_PORT=5201
PROBE_INTERVAL_US=1000
# The targets of the live-migration issue.
POSTCOPY_DOWNTIME_MS=50
STOPCOPY_RATIO=1.3
STOPCOPY_FROM_MIB=256

UDP_ECHO=${UDP_ECHO:-$BUILD/bench/udp_echo}
UDP_PROBE=${UDP_PROBE:-$BUILD/bench/udp_probe}
MEMHOG=${MEMHOG:-$BUILD/tests/checkpoint/memhog}
MEMHOG_CHECK=${MEMHOG_CHECK:-$BUILD/bench/memhog_check}
TCP_PROBE=$top/bench/tcp_rr_probe.py
for f in "$UDP_ECHO" "$UDP_PROBE" "$MEMHOG" "$MEMHOG_CHECK" "$FERRY" "$FERRYD"; do
	[ -x "$f" ] || { echo "$f not built (ninja -C $BUILD)" >&2; exit 1; }
done
for cmd in socat gnuplot ss jq python3; do
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
PROBE_PID='' TCP_PROBE_PID='' RECEIVER_PID='' WORK=''
cleanup() {
	set +e
	local pid
	for pid in $PROBE_PID $TCP_PROBE_PID $RECEIVER_PID; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	PROBE_PID='' TCP_PROBE_PID='' RECEIVER_PID=''
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

# container_up MIB: c1 on h1, running udp_echo, memhog MIB and a TCP echo
# server (busybox nc, for tcp_rr_probe), all started by its init: so a
# stateless move restarts them as a reboot does, and a live move must carry
# them. Prints c1's address.
container_up() {
	local mib=$1 i ip
	fy h1 init busybox c1 >/dev/null || return 1
	fy h1 file push -p --mode 0755 --uid 0 --gid 0 "$UDP_ECHO" c1/usr/local/bin/udp_echo &&
		fy h1 file push -p --mode 0755 --uid 0 --gid 0 "$MEMHOG" c1/usr/local/bin/memhog &&
		fy h1 file push -p --mode 0755 --uid 0 --gid 0 "$MEMHOG_CHECK" c1/usr/local/bin/memhog_check || return 1
	{
		fy h1 file pull c1/etc/inittab - || return 1
		printf '::once:/usr/local/bin/udp_echo %s\n::once:/usr/local/bin/memhog %s\n' "$ECHO_PORT" "$mib"
		printf '::once:nc -ll -p %s -e /bin/cat\n' "$TCP_ECHO_PORT"
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

# memory_check H PID MIB: memhog_check's line about memhog (PID) on host H.
memory_check() {
	fy "$1" exec c1 -- /usr/local/bin/memhog_check "$2" "$3" 2>&1 | head -1
}

# The ids of h1's operations that carry migration_times (the sources of
# earlier moves: kept 5 minutes).
moves_seen() {
	fy h1 operation list --format json 2>/dev/null |
		jq -r '.[] | select(.metadata.migration_times != null) | .id' 2>/dev/null
}

# move_times SEEN STDOUT: ferry's account of the move just made, in R_STOP
# R_CKPT R_XFER R_RESTORE R_RESUME R_PAGES_MS R_PAGES_MIB ("?": not told,
# "-": not that mode): from the migration_times of h1's operation that
# was not in SEEN (moves_seen before the move), or else from what `ferry
# move` printed (its "stopped for" and "Its memory followed" lines).
move_times() {
	local seen=$1 printed=$2 times line
	times=$(fy h1 operation list --format json 2>/dev/null | jq -c --arg seen "$seen" '
		($seen | split("\n")) as $old
		| [.[] | select(.metadata.migration_times != null and ((.id | IN($old[])) | not))]
		| sort_by(.created_at) | last | .metadata.migration_times // empty' 2>/dev/null)
	if [ -n "$times" ]; then
		read -r R_STOP R_CKPT R_XFER R_RESTORE R_RESUME R_PAGES_MS R_PAGES_MIB < <(printf '%s\n' "$times" | jq -r '
			[.downtime_ms, .checkpoint_ms, .transfer_ms, .restore_ms, .resume_ms, .pages_ms,
			 (if .pages_bytes == null then null else (.pages_bytes / 1048576 * 10 | round) / 10 end)]
			| map(if . == null then "-" else tostring end) | @tsv')
		echo "#   migration_times: $times" >&2
	fi
	line=$(move_account "$printed")
	if [ -z "$times" ] && [ -n "$line" ]; then
		read -r R_STOP R_CKPT R_XFER R_RESTORE R_RESUME <<<"$line"
		R_PAGES_MS=- R_PAGES_MIB=-
		line=$(printf '%s\n' "$printed" | sed -n 's/.*memory followed in \([0-9]*\) ms (\([0-9.]*\) MB).*/\1 \2/p' | head -1)
		[ -z "$line" ] || read -r R_PAGES_MS R_PAGES_MIB < <(awk -v l="$line" 'BEGIN {split(l, a, " ");
			printf "%s %.1f\n", a[1], a[2] * 1e6 / 1048576}')
		echo "#   migration_times: not in h1's operations; from ferry move's output" >&2
	fi
}

# criu_errors: the error lines of c1's CRIU logs (migration_*.log) on both
# hosts, each file's name first; kept in $out/migrate_downtime.errors too.
criu_errors() {
	local h f lines
	for h in h1 h2; do
		for f in "$BED_DIR/$h/logs/c1"/migration_*.log; do
			[ -f "$f" ] || continue
			lines=$(grep -E '(^|[ )])(Error|ERROR)|[Ff]ailed|[Ee]rror:' "$f" | head -20)
			[ -z "$lines" ] || printf '%s/%s:\n%s\n' "$h" "${f#"$BED_DIR/$h/"}" "$(printf '%s\n' "$lines" | sed 's/^/  /')"
		done
	done
}

# measure MIB MODE: one row of the table, and its line of data (R_* globals).
measure() {
	local mib=$1 mode=$2 ip args ident_before ident_after pid_before pid_after rc err probe tcp_probe printed seen
	local hog_before hog_after mem_before mem_after gaps
	R_TOTAL='?' R_DOWN='?' R_LOST='?' R_RATE='?' R_RATIO='?' R_SAME=- R_NOTE='' R_DOWN_SHOWN='?' R_GAP_AT='?'
	R_STOP='?' R_CKPT='?' R_XFER='?' R_RESTORE='?' R_RESUME='?' R_PAGES_MS='?' R_PAGES_MIB='?' R_MEM=- R_GAPS='?'
	R_TCP='?' R_TCP_SHOWN='?'
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
	# memhog's memory, read before the move: the checker must find it whole
	# here for its word after the move to mean anything.
	hog_before=$(fy h1 exec c1 -- pidof memhog 2>/dev/null)
	mem_before=$([ -z "$hog_before" ] || memory_check h1 "$hog_before" "$mib")
	echo "#   memhog before: pid ${hog_before:-none}, ${mem_before:-not checked}" >&2
	if [[ $mem_before != intact* ]]; then
		R_NOTE="error: memhog's memory before the move: ${mem_before:-no memhog}"
		container_gone
		return
	fi
	seen=$(moves_seen)

	# The probe outlives the longest move; it is stopped by pid, so it is
	# started without a function around it ($! is the probe: testbed.sh
	# execs nsenter, which execs chrt, which execs it).
	"$TESTBED" lan-exec "$BED_DIR" "${PROBE_SCHED[@]}" "$UDP_PROBE" "$ip" "$ECHO_PORT" $(((MOVE_TIMEOUT + 60) * 1000 + PRE_MS + POST_MS)) \
		"$PROBE_INTERVAL_US" >"$WORK/probe.out" 2>&1 &
	PROBE_PID=$!
	# And a TCP client asking c1's echo server, one request at a time.
	"$TESTBED" lan-exec "$BED_DIR" python3 "$TCP_PROBE" "$ip" "$TCP_ECHO_PORT" "$TCP_INTERVAL_MS" >"$WORK/tcp.out" 2>&1 &
	TCP_PROBE_PID=$!
	sleep "$(awk -v ms="$PRE_MS" 'BEGIN {print ms / 1000}')"
	# shellcheck disable=SC2086 # the arguments are words
	on_timed h1 timeout "$MOVE_TIMEOUT" "$FERRY" move c1 h2: $args >"$WORK/move.out" 2>"$WORK/move.err"
	rc=$?
	R_TOTAL=$(cat "$WORK/timed.ms")
	sleep "$(awk -v ms="$POST_MS" 'BEGIN {print ms / 1000}')"
	kill -TERM "$PROBE_PID" "$TCP_PROBE_PID" 2>/dev/null
	wait "$PROBE_PID"
	wait "$TCP_PROBE_PID"
	PROBE_PID='' TCP_PROBE_PID=''
	tcp_probe=$(grep '^requests=' "$WORK/tcp.out")
	echo "#   tcp probe: ${tcp_probe:-$(cat "$WORK/tcp.out")}" >&2
	if [ -n "$tcp_probe" ] && [ "$(kv broken "$tcp_probe")" = 0 ] && [ "$(kv requests "$tcp_probe")" -gt 1 ]; then
		R_TCP=$(kv slowest_ms "$tcp_probe")
		R_TCP_SHOWN=$(printf '%.0f' "$R_TCP")
	elif [ -n "$tcp_probe" ] && [ "$(kv broken "$tcp_probe")" = 1 ]; then
		R_TCP_SHOWN=broken
	fi
	printed=$(cat "$WORK/move.out")
	err=$(cat "$WORK/move.err")
	probe=$(grep '^sent=' "$WORK/probe.out")
	echo "#   move: rc $rc, ${R_TOTAL} ms; probe: ${probe:-$(cat "$WORK/probe.out")}" >&2
	[ -z "$printed" ] || printf '%s\n' "$printed" | sed 's/^/#   ferry move: /' >&2

	if [ "$rc" -ne 0 ]; then
		[ "$rc" -ne 124 ] || err="timed out after $MOVE_TIMEOUT s"
		if has_c1 h1 && ! has_c1 h2; then
			R_NOTE="refused: $(first_line "$err")"
		else
			R_NOTE="failed: $(first_line "$err")"
		fi
		R_TOTAL='?'
		{
			echo "== $mib MiB, $mode: ferry move c1 h2: $args: rc $rc"
			printf '%s\n' "$err"
			echo "-- the CRIU logs' error lines:"
			criu_errors
			echo
		} | tee -a "$errors" | sed 's/^/#   /' >&2
		container_gone
		return
	fi
	move_times "$seen" "$printed"
	if [ -n "$probe" ]; then
		R_LOST=$(kv lost "$probe")
		R_DOWN=$(kv max_gap_ms "$probe")
		R_DOWN_SHOWN=$(printf '%.1f' "$R_DOWN")
		# Where in the move the gap began.
		R_GAP_AT=$(awk -v g="$(kv gap_start_epoch_ms "$probe")" -v s="$(cat "$WORK/timed.start_ms")" \
			'BEGIN {print (g > 0) ? g - s : "?"}')
		# Every gap of 50 ms or more: the stop, and any outage after it
		# (a post-copy process waiting for a page, or the LAN sending c1's
		# traffic to the source host again).
		gaps=$(kv gaps "$probe")
		if [ -n "$gaps" ]; then
			R_GAPS=$(printf '%s\n' "$gaps" | awk -F, '$0 == "-" {print 0; next} {print NF}')
			[ "$gaps" = - ] || echo "#   gaps of 50 ms or more (began at ms after the move began: length): $(printf '%s\n' "$gaps" |
				awk -F, -v s="$(cat "$WORK/timed.start_ms")" '{for (i = 1; i <= NF; i++) {split($i, g, "+");
					printf "%s%d: %.1f", (i > 1 ? ", " : ""), g[1] - s, g[2]}}')" >&2
		fi
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
		# memhog: the same pid, its buffer at the same address, every word
		# as it was.
		hog_after=$(fy h2 exec c1 -- pidof memhog 2>/dev/null)
		mem_after=$([ -z "$hog_after" ] || memory_check h2 "$hog_after" "$mib")
		echo "#   memhog after: pid ${hog_after:-none}, ${mem_after:-not checked}" >&2
		if [ -z "$hog_after" ]; then
			R_MEM=gone
		elif [ "$hog_after" != "$hog_before" ] || { [[ $mem_after == intact* ]] && [ "$mem_after" != "$mem_before" ]; }; then
			R_MEM=restarted
		elif [[ $mem_after == intact* ]]; then
			R_MEM=intact
		elif [[ $mem_after == corrupt* ]]; then
			R_MEM=CORRUPT
			R_NOTE="memhog: $mem_after"
		else
			R_MEM='?'
			R_NOTE="memhog_check: ${mem_after:-no answer}"
		fi
	fi
	if [ "$R_SAME" != yes ] || [ "$R_MEM" != intact ]; then
		{
			echo "== $mib MiB, $mode: ferry move c1 h2: $args: same process: $R_SAME, memory: $R_MEM"
			echo "-- the CRIU logs' error lines:"
			criu_errors
			echo
		} >>"$errors"
	fi
	container_gone
}

# target MIB MODE: whether the row meets the issue's target ("-": none for it).
target() {
	local mib=$1 mode=$2
	# Only the real modes are held to them (not MOVE_ARGS=--stateless).
	[[ " ${move_args_template//\{mode\}/$mode} " == *" --memory $mode "* ]] || { echo -; return; }
	[ "$R_SAME" = yes ] && [ "$R_MEM" = intact ] || { [ "$R_TOTAL" = "?" ] && echo - || echo MISS; return; }
	case $mode in
	post-copy)
		awk -v d="$R_DOWN" -v t="$POSTCOPY_DOWNTIME_MS" 'BEGIN {print (d != "?" && d < t) ? "ok" : "MISS"}' ;;
	stop-and-copy)
		[ "$mib" -ge "$STOPCOPY_FROM_MIB" ] || { echo -; return; }
		awk -v r="$R_RATIO" -v t="$STOPCOPY_RATIO" 'BEGIN {print (r <= t) ? "ok" : "MISS"}' ;;
	*) echo - ;;
	esac
}

# A mode that copies the memory while the instance is stopped is held to
# the throughput bound; post-copy's total time includes its pages, after
# the instance runs again, and is not.
has_bound() { [ "$1" != post-copy ]; }

errors=$out/migrate_downtime.errors
: >"$errors"
data=$out/migrate_downtime.dat
# Sizes in the outer loop: both modes of a size are measured one after the
# other, under the same conditions. The data goes to one block per mode
# (gnuplot's index), written at the end.
declare -A data_lines=()
rows=()
row_format='%5s  %-13s %8s %6s %4s %6s %7s %8s %7s %6s %6s %7s %6s %8s %6s %7s %6s  %-9s %-9s %-6s %s'
for mib in "${sizes[@]}"; do
	for mode in "${modes[@]}"; do
		echo "# $mib MiB, $mode: ferry move c1 h2: ${move_args_template//\{mode\}/$mode}" >&2
		measure "$mib" "$mode"
		bound=$(awk -v m="$mib" -v t="$tput" 'BEGIN {printf "%.0f", m * 1000 / t}')
		data_lines[$mode]+="$(printf '%s\n' "$mib $R_TOTAL $R_DOWN $R_LOST $R_RATE $R_RATIO $bound" \
			"$R_STOP $R_CKPT $R_XFER $R_RESTORE $R_RESUME $R_PAGES_MS $R_PAGES_MIB $R_TCP" | tr '\n' ' ' | sed 's/ $//; s/\(^\| \)-\( \|$\)/\1?\2/g; s/\(^\| \)-\( \|$\)/\1?\2/g')"$'\n'
		shown_bound=$bound shown_ratio=$R_RATIO
		has_bound "$mode" || shown_bound=- shown_ratio=-
		# shellcheck disable=SC2059 # one format for the header and the rows
		rows+=("$(printf "$row_format" "$mib" "$mode" "$R_DOWN_SHOWN" "$R_GAP_AT" "$R_GAPS" "$R_LOST" "$R_TCP_SHOWN" "$R_TOTAL" \
			"$R_STOP" "$R_CKPT" "$R_XFER" "$R_RESTORE" "$R_RESUME" "$R_PAGES_MS" "$R_PAGES_MIB" \
			"$shown_bound" "$shown_ratio" "$R_MEM" "$R_SAME" "$(target "$mib" "$mode")" "$R_NOTE" | sed 's/ *$//')")
		echo "# -> ${rows[-1]}" >&2
	done
done
{
	echo "# TCP throughput h1 -> h2: $tput MiB/s"
	echo "# one block per mode (in the order: ${modes[*]}); columns: MiB total_ms downtime_ms lost MiB_per_s"
	echo "# ratio_to_bound bound_ms stopped_ms checkpoint_ms transfer_ms restore_ms resume_ms pages_ms pages_MiB"
	echo "# tcp_rr_ms (?: none)"
	for mode in "${modes[@]}"; do
		# Blocks apart by two blank lines: gnuplot's "index".
		[ "$mode" = "${modes[0]}" ] || printf '\n\n'
		echo "# $mode"
		printf '%s' "${data_lines[$mode]:-}"
	done
} >"$data"
[ -s "$errors" ] || rm -f "$errors"

commit=$(bench_commit)
mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
{
	echo "live move h1 -> h2 vs dirtied memory: $(nproc) cores, $mem, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), commit $commit, binaries from $BUILD"
	echo "TCP h1 -> h2: $tput MiB/s (median of $THROUGHPUT_RUNS x $THROUGHPUT_MIB MiB: ${tput_runs[*]}); bound = MiB / throughput, ratio = total / bound (stop-and-copy)"
	echo "move: ferry move c1 h2: $move_args_template; downtime: largest gap in UDP echo replies, probed every $((PROBE_INTERVAL_US / 1000)) ms from the LAN (${PROBE_SCHED[*]}), gap beginning (at ms) after the move began, gaps: how many of 50 ms or more; total: wall time of ferry move"
	echo "tcp rr: the longest a TCP client on the LAN waited for an answer from c1 (one request at a time, every $TCP_INTERVAL_MS ms: bench/tcp_rr_probe.py); broken: its connection failed"
	echo "ferry's account (the source operation's migration_times): stopped = ckpt + xfer + restore + resume; pages: from the resume until every page had arrived (post-copy)"
	echo "memory: memhog's memory read back in the container after the move (bench/memhog_check: every word, same pid, same address)"
	echo "targets: post-copy downtime < $POSTCOPY_DOWNTIME_MS ms; stop-and-copy total <= $STOPCOPY_RATIO x bound from $STOPCOPY_FROM_MIB MiB"
	# shellcheck disable=SC2059
	{
		printf "$row_format\n" MiB mode "downtime" "at" gaps lost "tcp rr" "total" stopped ckpt xfer restore resume pages pages bound ratio memory "same proc" target ""
		printf "$row_format\n" "" "" ms ms "" "" ms ms ms ms ms ms ms ms MiB ms "" "" "" "" ""
		printf '%s\n' "${rows[@]}"
	} | sed 's/ *$//'
	[ ! -s "$errors" ] || echo "failures: the error output and the CRIU logs' error lines are in $errors"
} | tee "$out/migrate_downtime.txt"

if ! awk '!/^#/ && NF && ($2 != "?" || $3 != "?") {found = 1} END {exit !found}' "$data"; then
	echo "no move succeeded: no plot" >&2
	rm -f "$out/migrate_downtime.png"
	exit 0
fi
titles=${modes[*]}
# Post-copy's pages (from the resume to the last page), where it has them.
pages_plot=
for i in "${!modes[@]}"; do
	[ "${modes[i]}" = post-copy ] || continue
	awk '/^# post-copy$/ {on = 1; next} on && /^#/ {on = 0} on && NF && $13 != "?" {found = 1} END {exit !found}' "$data" &&
		pages_plot=", \"$data\" index $i using 1:13 with linespoints linecolor $((i + 1)) dashtype 3 title \"post-copy: pages (after the resume)\""
done
# Cairo draws the dashed lines (libgd's png terminal draws them solid).
terminal=png
gnuplot -e 'set terminal pngcairo' 2>/dev/null && terminal=pngcairo
# (Its warnings, such as a mode without a point, only when it fails.)
gnuplot 2>"$WORK/gnuplot.err" <<GP || { cat "$WORK/gnuplot.err" >&2; echo "gnuplot failed" >&2; }
set terminal $terminal size 1400,600
set output "$out/migrate_downtime.png"
set datafile missing "?"
set multiplot layout 1,2 title "live move h1 -> h2: ferry move c1 h2: ${move_args_template//\{mode\}/MODE} (commit $commit, TCP $tput MiB/s)"
set xlabel "dirtied memory (MiB)"
set logscale x 2
set xrange [$(printf '%s\n' "${sizes[@]}" | sort -n | head -1) / 1.5 : $(printf '%s\n' "${sizes[@]}" | sort -n | tail -1) * 1.5]
set logscale y 10
set key below horizontal
set title "downtime: largest gap in UDP echo replies (dashed: ferry's stopped time)"
set ylabel "ms"
plot for [i=1:words("$titles")] "$data" index (i - 1) using 1:3 with linespoints linecolor i linewidth 2 title word("$titles", i), \
     for [i=1:words("$titles")] "$data" index (i - 1) using 1:8 with linespoints linecolor i dashtype 2 title word("$titles", i)." (ferry: stopped)", \
     $POSTCOPY_DOWNTIME_MS with lines linecolor rgb "gray40" dashtype 2 title "post-copy target"
set title "total time of the move"
set ylabel "ms"
plot for [i=1:words("$titles")] "$data" index (i - 1) using 1:2 with linespoints linecolor i linewidth 2 title word("$titles", i)$pages_plot, \
     x * 1000 / $tput with lines linecolor rgb "gray40" dashtype 2 title "MiB / TCP throughput", \
     $STOPCOPY_RATIO * x * 1000 / $tput with lines linecolor rgb "gray40" dashtype 3 title "$STOPCOPY_RATIO x that"
unset multiplot
GP
echo "results: $out/migrate_downtime.txt, $out/migrate_downtime.png" >&2
