/* The client's side of mutual TLS, through GnuTLS: its own identity (made
 * once, like lxc's client.crt), and the facts about a server certificate
 * the client pins it by. No cryptography of our own. */
#pragma once

#include <stddef.h>

#include "common/error.h"

/* The paths of client.crt and client.key under the config directory,
 * made when missing: an ECDSA P-384 key (0600) and a self-signed
 * certificate for TLS client authentication, CN "root@HOSTNAME", valid
 * for 10 years. */
int client_tls_identity(char **cert_path, char **key_path, struct ferry_error **err);

/* SHA-256 of a PEM certificate's DER, lowercase hex (LXD's fingerprint). */
int client_tls_fingerprint(const char *pem, char **fingerprint, struct ferry_error **err);

/* libcurl's CURLOPT_PINNEDPUBLICKEY value for a PEM certificate:
 * "sha256//" and the base64 SHA-256 of its SubjectPublicKeyInfo. */
int client_tls_pin(const char *pem, char **pin, struct ferry_error **err);

/* Base64 (standard alphabet, padded, one line) of data, and back (the
 * trust tokens' encoding). */
char *client_tls_base64_encode(const void *data, size_t len);
int client_tls_base64_decode(const char *text, char **data, size_t *len);

/* A certificate's subject CN and validity ("2026-01-02" dates), each may be NULL. */
int client_tls_describe(const char *pem, char **common_name, char **not_before, char **not_after,
			struct ferry_error **err);
