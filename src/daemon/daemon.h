/* ferryd's shared context: what every endpoint and operation can reach. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "common/error.h"

struct db;

struct daemon {
	char *root;          /* --root: /var/lib/ferry */
	char *log_dir;       /* /var/log/ferry, or ROOT/logs with --root */
	char *socket_path;   /* ROOT/unix.socket */
	char *images_dir;    /* ROOT/images */
	char *containers_dir;/* ROOT/containers */
	char *cache_dir;     /* ROOT/cache (debootstrap trees) */
	char *trash_dir;     /* ROOT/trash: what goes, removed in the background (daemon_discard) */
	char *staging_dir;   /* /dev/shm/ferry-pages-HASH: live moves' pages before their restore; NULL: none */
	char *exe;           /* /proc/self/exe resolved: to re-exec as monitor */
	char *bridge;        /* "ferrybr0" (--bridge) */
	char *bridge_cidr;   /* gateway address with prefix, "10.166.0.1/24" */
	bool nat;
	char *server_name;   /* hostname */
	struct db *db;
	volatile bool stopping;
};

/* The one daemon of this process. */
extern struct daemon *daemon_ctx;

/* Remove path (a file or a tree) without waiting: it moves into the
 * trash at once and a thread of its own removes it. Where it can't move
 * there (another file system), it goes here and now. At start-up,
 * daemon_trash_empty removes what a ferryd that ended left in the trash. */
int daemon_discard(const char *path, struct ferry_error **err);
void daemon_trash_empty(void);

/* Serialise actions on one instance; different instances run in parallel.
 * instance_lock blocks; instance_trylock returns < 0 (409 "busy") when held. */
void instance_lock(const char *name);
void instance_unlock(const char *name);

/* At start-up, after the API is ready: find the monitors of running
 * instances again, mark the others stopped, start those with
 * boot.autostart. Implemented with the instances (instance.c). */
int instances_startup(struct ferry_error **err);
