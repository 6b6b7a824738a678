/* ferryd's TLS identity and the trust it grants, all through GnuTLS: the
 * server's own key and self-signed certificate (made on first start, like
 * LXD's ROOT/server.crt), certificates parsed and fingerprinted as LXD does
 * (SHA-256 of the DER, lowercase hex), the client certificate of an HTTPS
 * connection, and the trust password kept as a salted PBKDF2 hash. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/error.h"

struct MHD_Connection;

/* SHA-256 in hex, with the NUL. */
#define TLS_FINGERPRINT_SIZE 65

/* Load ROOT/server.key and ROOT/server.crt, or make them when missing: an
 * ECDSA P-384 key (0600) and a certificate valid for 10 years, CN the host
 * name, SANs the host name, 127.0.0.1 and ::1, usable for server and
 * client authentication (daemons present it to each other). */
int tls_identity_init(const char *root, const char *hostname, struct ferry_error **err);
/* The PEM texts and fingerprint loaded by tls_identity_init. */
const char *tls_server_certificate_pem(void);
const char *tls_server_key_pem(void);
const char *tls_server_fingerprint(void);

/* A certificate as the API takes it: PEM, or base64 of the DER (LXD's
 * "certificate" field). Out: the PEM, the fingerprint, the subject's CN
 * ("" when none); each may be NULL. 400 when it is no X.509 certificate. */
int tls_certificate_parse(const char *text, char **pem, char **fingerprint, char **common_name,
			  struct ferry_error **err);

/* The client certificate an HTTPS connection presented. Returns 0 and fills
 * the outputs (each may be NULL), or -1 with no error when the connection is
 * not TLS or presented none. */
int tls_connection_peer(struct MHD_Connection *conn, char **pem, char **fingerprint, char **common_name);

/* Ask every new TLS session for a client certificate, without naming any CA
 * (Go's TLS client, which lxc uses, sends its certificate only when its
 * issuer is among the named CAs or none are named). Called when
 * libmicrohttpd starts a connection, before the handshake. */
void tls_connection_request_peer(struct MHD_Connection *conn);

/* "pbkdf2-sha256$ITERATIONS$SALT$HASH" (salt and hash in base64). */
char *trust_password_hash(const char *password);
/* Does password match a hash made by trust_password_hash? Takes about a
 * third of a second on purpose, and one check at a time: guessing stays
 * slow however many connections ask. */
bool trust_password_check(const char *stored_hash, const char *password);

/* core.remote_token_expiry as LXD writes it: space-separated "<n><unit>"
 * with units S, M, H (seconds, minutes, hours), d, w, m, y (days, weeks,
 * months, years), e.g. "1H" or "1d 12H". Out: the time it gives from
 * `from`. 400 when malformed. */
int trust_token_expiry(const char *text, time_t from, time_t *at, struct ferry_error **err);

/* Random bytes as hex (2 * n characters): token secrets. */
char *tls_random_hex(size_t n);
/* Base64 (standard alphabet, padded) of data, and back. */
char *tls_base64_encode(const void *data, size_t len);
int tls_base64_decode(const char *text, unsigned char **data, size_t *len);
