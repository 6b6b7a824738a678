#!/usr/bin/env bash
# ferry's demo: a running container moves live from one host to another.
#
# It installs and builds everything (scripts/setup.sh), brings up two hosts
# on the test bed (scripts/testbed.sh: network namespaces on one LAN, each
# with its own ferryd), and starts c1 on h1 with a counter and a TCP echo
# server. A client on the LAN holds one TCP connection to c1 and sends a
# numbered line every 100 ms. Then `ferry move c1 h2:`, and the evidence:
# c1 runs on h2 and is gone from h1, the same counter process goes on from
# where it was, the connection still echoes (never reopened), and the
# downtime the client saw. Everything is removed at the end, also on failure
# or Ctrl-C. Exits non-zero when any of that evidence is missing.
#
#   DEMO_SKIP_SETUP=1     skip scripts/setup.sh (the machine is set up); still builds
#   DEMO_MOVE_ARGS=ARGS   more arguments for the move; --stateless stops, moves
#                         and starts c1, which the evidence then shows (and fails)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
testbed=$here/scripts/testbed.sh
ferry=$here/build/src/cli/ferry
read -ra move_args <<<"${DEMO_MOVE_ARGS:-}"
[ $# -eq 0 ] || { echo "usage: demo.sh (env: DEMO_SKIP_SETUP=1, DEMO_MOVE_ARGS=...)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it makes network namespaces)" >&2; exit 1; }

if [ -t 1 ]; then bold=$'\033[1m' green=$'\033[32m' red=$'\033[31m' plain=$'\033[0m'; else bold='' green='' red='' plain=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
note() { printf '    %s\n' "$@"; }
ok() { printf '  %sok%s    %s\n' "$green" "$plain" "$*"; }
failures=()
bad() { printf '  %sFAIL%s  %s\n' "$red" "$plain" "$*"; failures+=("$*"); }
now_us() { echo "${EPOCHREALTIME/./}"; }
started_at=$(now_us)

bed='' client=''
cleanup() {
	local rc=$?
	trap '' INT TERM
	set +e
	if [ -n "$client" ]; then
		kill "$client" 2>/dev/null
		wait "$client" 2>/dev/null
	fi
	if [ -n "$bed" ]; then
		say "Tearing down the test bed"
		"$testbed" down "$bed"
		rm -rf "$bed"
	fi
	case $rc in 0) rc_text='done' ;; 130 | 143) rc_text="interrupted (exit $rc)" ;; *) rc_text="failed (exit $rc)" ;; esac
	printf '\ndemo: %s after %d s\n' "$rc_text" \
		$((($(now_us) - started_at) / 1000000))
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ferry as host H, shown as the user types it; fy: the same, quietly.
on() {
	local h=$1
	shift
	printf '%s$ ferry %s\n' "$h" "$*"
	"$testbed" exec "$bed" "$h" "$ferry" "$@"
}
fy() { local h=$1; shift; "$testbed" exec "$bed" "$h" "$ferry" "$@"; }

# The client, run in the LAN's namespace: one connection (bash's /dev/tcp,
# opened once: it never reconnects), "line N" sent every 100 ms, each echo
# logged as "<time in µs> line N"; "closed" when the connection ends.
echo_client() {
	local addr=$1 port=$2 log=$3 n=0 line now next wait i
	trap '' PIPE
	for i in $(seq 50); do
		exec 3<>"/dev/tcp/$addr/$port" && break
		[ "$i" -lt 50 ] || { echo "${EPOCHREALTIME/./} refused" >>"$log"; return 1; }
		sleep 0.1
	done
	echo "${EPOCHREALTIME/./} connected" >>"$log"
	next=${EPOCHREALTIME/./}
	# At most half an hour, in case nobody stops it.
	while [ "$n" -lt 18000 ]; do
		n=$((n + 1))
		printf 'line %d\n' "$n" >&3 2>/dev/null || { echo "${EPOCHREALTIME/./} closed (send failed)" >>"$log"; return 0; }
		next=$((next + 100000))
		# Until the next send, log whatever echoes arrive.
		while now=${EPOCHREALTIME/./}; [ "$now" -lt "$next" ]; do
			printf -v wait '%d.%06d' $(((next - now) / 1000000)) $(((next - now) % 1000000))
			if IFS= read -r -t "$wait" line <&3; then
				echo "${EPOCHREALTIME/./} $line" >>"$log"
			elif [ $? -le 128 ]; then
				echo "${EPOCHREALTIME/./} closed (connection ended)" >>"$log"
				return 0
			fi
		done
	done
}

# "+1.234 s": a time in µs relative to the start of the move.
rel() {
	local d=$(($1 - move_start)) sign=+
	[ "$d" -ge 0 ] || { sign=- d=$((-d)); }
	printf '%s%d.%03d s' "$sign" $((d / 1000000)) $((d % 1000000 / 1000))
}

# --- setup ----------------------------------------------------------------------
if [ -n "${DEMO_SKIP_SETUP:-}" ]; then
	ninja -C "$here/build" >/dev/null || { echo "demo: the build failed (ninja -C $here/build)" >&2; exit 1; }
else
	bash "$here/scripts/setup.sh"
fi

say "Two hosts, h1 and h2, on one LAN"
note "Each host is a network namespace on this machine with its own ferryd;" \
	"a bridge in a third namespace is the LAN between them."
bed=$(mktemp -d /tmp/ferry-demo.XXXXXX)
printf '$ scripts/testbed.sh up %s 2\n' "$bed"
"$testbed" up "$bed" 2
subnet=$(sed -n 's/^SUBNET=//p' "$bed/bed.env")
note "h1 is $subnet.1, h2 is $subnet.2, and the demo's client sits on the LAN at $subnet.254."

say "Building the busybox image on h1 (offline, from Debian's busybox-static)"
on h1 image build busybox --alias busybox

say "c1 on h1: a counter and a TCP echo server, both started by its init"
on h1 init busybox c1
fy h1 file pull c1/etc/inittab "$bed/inittab"
cat >>"$bed/inittab" <<'EOF'
# The demo: a counter held in a shell variable, logged with the shell's pid ten times a second,
::once:/bin/sh -c 'i=0; while :; do i=$((i+1)); echo "$$ $i" >>/root/counter.log; sleep 0.1; done'
# and a TCP echo server on port 7000 (a cat for each connection).
::once:/usr/bin/nc -ll -p 7000 -e /bin/cat
EOF
note "Two lines added to c1's /etc/inittab:"
tail -n 4 "$bed/inittab" | grep '^::' | sed 's/^/      /'
note "The counter lives only in the shell's memory: if the process starts again, so does the count."
on h1 file push "$bed/inittab" c1/etc/inittab
on h1 start c1
for _ in $(seq 100); do
	last=$(fy h1 exec c1 -- tail -n 1 /root/counter.log 2>/dev/null || true)
	[ "${last#* }" -ge 10 ] 2>/dev/null && break
	sleep 0.1
done
on h1 list
on h1 exec c1 -- ps -o pid,args
addr=$(fy h1 list c1 --format csv -c 4 | cut -d' ' -f1)
[ -n "$addr" ] || { echo "demo: c1 has no address" >&2; exit 1; }

say "A client on the LAN holds one TCP connection to c1 ($addr:7000)"
note "It connects once, sends \"line N\" every 100 ms and logs each echo with the time it arrived."
"$testbed" lan-exec "$bed" bash -c "$(declare -f echo_client); echo_client $addr 7000 $bed/echo.log" \
	</dev/null >"$bed/client.out" 2>&1 &
client=$!
echoes_so_far() { cat "$bed/echo.log" 2>/dev/null | grep -c ' line ' || true; }
for _ in $(seq 100); do
	[ "$(echoes_so_far)" -ge 20 ] && break
	grep -q -e closed -e refused "$bed/echo.log" 2>/dev/null && break
	sleep 0.1
done
[ "$(echoes_so_far)" -ge 20 ] ||
	{ echo "demo: the client got no echoes from $addr:7000" >&2; cat "$bed/echo.log" "$bed/client.out" >&2; exit 1; }
connection() { "$testbed" lan-exec "$bed" ss -Htn state established dst "$addr:7000" | awk '{print $3 " -> " $4}'; }
conn_before=$(connection)
note "connection: $conn_before (established)" "the last echoes:"
tail -n 3 "$bed/echo.log" | sed 's/^[0-9]* /      echo: /'

say "Before the move"
printf 'h1$ ferry exec c1 -- tail -n 3 /root/counter.log\n'
fy h1 exec c1 -- tail -n 3 /root/counter.log | tee "$bed/before"
read -r counter_pid before < <(tail -n 1 "$bed/before")
note "The counter is pid $counter_pid in c1, at $before."

# --- the move -------------------------------------------------------------------
say "Moving c1 from h1 to h2 while it runs${move_args[*]:+ (with ${move_args[*]})}"
if [[ " ${move_args[*]} " == *" --stateless "* ]]; then
	note "--stateless: h1 stops c1 and sends its filesystem to h2, which starts it afresh."
else
	note "h1 checkpoints c1 with CRIU (memory, open files, TCP connections) and sends it with" \
		"its filesystem to h2, which restores it; c1 keeps its address and MAC on the LAN."
fi
move_start=$(now_us)
printf 'h1$ ferry move c1 h2:%s\n' "${move_args[*]:+ ${move_args[*]}}"
set +e
timeout --foreground 300 "$testbed" exec "$bed" h1 "$ferry" move c1 h2: "${move_args[@]}"
move_rc=$?
set -e
move_end=$(now_us)
note "The move took $(rel "$move_end" | sed 's/^+//')."
if [ "$move_rc" -ne 0 ]; then
	bad "ferry move c1 h2: ${move_args[*]} failed (exit $move_rc)"
	on h1 list
	say "The evidence is missing: c1 did not move"
	exit 1
fi

# Wait for the client to see an echo again (or the end of its connection),
# then let it run two more seconds, so the log shows the lines going on.
for _ in $(seq 300); do
	last=$(tail -n 1 "$bed/echo.log")
	case $last in *closed*) break ;; esac
	[ "${last%% *}" -gt "$move_end" ] && break
	sleep 0.1
done
case $last in *closed*) ;; *) sleep 2 ;; esac
conn_after=$(connection)
kill "$client" 2>/dev/null || true
wait "$client" 2>/dev/null || true
client=''
client_end=$(now_us)

# --- the evidence ---------------------------------------------------------------
say "Where c1 is"
on h1 list
on h2 list
on_h1=$(fy h1 list --format csv -c n)
on_h2=$(fy h2 list c1 --format csv -c s 2>/dev/null || true)

say "The counter on h2"
on h2 exec c1 -- tail -n 3 /root/counter.log || true
on h2 exec c1 -- ps -o pid,args || true
fy h2 exec c1 -- cat /root/counter.log >"$bed/counter.log" 2>/dev/null || true
# lines, first, last, last pid, and the first break in the sequence (pid
# value pid value) or "-".
read -r _ _ last _ break_at < <(awk '
	NF != 2 { next }
	!seen { seen = 1; pid = $1; prev = $2; first = $2; n = 1; next }
	{ n++; if (!brk && ($1 != pid || $2 != prev + 1)) brk = pid " " prev " " $1 " " $2; pid = $1; prev = $2 }
	END { if (seen) print n, first, prev, pid, (brk ? brk : "-"); else print 0, 0, 0, 0, "-" }' "$bed/counter.log")
alive=$(fy h2 exec c1 -- cat "/proc/$counter_pid/cmdline" 2>/dev/null | tr '\0' ' ' || true)

say "The client's connection"
note "connection before the move: $conn_before" \
	"connection after the move:  ${conn_after:-(none established)}" "the last entries of its log:"
tail -n 3 "$bed/echo.log" | sed 's/^[0-9]* /      /'
# echoes, last line number, its time, when it closed (or -), first line out
# of order (or -), and the largest gap: its µs, the lines either side, when.
read -r _ last_n last_t closed_t disorder gap gap_from gap_to gap_t0 gap_t1 < <(awk '
	$2 == "line" {
		n++; if ($3 != n && !dis) dis = "line_" $3 "_came_where_" n "_was_due"
		if (n > 1 && $1 - pt > gap) { gap = $1 - pt; gfrom = pn; gto = $3; g0 = pt; g1 = $1 }
		pt = $1; pn = $3; next }
	$2 == "closed" { closed = $1 }
	END { printf "%d %d %.0f %s %s %.0f %d %d %.0f %.0f\n", n, pn, pt, (closed ? closed : "-"),
		(dis ? dis : "-"), gap, gfrom, gto, g0, g1 }' "$bed/echo.log")
if [ "$closed_t" = - ]; then
	note "Around the longest silence the client saw:"
	printf -v echoes_shown '%s echo of line %s\n' "$gap_t0" "$gap_from" "$gap_t1" "$gap_to"
else
	note "When its connection ended:"
	printf -v echoes_shown '%s echo of line %s\n' "$last_t" "$last_n"
fi
{
	printf '%s' "$echoes_shown"
	printf '%s ferry move starts\n%s ferry move returns\n' "$move_start" "$move_end"
	[ "$closed_t" = - ] || printf '%s the connection ends\n' "$closed_t"
} | sort -n | while read -r t what; do printf '      %-10s %s\n' "$(rel "$t")" "$what"; done
gap_ms=$((gap / 1000))

say "The evidence"
if [ -z "$on_h1" ] && [ "$on_h2" = RUNNING ]; then
	ok "c1 runs on h2 ($addr) and is gone from h1"
else
	bad "c1 should run on h2 and be gone from h1 (h1 lists: ${on_h1:-nothing}; c1 on h2: ${on_h2:-missing})"
fi

if [ "$break_at" = - ] && [ "$last" -gt "$before" ] && [[ $alive == *counter.log* ]]; then
	ok "the same counter process (pid $counter_pid in c1) went on counting on h2 from where it was:" \
		"$before on h1 before the move, $last now, not one step lost or repeated"
else
	read -r p1 v1 p2 v2 <<<"$break_at"
	if [ "$break_at" = - ]; then
		bad "the counter did not go on on h2 (before the move: $before; now: $last; its process, pid $counter_pid:" \
			"${alive:-gone})"
	elif [ "$v2" -le "$v1" ] && [ "$p1" = "$p2" ]; then
		bad "the counter did not continue: after $v1 it started again from $v2, a new process" \
			"(pid $p2 again: c1 was booted afresh on h2, and its pids repeat)"
	elif [ "$v2" -le "$v1" ]; then
		bad "the counter did not continue: after $v1 (pid $p1) it started again from $v2 (pid $p2)"
	else
		bad "the counter's log jumps from $v1 (pid $p1) to $v2 (pid $p2): lines it wrote were lost in the move"
	fi
fi

if [ "$closed_t" != - ]; then
	bad "the TCP connection broke: it ended $(rel "$closed_t" | tr -d +) into the move; the last echo was line $last_n"
elif [ "$last_t" -le "$move_end" ] || [ $((client_end - last_t)) -gt 1000000 ]; then
	bad "the TCP connection no longer echoes: the last echo was line $last_n, at $(rel "$last_t") (the move returned at $(rel "$move_end"))"
elif [ "$disorder" != - ]; then
	bad "the echoes are not the client's lines in order (${disorder//_/ })"
elif [ -z "$conn_after" ] || [ "$conn_after" != "$conn_before" ]; then
	bad "the client's connection is not the one it opened ($conn_before; now: ${conn_after:-none})"
else
	ok "the TCP connection still echoes: the same connection ($conn_before), never reopened;" \
		"lines 1 to $last_n all echoed, in order"
	ok "downtime seen by the client: $gap_ms ms (the longest wait between two echoes, lines $gap_from -> $gap_to)"
fi

if [ ${#failures[@]} -gt 0 ]; then
	say "Not a live move: the evidence above is missing"
	if [[ " ${move_args[*]} " == *" --stateless "* ]]; then
		note "(DEMO_MOVE_ARGS=${move_args[*]}: with --stateless, c1 is stopped on h1 and started" \
			" afresh on h2, which keeps neither its processes nor its connections.)"
	fi
	exit 1
fi
say "Done: c1 moved live from h1 to h2, with its processes and its TCP connection ($gap_ms ms downtime)"
