#!/usr/bin/env bash
# Snapshots through ferryd: a busybox container with a counter (a shell
# variable in init's tree, written to disk five times a second) and a TCP
# echo server. A stateless snapshot brings a file back and leaves the
# instance stopped; a stateful one brings the counter back to its value at
# the snapshot, running, and the host's TCP connection still echoes;
# twenty stateful snapshot/restore cycles in a row. Listing, info, rename,
# delete, copies (of the instance and of a snapshot: fresh MAC and address,
# stopped), the API's objects, and the stock lxc client doing the same.
. "$(dirname "$0")/../lib.sh"

CYCLES=${SNAPSHOT_CYCLES:-20}

ferry_setup
ferry_busybox_image
SOCK=$FERRY_DIR/unix.socket
api() { curl -s --unix-socket "$SOCK" -X "$1" -H 'Content-Type: application/json' "http://ferry$2" ${3:+--data-binary "$3"}; }
api_wait() {
	local resp op
	resp=$(api "$@")
	op=$(jq -r '.operation // empty' <<<"$resp")
	[ -n "$op" ] || { jq -c '{status: "Failure", err: .error}' <<<"$resp"; return; }
	api GET "$op/wait?timeout=120" | jq -c '.metadata | {status, err}'
}
test_cleanup() {
	[ -z "${TCP_PID:-}" ] || kill "$TCP_PID" 2>/dev/null
	ferry_teardown
}
trap test_cleanup EXIT

check "create c1" ferry init busybox c1
ROOTFS=$FERRY_DIR/containers/c1/rootfs
cat >>"$ROOTFS/etc/inittab" <<'EOF'
::once:/bin/sh -c 'echo $$ >/tmp/counter.pid; i=0; while :; do i=$((i+1)); echo $i >/tmp/counter; sleep 0.2; done'
::once:/usr/bin/nc -ll -p 7000 -e /bin/cat
EOF
echo before >"$ROOTFS/root/file"
chown 1000000:1000000 "$ROOTFS/root/file"
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
MAC=$(api GET /1.0/instances/c1 | jq -r '.metadata.config["volatile.eth0.hwaddr"]')

# --- stateless snapshot ----------------------------------------------------------
check "ferry snapshot c1 s1 (stateless)" ferry snapshot c1 s1
check "the snapshot's rootfs is on disk" test -s "$FERRY_DIR/containers/c1/snapshots/s1/rootfs/root/file"
check "and its config.json" test -s "$FERRY_DIR/containers/c1/snapshots/s1/config.json"
s1=$(api GET /1.0/instances/c1/snapshots/s1 | jq -c .metadata)
expect_eq "the snapshot object: name, stateful, expiry" "$(jq -c '[.name, .stateful, .expires_at]' <<<"$s1")" \
	'["s1",false,"0001-01-01T00:00:00Z"]'
expect_eq "it has LXD's fields" "$(jq -c 'keys' <<<"$s1")" \
	'["architecture","config","created_at","description","devices","ephemeral","expanded_config","expanded_devices","expires_at","last_used_at","name","profiles","size","stateful"]'
expect_eq "GET snapshots lists its URL" "$(api GET /1.0/instances/c1/snapshots | jq -c .metadata)" \
	'["/1.0/instances/c1/snapshots/s1"]'
expect_eq "an existing name is refused" "$(api_wait POST /1.0/instances/c1/snapshots '{"name":"s1"}' | jq -r .status)" Failure
expect_eq "a name with a slash is refused" "$(api_wait POST /1.0/instances/c1/snapshots '{"name":"a/b"}' | jq -r .status)" Failure
ferry exec c1 -- sh -c 'echo after >/root/file'
check "ferry restore c1 s1" ferry restore c1 s1
expect_eq "the file is back" "$(cat "$ROOTFS/root/file")" before
expect_eq "and the instance is left stopped" "$(api GET /1.0/instances/c1 | jq -r .metadata.status)" Stopped
expect_eq "with its own MAC" "$(api GET /1.0/instances/c1 | jq -r '.metadata.config["volatile.eth0.hwaddr"]')" "$MAC"
check "start c1 again" ferry start c1
for i in $(seq 50); do [ "$(counter)" -gt 2 ] && break; sleep 0.1; done

# --- stateless snapshots of a tree whose files come and go: a file that
# went while it was copied is not an error (LXD's rsync ignores them too)
ferry exec c1 -- sh -c 'while :; do mkdir /root/churn; j=0; while [ $j -lt 400 ]; do j=$((j+1)); echo $j >/root/churn/$j; done; rm -rf /root/churn; done </dev/null >/dev/null 2>&1 & echo $! >/tmp/churn.pid'
for i in $(seq 50); do [ -s "$ROOTFS/tmp/churn.pid" ] && break; sleep 0.1; done
for n in 1 2 3 4 5 6; do
	check "snapshot c1 churn$n while /root/churn's files come and go" ferry snapshot c1 "churn$n"
done
expect_eq "... each with the rest of the rootfs" \
	"$(for n in 1 2 3 4 5 6; do cat "$FERRY_DIR/containers/c1/snapshots/churn$n/rootfs/root/file"; done | sort -u)" before
expect_match "ferryd said that files went while it copied" "$(cat "$FERRY_DIR/logs/ferryd.log")" 'files went while it was copied'
ferry exec c1 -- sh -c 'kill "$(cat /tmp/churn.pid)"'
for n in 1 2 3 4 5 6; do ferry delete "c1/churn$n" >/dev/null; done

# --- stateful snapshot -------------------------------------------------------------
coproc TCP { exec socat - "TCP:$ADDR:7000,connect-timeout=5"; }
TCP_PID=$TCP_PID
tcp_echo() {
	local line
	echo "$1" >&"${TCP[1]}" || return 1
	read -r -t 5 line <&"${TCP[0]}" || return 1
	[ "$line" = "$1" ]
}
check "the host's TCP connection echoes" tcp_echo hello-0
INIT=$(api GET /1.0/instances/c1/state | jq -r .metadata.pid)
# The snapshot's counter lies between these two readings (the container
# runs on around the dump).
before_snapshot=$(counter)
check "ferry snapshot c1 s2 --stateful" ferry snapshot c1 s2 --stateful
at_snapshot=$(counter)
expect_eq "the instance kept running" "$(api GET /1.0/instances/c1/state | jq -r .metadata.pid)" "$INIT"
check "the snapshot's images are on disk" test -s "$FERRY_DIR/containers/c1/snapshots/s2/state/inventory.img"
check "the snapshot's dump log is kept" ls "$FERRY_DIR"/logs/c1/snapshot_dump_*.log
check "TCP echoes after the snapshot" tcp_echo hello-1
sleep 1
check "the counter went on after the snapshot" test "$(counter)" -gt $((at_snapshot + 2))
expect_match "ferry info lists the snapshots and which is stateful" "$(ferry info c1)" \
	's1 +\| [0-9/: ]+UTC \| +\| NO.*|s2 +\| [0-9/: ]+UTC \| +\| YES'
info=$(ferry info c1)
expect_match "ferry info: s1 stateless" "$info" '\| s1 +\|.*\| NO +\|'
expect_match "ferry info: s2 stateful" "$info" '\| s2 +\|.*\| YES +\|'
check "ferry restore c1 s2 (stateful)" ferry restore c1 s2
expect_eq "the instance runs" "$(api GET /1.0/instances/c1 | jq -r .metadata.status)" Running
now=$(counter)
check "the counter is back near its value at the snapshot ($before_snapshot-$at_snapshot, now $now)" \
	test "$now" -ge "$before_snapshot" -a "$now" -le $((at_snapshot + 3))
sleep 0.5
check "and counts on" test "$(counter)" -gt "$now"
check "the restore's log is kept" ls "$FERRY_DIR"/logs/c1/snapshot_restore_*.log
# The server's side of the connection went back to the snapshot, before
# hello-1, which the host's side has sent and seen acknowledged: that
# connection can't go on. A new one echoes, and one that sends nothing
# between snapshot and restore survives it (the cycles below).
kill "$TCP_PID" 2>/dev/null
wait "$TCP_PID" 2>/dev/null
coproc TCP { exec socat - "TCP:$ADDR:7000,connect-timeout=5"; }
TCP_PID=$TCP_PID
check "a new TCP connection echoes after the stateful restore" tcp_echo hello-2
check "the snapshot stays after its restore" test -s "$FERRY_DIR/containers/c1/snapshots/s2/state/inventory.img"
expect_match "a stateful restore of a stateless snapshot is refused" \
	"$(api_wait PUT /1.0/instances/c1 '{"restore":"s1","stateful":true}')" 'stateless'

# --- twenty stateful snapshot/restore cycles -----------------------------------------
failed=0
for cycle in $(seq "$CYCLES"); do
	before=$(counter)
	if ! out=$(ferry snapshot c1 cyc --stateful 2>&1); then fail "cycle $cycle: stateful snapshot" "$out"; failed=1; break; fi
	at=$(counter)
	sleep 0.5
	if ! out=$(ferry restore c1 cyc 2>&1); then fail "cycle $cycle: restore" "$out"; failed=1; break; fi
	back=$(counter)
	if [ "$back" -lt "$before" ] || [ "$back" -gt $((at + 3)) ]; then
		fail "cycle $cycle: the counter is $back after the restore, $before-$at around the snapshot"; failed=1; break
	fi
	if ! tcp_echo "cycle-$cycle"; then fail "cycle $cycle: TCP echoes"; failed=1; break; fi
	if ! out=$(ferry snapshot delete c1 cyc 2>&1); then fail "cycle $cycle: delete" "$out"; failed=1; break; fi
done
[ "$failed" -eq 1 ] || pass "$CYCLES stateful snapshot/restore cycles: the counter goes back and TCP echoes after each"
check "still checkpointable: a stateful stop" ferry stop c1 --stateful
check "and start" ferry start c1
check "TCP echoes at the end" tcp_echo hello-3

# --- rename, update, delete --------------------------------------------------------------
check "ferry move c1/s1 c1/s1a renames the snapshot" ferry move c1/s1 c1/s1a
check "ferry rename c1/s1a c1/s1 too" ferry rename c1/s1a c1/s1
check_fails "ferry move c1/s1 c2/s1 is refused (another instance)" ferry move c1/s1 c2/s1
check "ferry snapshot rename c1 s1 s1b" ferry snapshot rename c1 s1 s1b
check "the directory moved" test -d "$FERRY_DIR/containers/c1/snapshots/s1b/rootfs"
expect_eq "PATCH the expiry" "$(api_wait PATCH /1.0/instances/c1/snapshots/s1b '{"expires_at":"2030-01-02T03:04:05Z"}' | jq -r .status)" Success
expect_eq "the expiry is stored" "$(api GET /1.0/instances/c1/snapshots/s1b | jq -r .metadata.expires_at)" 2030-01-02T03:04:05Z
expect_match "ferry snapshot list" "$(ferry snapshot list c1)" 's1b.*2030/01/02'
soon=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)
expect_eq "a snapshot that expires in 2 s" "$(api_wait POST /1.0/instances/c1/snapshots "{\"name\":\"ex1\",\"expires_at\":\"$soon\"}" | jq -r .status)" Success
for i in $(seq 60); do [ "$(api GET /1.0/instances/c1/snapshots/ex1 | jq -r .error_code)" = 404 ] && break; sleep 0.5; done
expect_eq "is deleted once expired (ferryd prunes every 10 s)" "$(api GET /1.0/instances/c1/snapshots/ex1 | jq -r .error_code)" 404
check_fails "... its directory too" test -e "$FERRY_DIR/containers/c1/snapshots/ex1"
expect_eq "the one expiring in 2030 stays" "$(api GET /1.0/instances/c1/snapshots/s1b | jq -r .metadata.name)" s1b
check "ferry snapshot show" ferry snapshot show c1 s1b
check "ferry delete c1/s1b" ferry delete c1/s1b
check_fails "it is gone" test -e "$FERRY_DIR/containers/c1/snapshots/s1b"
expect_eq "GET answers 404" "$(api GET /1.0/instances/c1/snapshots/s1b | jq -r .error_code)" 404
check "a snapshot with a generated name" ferry snapshot c1
expect_match "it is called snapN" "$(api GET /1.0/instances/c1/snapshots | jq -r '.metadata[]')" '/snapshots/snap0$'

# --- copies ------------------------------------------------------------------------------
ferry exec c1 -- sh -c 'echo copied >/root/file'
check "ferry copy c1/s2 c2 (a snapshot)" ferry copy c1/s2 c2
check "ferry copy c1 c3 (the instance)" ferry copy c1 c3
for c in c2 c3; do
	obj=$(api GET /1.0/instances/$c | jq -c .metadata)
	expect_eq "$c is stopped" "$(jq -r .status <<<"$obj")" Stopped
	mac=$(jq -r '.config["volatile.eth0.hwaddr"]' <<<"$obj")
	addr=$(jq -r '.config["volatile.eth0.ipv4.address"]' <<<"$obj")
	check "$c has a fresh MAC ($mac)" test "$mac" != "$MAC" -a "$mac" != null
	check "$c has a fresh address ($addr)" test "$addr" != "$ADDR" -a "$addr" != null
done
expect_eq "c2 has the snapshot's file" "$(cat "$FERRY_DIR/containers/c2/rootfs/root/file")" before
expect_eq "c3 has the instance's file" "$(cat "$FERRY_DIR/containers/c3/rootfs/root/file")" copied
expect_eq "c3 got c1's snapshots (stateless)" \
	"$(api GET '/1.0/instances/c3/snapshots?recursion=1' | jq -c '[.metadata[] | select(.name == "s2" or .name == "snap0") | [.name, .stateful]]')" \
	'[["s2",false],["snap0",false]]'
check "c2 starts" ferry start c2
check "c3 starts" ferry start c3
check "c2 runs a shell" ferry exec c2 -- true
check "delete c2 and c3" ferry delete -f c2 c3

# --- the stock lxc client ------------------------------------------------------------------
if command -v lxc >/dev/null; then
	export LXD_DIR=$FERRY_DIR
	check "lxc snapshot c1 l1" lxc snapshot c1 l1
	expect_match "lxc info c1 shows it" "$(lxc info c1)" '\| l1 +\|'
	check "lxc restore c1 l1" lxc restore c1 l1
	expect_eq "it is stopped after lxc's (stateless) restore" "$(api GET /1.0/instances/c1 | jq -r .metadata.status)" Stopped
	check "lxc rename c1/l1 c1/l2" lxc rename c1/l1 c1/l2
	check "lxc delete c1/l2" lxc delete c1/l2
	check_fails "l2 is gone" test -e "$FERRY_DIR/containers/c1/snapshots/l2"
	check "lxc start c1" lxc start c1
	check "lxc stop --stateful c1" lxc stop --stateful c1
	expect_eq "lxc's stateful stop saved state" "$(api GET /1.0/instances/c1 | jq -r .metadata.stateful)" true
	check "lxc start c1 restores it" lxc start c1
	expect_eq "no state left" "$(api GET /1.0/instances/c1 | jq -r .metadata.stateful)" false
	# lxc wants stateful migration for a stateful snapshot unless told otherwise.
	check "lxc copy --stateless c1/s2 c4" lxc copy --stateless c1/s2 c4
	expect_eq "c4 is stopped" "$(api GET /1.0/instances/c4 | jq -r .metadata.status)" Stopped
	check "lxc delete c4" lxc delete c4
	unset LXD_DIR
fi

# --- renaming the instance takes its snapshots along -----------------------------------------
check "stop c1" ferry stop -f c1
expect_eq "rename c1 to c9" "$(api_wait POST /1.0/instances/c1 '{"name":"c9"}' | jq -r .status)" Success
expect_match "c9 has c1's snapshots" "$(api GET /1.0/instances/c9/snapshots | jq -r '.metadata[]')" '/1.0/instances/c9/snapshots/s2'
check "and their files" test -s "$FERRY_DIR/containers/c9/snapshots/s2/state/inventory.img"
expect_eq "rename it back" "$(api_wait POST /1.0/instances/c9 '{"name":"c1"}' | jq -r .status)" Success

# --- deleting the instance removes its snapshots -------------------------------------------
check "delete c1" ferry delete -f c1
check_fails "its directory is gone" test -e "$FERRY_DIR/containers/c1"
check "a new c1" ferry init busybox c1
expect_eq "has no snapshots" "$(api GET /1.0/instances/c1/snapshots | jq -c .metadata)" '[]'
check "delete it" ferry delete c1
