#!/usr/bin/env bash
# Post-copy live moves (--memory post-copy, or migration.memory): the
# container runs on the target as soon as it is restored without its
# memory, and the pages follow from the source as they are touched. Checked
# the way a user would: a counter that goes on (same pid), a TCP connection
# from the LAN that still echoes, and a process that reads all of its
# 192 MiB again and again and finds every word as it wrote it (a page that
# came back as zeroes would show), beside processes that exit while their
# pages are still coming. Then moves back and forth; the
# instance's migration.memory picking the mode; a stateful snapshot that
# moves along and restores at the end; a target whose ferryd is
# killed before it took over (the source's copy runs on, network and TCP
# connection unlocked); and one killed while the pages still come (no copy
# runs twice: the target's, lacking memory, dies; so does the source's,
# which the target ran on from; the instance stays on the source,
# stopped, and the move says so).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }

MEM_MIB=${POST_COPY_MIB:-192}

trap 'tcp_cleanup; bed_down' EXIT

# memcheck's report on host $1: "PID SEED ROUNDS BAD".
memcheck() { fy "$1" exec c1 -- cat /tmp/memcheck 2>/dev/null; }
# Wait (up to 60 s) until memcheck on $1 has gone over all of its memory
# at least twice more than in report $2; print the new report.
memcheck_after() {
	local r0 r
	r0=$(echo "$2" | cut -d' ' -f3)
	for i in $(seq 600); do
		r=$(memcheck "$1")
		[ -n "$r" ] && [ "$(echo "$r" | cut -d' ' -f3)" -ge $((r0 + 2)) ] && break
		sleep 0.1
	done
	echo "$r"
}
# expect_memory DESCRIPTION BEFORE AFTER: the same process and seed, rounds
# went on, and no word was ever wrong.
expect_memory() {
	local b=($2) a=($3)
	if [ "${#a[@]}" -eq 4 ] && [ "${a[0]}" = "${b[0]}" ] && [ "${a[1]}" = "${b[1]}" ] &&
		[ "${a[2]}" -gt "${b[2]}" ] && [ "${a[3]}" = 0 ]; then
		pass "$1 (rounds ${b[2]} -> ${a[2]}, no bad word)"
	else
		fail "$1" "before: $2" "after: $3"
	fi
}

fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
check "put memcheck in c1" fy h1 file push -p --mode 0755 --uid 0 --gid 0 "$BUILD/tests/migrate/memcheck" c1/usr/local/bin/memcheck
check "start a counter in c1" start_counter h1
check "start a TCP echo server in c1" fy h1 exec c1 -- sh -c 'nc -ll -p 7000 -e /bin/cat </dev/null >/dev/null 2>&1 &'
check "start memcheck ($MEM_MIB MiB) in c1" fy h1 exec c1 -- sh -c "memcheck $MEM_MIB </dev/null >/dev/null 2>&1 &"
# Processes that hold 8 MiB for a moment, one after the other, three at a
# time: a move catches some that exit while their pages are still coming.
for life in 200 300 500; do
	check "start short-lived memory users in c1 ($life ms)" fy h1 exec c1 -- sh -c "sh -c 'while :; do memcheck 8 $life; done' </dev/null >/dev/null 2>&1 &"
done
for i in $(seq 300); do [ -n "$(memcheck h1)" ] && break; sleep 0.1; done
ip_c1=$(ipv4 h1 c1)
mac_c1=$(hwaddr h1 c1)
coproc TCP { exec "$TESTBED" lan-exec "$BED_DIR" socat - "TCP:$ip_c1:7000,connect-timeout=5"; }
TCP_PID=$TCP_PID
expect_echo "a TCP connection from the LAN echoes" before-the-move
pid=$(counter_pid h1)
before=$(counter h1)
mem_before=$(memcheck_after h1 "$(memcheck h1)")
expect_match "memcheck went over its memory" "$mem_before" "^[0-9]+ [0-9a-f]+ [0-9]+ 0$"
check "a stateful snapshot of c1" fy h1 snapshot c1 s1 --stateful

# The ends of the logs a failed move's error output $1 names: they go
# with the bed.
show_logs() {
	local log
	for log in $(printf '%s\n' "$1" | grep -o 'log: [^ );]*' | cut -c6- | sort -u); do
		echo "# --- the end of $log"
		tail -n 40 "$log" 2>/dev/null | sed 's/^/#   /'
	done
}

# --- one post-copy move, checked in detail
out=$(fy h1 move c1 h2: --memory post-copy 2>&1)
rc=$?
expect_eq "move c1 h2: --memory post-copy" "$rc" 0
[ "$rc" = 0 ] || show_logs "$out"
expect_match "... the memory followed the takeover" "$out" "Its memory followed in [0-9]+ ms"
echo "# $out" | tr '\n' ' '; echo
expect_eq "c1 is gone from h1" "$(names h1)" ""
expect_eq "c1 runs on h2" "$(state h2 c1)" RUNNING
expect_eq "... the same counter process" "$(counter_pid h2)" "$pid"
expect_counted "... which went on counting" "$before" "$(counter h2)"
expect_echo "the TCP connection still echoes" after-the-move
expect_memory "memcheck, the same process, finds all its memory intact" "$mem_before" "$(memcheck_after h2 "$mem_before")"
expect_eq "c1 kept its address" "$(ipv4 h2 c1)" "$ip_c1"
expect_eq "... and its MAC" "$(hwaddr h2 c1)" "$mac_c1"
expect_match "h2 kept the lazy-pages daemon's log" "$(ls "$BED_DIR/h2/logs/c1")" "migration_lazy-pages_.*\.log"
# On a VM whose host takes back the memory the guest frees (virtio-balloon
# free page reporting), h2 took as much as c1 uses before h1 froze it.
reporting=no
for f in /sys/bus/virtio/drivers/virtio_balloon/virtio*/features; do
	[ -r "$f" ] && [ "$(cut -c6 "$f")" = 1 ] && reporting=yes
done
if [ "$reporting" = yes ]; then
	expect_match "h2 warmed the memory c1 uses before the freeze (free page reporting here)" \
		"$(cat "$BED_DIR/h2/logs/ferryd.log")" "instance c1: warmed (19[0-9]|[2-9][0-9]{2}|[0-9]{4}) MiB of memory for its pages"
else
	check_fails "h2 warmed no memory (no free page reporting here)" grep -q "warmed .* MiB of memory" "$BED_DIR/h2/logs/ferryd.log"
fi
# The pages no task asked for wait until c1 runs (they would only compete
# with the takeover for the CPU): released by init's resume, not by the
# monitor's fallback.
expect_match "... whose pages nobody asked for waited for c1 to run" \
	"$(grep -h 'remaining pages' "$BED_DIR"/h2/logs/c1/migration_lazy-pages_*.log | tr '\n' ' ')" \
	'wait for fd 4 .*may go now'
expect_match "... until h2's monitor saw init resumed" "$(cat "$BED_DIR/h2/logs/c1/monitor.log")" \
	'c1: init runs: the rest of its pages follow'
expect_match "... and the daemon was the one h2's spare monitor had started ahead" \
	"$(cat "$BED_DIR"/h2/logs/c1/migration_lazy-pages_*.log)" 'Configured late: log migration_lazy-pages_'
# CRIU's images were made in memory on both hosts (ferryd's staging
# directory on /dev/shm), not on their disks, and neither kept them.
expect_match "h1 dumped c1 into memory" "$(grep 'c1: its dump goes to' "$BED_DIR/h1/logs/ferryd.log")" \
	'its dump goes to /dev/shm/ferry-pages-[0-9a-f]+/c1\.dump$'
expect_match "h2 took c1's state into memory" "$(grep 'c1: its state waits in' "$BED_DIR/h2/logs/ferryd.log")" \
	'its state waits in /dev/shm/ferry-pages-[0-9a-f]+/c1\.state$'
expect_eq "... and neither host kept any of it" "$(compgen -G '/dev/shm/ferry-pages-*/c1.*')" ""
check_fails "h2 keeps no saved state once the pages are in" test -e "$BED_DIR/h2/containers/c1/state"
expect_eq "... nor the incoming mark" "$(fy h2 config get c1 volatile.migration.incoming)" ""
check_fails "h1 has no state of c1 left" test -e "$BED_DIR/h1/containers/c1"
expect_match "its snapshot came along, stateful" "$(fy h2 info c1)" "\| s1 .*\| YES +\|"

# --- back and forth, and the instance's own setting
check "set migration.memory post-copy on c1" fy h2 config set c1 migration.memory post-copy
from=h2 to=h1
ok=0
for i in 1 2 3 4; do
	before=$(counter "$from")
	mem_before=$(memcheck "$from")
	if ! out=$(fy "$from" move c1 "$to:" 2>&1) || ! echo "$out" | grep -q "Its memory followed"; then
		fail "move $i ($from -> $to)" "$out"
		show_logs "$out"
		break
	fi
	after=$(counter "$to")
	mem_after=$(memcheck_after "$to" "$mem_before")
	if [ "$(counter_pid "$to")" != "$pid" ] || [ "$after" -le "$before" ] || ! tcp_echo "move-$i" ||
		[ "$(echo "$mem_after" | cut -d' ' -f4)" != 0 ]; then
		fail "move $i ($from -> $to)" "counter $before -> $after, pid $(counter_pid "$to") (was $pid), memcheck $mem_after"
		break
	fi
	ok=$((ok + 1))
	tmp=$from from=$to to=$tmp
done
expect_eq "4 post-copy moves (migration.memory) back and forth, each keeping the processes, the memory and the connection" "$ok" 4
here=$from there=$to
expect_match "--memory stop-and-copy overrides migration.memory" \
	"$(fy "$here" move c1 "$there:" --memory stop-and-copy 2>&1)" "stopped for"
here=$to there=$from
check_fails "--memory with an unknown mode is refused" fy "$here" move c1 "$there:" --memory pre-copy
expect_eq "c1 runs on $here" "$(state "$here" c1)" RUNNING

# --- the target's ferryd dies before it took over (the state streams in)
target_pid=$(cat "$BED_DIR/$there.pid")
fy "$here" move c1 "$there:" >"$BED_DIR/move.out" 2>&1 &
move_pid=$!
for i in $(seq 2400); do
	[ -e "$BED_DIR/$there/containers/c1/state" ] && break
	sleep 0.005
done
kill -STOP "$target_pid"
kill -KILL "$target_pid"
wait "$move_pid"
expect_eq "the move fails (target killed before the takeover)" "$?" 1
expect_match "... saying that c1 runs on $here again" "$(cat "$BED_DIR/move.out")" "runs here again|keeps running"
expect_eq "c1 runs on $here" "$(state "$here" c1)" RUNNING
expect_eq "... the same process" "$(counter_pid "$here")" "$pid"
expect_echo "... its network unlocked: the connection still echoes" after-target-killed
mem_before=$(memcheck "$here")
expect_memory "... and memcheck goes on" "$mem_before" "$(memcheck_after "$here" "$mem_before")"
check "start $there's ferryd again" "$TESTBED" start "$BED_DIR" "$there"
for i in $(seq 100); do [ "$(names "$there")" = "" ] && break; sleep 0.1; done
expect_eq "$there has no c1" "$(names "$there")" ""

# --- the target's ferryd dies while the pages still come: nobody may run
# it twice, and neither copy has all of it any more.
target_pid=$(cat "$BED_DIR/$there.pid")
fy "$here" move c1 "$there:" >"$BED_DIR/move.out" 2>&1 &
move_pid=$!
for i in $(seq 3000); do
	[ "$(fy "$here" config get c1 volatile.migration.outgoing 2>/dev/null)" = committed ] && break
	sleep 0.01
done
kill -KILL "$target_pid"
wait "$move_pid"
expect_eq "the move fails (target killed while the pages come)" "$?" 1
expect_match "... saying that the memory could not all follow" "$(cat "$BED_DIR/move.out")" "could not all follow"
expect_eq "c1 is on $here, stopped" "$(state "$here" c1)" STOPPED
check "start $there's ferryd again" "$TESTBED" start "$BED_DIR" "$there"
for i in $(seq 100); do [ "$(names "$there")" = "" ] && break; sleep 0.1; done
expect_eq "$there removed its copy, which lacked memory" "$(names "$there")" ""
check_fails "... and left no process of it" sh -c "ps -eo args | grep -q '^memcheck $MEM_MIB'"
check "c1 starts afresh on $here" fy "$here" start c1
expect_eq "c1 runs on $here" "$(state "$here" c1)" RUNNING
# The stateful snapshot, taken on h1 and moved six times since, restores.
check "restore c1's stateful snapshot s1 on $here" fy "$here" restore c1 s1
expect_eq "... the counter process of the snapshot runs again" "$(counter_pid "$here")" "$pid"
mem_before=$(memcheck "$here")
expect_memory "... and memcheck with its memory" "$mem_before" "$(memcheck_after "$here" "$mem_before")"

check "delete c1" fy "$here" delete -f c1
