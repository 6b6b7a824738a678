#!/usr/bin/env bash
# A cold move whose target dies mid-transfer: the target's ferryd is killed
# while the rootfs streams in. The move fails, the container is still on
# the source with everything in it, and the target, started again, has
# removed its partial copy.
# Then the move goes through, all 1.5 GiB of it (streams larger than a few
# tens of MB once stalled in libmicrohttpd's TLS forwarding; they have
# their own TLS connections now).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }


fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
# Enough data that the transfer takes a while.
check "write 1.5 GiB in c1" fy h1 exec c1 -- sh -c 'echo still-here > /root/note; dd if=/dev/zero of=/root/big bs=1M count=1536 2>/dev/null'
check "stop c1" fy h1 stop c1

fy h1 move c1 h2: >"$BED_DIR/move.out" 2>&1 &
move_pid=$!
# Kill the target once its copy is on its way in.
for i in $(seq 400); do
	[ -d "$BED_DIR/h2/containers/c1/rootfs" ] && break
	sleep 0.025
done
expect_eq "the transfer started" "$(test -d "$BED_DIR/h2/containers/c1/rootfs" && echo yes)" yes
kill -KILL "$(cat "$BED_DIR/h2.pid")"
wait "$move_pid"
expect_eq "the move fails" "$?" 1
expect_match "... saying so" "$(cat "$BED_DIR/move.out")" "Error"

expect_eq "c1 is still on h1" "$(names h1)" c1
check "c1 starts on h1" fy h1 start c1
expect_eq "... with its file" "$(fy h1 exec c1 -- cat /root/note)" still-here
expect_eq "... and all its data" "$(fy h1 exec c1 -- stat -c %s /root/big)" $((1536 * 1024 * 1024))

check "start h2's ferryd again" "$TESTBED" start "$BED_DIR" h2
expect_eq "h2 has no c1" "$(names h2)" ""
check_fails "... nor its partial rootfs" test -e "$BED_DIR/h2/containers/c1"
check "stop c1" fy h1 stop c1
check "the move works now" timeout 300 "$TESTBED" exec "$BED_DIR" h1 "$FERRY" move c1 h2:
expect_eq "c1 is on h2" "$(names h2)" c1
check "start c1 on h2" fy h2 start c1
expect_eq "... with all its data" "$(fy h2 exec c1 -- stat -c %s /root/big)" $((1536 * 1024 * 1024))
