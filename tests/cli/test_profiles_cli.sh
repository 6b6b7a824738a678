#!/usr/bin/env bash
# Profiles from the command line, the LXD way: a profile created, edited
# with YAML on stdin, shown, set and unset, assigned to a container (whose
# expanded config then shows it), renamed, refused deletion while in use,
# copied to a second ferryd over HTTPS (`ferry profile copy p r:`), and
# deleted; an instance's own disk device added (`ferry config device add`,
# a host directory the container sees), listed, shown and removed;
# invalid YAML and invalid values refused with the line and key at
# fault and nothing changed; `ferry config edit c1` from stdin and
# `ferry config show c1 --expanded`.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/remotes_lib.sh"
ferry_setup || exit 1
remote_setup s3cret || { echo "Bail out! remote setup failed"; exit 1; }
ferry remote add r "127.0.0.1:$REMOTE_PORT" --password s3cret --accept-certificate </dev/null >/dev/null ||
	{ echo "Bail out! remote add failed"; exit 1; }

ferry_busybox_image
ferry launch busybox c1 </dev/null >/dev/null || { echo "Bail out! launch failed"; exit 1; }

# --- create, list, edit from stdin, show
expect_eq "profile create" "$(ferry profile create web </dev/null)" "Profile web created"
expect_match "profile list shows it, unused" "$(ferry profile list --format csv)" '^web,,0$'
expect_match "profile list shows default, used by c1" "$(ferry profile list --format csv)" '^default,.*,1$'
ferry profile edit web <<'EOF'
description: Web servers
config:
  limits.memory: 256MiB
  user.role: web
devices: {}
EOF
expect_eq "profile edit from stdin" "$?" 0
show=$(ferry profile show web)
expect_match "profile show: the config" "$show" '^  limits.memory: 256MiB$'
expect_match "profile show: the description" "$show" '^description: Web servers$'
expect_match "profile show: the name" "$show" '^name: web$'
expect_eq "profile show parses back as the same profile" \
	"$(ferry profile show web | ferry profile edit web && ferry profile get web user.role)" web

# --- set, get, unset
check "profile set KEY=VALUE" ferry profile set web user.a=1 user.b=2
expect_eq "profile get" "$(ferry profile get web user.a)" 1
check "profile set KEY VALUE" ferry profile set web user.c three
expect_eq "profile get the second form" "$(ferry profile get web user.c)" three
check "profile unset" ferry profile unset web user.a
expect_eq "profile get after unset" "$(ferry profile get web user.a)" ""
expect_eq "... the other keys stay" "$(ferry profile get web user.b)" 2
check_fails "profile unset of a key not set fails" ferry profile unset web user.nope

# --- invalid YAML and invalid values: the line and key, nothing changed
before=$(ferry profile show web)
out=$(printf 'config:\n  user.role: web\n  user.x: [1, 2\n' | ferry profile edit web 2>&1)
expect_eq "invalid YAML is refused" "$?" 1
expect_match "... naming its line" "$out" 'line [34]'
out=$(printf 'description: x\nconfig:\n  user.role: web\n  limits.memory: lots\n' | ferry profile edit web 2>&1)
expect_eq "an invalid value is refused" "$?" 1
expect_match "... naming the line and the key" "$out" 'line 4: config.limits.memory'
out=$(printf 'config:\n  user.role: web\ndevices:\n  eth9: nonsense\n' | ferry profile edit web 2>&1)
expect_eq "a device that is no map is refused" "$?" 1
expect_match "... naming the line and the key" "$out" 'line 4: devices.eth9'
expect_eq "... and nothing changed" "$(ferry profile show web)" "$before"

# --- assign to an instance; the expanded config
check "profile add c1 web" ferry profile add c1 web
expect_eq "c1's profiles" "$(ferry config show c1 | sed -n '/^profiles:/,/^[a-z]/p' | grep '^- ' | tr -d '\n')" "- default- web"
expect_match "config show c1 --expanded has the profile's key" "$(ferry config show c1 --expanded)" 'limits.memory: 256MiB'
check_fails "config show c1 (not expanded) has not" grep -q 'limits.memory' <<<"$(ferry config show c1)"
expect_match "expanded config shows the default profile's nic" "$(ferry config show c1 --expanded)" 'eth0:'
ferry profile delete web >/dev/null 2>"$TEST_DIR/err"
expect_eq "a profile in use can't be deleted" "$?" 1
check "profile assign c1 default" ferry profile assign c1 default
expect_eq "... c1 has only default" "$(ferry config show c1 | sed -n '/^profiles:/,/^[a-z]/p' | grep -c '^- ')" 1
check "profile assign c1 default,web" ferry profile assign c1 default,web
check "profile remove c1 web" ferry profile remove c1 web
check "profile add c1 web again" ferry profile add c1 web
out=$(ferry profile set web limits.processes=200 2>&1)
expect_eq "profile set on a profile in use" "$?" 0
expect_eq "... reaches c1's expanded config" "$(ferry config get c1 limits.processes --expanded)" 200

out=$(ferry profile set web environment.MODE=prod 2>&1)
expect_match "a key that waits for the next start is named (profile PATCH)" "$out" \
	'^Applies at the next start of c1: environment.MODE$'
out=$(ferry config set c1 environment.OWN=1 2>&1)
expect_match "... also for the instance's own key (instance PUT)" "$out" '^Applies at the next start of c1: environment.OWN$'
check "profile unset web environment.MODE" ferry profile unset web environment.MODE
check "config unset c1 environment.OWN" ferry config unset c1 environment.OWN

# --- rename carries the instances along
check "profile rename web www" ferry profile rename web www
expect_match "c1 uses www now" "$(ferry config show c1)" '^- www$'
check_fails "web is gone" ferry profile show web

# --- devices
check "profile device add" ferry profile device add www extra unix-char path=/dev/zero
expect_eq "profile device list" "$(ferry profile device list www)" extra
expect_match "profile device show" "$(ferry profile device show www)" 'path: /dev/zero'
check "profile device remove" ferry profile device remove www extra
expect_eq "... gone" "$(ferry profile device list www)" ""
# An instance's own devices (lxc config device): a host directory bound in.
share=$TEST_DIR/share
mkdir -m 755 "$share" && echo from-the-host >"$share/data" && chmod 644 "$share/data"
check "stop c1" ferry stop c1 --force
check "config device add c1 share disk" ferry config device add c1 share disk source="$share" path=/mnt/share readonly=true
expect_eq "config device list c1 (its own: the others are its profile's)" "$(ferry config device list c1)" share
expect_match "config device show c1" "$(ferry config device show c1)" "source: $share"
check_fails "adding it again fails" ferry config device add c1 share disk source="$share" path=/mnt/share
check "start c1" ferry start c1
expect_eq "c1 sees the host's file" "$(ferry exec c1 -- cat /mnt/share/data)" from-the-host
check "stop c1" ferry stop c1 --force
check "config device remove c1 share" ferry config device remove c1 share
expect_eq "... gone" "$(ferry config device list c1)" ""
check_fails "removing it again fails" ferry config device remove c1 share
check "start c1 again" ferry start c1

# --- copy to another server
check "profile copy www r:" ferry profile copy www r:
expect_eq "the copy on r: has the config" "$(ferry profile get r:www limits.memory)" 256MiB
expect_match "... as the second server sees it" "$(ferry2 profile show www)" 'user.role: web'
expect_match "... used by nothing there" "$(ferry profile list r: --format csv)" '^www,Web servers,0$'
ferry profile copy www r: >/dev/null 2>&1
expect_eq "copying again without --refresh fails" "$?" 1
check "profile set r:www" ferry profile set r:www user.role=edge
check "profile copy --refresh" ferry profile copy www r:www --refresh
expect_eq "... brought it back" "$(ferry profile get r:www user.role)" web
check "profile copy www r:other" ferry profile copy www r:other
check "profile delete on the remote" ferry profile delete r:www r:other

# --- config edit c1 from stdin
ferry config show c1 | sed 's/^config:$/config:\n  user.edited: "yes"/' | ferry config edit c1
expect_eq "config edit c1 from stdin" "$?" 0
expect_eq "... took the new key" "$(ferry config get c1 user.edited)" yes
out=$(printf 'config:\n  user.edited: "no"\n  limits.cpu: lots\nprofiles:\n- default\n' | ferry config edit c1 2>&1)
expect_eq "config edit with an invalid value fails" "$?" 1
expect_match "... naming the line and the key" "$out" 'line 3: config.limits.cpu'
expect_eq "... and nothing changed" "$(ferry config get c1 user.edited)" yes
out=$(printf 'config:\n  user.edited: "no"\nnosuchfield: 1\n' | ferry config edit c1 2>&1)
expect_eq "config edit with an unknown field fails" "$?" 1
expect_match "... naming it" "$out" 'line 3: nosuchfield'

# --- the end: unused, deleted
check "profile remove c1 www" ferry profile remove c1 www
check "profile delete www" ferry profile delete www
check_fails "default can't be deleted" ferry profile delete default
