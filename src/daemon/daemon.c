/* The daemon's shared context, and the per-instance locks. */
#include "daemon/daemon.h"

#include <stdlib.h>
#include <string.h>

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
