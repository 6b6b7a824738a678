/* The networks table of db.c (the host bridge and the subnet picked for it
 * once). Kept apart from db.h until networks become an API resource. */
#pragma once

#include <jansson.h>

#include "common/error.h"

struct db;

/* *config: object of string values ("ipv4.address", "ipv4.nat"). 404 when missing. */
int db_network_get(struct db *db, const char *name, json_t **config, struct ferry_error **err);
/* Create or replace (config not stolen). */
int db_network_set(struct db *db, const char *name, const json_t *config, struct ferry_error **err);
