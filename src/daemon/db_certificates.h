/* The trust store (implemented in db.c): the certificates whose holders
 * may use the API over HTTPS, as LXD keeps them (/1.0/certificates). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

struct db;

struct db_certificate {
	char *fingerprint;   /* SHA-256 of the DER, lowercase hex */
	char *type;          /* "client" (LXD also has "server", "metrics") */
	char *name;
	char *certificate;   /* PEM */
	bool restricted;
	json_t *projects;    /* array of names */
};
void db_certificate_clear(struct db_certificate *cert);

/* 409 "Certificate already in trust store" when the fingerprint is known. */
int db_certificate_create(struct db *db, const struct db_certificate *cert, struct ferry_error **err);
/* By full fingerprint or a unique prefix of it; 404 when missing. */
int db_certificate_get(struct db *db, const char *fingerprint, struct db_certificate *out, struct ferry_error **err);
/* Fingerprints, sorted. */
int db_certificate_list(struct db *db, json_t **fingerprints, struct ferry_error **err);
/* Replace name, type, restricted and projects of cert->fingerprint. */
int db_certificate_update(struct db *db, const struct db_certificate *cert, struct ferry_error **err);
int db_certificate_delete(struct db *db, const char *fingerprint, struct ferry_error **err);
/* Is this exact fingerprint a trusted client? Asked on every HTTPS request. */
bool db_certificate_trusted(struct db *db, const char *fingerprint);
