#!/usr/bin/env bash
# The daemon core over its unix socket, as a client sees it: the server
# object, LXD's envelopes and errors, server config, operations, the events
# websocket, and a clean start and stop.
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

source "$here/api_lib.sh"

core_setup

# --- the server object
root=$(api GET /)
expect_eq "GET / lists the API versions" "$(jq -c .metadata <<<"$root")" '["/1.0"]'
server=$(api GET /1.0)
expect_eq "GET /1.0 is a sync response" "$(jq -r '[.type,.status,.status_code,.error_code] | join(" ")' <<<"$server")" \
	"sync Success 200 0"
expect_eq "GET /1.0 api_version and auth" "$(jq -r '.metadata | [.api_version,.api_status,.auth] | join(" ")' <<<"$server")" \
	"1.0 stable trusted"
expect_eq "GET /1.0 environment names ferry" \
	"$(jq -r '.metadata.environment | [.server,.driver,.storage,.project] | join(" ")' <<<"$server")" "ferry ferry dir default"
expect_eq "GET /1.0 server_pid is ferryd's" "$(jq -r .metadata.environment.server_pid <<<"$server")" "$FERRYD_PID"
expect_eq "GET /1.0 has the extensions lxc needs" \
	"$(jq -r '[.metadata.api_extensions[] | select(. == "instances" or . == "container_exec_recording" or . == "container_full")] | length' <<<"$server")" 3
expect_eq "GET /1.0 kernel_version is the host's" "$(jq -r .metadata.environment.kernel_version <<<"$server")" "$(uname -r)"
expect_eq "socket is root's only (0660 root:root)" "$(stat -c '%a %U %G' "$SOCK")" "660 root root"
check "log file under ROOT/logs" test -s "$FERRY_DIR/logs/ferryd.log"

# --- errors in LXD's envelope
expect_eq "unknown path: 404" "$(api_code GET /1.0/nothing-here)" 404
expect_eq "unknown path: error envelope" \
	"$(api GET /1.0/nothing-here | jq -c '[.type,.error,.error_code,.status_code,.metadata]')" '["error","not found",404,0,null]'
expect_eq "known path, wrong method: 501 as LXD" "$(api_code DELETE /1.0)" 501
expect_eq "trailing slash is the same path" "$(api GET /1.0/ | jq -r .metadata.api_version)" "1.0"
expect_eq "malformed JSON: 400" "$(api_code PATCH /1.0 -H 'Content-Type: application/json' -d '{"config": ')" 400
expect_match "malformed JSON: the parser's message" \
	"$(json PATCH /1.0 '{"config": [' | jq -r .error)" "Invalid JSON: .*line 1"

# --- server config
expect_eq "set core.https_address" "$(json PATCH /1.0 '{"config":{"core.https_address":"127.0.0.1:8443"}}' | jq -r .type)" sync
expect_eq "GET /1.0 shows it" "$(api GET /1.0 | jq -r '.metadata.config["core.https_address"]')" "127.0.0.1:8443"
expect_eq "unknown key refused" "$(json PATCH /1.0 '{"config":{"core.nonsense":"1","images.auto_update_interval":"6"}}' | jq -r '[.error_code,.error] | join(" ")')" \
	"400 Unknown configuration key: core.nonsense"
expect_eq "a refused request changes nothing" "$(api GET /1.0 | jq -r '.metadata.config["images.auto_update_interval"] // "unset"')" unset
json PATCH /1.0 '{"config":{"core.trust_password":"sekrit"}}' >/dev/null
expect_eq "trust password shown only as set" "$(api GET /1.0 | jq -c '.metadata.config["core.trust_password"]')" true
check "trust password not stored in clear" bash -c "! grep -qa sekrit '$FERRY_DIR/database/ferry.db'"
# lxc config unset: GET the config, drop the key, PUT the rest back.
put=$(api GET /1.0 | jq -c '{config: (.metadata.config | del(.["core.https_address"]))}')
json PUT /1.0 "$put" >/dev/null
config=$(api GET /1.0 | jq -c .metadata.config)
expect_eq "PUT without a key unsets it, keeps the password" "$config" '{"core.trust_password":true}'
json PUT /1.0 '{"config":{}}' >/dev/null
expect_eq "PUT {} clears the config" "$(api GET /1.0 | jq -c .metadata.config)" '{}'

# --- the read-only views lxc looks up
expect_eq "GET /1.0/networks lists the bridge" "$(api GET /1.0/networks | jq -c .metadata)" "[\"/1.0/networks/$FERRY_BRIDGE\"]"
network=$(api GET /1.0/networks/$FERRY_BRIDGE)
expect_eq "the bridge is a managed bridge with NAT" "$(jq -r '.metadata | [.type,.managed,.config["ipv4.nat"]] | join(" ")' <<<"$network")" \
	"bridge true true"
cidr=$(jq -r '.metadata.config["ipv4.address"]' <<<"$network")
expect_match "the bridge's subnet is shown" "$cidr" '^10\.[0-9]+\.[0-9]+\.1/24$'
expect_match "the bridge exists with that address" "$(ip -o -4 addr show dev "$FERRY_BRIDGE" 2>&1)" "inet $cidr"
expect_eq "another network: 404" "$(api_code GET /1.0/networks/nope0)" 404
expect_eq "default profile puts eth0 on the bridge" \
	"$(api GET /1.0/profiles/default | jq -r '.metadata.devices.eth0 | [.type,.network] | join(" ")')" "nic $FERRY_BRIDGE"
expect_eq "profiles list" "$(api GET /1.0/profiles | jq -c .metadata)" '["/1.0/profiles/default"]'
expect_eq "storage pool default is dir" "$(api GET '/1.0/storage-pools?recursion=1' | jq -r '.metadata[0] | .name + " " + .driver')" "default dir"

# --- operations and events
mkfifo "$TEST_DIR/events.fifo" 2>/dev/null
python3 "$here/ws_client.py" "$SOCK" '/1.0/events?type=operation' --timeout 30 --ready "$TEST_DIR/events.ready" \
	>"$TEST_DIR/events.out" 2>"$TEST_DIR/events.err" &
events_pid=$!
for i in $(seq 100); do [ -e "$TEST_DIR/events.ready" ] && break; sleep 0.05; done
check "events websocket upgraded" test -e "$TEST_DIR/events.ready"
expect_eq "unknown event type: 400" "$(api_code GET '/1.0/events?type=gossip')" 400

headers=$TEST_DIR/headers
resp=$(curl -s -D "$headers" --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
	-d '{"source":{"type":"build","name":"busybox"}}' http://ferry/1.0/images)
op=$(jq -r .operation <<<"$resp")
id=${op##*/}
expect_eq "a long action answers 202 async" "$(head -1 "$headers" | tr -d '\r' | awk '{print $2}') $(jq -r '[.type,.status_code] | join(" ")' <<<"$resp")" \
	"202 async 100"
expect_eq "Location names the operation" "$(grep -i '^Location:' "$headers" | tr -d '\r' | awk '{print $2}')" "$op"
expect_eq "the operation object" "$(jq -r '.metadata | [.class,.location,(.id|length)] | join(" ")' <<<"$resp")" "task none 36"
start=$(date +%s%N)
quick=$(api GET "/1.0/operations/$id/wait?timeout=0")
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_match "wait?timeout=0 returns at once with the operation" "$(jq -r .metadata.id <<<"$quick") $elapsed_ms" "^$id [0-9]{1,3}$"
done_op=$(api GET "/1.0/operations/$id/wait?timeout=60")
expect_eq "wait returns the finished operation" "$(jq -r '.metadata | [.status,.status_code,.err] | join(" ")' <<<"$done_op")" "Success 200 "
fingerprint=$(jq -r .metadata.metadata.fingerprint <<<"$done_op")
expect_match "its metadata has the image's fingerprint" "$fingerprint" '^[0-9a-f]{64}$'
expect_eq "GET /1.0/operations groups by status" "$(api GET /1.0/operations | jq -r '.metadata.success | index("'"$op"'") != null')" true
expect_eq "recursion=1 lists objects" "$(api GET '/1.0/operations?recursion=1' | jq -r '[.metadata.success[] | select(.id == "'"$id"'")] | length')" 1
expect_eq "GET /1.0/operations/ID" "$(api GET "$op" | jq -r .metadata.description)" "Building image busybox"
expect_eq "a task can't be cancelled" "$(api_code DELETE "$op")" 400
expect_eq "missing operation: 404" "$(api_code GET /1.0/operations/00000000-0000-0000-0000-000000000000)" 404
expect_eq "missing operation wait: 404" "$(api_code GET '/1.0/operations/nope/wait?timeout=1')" 404

for i in $(seq 100); do grep -q '"status":"Success"' "$TEST_DIR/events.out" 2>/dev/null && break; sleep 0.05; done
kill "$events_pid" 2>/dev/null
wait "$events_pid" 2>/dev/null
events=$(jq -sc '[.[] | select(.type == "operation" and .metadata.id == "'"$id"'") | .metadata.status]' "$TEST_DIR/events.out" 2>&1)
expect_match "events: the operation's changes arrive as operation events" "$events" '"Running".*"Success"'
expect_eq "events: envelope fields" \
	"$(head -1 "$TEST_DIR/events.out" | jq -r '[.location,.project,(.timestamp|test("^[0-9-]+T[0-9:.]+Z$"))] | join(" ")')" "none default true"

# --- one ferryd per root
second=$("$FERRYD" --root "$FERRY_DIR" --bridge "$FERRY_BRIDGE" 2>&1)
rc=$?
expect_match "a second ferryd on the same root refuses to start" "$rc $second" "^[1-9][0-9]* .*already running"
expect_eq "the first one still answers" "$(api GET /1.0 | jq -r .metadata.environment.server_pid)" "$FERRYD_PID"

# --- stop and start
kill -TERM "$FERRYD_PID"
wait "$FERRYD_PID"
expect_eq "SIGTERM: ferryd exits 0" "$?" 0
FERRYD_PID=
check "SIGTERM: the socket is gone" test ! -e "$SOCK"
# What a killed ferryd leaves: a socket file nobody listens on.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SOCK"
core_start
check "a stale socket file doesn't stop a new ferryd" test -S "$SOCK"
expect_eq "state survives a restart (image record)" "$(api GET "/1.0/images/${fingerprint:0:12}" | jq -r .metadata.fingerprint)" "$fingerprint"
expect_eq "the bridge keeps its subnet" "$(api GET /1.0/networks/$FERRY_BRIDGE | jq -r '.metadata.config["ipv4.address"]')" "$cidr"
