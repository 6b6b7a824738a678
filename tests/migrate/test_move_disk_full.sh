#!/usr/bin/env bash
# Live moves to a target whose disk is full (its containers directory on a
# 40 MiB tmpfs): when the rootfs doesn't fit, the move fails before
# anything stops and the container never noticed; when the rootfs fits but
# the state (100 MiB of dirtied memory) doesn't, the container was already
# checkpointed, and runs on the source again, the same processes with their
# memory; a move that is not live (--stateless) stopped it first, and starts
# it again. Every time the target keeps nothing, and once it has room the
# move goes through.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }

SMALL=$BED_DIR/h2/containers
test_cleanup() { ! mountpoint -q "$SMALL" || umount "$SMALL"; }
trap 'test_cleanup; bed_down' EXIT


fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
check "start a counter in c1" start_counter h1
check "put 60 MB in c1's rootfs" fy h1 exec c1 -- dd if=/dev/urandom of=/root/big bs=1M count=60
pid=$(counter_pid h1)
mkdir -p "$SMALL"
check "h2's containers directory: a 40 MiB tmpfs" mount -t tmpfs -o size=40m,mode=0711 ferry-test-small "$SMALL"

# --- the rootfs does not fit: nothing has stopped yet
before=$(counter h1)
out=$(fy h1 move c1 h2: 2>&1)
expect_eq "move c1 h2: fails (the rootfs doesn't fit)" "$?" 1
expect_match "... saying why" "$out" "No space left on device"
expect_eq "c1 still runs on h1" "$(state h1 c1)" RUNNING
expect_eq "... the same process" "$(counter_pid h1)" "$pid"
expect_counted "... still counting" "$before" "$(counter h1)"
expect_eq "h2 has no c1" "$(names h2)" ""
expect_eq "... and nothing left on its disk" "$(ls -A "$SMALL")" ""

# --- a move that is not live, and the rootfs does not fit: h1 stopped c1
# for it (the target's plan) and starts it again
out=$(fy h1 move c1 h2: --stateless 2>&1)
expect_eq "move c1 h2: --stateless fails (the rootfs doesn't fit)" "$?" 1
expect_match "... saying that c1 was stopped and runs on h1 again" "$out" "stopped for the move and runs here again"
expect_match "... and why" "$out" "No space left on device"
expect_eq "c1 runs on h1" "$(state h1 c1)" RUNNING
expect_eq "... booted afresh: the counter is gone" "$(fy h1 exec c1 -- sh -c "kill -0 $pid 2>/dev/null && echo alive")" ""
expect_eq "... its rootfs as it was" "$(fy h1 exec c1 -- stat -c %s /root/big)" 62914560
expect_eq "h2 has no c1" "$(names h2)" ""
expect_eq "... and nothing left on its disk" "$(ls -A "$SMALL")" ""
check "start a counter in c1 again" start_counter h1
for i in $(seq 50); do [ -n "$(counter h1)" ] && break; sleep 0.1; done
pid=$(counter_pid h1)

# --- the rootfs fits, the state does not: c1 was checkpointed, and comes back
check "remove the big file" fy h1 exec c1 -- rm /root/big
check "put memhog in c1" fy h1 file push -p --mode 0755 --uid 0 --gid 0 "$BUILD/tests/checkpoint/memhog" c1/usr/local/bin/memhog
check "dirty 100 MiB in c1" fy h1 exec c1 -- sh -c '/usr/local/bin/memhog 100 </dev/null >/dev/null 2>&1 &'
for i in $(seq 100); do fy h1 exec c1 -- test -e /tmp/memhog.ready && break; sleep 0.2; done
hog=$(fy h1 exec c1 -- pidof memhog)
out=$(fy h1 move c1 h2: --memory stop-and-copy 2>&1)
expect_eq "move c1 h2: --memory stop-and-copy fails (the state doesn't fit)" "$?" 1
expect_match "... saying that c1 runs on h1 again" "$out" "runs here again"
expect_match "... and why: the target's disk" "$out" "No space left on device|ENOSPC|disk"
echo "# $out"
expect_eq "c1 runs on h1" "$(state h1 c1)" RUNNING
expect_eq "... the same counter process" "$(counter_pid h1)" "$pid"
expect_eq "... and memhog with its memory" "$(fy h1 exec c1 -- pidof memhog)" "$hog"
expect_eq "h2 has no c1" "$(names h2)" ""
expect_eq "... and nothing left on its disk" "$(ls -A "$SMALL")" ""

# --- with room again, the move goes through
check "give h2 its disk back" umount "$SMALL"
check "move c1 h2:" fy h1 move c1 h2:
expect_eq "... the same counter process" "$(counter_pid h2)" "$pid"
expect_eq "... and memhog" "$(fy h2 exec c1 -- pidof memhog)" "$hog"
check "delete c1" fy h2 delete -f c1
