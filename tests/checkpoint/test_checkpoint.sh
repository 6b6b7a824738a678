#!/usr/bin/env bash
# Checkpoint/restore of a real container with real CRIU, driven by rtctl: a
# user-namespaced busybox container on a bridge of the test's own, whose
# workloads carry state (a counter in memory and on disk, a TCP echo server
# with a connection from the host, a file deleted while open, a pipe with
# data in flight), is stopped statefully and restored, snapshotted, cycled
# twenty times, and made to fail a dump and a restore without losing
# anything. Prints dump and restore times as TAP comments.
source "$(dirname "$0")/../lib.sh"
TEST_DIR_PREFIX=ferry-ckpt
source "$(dirname "$0")/../runtime/container.sh"

CYCLES=${CHECKPOINT_CYCLES:-20}

test_cleanup() {
	[ -z "${TCP_PID:-}" ] || kill "$TCP_PID" 2>/dev/null
	[ -z "${EXEC_PID:-}" ] || kill "$EXEC_PID" 2>/dev/null
}

make_bridge fbrck
write_spec c1 ", \"nics\": [{\"name\": \"eth0\", \"bridge\": \"$BRIDGE\", \"hwaddr\": \"00:16:3e:c4:00:01\",
	\"ipv4_cidr\": \"$SUBNET.2/24\", \"ipv4_gateway\": \"$SUBNET.1\"}]"
C1=$TEST_DIR/c1
ROOTFS=$C1/rootfs
CG=$CGROUP_PREFIX/c1

# The workloads, each started by init and each keeping state that only
# survives if CRIU restored it:
# - a counter held in a shell variable, written to disk ten times a second,
#   in place and always ten bytes long: the rootfs isn't snapshotted with the
#   dump here (ferryd's snapshots are), and CRIU refuses to restore a file
#   held open whose size changed since the dump (the shell holds it open
#   while it writes);
# - a TCP echo server (a new cat per connection);
# - a file deleted while its reader holds it open;
# - a pipe whose writer has written and whose reader waits for /tmp/go.
cat >"$ROOTFS/etc/inittab" <<'EOF'
::sysinit:/bin/echo ferry-console-ok
::once:/bin/sh -c 'echo $$ >/tmp/counter.pid; i=0; while :; do i=$((i+1)); printf "%09d\\n" $i 1<>/tmp/counter; sleep 0.1; done'
::once:/usr/bin/nc -ll -p 7000 -e /bin/cat
::once:/bin/sh -c 'echo deleted-but-open >/tmp/deleted; exec 3</tmp/deleted; rm /tmp/deleted; echo $$ >/tmp/deleted.pid; exec sleep 100000'
::once:/bin/sh -c '(echo in-flight; exec sleep 100000) | (while [ ! -e /tmp/go ]; do sleep 0.1; done; read l; echo "$l" >/tmp/pipe.out; exec sleep 100000)'
::respawn:/bin/sh
EOF
chown "$HOSTID:$HOSTID" "$ROOTFS/etc/inittab"

counter() {
	local value i
	for i in 1 2 3 4 5; do
		value=$(cat "$ROOTFS/tmp/counter" 2>/dev/null)
		[ -n "$value" ] && break
		sleep 0.02
	done
	echo $((10#${value:-0}))
}
# Processes inside, by pid and command, without the exec'd ps itself and
# the counter's short-lived sleeps (also one caught exiting: "[sleep]").
inner_ps() { rexec c1 -- ps -o pid,args | grep -v -e 'ps -o' -e 'sleep 0\.1' -e '\[sleep\]' | sort -n; }
# The TCP connection from the host echoes a line back.
tcp_echo() {
	local line
	echo "$1" >&"${TCP[1]}" || return 1
	read -r -t 5 line <&"${TCP[0]}" || return 1
	[ "$line" = "$1" ]
}
# The container's processes (its pid namespace) that are not in its own
# cgroup of hierarchy $1 (one that vanished meanwhile is passed over).
outside_cgroup() {
	local ns p
	ns=$(readlink "/proc/$(state_field c1 init_pid)/ns/pid")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
		grep -q "^[0-9]*:$1:/$CG\$" "$p/cgroup" 2>/dev/null || [ ! -e "$p/cgroup" ] || echo "${p#/proc/}"
	done
}
# The time CRIU's own log took, from its last line's timestamp.
criu_log_ms() { tail -1 "$1" | sed -n 's/^(\([0-9]*\)\.\([0-9]\{3\}\).*/\1\2/p' | sed 's/^0*//'; }
latest_log() { ls -t "$TEST_DIR"/log/c1/*_"$1"_*.log 2>/dev/null | head -1; }
no_cgroup() { [ -z "$(ls -d /sys/fs/cgroup/*/"$CG" 2>/dev/null)" ]; }
no_veth() { [ -z "$(ip -o link show master "$BRIDGE" 2>/dev/null)" ]; }
# checkpoint IMAGES [rtctl options]: a stateful stop (or snapshot), timed.
checkpoint() {
	local images=$1
	shift
	rm -rf "$images"
	mkdir -p "$images"
	DUMP_OUT=$("$RTCTL" checkpoint c1 "$C1" "$images" "$@" 2>&1)
}
restore() { RESTORE_OUT=$("$RTCTL" restore "$C1/spec.json" "$1" 2>&1); }
ms() { printf '%s\n' "$1" | sed -n "s/^$2 \([0-9]*\) ms$/\1/p"; }

# --- the host's capability -------------------------------------------------
check_json=$("$RTCTL" check 2>/dev/null)
expect_match "check reports CRIU's version" "$check_json" '"version": "4\.[0-9]+\.[0-9]+"'
expect_match "check runs CRIU's own check" "$check_json" '"check": "ok"'
expect_match "check reports dirty-memory tracking" "$check_json" '"mem_dirty_track": (true|false)'
expect_match "check reports lazy pages (userfaultfd)" "$check_json" '"lazy_pages": (true|false)'

# --- start -------------------------------------------------------------------
check "start" "$RTCTL" start "$C1/spec.json"
for i in $(seq 50); do [ -s "$ROOTFS/tmp/deleted.pid" ] && [ "$(counter)" -gt 2 ] && break; sleep 0.1; done
coproc TCP { exec socat - "TCP:$SUBNET.2:7000,connect-timeout=5"; }
TCP_PID=$TCP_PID
check "the host's TCP connection echoes" tcp_echo hello-0
ps_before=$(inner_ps)
INIT=$(state_field c1 init_pid)
check "the deleted file is open" test "$(rexec c1 -- cat /proc/"$(cat "$ROOTFS/tmp/deleted.pid")"/fd/3)" = deleted-but-open

# --- stateful stop and restore -------------------------------------------------
# /dev/shm is an empty tmpfs, which CRIU records without tar (ferry's patch
# 0008): its root's mode, owner and times must come back all the same.
rexec c1 -- chmod 1730 /dev/shm
shm_before=$(rexec c1 -- stat -c '%a %u %g %Y' /dev/shm)
expect_match "/dev/shm is mode 1730 before the stop" "$shm_before" '^1730 [0-9]+ [0-9]+ [0-9]+$'
checkpoint "$TEST_DIR/stop1"
rc=$?
expect_eq "stateful stop" "$rc" 0
[ $rc -eq 0 ] || printf '#   %s\n' "$DUMP_OUT"
echo "# dump $(ms "$DUMP_OUT" dump) ms (CRIU's log: $(criu_log_ms "$(latest_log dump)") ms)"
at_stop=$(counter)
expect_eq "the container is stopped" "$(state_field c1 status)" stopped
expect_eq "the exit is recorded as checkpointed" "$(state_field c1 checkpointed)" true
check "init is gone" gone "$INIT"
check "no cgroup left after the stateful stop" no_cgroup
check "no veth left after the stateful stop" no_veth
check "the dump's log is kept under its name" test -s "$(latest_log dump)"
expect_match "the log is named stop_dump_<timestamp>.log" "$(latest_log dump)" '/stop_dump_[0-9]{8}T[0-9]{6}\.[0-9]{3}\.log$'
sleep 0.5
expect_eq "the counter does not move while stopped" "$(counter)" "$at_stop"

restore "$TEST_DIR/stop1"
rc=$?
expect_eq "restore" "$rc" 0
[ $rc -eq 0 ] || printf '#   %s\n' "$RESTORE_OUT"
echo "# restore $(ms "$RESTORE_OUT" restore) ms (CRIU's log: $(criu_log_ms "$(latest_log restore)") ms)"
expect_eq "the container runs again" "$(state_field c1 status)" running
INIT=$(state_field c1 init_pid)
MONITOR=$(state_field c1 monitor_pid)
expect_eq "the restored init is the monitor's child" "$(awk '{print $4}' /proc/"$INIT"/stat)" "$MONITOR"
sleep 0.4
after=$(counter)
check "the counter continues from where it stopped ($at_stop -> $after)" test "$after" -gt "$at_stop" -a "$after" -lt $((at_stop + 30))
expect_eq "the same processes with the same pids" "$(inner_ps)" "$ps_before"
# Each restored task is in the container's cgroups, not CRIU's (where its
# limits hold): children born there, init moved by CRIU.
for h in memory pids freezer ""; do
	expect_eq "every process is in the container's ${h:-unified} cgroup" "$(outside_cgroup "$h")" ""
done
expect_eq "the empty /dev/shm keeps its mode, owner and mtime" "$(rexec c1 -- stat -c '%a %u %g %Y' /dev/shm)" "$shm_before"
check "... recorded without tar" grep -q "tmpfs is empty: recorded its root" "$(latest_log dump)"
check "the host's TCP connection still echoes" tcp_echo hello-1
expect_eq "the deleted file is still open, with its data" \
	"$(rexec c1 -- cat /proc/"$(cat "$ROOTFS/tmp/deleted.pid")"/fd/3)" deleted-but-open
expect_match "... and still deleted" "$(rexec c1 -- readlink /proc/"$(cat "$ROOTFS/tmp/deleted.pid")"/fd/3)" "deleted"
rexec c1 -- touch /tmp/go
for i in $(seq 30); do [ -s "$ROOTFS/tmp/pipe.out" ] && break; sleep 0.1; done
expect_eq "the data in flight in the pipe arrives" "$(cat "$ROOTFS/tmp/pipe.out" 2>/dev/null)" in-flight
# The pipe's reader has exec'd its sleep by now.
ps_before=$(inner_ps)
addr=$(rexec c1 -- ip addr show eth0)
expect_match "eth0 has its address back" "$addr" "inet $SUBNET\.2/24"
expect_match "eth0 has its MAC back" "$addr" "00:16:3e:c4:00:01"
host_veth=$(ip -o link show master "$BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1)
expect_match "spec.json records the fresh host end" "$(cat "$C1/spec.json")" "\"host_name\": \"$host_veth\""
check "the container reaches the host through the bridge" rexec c1 -- ping -c1 -W2 "$SUBNET.1"
console_out=$( (sleep 0.3; echo 'echo console-$((40+2))'; sleep 0.5) | "$RTCTL" console "$C1" 2)
expect_match "the console works after restore" "$console_out" "console-42"
expect_match "/dev/console is still the devpts pty" "$(rexec c1 -- cat /proc/self/mountinfo)" " /[0-9]+ /dev/console .* devpts "
check_fails "the read-only mount is still read-only" rexec c1 -- touch /mnt/share/new
check "the images stay after the restore (the caller removes them)" test -s "$TEST_DIR/stop1/inventory.img"
# Only the kernel's default routing rules: CRIU restores none (ferry's patch
# 0009). A rule of the container's own makes the next images more than the
# defaults, and the snapshot below must bring it back.
check "the restore had only the default routing rules to restore" \
	grep -q "Only the default rules: nothing to restore" "$(latest_log restore)"
check "add a routing rule inside" rexec c1 -- ip rule add from 10.99.0.0/16 lookup 100 priority 1000
# ... and an address of its own (CRIU saves and restores addresses itself:
# patch 0011).
check "add a second address inside" rexec c1 -- ip addr add 10.98.0.7/16 dev eth0
# ... and routes of its own, IPv4 and IPv6 (saved and restored by CRIU
# itself too: patch 0013).
check "add routes inside: through a gateway, on the link with a metric, over IPv6" rexec c1 -- sh -c \
	"ip route add 192.0.2.0/24 via $SUBNET.1 && ip route add 198.51.100.0/24 dev eth0 metric 50 &&
	 ip -6 addr add fd00::5/64 dev eth0 && ip -6 route add fd01::/64 via fd00::1"

# --- stateful snapshot ---------------------------------------------------------
# /dev/shm with a tree in it, which CRIU writes and reads itself (ferry's
# patch 0032), not through tar: everything tar kept must come back.
rexec c1 -- sh -c 'cd /dev/shm && mkdir -p d/e && echo hello >d/file &&
	dd if=/dev/urandom of=d/big bs=1k count=300 2>/dev/null && truncate -s 8M sparse &&
	echo middle | dd of=sparse bs=1 seek=4194304 conv=notrunc 2>/dev/null && ln -s d/file link &&
	ln d/file d/e/hard && mkfifo fifo && echo x >suid && chown 1234:5678 suid && chmod 4755 suid &&
	chmod 751 d && chmod 1777 d/e && touch -d "2001-02-03 04:05:06" d/e d/file link'
shm_tree() {
	rexec c1 -- sh -c 'cd /dev/shm && find . | sort | while read -r f; do
		stat -c "%n %F %a %u %g %Y %h %s %b" "$f"; done; md5sum d/file d/big sparse; readlink link'
}
tree_before=$(shm_tree)
expect_match "/dev/shm holds a tree before the snapshot" "$tree_before" 'd/e/hard regular file 644 0 0 981173106 2 6 '
INIT=$(state_field c1 init_pid)
checkpoint "$TEST_DIR/snap1" --leave-running
rc=$?
expect_eq "stateful snapshot" "$rc" 0
[ $rc -eq 0 ] || printf '#   %s\n' "$DUMP_OUT"
echo "# snapshot dump $(ms "$DUMP_OUT" dump) ms"
expect_match "the snapshot's log is named snapshot_dump_*" "$(latest_log dump)" '/snapshot_dump_'
at_snapshot=$(counter)
sleep 0.4
check "the counter keeps running after the snapshot" test "$(counter)" -gt "$at_snapshot"
expect_eq "init is the same process" "$(state_field c1 init_pid)" "$INIT"
expect_eq "the container is not left frozen" "$(state_field c1 status)" running
check "TCP still echoes after the snapshot" tcp_echo hello-2
sleep 1
check "stop the container" "$RTCTL" stop c1 "$C1" 0 --force
kill "$TCP_PID" 2>/dev/null
wait "$TCP_PID" 2>/dev/null
# With CRIU's debug lines: one of them says who restored the routes.
FERRY_CRIU_LOG_LEVEL=4 restore "$TEST_DIR/snap1"
rc=$?
expect_eq "restore the snapshot" "$rc" 0
[ $rc -eq 0 ] || { printf '#   %s\n' "$RESTORE_OUT"; tail -n 30 "$(latest_log restore)" | sed 's/^/#   /'; }
sleep 0.3
from_snapshot=$(counter)
check "the counter continues from the snapshot ($at_snapshot -> $from_snapshot)" \
	test "$from_snapshot" -gt "$at_snapshot" -a "$from_snapshot" -lt $((at_snapshot + 10))
coproc TCP { exec socat - "TCP:$SUBNET.2:7000,connect-timeout=5"; }
TCP_PID=$TCP_PID
check "a new TCP connection echoes" tcp_echo hello-3
tree_after=$(shm_tree)
expect_eq "/dev/shm's tree is back: types, modes, owners, times, links, holes, data" "$tree_after" "$tree_before"
[ "$tree_after" = "$tree_before" ] || diff <(echo "$tree_before") <(echo "$tree_after") | sed 's/^/#   /'
check "... dumped by CRIU itself, not tar" grep -q "tmpfs ./dev/shm: dumped its tree" "$(latest_log dump)"
check "... and restored so" grep -q "restored its tree" "$(latest_log restore)"
expect_match "the container's own routing rule is back" "$(rexec c1 -- ip rule show)" \
	'1000:[[:space:]]+from 10\.99\.0\.0/16 lookup 100'
check_fails "... restored by ip rule restore" grep -q "Only the default rules" "$(latest_log restore)"
expect_match "the container's second address is back" "$(rexec c1 -- ip addr show eth0)" 'inet 10\.98\.0\.7/16'
expect_match "... beside its first" "$(rexec c1 -- ip addr show eth0)" "inet $SUBNET\.2/24"
routes=$(rexec c1 -- ip route show)
expect_match "the container's route through a gateway is back" "$routes" "192\.0\.2\.0/24 via $SUBNET\.1 dev eth0"
expect_match "... its route on the link, with its metric" "$routes" '198\.51\.100\.0/24 dev eth0 .*metric 50'
expect_match "... its default route" "$routes" "default via $SUBNET\.1 dev eth0"
expect_match "... and its IPv6 route" "$(rexec c1 -- ip -6 route show)" 'fd01::/64 via fd00::1 dev eth0'
check "... restored by CRIU, not ip" grep -q "Restoring the routes (as ip route restore)" "$(latest_log restore)"
# Without nc's per-connection cats: the snapshot brought back the server end
# of a connection whose host end is gone, and its cat ends whenever that
# connection finds out (the live connection is checked by its echo below).
ps_before=$(inner_ps | grep -v ' /bin/cat$')

# --- freezer first or CRIU's seize: how long a snapshot takes ---------------------
fz=() sz=()
for i in 1 2 3 4 5; do
	checkpoint "$TEST_DIR/snapf" --leave-running && fz+=("$(ms "$DUMP_OUT" dump)")
	checkpoint "$TEST_DIR/snaps" --leave-running --seize && sz+=("$(ms "$DUMP_OUT" dump)")
done
echo "# snapshot dump, median of 5: freezer cgroup first $(printf '%s\n' "${fz[@]}" | median) ms," \
	"CRIU seizing task by task $(printf '%s\n' "${sz[@]}" | median) ms"
expect_eq "snapshots with and without the freezer all succeed" "${#fz[@]} ${#sz[@]}" "5 5"

# --- twenty stop/restore cycles --------------------------------------------------
dumps=() restores=() criu_dumps=() criu_restores=() failed=0
for cycle in $(seq "$CYCLES"); do
	before=$(counter)
	if ! checkpoint "$TEST_DIR/cycle"; then
		fail "cycle $cycle: stateful stop" "$DUMP_OUT"
		failed=1
		break
	fi
	dumps+=("$(ms "$DUMP_OUT" dump)")
	criu_dumps+=("$(criu_log_ms "$(latest_log dump)")")
	if ! restore "$TEST_DIR/cycle"; then
		fail "cycle $cycle: restore" "$RESTORE_OUT"
		failed=1
		break
	fi
	restores+=("$(ms "$RESTORE_OUT" restore)")
	criu_restores+=("$(criu_log_ms "$(latest_log restore)")")
	if ! tcp_echo "cycle-$cycle"; then
		fail "cycle $cycle: TCP echoes"
		failed=1
		break
	fi
	sleep 0.15
	if [ "$(counter)" -lt "$before" ]; then
		fail "cycle $cycle: the counter went back ($before -> $(counter))"
		failed=1
		break
	fi
done
[ "$failed" -eq 1 ] || pass "$CYCLES stateful stop/restore cycles, TCP and counter intact after each"
echo "# $CYCLES cycles, median: dump ${dumps[*]:+$(printf '%s\n' "${dumps[@]}" | median)} ms" \
	"(CRIU's log: $(printf '%s\n' "${criu_dumps[@]}" | median) ms)," \
	"restore $(printf '%s\n' "${restores[@]}" | median) ms" \
	"(CRIU's log: $(printf '%s\n' "${criu_restores[@]}" | median) ms)"
echo "# dump ms: ${dumps[*]}"
echo "# restore ms: ${restores[*]}"
expect_eq "the same processes after $CYCLES cycles" "$(inner_ps | grep -v ' /bin/cat$')" "$ps_before"

# --- a dump that fails leaves the container running ------------------------------
INIT=$(state_field c1 init_pid)
MONITOR=$(state_field c1 monitor_pid)
# A process on a pty of the host's (whose master a helper of the test
# holds), left behind by an exec and so adopted by init: CRIU can't dump a
# pty whose master is outside the container. (A process still inside its
# exec is no descendant of init, and CRIU doesn't see it at all.)
python3 -c '
import os, pty, subprocess, sys, time
master, slave = pty.openpty()
subprocess.run(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave)
os.close(slave)
time.sleep(1000)
' "$RTCTL" exec c1 "$C1" -- sh -c 'sleep 1000 & echo $! >/tmp/host-pty.pid' &
EXEC_PID=$!
for i in $(seq 50); do [ -s "$ROOTFS/tmp/host-pty.pid" ] && break; sleep 0.05; done
before=$(counter)
checkpoint "$TEST_DIR/fail-dump"
rc=$?
check_fails "a dump with a host pty inside fails" test "$rc" -eq 0
expect_match "the error carries CRIU's own line" "$DUMP_OUT" "CRIU dump failed: Error \(criu/[a-z_-]+\.c:[0-9]+\)"
expect_match "the error names the log" "$DUMP_OUT" "\(log: $TEST_DIR/log/c1/stop_dump_[0-9T.]+\.log\)"
echo "# the failed dump said: $DUMP_OUT"
expect_eq "the container is still running" "$(state_field c1 status)" running
expect_eq "with the same init" "$(state_field c1 init_pid)" "$INIT"
expect_eq "and the same monitor" "$(state_field c1 monitor_pid)" "$MONITOR"
sleep 0.3
check "the counter keeps counting after the failed dump" test "$(counter)" -gt "$before"
check "TCP still echoes after the failed dump" tcp_echo hello-4
check_fails "no checkpointed exit recorded" test "$(state_field c1 checkpointed)" = true
# Had the dump worked after all, what follows needs the container back.
[ "$rc" -ne 0 ] || restore "$TEST_DIR/fail-dump"
rexec c1 -- sh -c 'kill $(cat /tmp/host-pty.pid)'
kill "$EXEC_PID" 2>/dev/null
wait "$EXEC_PID" 2>/dev/null
EXEC_PID=

# --- a restore that fails leaves nothing behind -----------------------------------
checkpoint "$TEST_DIR/good"
expect_eq "stateful stop once the host fd is gone" "$?" 0
cp -a "$TEST_DIR/good" "$TEST_DIR/corrupt"
core=$(ls "$TEST_DIR"/corrupt/core-*.img | head -1)
# Past the image's magic: garbage where the task's protobuf entry starts.
printf 'garbage-garbage-garbage' | dd of="$core" bs=1 seek=12 conv=notrunc status=none
sum_before=$(cd "$TEST_DIR/corrupt" && find . -type f -exec md5sum {} + | sort)
restore "$TEST_DIR/corrupt"
rc=$?
check_fails "a restore from a corrupted image fails" test "$rc" -eq 0
expect_match "the error carries CRIU's own line" "$RESTORE_OUT" "CRIU restore failed: Error \(criu/[a-z_-]+\.c:[0-9]+\)"
expect_match "the error names the restore's log" "$RESTORE_OUT" "\(log: $TEST_DIR/log/c1/stop_restore_[0-9T.]+\.log\)"
expect_eq "the container is stopped" "$(state_field c1 status)" stopped
check "no process left in the container's cgroups" no_cgroup
check "no veth left" no_veth
check_fails "no monitor.pid left" test -e "$C1/monitor.pid"
check_fails "no restore temporaries left on the host" sh -c "ip -o link | grep -q ' fr[0-9]*_[0-9]*[:@]'"
expect_eq "the images are untouched" "$(cd "$TEST_DIR/corrupt" && find . -type f -exec md5sum {} + | sort)" "$sum_before"
restore "$TEST_DIR/good"
expect_eq "the good images still restore" "$?" 0
check "TCP echoes after the failed and the good restore" tcp_echo hello-5

# --- init dies with its monitor, restored too -------------------------------------
INIT=$(state_field c1 init_pid)
MONITOR=$(state_field c1 monitor_pid)
[ "${MONITOR:-0}" -gt 0 ] && kill -KILL "$MONITOR"
for i in $(seq 30); do gone "$INIT" && break; sleep 0.1; done
check "the restored init dies with its monitor" gone "$INIT"
check "stop cleans up after the killed monitor" "$RTCTL" stop c1 "$C1" 10
check "no cgroup left at the end" no_cgroup
