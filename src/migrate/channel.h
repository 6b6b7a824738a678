/* Migration streams: one TCP connection with TLS per stream, straight from
 * the target ferryd to a listener the source ferryd opens for the
 * migration. (Not through the HTTPS API server: libmicrohttpd 0.9.75's TLS
 * forwarding of upgraded connections stalls after some tens of MB.)
 *
 * The source opens a listener on an ephemeral port and hands the target,
 * through the API, the port, its certificate and one secret per stream.
 * The target connects once per secret:
 *
 *   target -> source: TLS handshake (1.2 or newer). The target presents its
 *                     own certificate and accepts only the source's (pinned).
 *   target -> source: "SECRET\n"   (at most MIGRATE_SECRET_LINE_MAX bytes)
 *   source -> target: "ok\n", or the connection closes at once (a secret
 *                     the listener does not expect or already accepted)
 *
 * then both ends speak websocket frames (common/ws.h) over the TLS session,
 * with no HTTP upgrade; the source is the websocket server. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/ws.h"

/* The secret line with its newline. */
#define MIGRATE_SECRET_LINE_MAX 128

/* ---- source side ----------------------------------------------------------- */

struct migrate_listener;

/* Listen with TLS on an ephemeral TCP port of address (NULL: every IPv4 and
 * IPv6 address), presenting the certificate and key of these PEM files. */
int migrate_listener_open(const char *address, const char *cert_path, const char *key_path,
			  struct migrate_listener **out, struct ferry_error **err);
int migrate_listener_port(const struct migrate_listener *l);

/* Accept connections until every secret in secrets[0..n) has connected;
 * out[i] gets the websocket (server side) of secrets[i], to be freed with
 * migrate_ws_free. Handshakes run side by side, each limited to a few
 * seconds, so a slow or broken client does not hold up the others; wrong
 * and reused secrets are refused (each secret works once per listener).
 * Fails with 504/ETIMEDOUT after timeout_ms (< 0: no limit) or with
 * 400/ECANCELED once cancelled(arg) returns true (asked every 200 ms;
 * cancelled may be NULL); then out[] is all NULL. One accept at a time
 * per listener; connections still in their handshake when it returns are
 * dropped. */
int migrate_listener_accept(struct migrate_listener *l, const char *const *secrets, size_t n, struct ws **out,
			    int timeout_ms, bool (*cancelled)(void *arg), void *arg, struct ferry_error **err);

/* Stop listening and free. Streams already handed out stay open. */
void migrate_listener_close(struct migrate_listener *l);

/* ---- target side ----------------------------------------------------------- */

struct migrate_stream;

/* Connect to host:port (a name, an IPv4 or an IPv6 address, with or without
 * brackets), do TLS presenting the certificate and key of these PEM files
 * and accepting only the certificate server_pem as the peer's (pinned: no CA,
 * no host name check), say the secret and wait for "ok". Connecting and the
 * rest each have a limit of 10 s. Errors: 502 (refused, TLS failed, not the
 * pinned certificate, secret refused), 504 (timed out). */
int migrate_stream_dial(const char *host, int port, const char *secret, const char *server_pem,
			const char *cert_path, const char *key_path, struct migrate_stream **out,
			struct ferry_error **err);

/* The websocket (client side) over the stream; it belongs to the stream. */
struct ws *migrate_stream_ws(struct migrate_stream *s);

/* Free the websocket, end the TLS session (close_notify) and close the socket. */
void migrate_stream_free(struct migrate_stream *s);

/* ---- both sides ------------------------------------------------------------ */

/* Free a websocket of either side like migrate_stream_free: plain ws_free
 * would leave its TLS session and socket open. Any other ws is given to
 * ws_free. Send a close frame first (ws_close) for an orderly end. */
void migrate_ws_free(struct ws *ws);
