#!/usr/bin/env bash
# Instances through the REST API: create from the busybox image, start,
# look inside, stop, restart, freeze, delete; bad input changes nothing;
# ferryd restarts while a container runs and finds it again.
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
# The HTTP status only.
api_status() {
	local method=$1 path=$2
	if [ $# -ge 3 ]; then
		curl -s -o /dev/null -w '%{http_code}' --unix-socket "$FERRY_DIR/unix.socket" -X "$method" \
			-H 'Content-Type: application/json' --data-binary "$3" "http://ferry$path"
	else
		curl -s -o /dev/null -w '%{http_code}' --unix-socket "$FERRY_DIR/unix.socket" -X "$method" "http://ferry$path"
	fi
}
# An async request, waited for: prints the finished operation (status, err,
# metadata), or for a synchronous error {"status":"Failure","err":...}.
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
api_busybox_image() {
	[ "$(api_status GET /1.0/images/aliases/busybox)" = 200 ] ||
		api_wait POST /1.0/images '{"source":{"type":"build","name":"busybox"},"aliases":[{"name":"busybox"}]}' >/dev/null
}
# Host address N of the bridge's subnet ("10.X.Y.N").
api_subnet_host() {
	ip -4 -o addr show dev "$FERRY_BRIDGE" | awk '{print $4}' | sed "s|\.[0-9]*/.*|.$1|"
}
ferry_setup
# Container root (uid 1000000) must reach its rootfs below the test dir.
chmod 711 "$TEST_DIR"
api_busybox_image

# --- create and start ---
op=$(api_wait POST /1.0/instances '{"name":"c1","source":{"type":"image","alias":"busybox"}}')
expect_eq "create c1 succeeds" "$(jq -r .status <<<"$op")" "Success"
c1=$(api GET /1.0/instances/c1)
expect_eq "c1 is Stopped after create" "$(jq -r .metadata.status <<<"$c1")" "Stopped"
expect_eq "c1 status_code 102" "$(jq -r .metadata.status_code <<<"$c1")" "102"
expect_match "c1 has a MAC in LXD's prefix" "$(jq -r '.metadata.config["volatile.eth0.hwaddr"]' <<<"$c1")" '^00:16:3e:'
expect_match "c1 has a base image" "$(jq -r '.metadata.config["volatile.base_image"]' <<<"$c1")" '^[0-9a-f]{64}$'
expect_eq "expanded_devices has the default profile's eth0" \
	"$(jq -c '.metadata.expanded_devices.eth0' <<<"$c1")" "{\"name\":\"eth0\",\"network\":\"$FERRY_BRIDGE\",\"type\":\"nic\"}"
expect_eq "expanded_devices has the root disk" "$(jq -r '.metadata.expanded_devices.root.path' <<<"$c1")" "/"
expect_eq "rootfs is owned by the idmap range" "$(stat -c %u "$FERRY_DIR/containers/c1/rootfs/bin")" "1000000"

op=$(api_wait PUT /1.0/instances/c1/state '{"action":"start"}')
expect_eq "start c1 succeeds" "$(jq -r .status <<<"$op")" "Success" "$(jq -r .err <<<"$op")"
state=$(api GET /1.0/instances/c1/state)
expect_eq "c1 is Running" "$(jq -r .metadata.status <<<"$state")" "Running"
pid=$(jq -r .metadata.pid <<<"$state")
expect_match "state shows init's pid" "$pid" '^[1-9][0-9]*$'
addr=$(jq -r '.metadata.network.eth0.addresses[] | select(.family=="inet") | .address' <<<"$state")
expect_eq "eth0 has the assigned address" "$addr" "$(jq -r '.metadata.config["volatile.eth0.ipv4.address"]' <<<"$(api GET /1.0/instances/c1)")"
expect_eq "the container's init is pid 1 inside" "$(grep NSpid "/proc/$pid/status" | awk '{print $NF}')" "1"
expect_eq "hostname is the name" "$(nsenter -t "$pid" -u hostname)" "c1"
check "the host reaches c1's address" busybox ping -c 1 -W 2 "$addr"
expect_match "a second start is refused" "$(api_wait PUT /1.0/instances/c1/state '{"action":"start"}' | jq -r .err)" \
	'The instance is already running'

# --- console log and logs ---
expect_eq "GET console gives the console log" \
	"$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$FERRY_DIR/unix.socket" http://ferry/1.0/instances/c1/console)" 200
expect_eq "DELETE console clears it" "$(api_status DELETE /1.0/instances/c1/console)" 200
expect_eq "GET logs lists URLs" "$(api GET /1.0/instances/c1/logs | jq -r '.metadata | type')" "array"
expect_match "a log name with a slash serves nothing" "$(api_status GET /1.0/instances/c1/logs/..%2F..%2Fferryd.log)" '^(400|404)$'
expect_eq "a log name starting with a dot is refused" "$(api_status GET /1.0/instances/c1/logs/.hidden)" 400
expect_eq "a missing log is 404" "$(api_status GET /1.0/instances/c1/logs/nosuch.log)" 404
expect_match "the console websocket operation has fds 0 and control" \
	"$(api POST /1.0/instances/c1/console '{"width":80,"height":24}' | jq -c '.metadata.metadata.fds | keys')" '\["0","control"\]'

# --- list ---
expect_eq "GET /1.0/instances lists c1's URL" "$(api GET /1.0/instances | jq -c .metadata)" '["/1.0/instances/c1"]'
# LXD's older name (pylxd 2.2.10 knows no other): the same routes.
expect_eq "GET /1.0/containers lists it too" "$(api GET /1.0/containers | jq -c .metadata)" '["/1.0/instances/c1"]'
expect_eq "... and GET /1.0/containers/c1/state gives its state" "$(api GET /1.0/containers/c1/state | jq -r .metadata.status)" \
	"$(api GET /1.0/instances/c1/state | jq -r .metadata.status)"
expect_eq "/1.0/containersx is no alias" "$(api_status GET /1.0/containersx)" 404
expect_eq "recursion=1 gives objects" "$(api GET '/1.0/instances?recursion=1' | jq -r '.metadata[0].name')" "c1"
expect_eq "recursion=2 includes state" "$(api GET '/1.0/instances?recursion=2' | jq -r '.metadata[0].state.pid')" "$pid"

# --- bad input changes nothing ---
for bad in 1abc -abc abc- 'a_b' "$(printf 'a%.0s' $(seq 64))"; do
	expect_eq "invalid name '$bad' is 400" \
		"$(api_status POST /1.0/instances "{\"name\":\"$bad\",\"source\":{\"type\":\"image\",\"alias\":\"busybox\"}}")" 400
done
expect_eq "a taken name is 409" \
	"$(api_status POST /1.0/instances '{"name":"c1","source":{"type":"image","alias":"busybox"}}')" 409
resp=$(api POST /1.0/instances '{"name":"c9","source":{"type":"image","alias":"nosuchimage"}}')
expect_eq "a missing image is 404" "$(jq -r .error_code <<<"$resp")" 404
expect_match "... with a message naming the image" "$(jq -r .error <<<"$resp")" 'nosuchimage'
expect_eq "... and leaves no instance" "$(api_status GET /1.0/instances/c9)" 404
check_fails "... and no directory" test -e "$FERRY_DIR/containers/c9"
resp=$(api POST /1.0/instances '{"name":"c9","source":{"type":"image","alias":"busybox"},"config":{"foo":"bar"}}')
expect_eq "an unknown config key at create is 400" "$(jq -r .error_code <<<"$resp")" 400
expect_eq "... saying which" "$(jq -r .error <<<"$resp")" "Unknown configuration key: foo"
before=$(api GET /1.0/instances/c1 | jq -c .metadata.config)
expect_eq "PATCH with an unknown key is 400" "$(api_status PATCH /1.0/instances/c1 '{"config":{"foo":"bar"}}')" 400
expect_eq "PUT with a bad limits.memory is 400" \
	"$(api_status PUT /1.0/instances/c1 '{"config":{"limits.memory":"lots"}}')" 400
expect_eq "setting a volatile key is 400" \
	"$(api_status PATCH /1.0/instances/c1 '{"config":{"volatile.eth0.hwaddr":"00:16:3e:00:00:01"}}')" 400
expect_eq "... and the config is unchanged" "$(api GET /1.0/instances/c1 | jq -c .metadata.config)" "$before"
expect_eq "malformed JSON is 400" "$(api_status POST /1.0/instances '{"name": "c9", ')" 400
expect_eq "unknown action is 400" "$(api_status PUT /1.0/instances/c1/state '{"action":"dance"}')" 400
expect_eq "stateful restart is 400" "$(api_status PUT /1.0/instances/c1/state '{"action":"restart","stateful":true}')" 400
expect_eq "deleting a running instance is 400" "$(api_status DELETE /1.0/instances/c1)" 400
expect_eq "a missing instance is 404" "$(api_status GET /1.0/instances/nosuch)" 404

# --- config that applies ---
expect_eq "PATCH user.note" "$(api_status PATCH /1.0/instances/c1 '{"config":{"user.note":"hello","limits.memory":"256MiB"}}')" 200
expect_eq "... is stored" "$(api GET /1.0/instances/c1 | jq -r '.metadata.config["user.note"]')" "hello"
expect_eq "... and the volatile keys stay" "$(api GET /1.0/instances/c1 | jq -r '.metadata.config["volatile.eth0.hwaddr"]')" \
	"$(jq -r '.["volatile.eth0.hwaddr"]' <<<"$before")"

# --- freeze and unfreeze ---
expect_eq "freeze" "$(api_wait PUT /1.0/instances/c1/state '{"action":"freeze"}' | jq -r .status)" "Success"
expect_eq "c1 is Frozen" "$(api GET /1.0/instances/c1 | jq -r .metadata.status_code)" "110"
expect_eq "unfreeze" "$(api_wait PUT /1.0/instances/c1/state '{"action":"unfreeze"}' | jq -r .status)" "Success"
expect_eq "c1 is Running again" "$(api GET /1.0/instances/c1 | jq -r .metadata.status)" "Running"

# --- ferryd restarts while c1 runs ---
ferryd_stop
check "c1's init survives ferryd's exit" kill -0 "$pid"
ferryd_start
state=$(api GET /1.0/instances/c1/state)
expect_eq "after the restart c1 is Running" "$(jq -r .metadata.status <<<"$state")" "Running"
expect_eq "... with the same pid" "$(jq -r .metadata.pid <<<"$state")" "$pid"

# --- restart, stop ---
expect_eq "restart" "$(api_wait PUT /1.0/instances/c1/state '{"action":"restart","timeout":10}' | jq -r .status)" "Success"
newpid=$(api GET /1.0/instances/c1/state | jq -r .metadata.pid)
expect_match "after restart init is a new process" "$newpid" '^[1-9][0-9]*$'
check_fails "... and the old one is gone" kill -0 "$pid"
expect_eq "c1 kept its address" "$(api GET /1.0/instances/c1/state | jq -r '.metadata.network.eth0.addresses[] | select(.family=="inet") | .address')" "$addr"
expect_eq "stop" "$(api_wait PUT /1.0/instances/c1/state '{"action":"stop","timeout":10}' | jq -r .status)" "Success"
state=$(api GET /1.0/instances/c1/state)
expect_eq "c1 is Stopped" "$(jq -r .metadata.status <<<"$state")" "Stopped"
check_fails "its init is gone" kill -0 "$newpid"
check_fails "the host no longer reaches its address" busybox ping -c 1 -W 1 "$addr"
expect_match "a second stop is refused" "$(api_wait PUT /1.0/instances/c1/state '{"action":"stop"}' | jq -r .err)" \
	'The instance is already stopped'

# --- two containers start in parallel, with different addresses ---
api_wait POST /1.0/instances '{"name":"p1","source":{"type":"image","alias":"busybox"}}' >/dev/null
api_wait POST /1.0/instances '{"name":"p2","source":{"type":"image","alias":"busybox"},"devices":{"eth0":{"type":"nic","network":"'"$FERRY_BRIDGE"'","name":"eth0","ipv4.address":"'"$(api_subnet_host 200)"'"}}}' >/dev/null
op1=$(api PUT /1.0/instances/p1/state '{"action":"start"}' | jq -r .operation)
op2=$(api PUT /1.0/instances/p2/state '{"action":"start"}' | jq -r .operation)
expect_eq "p1 and p2 start in parallel" "$(api GET "$op1/wait?timeout=60" | jq -r .metadata.status) $(api GET "$op2/wait?timeout=60" | jq -r .metadata.status)" "Success Success"
a1=$(api GET /1.0/instances/p1/state | jq -r '.metadata.network.eth0.addresses[] | select(.family=="inet") | .address')
a2=$(api GET /1.0/instances/p2/state | jq -r '.metadata.network.eth0.addresses[] | select(.family=="inet") | .address')
expect_eq "p2 has its fixed address" "$a2" "$(api_subnet_host 200)"
check "the host reaches p1" busybox ping -c 1 -W 2 "$a1"
check "the host reaches p2" busybox ping -c 1 -W 2 "$a2"
resp=$(api POST /1.0/instances '{"name":"p3","source":{"type":"image","alias":"busybox"},"devices":{"eth0":{"type":"nic","network":"'"$FERRY_BRIDGE"'","ipv4.address":"'"$a2"'"}}}')
expect_eq "a fixed address already in use is 400" "$(jq -r .error_code <<<"$resp")" 400
for c in p1 p2; do api_wait PUT /1.0/instances/$c/state '{"action":"stop","force":true}' >/dev/null; done

# --- rename and delete ---
expect_eq "rename c1 to c2" "$(api_wait POST /1.0/instances/c1 '{"name":"c2"}' | jq -r .status)" "Success"
expect_eq "c1 is gone" "$(api_status GET /1.0/instances/c1)" 404
check "c2's rootfs moved" test -d "$FERRY_DIR/containers/c2/rootfs/bin"
for c in c2 p1 p2; do
	expect_eq "delete $c" "$(api_wait DELETE /1.0/instances/$c | jq -r .status)" "Success"
done
expect_eq "no instances left" "$(api GET /1.0/instances | jq -c .metadata)" "[]"
check_fails "no container directories left" test -e "$FERRY_DIR/containers/c2"
