#!/usr/bin/env bash
# Images through the API: build busybox, look it up by fingerprint prefix
# and alias, edit it, export it, import it back, delete it; bad uploads and
# missing images get clear errors and change nothing.
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/api_lib.sh"

core_setup

# --- build
built=$(op_wait "$(json POST /1.0/images '{"source":{"type":"build","name":"busybox"},"aliases":[{"name":"busybox","description":"small"}]}')")
expect_eq "build busybox: the operation succeeds" "$(jq -r .status <<<"$built")" Success
fp=$(jq -r .metadata.fingerprint <<<"$built")
expect_match "build busybox: fingerprint in the operation's metadata" "$fp" '^[0-9a-f]{64}$'
expect_eq "unknown build: 400" "$(api_code POST /1.0/images -H 'Content-Type: application/json' -d '{"source":{"type":"build","name":"gentoo"}}')" 400
expect_eq "unknown source type: 400" "$(api_code POST /1.0/images -H 'Content-Type: application/json' -d '{"source":{"type":"url","url":"http://x"}}')" 400

# --- look up
expect_eq "GET /1.0/images lists it" "$(api GET /1.0/images | jq -c .metadata)" "[\"/1.0/images/$fp\"]"
image=$(api GET "/1.0/images?recursion=1" | jq -c '.metadata[0]')
expect_eq "image object: LXD's fields" \
	"$(jq -r '[.fingerprint == "'"$fp"'", .architecture, .type, .public, .cached, (.size > 0), .profiles[0], .aliases[0].name, .aliases[0].description] | join(" ")' <<<"$image")" \
	"true x86_64 container false false true default busybox small"
expect_match "image object: timestamps" "$(jq -r '[.created_at,.uploaded_at,.expires_at] | join(" ")' <<<"$image")" \
	'^[0-9]{4}-.*Z [0-9]{4}-.*Z 0001-01-01T00:00:00Z$'
expect_eq "GET by fingerprint prefix" "$(api GET "/1.0/images/${fp:0:12}" | jq -r .metadata.fingerprint)" "$fp"
expect_eq "missing image: 404" "$(api_code GET /1.0/images/ffffffffffff)" 404
expect_eq "missing image: LXD's error" "$(api GET /1.0/images/ffffffffffff | jq -r '[.type,.error_code] | join(" ")')" "error 404"

# --- edit
json PATCH "/1.0/images/$fp" '{"properties":{"description":"patched"}}' >/dev/null
props=$(api GET "/1.0/images/$fp" | jq -c .metadata.properties)
expect_eq "PATCH merges properties" "$(jq -r '.description' <<<"$props")" patched
expect_match "PATCH keeps the other properties" "$(jq -r 'keys | length' <<<"$props")" '^([2-9]|[1-9][0-9]+)$'
json PUT "/1.0/images/$fp" '{"public":true,"properties":{"os":"busybox"}}' >/dev/null
expect_eq "PUT replaces" "$(api GET "/1.0/images/$fp" | jq -c '[.metadata.public, .metadata.properties]')" '[true,{"os":"busybox"}]'
expect_eq "PUT with a bad field: 400" "$(api_code PUT "/1.0/images/$fp" -H 'Content-Type: application/json' -d '{"public":"yes"}')" 400

# --- aliases
expect_eq "aliases list" "$(api GET /1.0/images/aliases | jq -c .metadata)" '["/1.0/images/aliases/busybox"]'
expect_eq "alias object" "$(api GET /1.0/images/aliases/busybox | jq -r '.metadata | [.name,.target == "'"$fp"'",.description,.type] | join(" ")')" \
	"busybox true small container"
expect_eq "create alias" "$(api_code POST /1.0/images/aliases -H 'Content-Type: application/json' -d '{"name":"bb","target":"'"${fp:0:8}"'","description":"short"}')" 200
expect_eq "alias target is the full fingerprint" "$(api GET /1.0/images/aliases/bb | jq -r .metadata.target)" "$fp"
expect_eq "taken alias name: 409" "$(api_code POST /1.0/images/aliases -H 'Content-Type: application/json' -d '{"name":"bb","target":"'"$fp"'"}')" 409
expect_eq "alias to a missing image: 404" "$(api_code POST /1.0/images/aliases -H 'Content-Type: application/json' -d '{"name":"cc","target":"ffffffff"}')" 404
expect_eq "alias without a name: 400" "$(api_code POST /1.0/images/aliases -H 'Content-Type: application/json' -d '{"target":"'"$fp"'"}')" 400
json PATCH /1.0/images/aliases/bb '{"description":"patched"}' >/dev/null
expect_eq "PATCH alias description" "$(api GET /1.0/images/aliases/bb | jq -r '.metadata | [.description, .target == "'"$fp"'"] | join(" ")')" "patched true"
expect_eq "PUT alias needs a target" "$(api_code PUT /1.0/images/aliases/bb -H 'Content-Type: application/json' -d '{"description":"x"}')" 400
expect_eq "rename alias" "$(api_code POST /1.0/images/aliases/bb -H 'Content-Type: application/json' -d '{"name":"bb2"}')" 200
expect_eq "old alias name gone" "$(api_code GET /1.0/images/aliases/bb)" 404
expect_eq "rename onto a taken name: 409" "$(api_code POST /1.0/images/aliases/bb2 -H 'Content-Type: application/json' -d '{"name":"busybox"}')" 409
expect_eq "image lists both aliases" "$(api GET "/1.0/images/$fp" | jq -c '[.metadata.aliases[].name]')" '["bb2","busybox"]'
expect_eq "recursion=1 alias list" "$(api GET '/1.0/images/aliases?recursion=1' | jq -c '[.metadata[].name]')" '["bb2","busybox"]'
expect_eq "delete alias" "$(api_code DELETE /1.0/images/aliases/bb2)" 200
expect_eq "delete it again: 404" "$(api_code DELETE /1.0/images/aliases/bb2)" 404

# --- export, re-import
export_file=$TEST_DIR/export.tar.gz
curl -s -D "$TEST_DIR/export.headers" -o "$export_file" --unix-socket "$SOCK" "http://ferry/1.0/images/$fp/export"
expect_eq "export: the tarball's sha256 is the fingerprint" "$(sha256sum "$export_file" | awk '{print $1}')" "$fp"
expect_match "export: Content-Disposition names the file" "$(grep -i '^Content-Disposition:' "$TEST_DIR/export.headers")" 'attachment; filename=busybox'
expect_eq "export a missing image: 404" "$(api_code GET /1.0/images/ffffffff/export)" 404
upload() { api_code POST /1.0/images -H 'Content-Type: application/octet-stream' --data-binary "@$1"; }
expect_eq "re-import the same tarball: 409" "$(upload "$export_file")" 409

# --- copy of a local image: the aliases are new, the image the same
copied=$(op_wait "$(json POST /1.0/images '{"source":{"type":"image","alias":"busybox"},"aliases":[{"name":"copy"}]}')")
expect_eq "copy a local image: same fingerprint" "$(jq -r '[.status,.metadata.fingerprint] | join(" ")' <<<"$copied")" "Success $fp"
expect_eq "copy adds its alias" "$(api GET /1.0/images/aliases/copy | jq -r .metadata.target)" "$fp"

# --- delete
deleted=$(op_wait "$(api DELETE "/1.0/images/$fp")")
expect_eq "delete: the operation succeeds" "$(jq -r .status <<<"$deleted")" Success
expect_eq "deleted image: 404" "$(api_code GET "/1.0/images/$fp")" 404
expect_eq "its aliases went with it" "$(api GET /1.0/images/aliases | jq -c .metadata)" '[]'
check "its tarball is gone from the store" test ! -e "$FERRY_DIR/images/$fp"
expect_eq "delete a missing image: 404" "$(api_code DELETE "/1.0/images/$fp")" 404

resp=$(curl -s --unix-socket "$SOCK" -X POST -H 'Content-Type: application/octet-stream' -H 'X-LXD-public: true' \
	--data-binary "@$export_file" http://ferry/1.0/images)
imported=$(op_wait "$resp")
expect_eq "import the export back: same fingerprint" "$(jq -r '[.status,.metadata.fingerprint] | join(" ")' <<<"$imported")" "Success $fp"
expect_eq "imported image is public (X-LXD-public)" "$(api GET "/1.0/images/$fp" | jq -r .metadata.public)" true

# --- bad uploads
head -c 5000 /dev/urandom >"$TEST_DIR/garbage"
expect_eq "garbage upload: 400" "$(upload "$TEST_DIR/garbage")" 400
head -c $((5 << 20)) /dev/urandom >"$TEST_DIR/garbage.big"
expect_eq "large garbage upload (spooled to disk): 400" "$(upload "$TEST_DIR/garbage.big")" 400
python3 - "$TEST_DIR/evil.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as tar:
    for name, data in (("metadata.yaml", b"architecture: x86_64\ncreation_date: 1\n"), ("rootfs/../../evil", b"x")):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    info = tarfile.TarInfo("rootfs")
    info.type = tarfile.DIRTYPE
    tar.addfile(info)
PY
evil=$(api POST /1.0/images -H 'Content-Type: application/octet-stream' --data-binary "@$TEST_DIR/evil.tar")
expect_eq "tarball with ../ paths: 400" "$(jq -r .error_code <<<"$evil")" 400
expect_eq "bad uploads add no image" "$(api GET /1.0/images | jq -r '.metadata | length')" 1
check "bad uploads leave no file behind" bash -c "[ \$(ls -A '$FERRY_DIR/images' | grep -vc -e '^$fp' ) -eq 0 ] && [ -z \"\$(ls -A '$FERRY_DIR/cache' | grep upload)\" ]"
expect_eq "no body: 400" "$(api_code POST /1.0/images)" 400
expect_eq "multipart upload (split image): 400" \
	"$(api_code POST /1.0/images -F "metadata=@$TEST_DIR/garbage" -F "rootfs=@$TEST_DIR/garbage")" 400
