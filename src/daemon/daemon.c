/* The daemon's shared context, and the per-instance locks. */
#include "daemon/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct daemon *daemon_ctx;

/* One lock per instance name, created on first use. A flag and a condition
 * rather than a mutex: an action may take the lock in the request's thread
 * and release it in its operation's thread. Entries stay (a few bytes per
 * name ever used), so a lock never disappears under a waiter. */
struct instance_lock_entry {
	char *name;
	bool held;
	struct instance_lock_entry *next;
};

static pthread_mutex_t instance_locks_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t instance_locks_changed = PTHREAD_COND_INITIALIZER;
static struct instance_lock_entry *instance_locks;

/* Called with instance_locks_mutex held. */
static struct instance_lock_entry *instance_lock_entry_get(const char *name)
{
	struct instance_lock_entry *e;
	for (e = instance_locks; e != NULL; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(name);
	e->next = instance_locks;
	instance_locks = e;
	return e;
}

void instance_lock(const char *name)
{
	pthread_mutex_lock(&instance_locks_mutex);
	struct instance_lock_entry *e = instance_lock_entry_get(name);
	while (e->held)
		pthread_cond_wait(&instance_locks_changed, &instance_locks_mutex);
	e->held = true;
	pthread_mutex_unlock(&instance_locks_mutex);
}

void instance_unlock(const char *name)
{
	pthread_mutex_lock(&instance_locks_mutex);
	struct instance_lock_entry *e = instance_lock_entry_get(name);
	e->held = false;
	pthread_cond_broadcast(&instance_locks_changed);
	pthread_mutex_unlock(&instance_locks_mutex);
}

/* ---- the trash ----
 * Removing a saved state of 256 MiB takes ~30 ms here (its page cache),
 * 1 GiB more than 100: after a restore, the user need not wait for it. */

static void *trash_remove_run(void *arg)
{
	char *path = arg;
	cleanup_error struct ferry_error *e = NULL;
	if (rm_rf(path, &e) < 0)
		log_warn("trash: %s", e->msg);
	free(path);
	return NULL;
}

static void trash_remove_later(char *path)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, trash_remove_run, path) != 0)
		trash_remove_run(path);
	pthread_attr_destroy(&attr);
}

int daemon_discard(const char *path, struct ferry_error **err)
{
	static atomic_uint serial;
	char *to = xasprintf("%s/%ld.%u", daemon_ctx->trash_dir, (long)getpid(), atomic_fetch_add(&serial, 1));
	if (rename(path, to) == 0) {
		trash_remove_later(to);
		return 0;
	}
	int e = errno;
	free(to);
	if (e == ENOENT)
		return 0;
	if (e != EXDEV)
		log_warn("trash: move %s: %s (removed here)", path, strerror(e));
	return rm_rf(path, err);
}

void daemon_trash_empty(void)
{
	DIR *d = opendir(daemon_ctx->trash_dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			trash_remove_later(xasprintf("%s/%s", daemon_ctx->trash_dir, de->d_name));
	closedir(d);
}
