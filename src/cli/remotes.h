/* The client's list of remotes and its TLS files, as lxc keeps them:
 *
 *   $FERRY_CONF (default ~/.config/ferry)/
 *     config.yml            default-remote, remotes: NAME -> {addr, protocol, public}
 *     client.key            the client's ECDSA P-384 key (0600)
 *     client.crt            its self-signed certificate, presented to every HTTPS remote
 *     servercerts/NAME.crt  the certificate each remote was accepted with
 *
 * The remote "local" is always there: ferryd's unix socket at $FERRY_DIR
 * (addr "unix://"). Other remotes are "https://HOST:PORT". */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

#define REMOTE_LOCAL "local"
#define REMOTE_DEFAULT_PORT 8443

/* The config directory (malloc'd). */
char *remotes_conf_dir(void);
/* A file under it (malloc'd): remotes_conf_path("client.key"). */
char *remotes_conf_path(const char *file);
/* servercerts/NAME.crt (malloc'd). */
char *remotes_server_cert_path(const char *name);

/* config.yml as JSON: {"default-remote": S, "remotes": {NAME: {"addr",
 * "protocol", "public"}}}, "local" always present. A missing file is the
 * default config. */
int remotes_load(json_t **config, struct ferry_error **err);
/* Write it back (creating the directory, 0700). */
int remotes_save(json_t *config, struct ferry_error **err);

/* The default remote's name (malloc'd): "local" when there is no config. */
char *remotes_default_name(void);
/* A remote's address ("unix://" or "https://HOST:PORT"), malloc'd; 404
 * "The remote "NAME" doesn't exist" when unknown. */
int remotes_address(const char *name, char **addr, struct ferry_error **err);

/* Remote names: letters, digits, '-', '_', '.' (no ':' or '/'). */
bool remote_name_valid(const char *name);

/* "HOST", "HOST:PORT", "[V6]:PORT", "V6" or "https://..." to
 * "https://HOST:PORT" (IPv6 in brackets). 400 when it is no address. */
int remote_url_normalize(const char *text, char **url, struct ferry_error **err);
