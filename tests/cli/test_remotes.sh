#!/usr/bin/env bash
# ferry's remotes, as a user meets them: a second ferryd on 127.0.0.1 is
# added with its trust password (a wrong one refused), and again with a
# one-time token from `ferry config trust add`; the client's key stays its
# own (0600); `ferry list r:`, `ferry launch busybox r:c1` and
# `ferry exec r:c1 -- hostname` (websockets over TLS) work over HTTPS; and
# when the server's certificate changes, the client refuses to talk to it.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/remotes_lib.sh"
ferry_setup || exit 1
remote_setup s3cret || { echo "Bail out! remote setup failed"; exit 1; }
ADDR=127.0.0.1:$REMOTE_PORT

# --- the implicit local remote
expect_match "remote list shows local as the default" "$(ferry remote list --format csv)" '^local \(current\),unix://,'
expect_eq "get-default is local" "$(ferry remote get-default)" local
ferry list r: >/dev/null 2>"$TEST_DIR/err"; rc=$?
expect_eq "an unknown remote fails" "$rc" 1
expect_match "... saying so" "$(cat "$TEST_DIR/err")" 'The remote "r" doesn.t exist'

# --- a wrong password
ferry remote add r "$ADDR" --password wrong --accept-certificate </dev/null >/dev/null 2>"$TEST_DIR/err"
expect_eq "remote add with a wrong password fails" "$?" 1
expect_match "... not authorized" "$(cat "$TEST_DIR/err")" 'not authorized'
check_fails "... and adds no remote" grep -q '^r,' <<<"$(ferry remote list --format csv)"
check_fails "... and keeps no server certificate" test -e "$FERRY_CONF/servercerts/r.crt"

# --- without approval of the certificate, nothing happens
ferry remote add r "$ADDR" --password s3cret </dev/null >/dev/null 2>"$TEST_DIR/err"
expect_eq "remote add without --accept-certificate (no terminal) fails" "$?" 1
server_fp=$(openssl x509 -in "$FERRY_DIR2/server.crt" -outform der | sha256sum | cut -d' ' -f1)
expect_match "... showing the server's fingerprint" "$(cat "$TEST_DIR/err")" "$server_fp"

# --- the password
check "remote add with the password" ferry remote add r "$ADDR" --password s3cret --accept-certificate
expect_match "remote list shows r" "$(ferry remote list --format csv)" "^r,https://$ADDR,lxd,tls,NO,"
expect_eq "client key is 0600" "$(stat -c %a "$FERRY_CONF/client.key")" 600
expect_eq "the saved server certificate is the server's" \
	"$(openssl x509 -in "$FERRY_CONF/servercerts/r.crt" -outform der | sha256sum | cut -d' ' -f1)" "$server_fp"
client_fp=$(openssl x509 -in "$FERRY_CONF/client.crt" -outform der | sha256sum | cut -d' ' -f1)
expect_match "the server trusts the client's certificate" "$(ferry2 config trust list --format csv)" "^client,.*,${client_fp:0:12},"
expect_match "client certificate is ECDSA P-384" "$(openssl x509 -in "$FERRY_CONF/client.crt" -noout -text)" 'ASN1 OID: secp384r1'
check "info r: answers over HTTPS" ferry info r:
expect_match "the connection is TLS 1.3" "$(ferry --debug info r: 2>&1 >/dev/null)" 'TLS1\.3'

expect_match "info r: is the trusted view" "$(ferry info r:)" 'auth: trusted'
check "remote add of an already trusted client is fine" ferry remote add r2 "$ADDR" --password s3cret --accept-certificate
check "remote remove r2" ferry remote remove r2
check_fails "... its certificate is gone" test -e "$FERRY_CONF/servercerts/r2.crt"
ferry remote add r "$ADDR" --accept-certificate >/dev/null 2>&1
expect_eq "adding a remote name twice fails" "$?" 1

# --- instances on the remote
expect_eq "list r: is empty" "$(ferry list r: --format csv -c n)" ""
check "image build on the remote" ferry image build r:busybox --alias busybox
expect_match "the image is on the remote" "$(ferry2 image list --format csv)" '^busybox,'
check "launch busybox r:c1" ferry launch busybox r:c1
expect_eq "list r: shows c1 running" "$(ferry list r: --format csv -c ns)" "c1,RUNNING"
expect_eq "... and the local list does not" "$(ferry list --format csv -c n)" ""
expect_eq "exec r:c1 -- hostname (websockets over TLS)" "$(ferry exec r:c1 -- hostname </dev/null)" c1
expect_eq "exec r:c1 passes stdin and the exit code" "$(echo piped | ferry exec r:c1 -- sh -c 'cat; exit 3')$?" piped3
expect_match "info r:c1" "$(ferry info r:c1)" 'Status: RUNNING'
check "config set r:c1" ferry config set r:c1 user.where remote
expect_eq "config get r:c1" "$(ferry config get r:c1 user.where)" remote

# --- default remote
check "remote switch r" ferry remote switch r
expect_eq "get-default is r" "$(ferry remote get-default)" r
expect_eq "list without a remote goes to r" "$(ferry list --format csv -c n)" c1
ferry remote remove r >/dev/null 2>&1
expect_eq "the default remote can't be removed" "$?" 1
check "remote switch local" ferry remote switch local
check "remote rename r other" ferry remote rename r other
expect_eq "the renamed remote works" "$(ferry list other: --format csv -c n)" c1
check "remote rename other r" ferry remote rename other r
check "remote set-url" ferry remote set-url r "https://$ADDR"

# --- the server's configuration over HTTPS, edited as YAML on stdin
ferry config show r: | sed 's/^config:$/config:\n  core.remote_token_expiry: 2H/' | ferry config edit r:
expect_eq "config edit r: from stdin" "$?" 0
expect_eq "config get r: KEY" "$(ferry config get r: core.remote_token_expiry)" 2H
check "the trust password survived the edit" env FERRY_CONF="$TEST_DIR/conf-fifth" "$FERRY" remote add r "$ADDR" \
	--password s3cret --accept-certificate
check "config unset r: KEY" ferry config unset r: core.remote_token_expiry

# --- a token
token=$(ferry config trust add r:joiner --quiet)
expect_match "config trust add prints a token" "$token" '^[A-Za-z0-9+/=]{40,}$'
expect_match "the token names the server's fingerprint" "$(base64 -d <<<"$token" | jq -r .fingerprint)" "^$server_fp\$"
expect_match "list-tokens shows it" "$(ferry config trust list-tokens r: --format csv)" '^joiner,'
# A second client (own config dir, own key) joins with it.
other_conf=$TEST_DIR/conf-other
FERRY_CONF=$other_conf ferry remote add r "$token" </dev/null >/dev/null 2>"$TEST_DIR/err"
expect_eq "remote add NAME TOKEN, no prompt" "$?" 0
expect_eq "... the new client lists r: over HTTPS" "$(FERRY_CONF=$other_conf ferry list r: --format csv -c n)" c1
expect_match "... and is trusted under the token's name" "$(ferry config trust list r: --format csv)" '^client,joiner,'
FERRY_CONF=$TEST_DIR/conf-fourth ferry remote add r --token "$token" </dev/null >/dev/null 2>"$TEST_DIR/err"
expect_eq "a used token is refused (to another new client)" "$?" 1
expect_match "... by the server" "$(cat "$TEST_DIR/err")" "No matching certificate add operation"
expect_eq "list-tokens is empty again" "$(ferry config trust list-tokens r: --format csv)" ""
token2=$(ferry config trust add r:never --quiet)
check "revoke-token" ferry config trust revoke-token r:never
FERRY_CONF=$TEST_DIR/conf-third ferry remote add r "$token2" </dev/null >/dev/null 2>&1
expect_eq "a revoked token is refused" "$?" 1
joiner_fp=$(ferry config trust list r: --format json | jq -r '.[] | select(.name=="joiner") | .fingerprint')
expect_match "config trust show by prefix" "$(ferry config trust show "r:${joiner_fp:0:12}")" 'name: joiner'
check "config trust remove by prefix" ferry config trust remove "r:${joiner_fp:0:12}"
FERRY_CONF=$other_conf ferry list r: >/dev/null 2>&1
expect_eq "a removed client loses access" "$?" 1

# --- a changed server certificate
ferryd2_stop
rm -f "$FERRY_DIR2/server.crt" "$FERRY_DIR2/server.key"
ferryd2_start
new_fp=$(openssl x509 -in "$FERRY_DIR2/server.crt" -outform der | sha256sum | cut -d' ' -f1)
check_fails "the server has a new certificate" test "$new_fp" = "$server_fp"
ferry list r: >/dev/null 2>"$TEST_DIR/err"
expect_eq "the client refuses the changed server" "$?" 1
expect_match "... with a clear warning" "$(cat "$TEST_DIR/err")" 'certificate of remote "r" .* has changed'
expect_match "... naming both fingerprints" "$(cat "$TEST_DIR/err")" "$server_fp"
expect_match "... the new one too" "$(cat "$TEST_DIR/err")" "$new_fp"
ferry exec r:c1 -- true </dev/null >/dev/null 2>&1
expect_eq "exec is refused too" "$?" 1
expect_match "... with the same warning" "$(ferry exec r:c1 -- true 2>&1 </dev/null)" 'has changed'
check "c1 is still there for the server's own root" ferry2 delete --force c1
check "remote remove r" ferry remote remove r
