#!/usr/bin/env bash
# The ferry CLI against a real ferryd: a busybox container launched, listed
# in every format, inspected, exec'd into (exit codes, stdout/stderr kept
# apart, stdin piped), files pushed and pulled, config changed, usage errors
# and missing containers reported with the right exit codes, and the
# container stopped, started, restarted and deleted.
. "$(dirname "$0")/../lib.sh"
ferry_setup || exit 1

# Usage errors need no daemon at all: exit 2 with a message.
ferry frobnicate >/dev/null 2>"$TEST_DIR/err"; rc=$?
expect_eq "unknown verb exits 2" "$rc" 2
expect_match "unknown verb is named" "$(cat "$TEST_DIR/err")" 'unknown command "frobnicate"'
ferry list --no-such-flag >/dev/null 2>&1; expect_eq "unknown flag exits 2" "$?" 2
ferry exec >/dev/null 2>&1; expect_eq "missing arguments exit 2" "$?" 2
ferry list --format xml >/dev/null 2>&1; expect_eq "bad --format exits 2" "$?" 2
ferry launch busybox Not_Valid >/dev/null 2>&1; expect_eq "invalid instance name exits 2" "$?" 2

check "server info answers" ferry info
expect_match "server info is YAML with api_version" "$(ferry info)" '^api_version: "1.0"$|api_version: "1.0"'

ferry_busybox_image
check "image info busybox" ferry image info busybox
expect_match "image list shows the alias" "$(ferry image list --format csv)" '^busybox,'
expect_eq "image alias list as json" "$(ferry image alias list --format json | jq -r '.[] | select(.name=="busybox") | .name')" busybox

out=$(ferry launch busybox c1 2>&1)
expect_eq "launch prints Creating/Starting" "$out" "$(printf 'Creating c1\nStarting c1')"

# list in all four formats
expect_eq "list csv -c ns" "$(ferry list --format csv -c ns)" "c1,RUNNING"
expect_eq "list json parses" "$(ferry list --format json | jq -r '.[0].name + " " + .[0].status')" "c1 Running"
expect_match "list yaml" "$(ferry list --format yaml)" '^- .*|^-$'
expect_match "list yaml names c1" "$(ferry list --format yaml)" 'name: c1'
table=$(ferry list)
expect_match "list table header" "$table" '^\| +NAME +\| +STATE +\| +IPV4 +\| +IPV6 +\| +TYPE +\| +SNAPSHOTS +\|$'
expect_match "list table row" "$table" '^\| c1 +\| RUNNING +\| [0-9.]* ?(\(eth0\))? *\| .*\| CONTAINER +\| 0 +\|$'
# the address appears once the network is up
for i in $(seq 50); do
	ip4=$(ferry list --format csv -c 4 c1)
	[ -n "$ip4" ] && break
	sleep 0.1
done
expect_match "ipv4 column shows the address and interface" "$ip4" '^10\.[0-9]+\.[0-9]+\.[0-9]+ \(eth0\)$'
expect_eq "list filter excludes" "$(ferry list --format csv -c n nomatch)" ""

info=$(ferry info c1)
expect_match "info name" "$info" '^Name: c1$'
expect_match "info status" "$info" 'Status: RUNNING'
expect_match "info type" "$info" 'Type: container'
expect_match "info resources" "$info" 'Processes: [0-9]+'

# exec: exit codes, stdout/stderr separation, stdin
ferry exec c1 -- sh -c 'exit 7' </dev/null; expect_eq "exec returns the command's exit code" "$?" 7
ferry exec c1 -- true </dev/null; expect_eq "exec success exits 0" "$?" 0
ferry exec c1 -- sh -c 'echo out; echo err >&2' >"$TEST_DIR/out" 2>"$TEST_DIR/err" </dev/null
expect_eq "exec stdout" "$(cat "$TEST_DIR/out")" "out"
expect_eq "exec stderr" "$(cat "$TEST_DIR/err")" "err"
expect_eq "exec reads piped stdin" "$(echo hi | ferry exec c1 -- cat)" "hi"
expect_eq "exec passes --env and --cwd" "$(ferry exec c1 --env FOO=bar --cwd /tmp -- sh -c 'echo $FOO $(pwd)' </dev/null)" "bar /tmp"
expect_eq "exec hostname is the name" "$(ferry exec c1 -- hostname </dev/null)" "c1"

# files round trip
head -c 100000 /dev/urandom >"$TEST_DIR/blob"
check "file push" ferry file push "$TEST_DIR/blob" c1/root/blob
check "file pull" ferry file pull c1/root/blob "$TEST_DIR/blob.back"
check "pulled file is identical" cmp "$TEST_DIR/blob" "$TEST_DIR/blob.back"
check "file push -p --mode" ferry file push -p --mode 0600 "$TEST_DIR/blob" c1/root/a/b/blob
expect_eq "pushed mode and parents" "$(ferry exec c1 -- stat -c %a /root/a/b/blob </dev/null)" "600"
expect_eq "file pull to stdout" "$(ferry file pull c1/etc/hostname -)" "c1"

# config
check "config set" ferry config set c1 user.note hello
expect_eq "config get" "$(ferry config get c1 user.note)" "hello"
check "config set key=value" ferry config set c1 user.other=two
expect_match "config show" "$(ferry config show c1)" 'user.note: hello'
check "config unset" ferry config unset c1 user.note
expect_eq "config get after unset" "$(ferry config get c1 user.note)" ""
ferry config show c1 | sed 's/user.other: two/user.other: three/' | ferry config edit c1
expect_eq "config edit from stdin" "$(ferry config get c1 user.other)" "three"
printf 'config: [unclosed\n' | ferry config edit c1 >/dev/null 2>&1
expect_eq "config edit with bad YAML exits 1" "$?" 1

# missing container: exit 1 and a message
ferry info nope >/dev/null 2>"$TEST_DIR/err"; rc=$?
expect_eq "missing container exits 1" "$rc" 1
expect_match "missing container message" "$(cat "$TEST_DIR/err")" '^Error: .*not found'
ferry exec nope -- true </dev/null >/dev/null 2>&1; expect_eq "exec on missing container exits 1" "$?" 1

# operations
check "operation list" ferry operation list
expect_match "operation list json" "$(ferry operation list --format json)" '^\['

# lifecycle
ferry delete c1 >/dev/null 2>&1; expect_eq "delete of a running container refuses" "$?" 1
check "stop" ferry stop c1
expect_eq "stopped" "$(ferry list --format csv -c s c1)" "STOPPED"
ferry stop c1 >/dev/null 2>&1; expect_eq "stopping a stopped container fails" "$?" 1
check "start" ferry start c1
expect_eq "running" "$(ferry list --format csv -c s c1)" "RUNNING"
check "restart" ferry restart c1
expect_eq "running after restart" "$(ferry list --format csv -c s c1)" "RUNNING"
check "delete --force" ferry delete --force c1
expect_eq "gone" "$(ferry list --format csv -c n)" ""

# init without a name picks one, and image export/import round trip
name=$(ferry init busybox | sed -n 's/^Creating //p')
expect_match "init picks a name" "$name" '^[a-z]+-[a-z]+$'
expect_eq "init leaves it stopped" "$(ferry list --format csv -c s "$name")" "STOPPED"
check "delete the stopped one" ferry delete "$name"
check "image export" ferry image export busybox "$TEST_DIR/busybox.tar.gz"
check_fails "import of an image already there is refused" ferry image import "$TEST_DIR/busybox.tar.gz"
check "image delete" ferry image delete busybox
check "image import" ferry image import "$TEST_DIR/busybox.tar.gz" --alias bb2
check "image alias rename" ferry image alias rename bb2 bb3
check "image delete by alias" ferry image delete bb3
check_fails "deleted image is gone" ferry image info bb3
