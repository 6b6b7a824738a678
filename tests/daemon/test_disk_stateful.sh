#!/usr/bin/env bash
# A host directory bind-mounted read-only into a container by a profile's
# disk device survives a stateful stop/start: still mounted, still
# read-only, and a process that holds a file of it open keeps it open, with
# the same pid, while its counter goes on.
. "$(dirname "$0")/../lib.sh"

ferry_setup
ferry_busybox_image
share=$TEST_DIR/share
mkdir -m 755 "$share"
echo "from the host" >"$share/data"
chmod 644 "$share/data"

check "profile with a read-only disk device" ferry profile create withdisk
check "add the disk device" ferry profile device add withdisk share disk source="$share" path=/mnt/share readonly=true
check "launch with it" ferry launch busybox c1 -p default -p withdisk
expect_eq "the file is visible inside" "$(ferry exec c1 -- cat /mnt/share/data)" "from the host"
check_fails "the mount is read-only" ferry exec c1 -- touch /mnt/share/new

# A reader holding the file open, and a counter: both must survive.
ferry exec c1 -- sh -c 'exec 3</mnt/share/data; i=0; while true; do i=$((i+1)); echo $i >/tmp/count; sleep 0.2; done </dev/null >/dev/null 2>&1 &'
sleep 1
# The loop's shell, not one of its short-lived sleeps (which inherit fd 3).
pid=$(ferry exec c1 -- sh -c 'for p in /proc/[0-9]*; do [ "$(readlink $p/fd/3 2>/dev/null)" = /mnt/share/data ] && [ "$(cat $p/comm)" = sh ] && basename $p; done' | sort -n | head -1)
expect_match "a process holds the file open" "$pid" '^[0-9]+$'
before=$(ferry exec c1 -- cat /tmp/count)

check "stateful stop" ferry stop c1 --stateful
expect_eq "stopped" "$(ferry list --format csv -c s c1)" "STOPPED"
check "start restores it" ferry start c1
sleep 0.6
after=$(ferry exec c1 -- cat /tmp/count)
if [ "${after:-0}" -gt "${before:-0}" ]; then pass "the counter went on ($before -> $after)"; else fail "the counter went on" "before $before, after $after"; fi
expect_eq "the same process still holds the file open" \
	"$(ferry exec c1 -- readlink /proc/"$pid"/fd/3)" "/mnt/share/data"
expect_eq "the file is still visible" "$(ferry exec c1 -- cat /mnt/share/data)" "from the host"
check_fails "the mount is still read-only" ferry exec c1 -- touch /mnt/share/new
[ ! -e "$share/new" ] && pass "nothing was written to the host" || fail "nothing was written to the host"
