#!/usr/bin/env bash
# Profiles through the REST API and the stock lxc client: the default
# profile from the first start; profiles applied in order with the
# instance's own settings on top; bad edits refused with nothing changed;
# a profile in use (and "default") refusing deletion; limits.memory reaching
# a running container's cgroup at once; a read-only bind mount from a
# profile; rename carrying the instances along.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/api_lib.sh"

# status METHOD PATH [BODY]: the HTTP status only.
status() {
	if [ $# -ge 3 ]; then
		api_code "$1" "$2" -H 'Content-Type: application/json' --data-binary "$3"
	else
		api_code "$1" "$2"
	fi
}
# wait_op RESPONSE: the finished operation, or {"status":"Failure","err":...} for a synchronous error.
wait_op() {
	local op
	op=$(jq -r '.operation // empty' <<<"$1")
	[ -n "$op" ] || { jq -c '{status: "Failure", err: .error, status_code: .error_code}' <<<"$1"; return; }
	api GET "$op/wait?timeout=120" | jq -c .metadata
}
# run_in NAME COMMAND_JSON: stdout of a command in the instance ("" and
# non-zero when it fails).
run_in() {
	local op rc
	op=$(wait_op "$(json POST "/1.0/instances/$1/exec" \
		"{\"command\": $2, \"record-output\": true, \"wait-for-websocket\": false}")")
	rc=$(jq -r .metadata.return <<<"$op")
	api GET "$(jq -r '.metadata.output["1"]' <<<"$op")"
	[ "$rc" = 0 ]
}
profile() { api GET "/1.0/profiles/$1" | jq -c .metadata; }
expanded() { api GET "/1.0/instances/$1" | jq -r ".metadata.expanded_config[\"$2\"]"; }

core_setup
# Container root (uid 1000000) must reach its rootfs below the test dir.
chmod 711 "$TEST_DIR"
[ "$(status GET /1.0/images/aliases/busybox)" = 200 ] ||
	wait_op "$(json POST /1.0/images '{"source":{"type":"build","name":"busybox"},"aliases":[{"name":"busybox"}]}')" >/dev/null

# --- the default profile, there from the first start
expect_eq "GET /1.0/profiles lists default" "$(api GET /1.0/profiles | jq -c .metadata)" '["/1.0/profiles/default"]'
expect_eq "default holds the bridge's nic and the root disk" "$(profile default | jq -c .devices)" \
	"{\"eth0\":{\"name\":\"eth0\",\"network\":\"$FERRY_BRIDGE\",\"type\":\"nic\"},\"root\":{\"path\":\"/\",\"pool\":\"default\",\"type\":\"disk\"}}"
expect_eq "recursion=1 gives the objects" "$(api GET '/1.0/profiles?recursion=1' | jq -r '.metadata[0].name')" default
expect_eq "deleting default is refused (403, as LXD)" "$(status DELETE /1.0/profiles/default)" 403
expect_eq "renaming default is refused (403, as LXD)" "$(status POST /1.0/profiles/default '{"name":"other"}')" 403

# --- create, inheritance and override order
expect_eq "create p1" "$(status POST /1.0/profiles '{"name":"p1","description":"first","config":{"user.color":"red","user.p1":"yes","limits.memory":"256MiB"}}')" 200
expect_eq "create p2" "$(status POST /1.0/profiles '{"name":"p2","config":{"user.color":"blue"}}')" 200
expect_eq "a taken name is 409" "$(status POST /1.0/profiles '{"name":"p1"}')" 409
expect_eq "a name with a slash is 400" "$(status POST /1.0/profiles '{"name":"a/b"}')" 400
expect_eq "an invalid key is refused at creation" "$(status POST /1.0/profiles '{"name":"p3","config":{"nonsense":"1"}}')" 400
expect_eq "... and nothing was created" "$(status GET /1.0/profiles/p3)" 404

op=$(wait_op "$(json POST /1.0/instances '{"name":"c1","source":{"type":"image","alias":"busybox"},"profiles":["default","p1","p2"]}')")
expect_eq "create c1 with default,p1,p2" "$(jq -r .status <<<"$op")" Success
expect_eq "the later profile wins (p2 over p1)" "$(expanded c1 user.color)" blue
expect_eq "keys only p1 sets come through" "$(expanded c1 user.p1)" yes
expect_eq "the default profile's devices come through" \
	"$(api GET /1.0/instances/c1 | jq -r '.metadata.expanded_devices.root.pool')" default
wait_op "$(json PATCH /1.0/instances/c1 '{"config":{"user.color":"green"}}')" >/dev/null
expect_eq "the instance's own key is on top" "$(expanded c1 user.color)" green
expect_eq "... and its own config has only its own" "$(api GET /1.0/instances/c1 | jq -r '.metadata.config["user.p1"]')" null
wait_op "$(json PATCH /1.0/instances/c1 '{"profiles":["default","p2","p1"]}')" >/dev/null
wait_op "$(json PUT /1.0/instances/c1 "$(api GET /1.0/instances/c1 | jq -c '.metadata | del(.config["user.color"])')")" >/dev/null
expect_eq "reordered (default,p2,p1): p1 wins" "$(expanded c1 user.color)" red
expect_eq "used_by lists c1" "$(profile p1 | jq -c .used_by)" '["/1.0/instances/c1"]'

# --- an unknown profile: refused, nothing changed
before=$(api GET /1.0/instances/c1 | jq -c '.metadata | del(.status, .status_code, .last_used_at)')
resp=$(json PATCH /1.0/instances/c1 '{"profiles":["default","nope"]}')
expect_eq "assigning an unknown profile is 400" "$(jq -r .error_code <<<"$resp")" 400
expect_match "... naming it" "$(jq -r .error <<<"$resp")" 'Profile not found: nope'
expect_eq "... and the instance is unchanged" \
	"$(api GET /1.0/instances/c1 | jq -c '.metadata | del(.status, .status_code, .last_used_at)')" "$before"
expect_eq "creating with an unknown profile is 400" \
	"$(status POST /1.0/instances '{"name":"c9","source":{"type":"image","alias":"busybox"},"profiles":["default","nope"]}')" 400

# --- every invalid edit refused, the profile unchanged
before=$(profile p1)
bad_bodies=(
	'{"config":{"nonsense.key":"1"}}'
	'{"config":{"limits.memory":"lots"}}'
	'{"config":{"limits.cpu":"-1"}}'
	'{"config":{"limits.processes":"many"}}'
	'{"config":{"security.privileged":"maybe"}}'
	'{"config":{"boot.autostart":"2"}}'
	'{"config":{"migration.memory":"teleport"}}'
	'{"config":{"migration.stateful":"perhaps"}}'
	'{"config":{"volatile.eth0.hwaddr":"00:16:3e:00:00:01"}}'
	'{"config":{"user.x":1}}'
	'{"config":{"user.x":{"a":"b"}}}'
	'{"config":"limits.memory=1G"}'
	'{"devices":{"d":{"type":"floppy"}}}'
	'{"devices":{"d":{"type":"disk","path":"/mnt"}}}'
	'{"devices":{"d":{"type":"disk","source":"relative","path":"/mnt"}}}'
	'{"devices":{"d":{"type":"disk","source":"/srv","path":"/mnt","readonly":"sometimes"}}}'
	'{"devices":{"d":{"type":"disk","source":"/srv","path":"/mnt","colour":"blue"}}}'
	'{"devices":{"e":{"type":"nic","network":"nosuchbridge"}}}'
	'{"devices":{"e":{"type":"nic","network":"'"$FERRY_BRIDGE"'","ipv4.address":"300.1.1.1"}}}'
	'{"devices":{"e":{"type":"nic","network":"'"$FERRY_BRIDGE"'","hwaddr":"zz:zz"}}}'
	'{"devices":{"e":{"type":"nic","nictype":"macvlan","parent":"eth0"}}}'
	'{"devices":{"u":{"type":"unix-char","path":"/dev/x","major":"a","minor":"1"}}}'
	'{"devices":{"u":{"type":"unix-char","path":"/dev/x","major":"1"}}}'
	'{"devices":{"u":{"type":"unix-char"}}}'
	'{"devices":{"d":"disk"}}'
	'{"description":7}'
	'{"config":{"security.privileged":"true"}}'
)
for body in "${bad_bodies[@]}"; do
	code=$(status PUT /1.0/profiles/p1 "$body")
	if [ "$code" = 400 ] || [ "$code" = 404 ]; then pass "PUT $body is refused ($code)"; else fail "PUT $body is refused" "status $code"; fi
done
expect_eq "p1 is unchanged after every refused PUT" "$(profile p1)" "$before"
expect_eq "PATCH with a bad value is refused too" "$(status PATCH /1.0/profiles/p1 '{"config":{"limits.memory":"x"}}')" 400
expect_eq "... and p1 is still unchanged" "$(profile p1)" "$before"
# Removing the root disk from default would leave c1 without one.
expect_eq "an edit leaving an instance without a root disk is refused" \
	"$(status PUT /1.0/profiles/default "$(profile default | jq -c '{config, description, devices: (.devices | del(.root))}')")" 400

# --- in use: can't delete; unused: can
resp=$(api DELETE /1.0/profiles/p1)
expect_eq "deleting a profile in use is 400" "$(jq -r .error_code <<<"$resp")" 400
expect_match "... naming the instance" "$(jq -r .error <<<"$resp")" 'in use.*c1'
expect_eq "create p-unused" "$(status POST /1.0/profiles '{"name":"p-unused"}')" 200
expect_eq "an unused profile can be deleted" "$(status DELETE /1.0/profiles/p-unused)" 200
expect_eq "... and is gone" "$(status GET /1.0/profiles/p-unused)" 404

# --- rename: the instances follow
expect_eq "rename p2 to p2b" "$(status POST /1.0/profiles/p2 '{"name":"p2b"}')" 200
expect_eq "c1 lists the new name in place" "$(api GET /1.0/instances/c1 | jq -c .metadata.profiles)" '["default","p2b","p1"]'
expect_eq "the old name is gone" "$(status GET /1.0/profiles/p2)" 404
expect_eq "renaming onto a taken name is 409" "$(status POST /1.0/profiles/p2b '{"name":"p1"}')" 409

# --- live: limits.memory through the profile reaches the running cgroup
wait_op "$(json PUT /1.0/instances/c1/state '{"action":"start"}')" >/dev/null
pid=$(api GET /1.0/instances/c1/state | jq -r .metadata.pid)
cg=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")
limit() { cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes"; }
expect_eq "c1 starts with p1's 256MiB" "$(limit)" $((256 * 1024 * 1024))
resp=$(json PATCH /1.0/profiles/p1 '{"config":{"limits.memory":"192MiB"}}')
expect_eq "PATCH p1 limits.memory=192MiB" "$(jq -r .error_code <<<"$resp")" 0
expect_eq "the running container's cgroup has it at once" "$(limit)" $((192 * 1024 * 1024))
expect_eq "... and nothing waits for a restart" "$(jq -c .metadata.applies_at_next_start <<<"$resp")" '{}'
wait_op "$(json PATCH /1.0/instances/c1 '{"config":{"limits.memory":"160MiB"}}')" >/dev/null
expect_eq "the instance's own limit overrides the profile's, live" "$(limit)" $((160 * 1024 * 1024))

# --- a read-only bind mount from a profile: at the next start
mkdir -p "$TEST_DIR/share"
echo hello-from-host >"$TEST_DIR/share/hello"
chmod 755 "$TEST_DIR/share"; chmod 644 "$TEST_DIR/share/hello"
resp=$(json PATCH /1.0/profiles/p1 "{\"devices\":{\"data\":{\"type\":\"disk\",\"source\":\"$TEST_DIR/share\",\"path\":\"/mnt/data\",\"readonly\":\"true\"}}}")
expect_eq "adding a disk to p1 while c1 runs" "$(jq -r .error_code <<<"$resp")" 0
expect_eq "... says it applies at c1's next start" "$(jq -c .metadata.applies_at_next_start <<<"$resp")" '{"c1":["devices.data"]}'
wait_op "$(json PUT /1.0/instances/c1/state '{"action":"restart","timeout":0}')" >/dev/null
expect_eq "after a restart the host's file is visible" "$(run_in c1 '["cat","/mnt/data/hello"]')" hello-from-host
check_fails "... and the mount is read-only" run_in c1 '["touch","/mnt/data/new"]'
op=$(wait_op "$(json PATCH /1.0/instances/c1 '{"config":{"environment.GREETING":"hi"}}')")
resp=$(json PATCH /1.0/instances/c1 '{"config":{"environment.GREETING":"hello"}}')
expect_eq "an instance edit says which keys wait for a restart" "$(jq -c .metadata.applies_at_next_start <<<"$resp")" '["environment.GREETING"]'
wait_op "$(json PUT /1.0/instances/c1/state '{"action":"stop","force":true}')" >/dev/null

# --- the stock lxc client
if command -v lxc >/dev/null; then
	export LXD_DIR=$FERRY_DIR
	export HOME=$TEST_DIR/home
	mkdir -p "$HOME"
	lxc() { timeout 120 /usr/bin/lxc "$@"; }
	check "lxc profile create p" lxc profile create p </dev/null
	cat >"$TEST_DIR/p.yaml" <<-YAML
	config:
	  limits.cpu: 1
	  user.via: lxc
	description: edited by lxc
	devices:
	  data:
	    path: /mnt/data
	    readonly: "true"
	    source: $TEST_DIR/share
	    type: disk
	YAML
	check "lxc profile edit p < yaml" lxc profile edit p <"$TEST_DIR/p.yaml"
	show=$(lxc profile show p </dev/null)
	expect_match "lxc profile show p shows the config" "$show" 'user\.via: lxc'
	expect_match "... the description" "$show" 'description: edited by lxc'
	expect_match "... and the device" "$show" 'path: /mnt/data'
	expect_eq "the API has the number as a string" "$(profile p | jq -r '.config["limits.cpu"]')" 1
	check_fails "lxc profile edit refuses a bad value" lxc profile edit p <<<'config: {limits.memory: lots}'
	expect_eq "... leaving p as it was" "$(profile p | jq -r '.config["user.via"]')" lxc
	check "lxc profile assign c1 default,p" lxc profile assign c1 default,p </dev/null
	expect_eq "c1's profiles are default,p" "$(api GET /1.0/instances/c1 | jq -c .metadata.profiles)" '["default","p"]'
	expect_eq "c1's expanded config has p's key" "$(expanded c1 user.via)" lxc
	expect_match "lxc profile list shows p" "$(lxc profile list </dev/null)" '\| p '
	check_fails "lxc profile delete p (in use) fails" lxc profile delete p </dev/null
else
	echo "ok - $TEST_NAME: # SKIP lxc (lxd-client) is not installed"
fi
