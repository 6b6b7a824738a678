#!/usr/bin/env bash
# Live moves between two hosts of the test bed, checked the way a user
# would: a busybox container with a counter held in a shell variable and a
# TCP echo server, with a connection to it from a third place on the LAN,
# moves while running; on the target the counter process is the same one
# (same pid: CRIU keeps it) and went on counting, the connection still echoes, the address, MAC and
# snapshots came along, a process its user stopped (kill -STOP) is still
# stopped, and the source has no copy left. Then ten moves back
# and forth, each checked the same way; a target that refuses (a profile it
# lacks, a host directory a disk device binds) leaves the container running
# where it was, untouched; and a target
# whose ferryd is killed while the state streams in leaves exactly one
# running copy: the source's, restored, with its connection still there;
# so does a cut LAN link, a source whose ferryd is killed mid-move
# (restored at its start), and a dump that CRIU can't do.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }

MOVES=${LIVE_MOVES:-10}

trap '[ -z "${HOLDER_PID:-}" ] || kill "$HOLDER_PID" 2>/dev/null; [ -z "${UDP_PROBE_PID:-}" ] || kill "$UDP_PROBE_PID" 2>/dev/null; tcp_cleanup; bed_down' EXIT

fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
# Started from exec sessions that end at once: the processes live on below init.
check "start a counter in c1" start_counter h1
check "start a TCP echo server in c1" fy h1 exec c1 -- sh -c 'nc -ll -p 7000 -e /bin/cat </dev/null >/dev/null 2>&1 &'
# A process stopped by its user (SIGSTOP, as a shell's ^Z): a move must not
# continue it (the target restores every task stopped, then continues only
# those that ran when dumped).
stopped_pid=$(fy h1 exec c1 -- sh -c 'sleep 100000 </dev/null >/dev/null 2>&1 & echo $!')
check "stop one of c1's processes (kill -STOP $stopped_pid)" fy h1 exec c1 -- kill -STOP "$stopped_pid"
proc_state() { fy "$1" exec c1 -- sh -c "cut -d' ' -f3 /proc/$stopped_pid/stat"; }
# A file in the rootfs that grows all through the moves (a line every
# 20 ms, by a process that moves too): the rootfs's passes before and
# during the freeze must carry every line, none twice. The same process
# makes a directory /root/churn/N each time and removes N-2: what was
# removed after the first pass must be gone on the target too.
check "a file whose name is no UTF-8 in /root/churn" fy h1 exec c1 -- sh -c 'mkdir -p /root/churn && touch "$(printf "/root/churn/\377-not-utf8")"'
check "start appending to /root/seq in c1" fy h1 exec c1 -- sh -c \
	'sh -c '\''i=0; while :; do i=$((i+1)); echo $i >>/root/seq; mkdir -p /root/churn/$i; echo $i >/root/churn/$i/f; rm -rf /root/churn/$((i-2)); usleep 20000; done'\'' </dev/null >/dev/null 2>&1 &'
# "LINES BAD": how many lines, and how many are not their own number.
seq_state() { fy "$1" exec c1 -- awk '$1 != NR { bad++ } END { print NR, bad + 0 }' /root/seq; }
# "DIRS STALE": how many of /root/churn's directories, and how many of them
# are older than the newest three (removed, yet there).
churn_state() { fy "$1" exec c1 -- sh -c 'ls /root/churn | grep -E "^[0-9]+$" | sort -n | awk "{ n[NR] = \$1 } END { for (i = 1; i <= NR; i++) if (n[i] < n[NR] - 2) s++; print NR, s + 0 }"'; }
# A file in /root/churn whose name is no UTF-8 (byte 0xff): the directory
# changes all the time, so its names go in the frozen pass's listing.
weird_file_there() { fy "$1" exec c1 -- sh -c 'test -e "$(printf "/root/churn/\377-not-utf8")"'; }
# A database's file: 2048 blocks of 4 KiB (a line each, its number),
# block i % 2048 rewritten in place with i every 5 ms. The frozen pass
# sends it as its changed blocks only (ferryd says so); on the target the
# blocks must still be the 2048 newest writes, each where it was written.
db_writer=$(fy h1 exec c1 -- sh -c \
	'i=0; while [ $i -lt 2048 ]; do printf "%-4095s\n" $i; i=$((i+1)); done >/root/db &&
	sh -c '\''i=2048; while :; do printf "%-4095s\n" $i | dd of=/root/db bs=4096 seek=$((i % 2048)) conv=notrunc 2>/dev/null; i=$((i+1)); usleep 5000; done'\'' </dev/null >/dev/null 2>&1 & echo $!')
expect_match "write into a database file in c1, block by block (pid $db_writer)" "$db_writer" '^[0-9]+$'
# "BLOCKS NEWEST BAD": how many blocks, the newest write, and how many
# blocks hold no write of the last 2048 or one made elsewhere; read with
# the writer stopped (a write under way may end meanwhile: it is the newest).
db_state() {
	fy "$1" exec c1 -- sh -c "kill -STOP $db_writer; awk '{ v[NR - 1] = \$1 + 0; if (\$1 + 0 > m) m = \$1 + 0 } END { for (b = 0; b < NR; b++) if (v[b] % 2048 != b || v[b] <= m - 2048) bad++; print NR, m, bad + 0 }' /root/db; kill -CONT $db_writer"
}
check "snapshot c1 s1" fy h1 snapshot c1 s1
ip_c1=$(ipv4 h1 c1)
mac_c1=$(hwaddr h1 c1)
sleep 0.5
coproc TCP { exec "$TESTBED" lan-exec "$BED_DIR" socat - "TCP:$ip_c1:7000,connect-timeout=5"; }
TCP_PID=$TCP_PID
expect_echo "a TCP connection from the LAN echoes" before-the-move
pid=$(counter_pid h1)
before=$(counter h1)
# Each container's network namespace has a TCP hash table of its own
# (ferryd sets net.ipv4.tcp_child_ehash_entries; a positive size is a
# private table, a negative one the host's): CRIU's socket dumps walk it.
tcp_hash() { fy "$1" exec c1 -- cat /proc/sys/net/ipv4/tcp_ehash_entries; }
expect_eq "c1 has a TCP hash table of its own on h1" "$(tcp_hash h1)" 16384
# A UDP echo server in c1, asked every millisecond from the LAN all through
# the move: what the LAN sends c1 while it is stopped is held on h1 and
# given to it on h2, so every datagram gets its answer (without the hold,
# one a millisecond of the stop is lost).
check "put udp_echo in c1" fy h1 file push -p --mode 0755 --uid 0 --gid 0 "$BUILD/bench/udp_echo" c1/usr/local/bin/udp_echo
check "start it" fy h1 exec c1 -- sh -c 'udp_echo 7777 </dev/null >/dev/null 2>&1 &'
sleep 0.3
# The probe, from the LAN: a request to c1's udp_echo every millisecond.
udp_probe_start() {
	"$TESTBED" lan-exec "$BED_DIR" "$BUILD/bench/udp_probe" "$ip_c1" 7777 600000 1000 >"$BED_DIR/udp_probe.out" 2>&1 &
	UDP_PROBE_PID=$!
	sleep 0.5
}
# udp_probe_check DESCRIPTION HOST: half a second on, the probe stops; at
# most 5 datagrams went unanswered (a few may be lost: in flight where the
# LAN's path to c1 changes, or in udp_echo's socket at the freeze, as CRIU
# keeps no UDP queue; without the hold, one a millisecond of the stop, 100
# or more). When any was lost: when they were sent, and HOST's log.
udp_probe_check() {
	local probe lost
	sleep 0.5
	kill -TERM "$UDP_PROBE_PID"
	wait "$UDP_PROBE_PID"
	UDP_PROBE_PID=
	probe=$(grep '^sent=' "$BED_DIR/udp_probe.out")
	lost=$(printf '%s\n' "$probe" | tr ' ' '\n' | sed -n 's/^lost=//p')
	if [ -n "$lost" ] && [ "$lost" -le 5 ]; then
		pass "$1 (lost: $lost)"
		[ "$lost" -eq 0 ] || echo "# sent at: $(printf '%s\n' "$probe" | tr ' ' '\n' | sed -n 's/^lost_at=//p'); $2's log:" \
			"$(grep -h 'dump goes\|came for it\|moved live\|gave' "$BED_DIR/$2/logs/ferryd.log" | cut -c12-24,60-100 | tr '\n' ' ')"
	else
		fail "$1" "probe: ${probe:-$(cat "$BED_DIR/udp_probe.out")}"
	fi
}
udp_probe_start

# --- one live move, checked in detail
check "move c1 h2: (live)" fy h1 move c1 h2:
udp_probe_check "the UDP datagrams the LAN sent c1 through the move were answered" h1
expect_match "... those sent while it was stopped held by h1" "$(cat "$BED_DIR/h1/logs/ferryd.log")" \
	'instance c1: [1-9][0-9]* frames .* came for it while it was stopped: sent to the target'
expect_match "... and given to it by h2" "$(cat "$BED_DIR/h2/logs/ferryd.log")" \
	'instance c1: gave it [1-9][0-9]* frames the source held while it moved'
expect_eq "c1 is gone from h1" "$(names h1)" ""
expect_eq "c1 runs on h2" "$(state h2 c1)" RUNNING
expect_eq "... the same counter process" "$(counter_pid h2)" "$pid"
expect_counted "... which went on counting" "$before" "$(counter h2)"
# h2's restore ran on one CPU, and its tasks with it until they resumed.
expect_eq "the stopped process is still stopped on h2" "$(proc_state h2)" T
expect_eq "... and its processes may run on every CPU again" \
	"$(fy h2 exec c1 -- sh -c 'grep -h Cpus_allowed_list /proc/[0-9]*/status | sort -u')" \
	"$(grep Cpus_allowed_list /proc/self/status)"
expect_echo "the TCP connection still echoes" after-the-move
expect_eq "c1 kept its address" "$(ipv4 h2 c1)" "$ip_c1"
expect_eq "... and its MAC" "$(hwaddr h2 c1)" "$mac_c1"
expect_eq "... and a TCP hash table of its own, made by h2's restore" "$(tcp_hash h2)" 16384
expect_eq "... and its snapshot" "$(fy h2 list c1 --format csv -c S)" 1
sleep 0.2
seq_after=$(seq_state h2)
expect_match "/root/seq went on growing, every line there once and in order ($seq_after)" "$seq_after" '^[0-9]+ 0$'
churn=$(churn_state h2)
expect_match "... and /root/churn holds no directory removed on h1 ($churn)" "$churn" '^[1-4] 0$'
db_after=$(db_state h2)
expect_match "/root/db holds the newest write of each block, in its place ($db_after)" "$db_after" '^2048 [0-9]+ 0$'
expect_match "... whose changes went as their blocks, not the whole file" \
	"$(grep 'went as their changed blocks' "$BED_DIR/h1/logs/ferryd.log" | tail -1)" 'of 8388608 bytes'
check "... and still the file whose name is no UTF-8" weird_file_there h2
expect_match "h2 kept CRIU's restore log" "$(ls "$BED_DIR/h2/logs/c1")" "migration_restore_.*\.log"
expect_match "... and the source's dump log" "$(ls "$BED_DIR/h2/logs/c1")" "migration_dump_.*\.log"
expect_match "... whose restore took the swrk started ahead" \
	"$(grep 'CRIU restore of' "$BED_DIR/h2/logs/c1/monitor.log" | tail -1)" 'its swrk started ahead'
check "c1 reaches h1 over the LAN from h2" fy h2 exec c1 -- ping -c1 -W2 "$(bed_addr h1)"
check_fails "h1 has no state of c1 left" test -e "$BED_DIR/h1/containers/c1"

# --- back and forth
from=h2 to=h1
ok=0
for i in $(seq "$MOVES"); do
	before=$(counter "$from")
	if ! out=$(fy "$from" move c1 "$to:" 2>&1); then
		fail "move $i ($from -> $to)" "$out"
		break
	fi
	after=$(counter "$to")
	if [ "$(counter_pid "$to")" != "$pid" ] || [ "$after" -le "$before" ] || ! tcp_echo "move-$i"; then
		fail "move $i ($from -> $to)" "counter $before -> $after, pid $(counter_pid "$to") (was $pid)"
		break
	fi
	ok=$((ok + 1))
	tmp=$from from=$to to=$tmp
done
expect_eq "$MOVES live moves back and forth, each keeping the process, its count and the connection" "$ok" "$MOVES"
# Wherever c1 ended up.
if [ "$(names h1)" = c1 ]; then here=h1 there=h2; else here=h2 there=h1; fi
seq_end=$(seq_state "$here")
expect_match "... and /root/seq, after them all, still every line once and in order ($seq_end)" "$seq_end" '^[0-9]+ 0$'
churn=$(churn_state "$here")
expect_match "... and /root/churn no directory removed before a move ($churn)" "$churn" '^[1-4] 0$'
check "... and the file whose name is no UTF-8" weird_file_there "$here"
db_end=$(db_state "$here")
expect_match "... and /root/db, each block the newest write ($db_end)" "$db_end" '^2048 [0-9]+ 0$'
db_after_newest=${db_after#* } db_end_newest=${db_end#* }
check "... which went on writing" test "${db_end_newest% *}" -gt "${db_after_newest% *}"
check "... longer than after the first move" test "${seq_end% *}" -gt "${seq_after% *}"
expect_eq "the process stopped before the first move is stopped after them all" "$(proc_state "$here")" T
check "... and kill -CONT continues it" fy "$here" exec c1 -- kill -CONT "$stopped_pid"
expect_match "... the same process, running (or asleep) now" "$(proc_state "$here")" '^[RS]$'

# --- a target that refuses before anything is frozen
check "make a profile only $here has" fy "$here" profile create only-here
check "add it to c1" fy "$here" profile add c1 only-here
before=$(counter "$here")
check_fails "move c1 $there: (it lacks the profile) fails" fy "$here" move c1 "$there:"
expect_match "... saying why" "$(fy "$here" move c1 "$there:" 2>&1)" "only-here"
expect_eq "c1 still runs on $here" "$(state "$here" c1)" RUNNING
expect_eq "... the same process" "$(counter_pid "$here")" "$pid"
expect_eq "$there has no c1" "$(names "$there")" ""
expect_echo "the connection still echoes" after-the-refusal
check "remove the profile again" fy "$here" profile remove c1 only-here
# ... or one that lacks a host directory the container binds (a disk device)
share=$BED_DIR/share
mkdir -m 755 "$share"
for h in h1 h2; do
	fy "$h" profile create withshare >/dev/null &&
		fy "$h" profile device add withshare share disk source="$share" path=/mnt/share >/dev/null
	expect_eq "a profile with a disk from $share on $h" "$?" 0
done
check "launch c2 on h1 with it" fy h1 launch busybox c2 -p default -p withshare
check "... and the directory goes from the host (c2's mount keeps it)" rm -rf "$share"
out=$(fy h1 move c2 h2: 2>&1)
expect_eq "move c2 h2: fails" "$?" 1
expect_match "... before anything stopped, saying why" "$out" "Device \"share\": its source $share is not on this host"
expect_eq "c2 still runs on h1" "$(state h1 c2)" RUNNING
expect_eq "h2 has no c2" "$(names h2 | grep -c c2)" 0
check "delete c2" fy h1 delete --force c2

# Start moving c1 to $there in the background (move_pid); return once its
# state directory appears there: c1 is checkpointed on the source by then.
move_until_state() {
	fy "$here" move c1 "$there:" >"$BED_DIR/move.out" 2>&1 &
	move_pid=$!
	for i in $(seq 2400); do
		[ -e "$BED_DIR/$there/containers/c1/state" ] && return 0
		sleep 0.005
	done
	return 1
}
# After the move that move_until_state started failed (WHY): c1 runs on
# $here again, the same process, with its connection.
expect_back_here() {
	wait "$move_pid"
	expect_eq "the move fails ($1)" "$?" 1
	expect_match "... saying that c1 runs on $here again" "$(cat "$BED_DIR/move.out")" "runs here again|keeps running"
	expect_eq "c1 runs on $here" "$(state "$here" c1)" RUNNING
	expect_eq "... the same process" "$(counter_pid "$here")" "$pid"
	expect_echo "... and the connection still echoes" "after-$1"
}

# --- the target's ferryd dies while the state streams in
# The target is stopped first (so the source is surely mid-transfer), then killed.
target_pid=$(cat "$BED_DIR/$there.pid")
move_until_state
expect_eq "the state started to arrive" "$?" 0
kill -STOP "$target_pid"
kill -KILL "$target_pid"
expect_back_here target-killed
check "start $there's ferryd again" "$TESTBED" start "$BED_DIR" "$there"
expect_eq "$there has no c1" "$(names "$there")" ""
check_fails "... nor any of its files" test -e "$BED_DIR/$there/containers/c1"

# --- the target's LAN link is cut while the state streams in
move_until_state
expect_eq "the state started to arrive before the cut" "$?" 0
"$TESTBED" lan-exec "$BED_DIR" ip link set "$there" down
expect_back_here link-cut
for i in $(seq 600); do [ "$(names "$there")" = "" ] && break; sleep 0.1; done
expect_eq "$there, cut off, dropped its copy" "$(names "$there")" ""
check "reconnect $there" "$TESTBED" lan-exec "$BED_DIR" ip link set "$there" up

# --- the source's ferryd dies while c1 is checkpointed and on its way
source_pid=$(cat "$BED_DIR/$here.pid")
move_until_state
expect_eq "the state started to arrive again" "$?" 0
kill -STOP "$source_pid"
kill -KILL "$source_pid"
wait "$move_pid"
expect_eq "the move fails" "$?" 1
for i in $(seq 100); do [ "$(names "$there")" = "" ] && break; sleep 0.1; done
expect_eq "$there dropped its partial copy" "$(names "$there")" ""
check "start $here's ferryd again" "$TESTBED" start "$BED_DIR" "$here"
for i in $(seq 100); do [ "$(state "$here" c1)" = RUNNING ] && break; sleep 0.1; done
expect_eq "it restored c1 at start-up" "$(state "$here" c1)" RUNNING
expect_eq "... the same process" "$(counter_pid "$here")" "$pid"
expect_echo "... and the connection still echoes" after-the-source-restart
expect_eq "c1's record has no migration mark left" "$(fy "$here" config get c1 volatile.migration.outgoing)" ""

# --- CRIU can't dump c1: the move fails, and c1 runs on where it was
host_pty_sleeper "$(cat "$BED_DIR/$here/containers/c1/init.pid")"
HOLDER_PID=$!
host_pty_wait "$BED_DIR/$here/containers/c1/rootfs/tmp/hostpty.pid"
# What the LAN sends c1 while it is frozen for the dump that fails goes
# back to it: the probe again, through the failed move.
udp_probe_start
out=$(fy "$here" move c1 "$there:" 2>&1)
expect_eq "a move of c1 with a process CRIU can't dump fails" "$?" 1
udp_probe_check "... and the UDP datagrams the LAN sent c1 meanwhile were answered" "$here"
expect_match "... $here having given c1 back those it held" "$(cat "$BED_DIR/$here/logs/ferryd.log")" \
	'container c1: gave it back [1-9][0-9]* frames held while it was stopped'
expect_match "... with CRIU's own line" "$out" 'CRIU dump failed: Error \(criu/'
expect_match "... saying that c1 runs on $here again" "$out" "runs here again|keeps running"
expect_eq "c1 still runs on $here" "$(state "$here" c1)" RUNNING
expect_eq "$there has no c1" "$(names "$there")" ""
expect_eq "... the same process" "$(counter_pid "$here")" "$pid"
expect_echo "... and the connection still echoes" after-a-failed-dump
sleeper=$(cat "$BED_DIR/$here/containers/c1/rootfs/tmp/hostpty.pid")
fy "$here" exec c1 -- kill "$sleeper" >/dev/null 2>&1
kill "$HOLDER_PID" 2>/dev/null
wait "$HOLDER_PID" 2>/dev/null
HOLDER_PID=
# Until init has reaped it, the sleep is a zombie whose session is outside.
for i in $(seq 50); do fy "$here" exec c1 -- kill -0 "$sleeper" 2>/dev/null || break; sleep 0.1; done

check "and c1 moves there now" fy "$here" move c1 "$there:"
expect_eq "... the same process" "$(counter_pid "$there")" "$pid"
expect_echo "... with its connection" at-the-end
check "delete c1" fy "$there" delete -f c1
