#!/usr/bin/env bash
# ferry's demo on a fresh Debian 12 machine: installs and builds everything
# (scripts/setup.sh), starts a private ferryd, builds the busybox image,
# launches a container running a counter, and shows it working: its own
# pid 1, hostname and address, exec, files. Everything it made is removed
# at the end. (Live migration between two hosts joins the demo later.)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/scripts/setup.sh"

ferryd=$here/build/src/daemon/ferryd
ferry=$here/build/src/cli/ferry
work=$(mktemp -d /tmp/ferry-demo.XXXXXX)
# The containers' root (uid 1000000 on the host) must get through to their rootfs.
chmod 711 "$work"
export FERRY_DIR=$work/root
bridge=fdemo$(($$ % 10000))
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

cleanup() {
	set +e
	"$ferry" delete --force c1 >/dev/null 2>&1
	[ -z "${daemon:-}" ] || { kill -TERM "$daemon"; wait "$daemon"; } 2>/dev/null
	"$ferryd" --root "$FERRY_DIR" --bridge "$bridge" --purge >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

say "Starting ferryd (root $FERRY_DIR, bridge $bridge)"
"$ferryd" --root "$FERRY_DIR" --bridge "$bridge" >"$work/ferryd.out" 2>&1 &
daemon=$!
for _ in $(seq 100); do "$ferry" info >/dev/null 2>&1 && break; sleep 0.1; done
run "$ferry" version

say "Building the busybox image from Debian's busybox-static"
run "$ferry" image build busybox --alias busybox
run "$ferry" image list

say "Launching c1, an unprivileged system container"
run "$ferry" launch busybox c1
run "$ferry" exec c1 -- sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 1; done >/dev/null 2>&1 &'
run "$ferry" list

say "Inside c1: its own pid 1, hostname, user namespace and network"
run "$ferry" exec c1 -- ps -o pid,user,comm
run "$ferry" exec c1 -- hostname
run "$ferry" exec c1 -- cat /proc/self/uid_map
run "$ferry" exec c1 -- ip -4 addr show eth0
addr=$("$ferry" list c1 --format csv -c 4 | cut -d' ' -f1)
run busybox ping -c 2 -W 1 "$addr"

say "The counter keeps counting"
run "$ferry" exec c1 -- cat /tmp/counter
sleep 2
run "$ferry" exec c1 -- cat /tmp/counter

say "Files in and out"
echo "hello from the host" >"$work/hello.txt"
run "$ferry" file push "$work/hello.txt" c1/root/hello.txt
run "$ferry" exec c1 -- cat /root/hello.txt

say "Stopping and deleting c1"
run "$ferry" stop c1
run "$ferry" delete c1
run "$ferry" list
say "Done"
