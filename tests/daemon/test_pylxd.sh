#!/usr/bin/env bash
# Debian 12's pylxd (2.2.10, which speaks /1.0/containers) against ferryd's
# unix socket: create from an image alias, start, execute (exit code and
# both streams), push and pull a file, snapshot, state with its NICs, stop,
# delete. (Its live migration between hosts: tests/migrate/test_stock_clients.sh.)
. "$(dirname "$0")/../lib.sh"
if ! /usr/bin/python3 -c 'import pylxd' 2>/dev/null; then
	echo "ok - test_pylxd: # SKIP python3-pylxd is not installed"
	exit 0
fi
ferry_setup
trap ferry_teardown EXIT
ferry_busybox_image

out=$(LXD_DIR=$FERRY_DIR timeout 120 /usr/bin/python3 "$top/tests/daemon/pylxd_basic.py" 2>&1)
line() { printf '%s\n' "$out" | grep "^$1 " | head -1; }
expect_eq "pylxd connects, trusted (the unix socket)" "$(line api)" "api 1.0 trusted True"
expect_eq "containers.create from the alias busybox" "$(line created)" "created p1 Stopped"
expect_eq "start" "$(line started)" "started Running"
expect_eq "execute: exit code, stdout, stderr" "$(line exec)" "exec 3 'out\\n' 'err\\n'"
expect_eq "files.put, files.get" "$(line file)" "file b'data\\n'"
expect_eq "snapshots.create, snapshots.all" "$(line snapshots)" "snapshots s1"
expect_eq "state: running, with eth0 and lo" "$(line state)" "state Running eth0 lo"
expect_eq "stop" "$(line stopped)" "stopped Stopped"
expect_eq "delete" "$(line left)" "left "
printf '%s\n' "$out" | grep -q '^left' || printf '%s\n' "$out" | tail -5 | sed 's/^/#   /'
