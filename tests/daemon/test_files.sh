#!/usr/bin/env bash
# Files in and out of a container: push, pull, mkdir, symlinks, delete,
# owners and modes through the idmap; nothing escapes the rootfs.
. "$(dirname "$0")/../lib.sh"
# The REST API over ferryd's unix socket (the CLI is tested on its own).
api() {
	local method=$1 path=$2
	if [ $# -ge 3 ]; then
		curl -s --unix-socket "$FERRY_DIR/unix.socket" -X "$method" -H 'Content-Type: application/json' \
			--data-binary "$3" "http://ferry$path"
	else
		curl -s --unix-socket "$FERRY_DIR/unix.socket" -X "$method" "http://ferry$path"
	fi
}
api_status() {
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$FERRY_DIR/unix.socket" -X "$1" \
		-H 'Content-Type: application/json' ${3+--data-binary "$3"} "http://ferry$2"
}
api_wait() {
	local resp op
	resp=$(api "$@")
	op=$(jq -r '.operation // empty' <<<"$resp")
	if [ -z "$op" ]; then
		jq -c '{status: "Failure", err: .error, status_code: .error_code}' <<<"$resp"
		return
	fi
	api GET "$op/wait?timeout=120" | jq -c .metadata
}
FILES=/1.0/instances/f1/files
# push PATH DATA [CURL_ARGS...]: prints the HTTP status.
push() {
	local path=$1 data=$2
	shift 2
	printf '%s' "$data" | curl -s -o "$TEST_DIR/push.out" -w '%{http_code}' --unix-socket "$FERRY_DIR/unix.socket" \
		-X POST -H 'Content-Type: application/octet-stream' --data-binary @- "$@" "http://ferry$FILES?path=$path"
}
# pull PATH: the body to stdout, headers to $TEST_DIR/headers.
pull() {
	curl -s -D "$TEST_DIR/headers" --unix-socket "$FERRY_DIR/unix.socket" "http://ferry$FILES?path=$1"
}
header() { grep -i "^$1:" "$TEST_DIR/headers" | tr -d '\r' | awk '{print $2}'; }

ferry_setup
chmod 711 "$TEST_DIR"
[ "$(api_status GET /1.0/images/aliases/busybox)" = 200 ] ||
	api_wait POST /1.0/images '{"source":{"type":"build","name":"busybox"},"aliases":[{"name":"busybox"}]}' >/dev/null
api_wait POST /1.0/instances '{"name":"f1","source":{"type":"image","alias":"busybox"}}' >/dev/null
ROOTFS=$FERRY_DIR/containers/f1/rootfs

# --- while stopped ---
expect_eq "push a file" "$(push /root/hello 'hello world' -H 'X-LXD-uid: 1000' -H 'X-LXD-gid: 1001' -H 'X-LXD-mode: 0640')" 200
expect_eq "pull it back" "$(pull /root/hello)" "hello world"
expect_eq "X-LXD-type file" "$(header X-LXD-type)" "file"
expect_eq "X-LXD-uid is the container's id" "$(header X-LXD-uid)" "1000"
expect_eq "X-LXD-gid is the container's id" "$(header X-LXD-gid)" "1001"
expect_eq "X-LXD-mode" "$(header X-LXD-mode)" "0640"
expect_eq "on disk the owner is shifted" "$(stat -c '%u:%g %a' "$ROOTFS/root/hello")" "1001000:1001001 640"
expect_eq "append" "$(push /root/hello '!' -H 'X-LXD-write: append')" 200
expect_eq "... adds to the end" "$(pull /root/hello)" "hello world!"
expect_eq "... keeping owner and mode" "$(stat -c '%u:%g %a' "$ROOTFS/root/hello")" "1001000:1001001 640"
expect_eq "a new file without headers belongs to container root" "$(push /root/plain 'x')" 200
expect_eq "... with mode 0644" "$(stat -c '%u:%g %a' "$ROOTFS/root/plain")" "1000000:1000000 644"
expect_eq "mkdir in a missing directory is 404" "$(push /srv/data '' -H 'X-LXD-type: directory')" 404
expect_eq "mkdir" "$(push /srv '' -H 'X-LXD-type: directory')" 200
expect_eq "mkdir below it" "$(push /srv/data '' -H 'X-LXD-type: directory' -H 'X-LXD-mode: 0750')" 200
check "... the directory exists" test -d "$ROOTFS/srv/data"
expect_eq "... with its mode" "$(stat -c '%u %a' "$ROOTFS/srv/data")" "1000000 750"
pull /srv >"$TEST_DIR/listing"
expect_eq "pull a directory lists it" "$(jq -c .metadata "$TEST_DIR/listing")" '["data"]'
expect_eq "... as X-LXD-type directory" "$(header X-LXD-type)" "directory"
expect_eq "push a symlink" "$(push /root/link /etc/hostname -H 'X-LXD-type: symlink')" 200
expect_eq "... it is one on disk" "$(readlink "$ROOTFS/root/link")" "/etc/hostname"
expect_eq "pull a symlink gives its target" "$(pull /root/link)" "/etc/hostname"
expect_eq "... as X-LXD-type symlink" "$(header X-LXD-type)" "symlink"
expect_eq "pull a missing file is 404" "$(api_status GET "$FILES?path=/nonexistent")" 404
expect_eq "a relative path is 400" "$(api_status GET "$FILES?path=etc/passwd")" 400
expect_eq "a bad write mode is 400" "$(push /root/x 'x' -H 'X-LXD-write: sideways')" 400
expect_eq "a uid beyond the map is 400" "$(push /root/x 'x' -H 'X-LXD-uid: 70000')" 400
expect_eq "delete a file" "$(api_status DELETE "$FILES?path=/root/plain")" 200
check_fails "... it is gone" test -e "$ROOTFS/root/plain"
expect_eq "delete an empty directory" "$(api_status DELETE "$FILES?path=/srv/data")" 200

# --- nothing lands outside the rootfs ---
marker=ferry-escape-$$
expect_eq "a symlink to / inside the rootfs" "$(push /escape / -H 'X-LXD-type: symlink')" 200
expect_eq "push through it" "$(push "/escape/tmp/$marker" 'inside')" 200
check_fails "... does not reach the host's /tmp" test -e "/tmp/$marker"
expect_eq "... but the container's" "$(cat "$ROOTFS/tmp/$marker")" "inside"
expect_eq "a symlink to the host's /tmp path" "$(push /hostdir /tmp -H 'X-LXD-type: symlink')" 200
expect_eq "push through it" "$(push "/hostdir/$marker-2" 'inside')" 200
check_fails "... does not reach the host's /tmp" test -e "/tmp/$marker-2"
check "... but the container's" test -e "$ROOTFS/tmp/$marker-2"
expect_eq "push to /../../../../tmp" "$(push "/../../../../tmp/$marker-3" 'inside')" 200
check_fails "... does not reach the host's /tmp" test -e "/tmp/$marker-3"
check "... stays in the rootfs" test -e "$ROOTFS/tmp/$marker-3"
ln -s /etc/shadow "$ROOTFS/root/shadow-link"
expect_eq "pulling a symlink to the host's /etc/shadow gives the link, not the file" "$(pull /root/shadow-link)" "/etc/shadow"
ln -s "/../../../../../../etc/hostname" "$ROOTFS/tmp/hn"
expect_eq "pull through a dot-dot symlink stays inside" \
	"$(pull /tmp/hn/ >/dev/null; curl -s -o /dev/null -w '%{http_code}' --unix-socket "$FERRY_DIR/unix.socket" "http://ferry$FILES?path=/tmp/hn/x")" 404
rm -f "/tmp/$marker" "/tmp/$marker-2" "/tmp/$marker-3"

# --- while running ---
api_wait PUT /1.0/instances/f1/state '{"action":"start"}' >/dev/null
expect_eq "push into a running container" "$(push /root/live 'live data' -H 'X-LXD-uid: 33' -H 'X-LXD-gid: 33')" 200
op=$(api_wait POST /1.0/instances/f1/exec '{"command":["sh","-c","cat /root/live; stat -c %u:%g /root/live"],"record-output":true}')
expect_eq "the container sees it with its own ids" "$(api GET "$(jq -r '.metadata.output["1"]' <<<"$op")")" $'live data33:33'
api_wait POST /1.0/instances/f1/exec '{"command":["sh","-c","echo made-inside > /root/inside; chown 5:6 /root/inside"]}' >/dev/null
expect_eq "pull what the container wrote" "$(pull /root/inside)" "made-inside"
expect_eq "... with its owner as the container sees it" "$(header X-LXD-uid):$(header X-LXD-gid)" "5:6"
api_wait PUT /1.0/instances/f1/state '{"action":"stop","force":true}' >/dev/null
expect_eq "delete f1" "$(api_wait DELETE /1.0/instances/f1 | jq -r .status)" "Success"
