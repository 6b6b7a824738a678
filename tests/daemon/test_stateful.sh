#!/usr/bin/env bash
# Stateful stop and start through ferryd: a busybox container whose init
# runs a counter (a shell variable, written to disk five times a second)
# and a TCP echo server with a connection from the host is stopped with
# its state saved and started again: the counter continues in the same
# process, the connection still echoes. Twenty cycles in a row. Then the
# failures that must lose nothing: a dump CRIU can't do leaves it running
# and says why (CRIU's line, the log's path); a corrupted image fails the
# start and keeps the state; --stateless boots afresh. And what the user
# sees: "stateful" in the API, "Stateful: true" in ferry info, the CRIU
# logs, GET /1.0's environment.criu. Prints the stateful stop and start
# times (median of 10, through the API) as TAP comments.
. "$(dirname "$0")/../lib.sh"

CYCLES=${STATEFUL_CYCLES:-20}

ferry_setup
ferry_busybox_image
SOCK=$FERRY_DIR/unix.socket
api() { curl -s --unix-socket "$SOCK" -X "$1" -H 'Content-Type: application/json' "http://ferry$2" ${3:+--data-binary "$3"}; }
# An async request, waited for: the finished operation (status, err).
api_wait() {
	local resp op
	resp=$(api "$@")
	op=$(jq -r '.operation // empty' <<<"$resp")
	[ -n "$op" ] || { jq -c '{status: "Failure", err: .error}' <<<"$resp"; return; }
	api GET "$op/wait?timeout=120" | jq -c '.metadata | {status, err}'
}
test_cleanup() {
	[ -z "${TCP_PID:-}" ] || kill "$TCP_PID" 2>/dev/null
	[ -z "${HOLDER_PID:-}" ] || kill "$HOLDER_PID" 2>/dev/null
	ferry_teardown
}
trap test_cleanup EXIT

# --- the host's capability ---------------------------------------------------
criu=$(api GET /1.0 | jq -c .metadata.environment.criu)
expect_match "GET /1.0 reports CRIU's version" "$criu" '"version":"4\.[0-9]+\.[0-9]+"'
expect_match "GET /1.0 reports CRIU's check" "$criu" '"check":"ok"'
expect_match "GET /1.0 reports the optional features" "$criu" '"mem_dirty_track":(true|false).*"lazy_pages":(true|false)'
expect_match "ferry info shows CRIU" "$(ferry info)" 'criu:'

# --- a container whose init keeps state ----------------------------------------
check "create c1" ferry init busybox c1
ROOTFS=$FERRY_DIR/containers/c1/rootfs
cat >>"$ROOTFS/etc/inittab" <<'EOF'
::once:/bin/sh -c 'echo $$ >/tmp/counter.pid; i=0; while :; do i=$((i+1)); echo $i >/tmp/counter; sleep 0.2; done'
::once:/usr/bin/nc -ll -p 7000 -e /bin/cat
EOF
check "start c1" ferry start c1
# The counter's file, read again when caught between truncate and write.
counter() {
	local v i
	for i in 1 2 3 4 5; do
		v=$(cat "$ROOTFS/tmp/counter" 2>/dev/null)
		[ -n "$v" ] && break
		sleep 0.02
	done
	echo "${v:-0}"
}
for i in $(seq 50); do [ "$(counter)" -gt 2 ] && break; sleep 0.1; done
ADDR=$(api GET /1.0/instances/c1 | jq -r '.metadata.config["volatile.eth0.ipv4.address"]')
COUNTER_PID=$(cat "$ROOTFS/tmp/counter.pid")
coproc TCP { exec socat - "TCP:$ADDR:7000,connect-timeout=5"; }
TCP_PID=$TCP_PID
tcp_echo() {
	local line
	echo "$1" >&"${TCP[1]}" || return 1
	read -r -t 5 line <&"${TCP[0]}" || return 1
	[ "$line" = "$1" ]
}
check "the host's TCP connection echoes" tcp_echo hello-0
counter_alive() { ferry exec c1 -- kill -0 "$COUNTER_PID"; }
check "the counter runs (pid $COUNTER_PID in the container)" counter_alive
# A process pinned to the last CPU (CRIU saves no affinity; ferry does):
# busybox taskset -p prints "pid N's current affinity mask: HEX".
mask_of() { ferry exec c1 -- taskset -p "$1" | awk '{print $NF}'; }
LAST_CPU=$(($(nproc) - 1))
check "start a process pinned to CPU $LAST_CPU" ferry exec c1 -- sh -c \
	"sh -c 'echo \$\$ >/tmp/pinned.pid; exec taskset -c $LAST_CPU sleep 1000007' </dev/null >/dev/null 2>&1 &"
for i in $(seq 50); do [ -s "$ROOTFS/tmp/pinned.pid" ] && break; sleep 0.1; done
PINNED_PID=$(cat "$ROOTFS/tmp/pinned.pid")
PINNED_MASK=$(printf '%x' $((1 << LAST_CPU)))
ALL_MASK=$(mask_of "$COUNTER_PID")
expect_eq "it runs on CPU $LAST_CPU alone" "$(mask_of "$PINNED_PID")" "$PINNED_MASK"
# A dump runs with the container on one CPU (CRIU's round trips with each
# task stay on it): a snapshot's container goes on with its own CPUs.
check "a stateful snapshot" ferry snapshot c1 cpus --stateful
expect_eq "... leaves the pinned process on CPU $LAST_CPU alone" "$(mask_of "$PINNED_PID")" "$PINNED_MASK"
expect_eq "... and the counter on every CPU ($ALL_MASK)" "$(mask_of "$COUNTER_PID")" "$ALL_MASK"
check "delete the snapshot" ferry delete c1/cpus

# --- stateful stop and start -------------------------------------------------------
check "ferry stop --stateful" ferry stop c1 --stateful
at_stop=$(counter)
expect_eq "c1 is stopped" "$(api GET /1.0/instances/c1 | jq -r .metadata.status)" Stopped
expect_eq "the instance is stateful in the API" "$(api GET /1.0/instances/c1 | jq -r .metadata.stateful)" true
expect_match "ferry info shows the saved state" "$(ferry info c1)" 'Stateful: true'
check "the state is on disk" test -s "$FERRY_DIR/containers/c1/state/inventory.img"
check "the dump's log is kept" ls "$FERRY_DIR"/logs/c1/stop_dump_*.log
expect_match "the logs API lists it" "$(api GET /1.0/instances/c1/logs | jq -r '.metadata[]')" '/stop_dump_[0-9T.]+\.log'
sleep 0.5
expect_eq "the counter stands still while stopped" "$(counter)" "$at_stop"
check "ferry start restores" ferry start c1
sleep 0.5
check "the counter continues (more than $at_stop)" test "$(counter)" -gt "$at_stop"
check "the counter is the same process, pid $COUNTER_PID" counter_alive
check "the counter did not start over" test "$(counter)" -lt $((at_stop + 20))
expect_eq "the pinned process still runs on CPU $LAST_CPU alone" "$(mask_of "$PINNED_PID")" "$PINNED_MASK"
expect_eq "... and the counter on every CPU, as before ($ALL_MASK)" "$(mask_of "$COUNTER_PID")" "$ALL_MASK"
check "TCP still echoes after stop/start" tcp_echo hello-1
expect_eq "no state left after the restore" "$(api GET /1.0/instances/c1 | jq -r .metadata.stateful)" false
check_fails "the state directory is gone" test -e "$FERRY_DIR/containers/c1/state"
check "the restore's log is kept" ls "$FERRY_DIR"/logs/c1/stop_restore_*.log
expect_match "ferry info --show-log shows the latest CRIU log" "$(ferry info c1 --show-log)" '==> stop_restore_'

# --- the container's own firewall ------------------------------------------------------
# A table of its own in its network namespace, whose rule marks the
# connections the kernel tracks there; then a rule that counts the marked
# ones. CRIU dumps the ruleset and the tracked connections only when there
# are any: the table must come back, and the connection's entry with its
# mark (one tracked afresh after the restore would have none).
NETCTL=$BUILD/tests/network/netctl
in_netns() { nsenter -t "$(api GET /1.0/instances/c1/state | jq -r .metadata.pid)" -n "$@"; }
check "a table in the container's netns" in_netns "$NETCTL" nft 'add table inet ferrytest'
check "... with a chain" in_netns "$NETCTL" nft 'add chain inet ferrytest input { type filter hook input priority 0; policy accept; }'
check "... whose rule marks tracked connections" in_netns "$NETCTL" nft 'add rule inet ferrytest input ct mark set 0x2a'
check "TCP echoes through it" tcp_echo hello-ct
check "the marking rule goes" in_netns "$NETCTL" nft 'flush chain inet ferrytest input'
check "a rule counts marked connections" in_netns "$NETCTL" nft 'add rule inet ferrytest input ct mark 0x2a counter'
tracked=$(in_netns cat /proc/sys/net/netfilter/nf_conntrack_count)
check "the container's netns tracks the connection ($tracked)" test "$tracked" -gt 0
check "ferry stop --stateful with a ruleset" ferry stop c1 --stateful
check "ferry start" ferry start c1
check "TCP still echoes" tcp_echo hello-ct2
expect_match "the table is back, and the connection is tracked with its mark" \
	"$(in_netns "$NETCTL" nft 'list table inet ferrytest')" 'ct mark 0x0000002a counter packets [1-9]'
check "the table goes" in_netns "$NETCTL" nft 'delete table inet ferrytest'

# --- twenty cycles -------------------------------------------------------------------
failed=0
for cycle in $(seq "$CYCLES"); do
	before=$(counter)
	if ! out=$(ferry stop c1 --stateful 2>&1); then fail "cycle $cycle: stateful stop" "$out"; failed=1; break; fi
	if ! out=$(ferry start c1 2>&1); then fail "cycle $cycle: start" "$out"; failed=1; break; fi
	if ! tcp_echo "cycle-$cycle"; then fail "cycle $cycle: TCP echoes"; failed=1; break; fi
	sleep 0.3
	if [ "$(counter)" -le "$before" ]; then fail "cycle $cycle: the counter stopped ($before -> $(counter))"; failed=1; break; fi
done
[ "$failed" -eq 1 ] || pass "$CYCLES stateful stop/start cycles: TCP echoes and the counter continues after each"
check "the counter is still pid $COUNTER_PID" counter_alive

# ferryd keeps a spare monitor with CRIU's swrk started (a new one a second
# after one is taken): a restore after a pause finds it.
sleep 1.5
check "a stateful stop and start after a pause" sh -c "$FERRY stop c1 --stateful && $FERRY start c1"
expect_match "... the restore took the spare monitor's swrk" \
	"$(grep 'CRIU restore of' "$FERRY_DIR/logs/c1/monitor.log" | tail -1)" 'its swrk started ahead'
check "... and TCP still echoes" tcp_echo after-spare

# --- timings through the API ---------------------------------------------------------
stops=() starts=()
for i in $(seq 10); do
	t0=$(date +%s%N)
	r1=$(api_wait PUT /1.0/instances/c1/state '{"action":"stop","stateful":true}')
	t1=$(date +%s%N)
	r2=$(api_wait PUT /1.0/instances/c1/state '{"action":"start"}')
	t2=$(date +%s%N)
	[ "$(jq -r .status <<<"$r1$r2" | sort -u)" = Success ] || { fail "timed cycle $i" "$r1" "$r2"; break; }
	stops+=($(((t1 - t0) / 1000000)))
	starts+=($(((t2 - t1) / 1000000)))
done
echo "# stateful stop (API, op waited): median $(printf '%s\n' "${stops[@]}" | median) ms of ${stops[*]}"
echo "# stateful start (API, op waited): median $(printf '%s\n' "${starts[@]}" | median) ms of ${starts[*]}"

# --- an exec session blocks a stateful stop -----------------------------------------
ferry exec c1 -- sleep 3 &
EXEC=$!
sleep 0.7
out=$(ferry stop c1 --stateful 2>&1)
expect_match "a stateful stop during an exec session is refused, naming the session's command" "$out" 'exec session runs in it \(sleep, host pid [0-9]+\)'
expect_eq "and the instance runs on" "$(api GET /1.0/instances/c1 | jq -r .metadata.status)" Running
wait "$EXEC"

# --- a dump that fails leaves it running ---------------------------------------------
# A process that CRIU can't dump (host_pty_sleeper).
INIT=$(api GET /1.0/instances/c1/state | jq -r .metadata.pid)
host_pty_sleeper "$INIT"
HOLDER_PID=$!
host_pty_wait "$ROOTFS/tmp/hostpty.pid"
INIT=$(api GET /1.0/instances/c1/state | jq -r .metadata.pid)
before=$(counter)
out=$(ferry stop c1 --stateful 2>&1)
rc=$?
check_fails "a dump with a host pty inside fails" test "$rc" -eq 0
echo "# the failed stop said: $out"
expect_match "the error carries CRIU's own line" "$out" 'CRIU dump failed: Error \(criu/[a-z_-]+\.c:[0-9]+\)'
expect_match "the error names the log" "$out" "\(log: $FERRY_DIR/logs/c1/stop_dump_[0-9T.]+\.log\)"
expect_match "the error says the instance keeps running" "$out" 'keeps running'
expect_eq "c1 still runs" "$(api GET /1.0/instances/c1 | jq -r .metadata.status)" Running
expect_eq "with the same init" "$(api GET /1.0/instances/c1/state | jq -r .metadata.pid)" "$INIT"
expect_eq "and no saved state" "$(api GET /1.0/instances/c1 | jq -r .metadata.stateful)" false
sleep 0.4
check "the counter keeps counting" test "$(counter)" -gt "$before"
check "TCP still echoes" tcp_echo hello-2
ferry exec c1 -- sh -c 'kill $(cat /tmp/hostpty.pid)' >/dev/null 2>&1
kill "$HOLDER_PID" 2>/dev/null
wait "$HOLDER_PID" 2>/dev/null
HOLDER_PID=

# --- a restore that fails keeps the state ---------------------------------------------
# Until init has reaped it, the sleep is a zombie with its session outside.
stop_when_reaped() {
	local i
	for i in $(seq 10); do
		ferry stop c1 --stateful 2>&1 && return 0
		sleep 0.5
	done
	return 1
}
check "stateful stop once the host pty is gone" stop_when_reaped
STATE=$FERRY_DIR/containers/c1/state
core=$(ls "$STATE"/core-*.img | head -1)
cp "$core" "$TEST_DIR/core.good"
printf 'garbage-garbage-garbage' | dd of="$core" bs=1 seek=12 conv=notrunc status=none
out=$(ferry start c1 2>&1)
rc=$?
check_fails "a start from a corrupted image fails" test "$rc" -eq 0
echo "# the failed start said: $out"
expect_match "the error carries CRIU's line" "$out" 'CRIU restore failed: Error \(criu/'
expect_match "the error names the restore's log" "$out" "\(log: $FERRY_DIR/logs/c1/stop_restore_[0-9T.]+\.log\)"
expect_match "the error says the state is kept" "$out" 'state.*kept'
expect_eq "c1 is stopped" "$(api GET /1.0/instances/c1 | jq -r .metadata.status)" Stopped
expect_eq "and still stateful" "$(api GET /1.0/instances/c1 | jq -r .metadata.stateful)" true
check "the images are still there" test -s "$STATE/inventory.img"
# Put the good image back: the state restores after all.
cp "$TEST_DIR/core.good" "$core"
check "with the image repaired, start restores" ferry start c1
check "the same counter process after the failed and the good restore" counter_alive
check "TCP echoes after the failed and the good restore" tcp_echo hello-3

# --- start --stateless discards the state ---------------------------------------------
check "stateful stop again" ferry stop c1 --stateful
at_stop=$(counter)
check "ferry start --stateless" ferry start c1 --stateless
expect_eq "the state is discarded" "$(api GET /1.0/instances/c1 | jq -r .metadata.stateful)" false
check_fails "and gone from disk" test -e "$STATE"
sleep 1
check "it booted afresh (the counter started over: $(counter) < $at_stop)" test "$(counter)" -lt "$at_stop"
check "stop" ferry stop -f c1

# --- the API's own rules -----------------------------------------------------------------
expect_match "start stateful without state is refused" \
	"$(api_wait PUT /1.0/instances/c1/state '{"action":"start","stateful":true}')" 'no saved state'
expect_match "a stateful stop of a stopped instance is refused" \
	"$(api_wait PUT /1.0/instances/c1/state '{"action":"stop","stateful":true}')" 'already stopped'
