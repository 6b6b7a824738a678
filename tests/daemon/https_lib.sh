# Shared by the HTTPS tests: a free port, client certificates, and curl
# over TLS with or without one. Source after api_lib.sh, after core_setup.

# A free TCP port on 127.0.0.1 from 18443 up.
free_port() {
	python3 - "${1:-18443}" <<'EOF'
import socket, sys
for port in range(int(sys.argv[1]), 65000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
EOF
}

# client_cert NAME: an ECDSA P-384 key and self-signed certificate, as lxc makes them.
client_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -days 30 \
		-subj "/CN=$1@ferry-test" -keyout "$TEST_DIR/$1.key" -out "$TEST_DIR/$1.crt" 2>/dev/null
}

# fingerprint_of CERT: SHA-256 of its DER, lowercase hex, as LXD prints it.
fingerprint_of() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# https [--as NAME] METHOD PATH [curl args]: the body of the answer, over TLS
# to $HTTPS_PORT, with NAME's certificate or none.
https() {
	local cert=()
	if [ "$1" = --as ]; then
		cert=(--cert "$TEST_DIR/$2.crt" --key "$TEST_DIR/$2.key")
		shift 2
	fi
	curl -sk "${cert[@]}" -X "$1" "https://127.0.0.1:$HTTPS_PORT$2" "${@:3}"
}
# https_code: the same, the HTTP status only.
https_code() {
	local cert=()
	if [ "$1" = --as ]; then
		cert=(--cert "$TEST_DIR/$2.crt" --key "$TEST_DIR/$2.key")
		shift 2
	fi
	curl -sk -o /dev/null -w '%{http_code}' "${cert[@]}" -X "$1" "https://127.0.0.1:$HTTPS_PORT$2" "${@:3}"
}

# https_listen ADDRESS: set core.https_address over the unix socket; prints the answer's error ("" when none).
https_listen() {
	json PATCH /1.0 "{\"config\":{\"core.https_address\":\"$1\"}}" | jq -r .error
}

# trust NAME: add NAME's certificate over the unix socket (as root would).
trust() {
	json POST /1.0/certificates "{\"type\":\"client\",\"name\":\"$1\",\"certificate\":\"$(sed '/-----/d' "$TEST_DIR/$1.crt" | tr -d '\n')\"}" >/dev/null
}
