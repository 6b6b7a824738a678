/* /1.0/events: each listener has a queue of events (JSON text) and its own
 * thread (the websocket's) that sends them, so a slow client never blocks
 * the code that emits an event. */
#include "daemon/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/events_internal.h"

/* A listener that lets this many events pile up is dropped. */
#define EVENT_QUEUE_MAX 10000

struct event_item {
	char *text;
	struct event_item *next;
};

struct event_listener {
	unsigned mask;
	struct event_item *head, *tail;
	size_t queued;
	bool overflowed;
	pthread_cond_t wake;
	struct event_listener *next;
};

static pthread_mutex_t listeners_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct event_listener *listeners;

unsigned event_type_bit(const char *type)
{
	if (strcmp(type, "operation") == 0)
		return EVENT_OPERATION;
	if (strcmp(type, "logging") == 0)
		return EVENT_LOGGING;
	if (strcmp(type, "lifecycle") == 0)
		return EVENT_LIFECYCLE;
	return 0;
}

void events_send(const char *type, json_t *metadata)
{
	unsigned bit = event_type_bit(type);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	cleanup_free char *timestamp = time_rfc3339(&now);
	json_t *event = json_pack("{s:s, s:s, s:o, s:s, s:s}", "type", type, "timestamp", timestamp, "metadata",
				  metadata ? metadata : json_object(), "location", "none", "project", "default");
	cleanup_free char *text = json_dumps(event, JSON_COMPACT);
	json_decref(event);
	if (text == NULL)
		return;
	pthread_mutex_lock(&listeners_mutex);
	for (struct event_listener *l = listeners; l != NULL; l = l->next) {
		if (!(l->mask & bit) || l->overflowed)
			continue;
		if (l->queued >= EVENT_QUEUE_MAX) {
			l->overflowed = true;
			pthread_cond_signal(&l->wake);
			continue;
		}
		struct event_item *item = xcalloc(1, sizeof(*item));
		item->text = xstrdup(text);
		if (l->tail != NULL)
			l->tail->next = item;
		else
			l->head = item;
		l->tail = item;
		l->queued++;
		pthread_cond_signal(&l->wake);
	}
	pthread_mutex_unlock(&listeners_mutex);
}

void events_lifecycle(const char *action, const char *source, json_t *context)
{
	json_t *metadata = json_pack("{s:s, s:s}", "action", action, "source", source);
	if (context != NULL)
		json_object_set_new(metadata, "context", context);
	events_send("lifecycle", metadata);
}

static void listener_remove(struct event_listener *l)
{
	pthread_mutex_lock(&listeners_mutex);
	for (struct event_listener **pp = &listeners; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	pthread_mutex_unlock(&listeners_mutex);
	while (l->head != NULL) {
		struct event_item *item = l->head;
		l->head = item->next;
		free(item->text);
		free(item);
	}
	pthread_cond_destroy(&l->wake);
	free(l);
}

/* Did the client go away? Reads (and ignores) anything it sent. */
static bool listener_peer_gone(struct ws *ws)
{
	for (;;) {
		cleanup_error struct ferry_error *err = NULL;
		enum ws_opcode op;
		char *data = NULL;
		int r = ws_recv(ws, &op, &data, NULL, 0, &err);
		free(data);
		if (r == 1)
			continue;
		if (r == 0)
			return true;
		return err == NULL || err->errnum != ETIMEDOUT;
	}
}

void events_listen(struct ws *ws, unsigned mask)
{
	struct event_listener *l = xcalloc(1, sizeof(*l));
	l->mask = mask;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&l->wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_lock(&listeners_mutex);
	l->next = listeners;
	listeners = l;
	pthread_mutex_unlock(&listeners_mutex);
	log_debug("events: listener connected (types 0x%x)", mask);

	bool gone = false;
	while (!gone) {
		pthread_mutex_lock(&listeners_mutex);
		if (l->head == NULL && !l->overflowed) {
			/* Wake now and then to notice a client that went away. */
			struct timespec deadline;
			clock_gettime(CLOCK_MONOTONIC, &deadline);
			deadline.tv_nsec += 250 * 1000000L;
			if (deadline.tv_nsec >= 1000000000L) {
				deadline.tv_sec++;
				deadline.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&l->wake, &listeners_mutex, &deadline);
		}
		struct event_item *batch = l->head;
		bool overflowed = l->overflowed;
		l->head = l->tail = NULL;
		l->queued = 0;
		pthread_mutex_unlock(&listeners_mutex);

		while (batch != NULL) {
			struct event_item *item = batch;
			batch = item->next;
			if (!gone && ws_send(ws, WS_TEXT, item->text, strlen(item->text), NULL) < 0)
				gone = true;
			free(item->text);
			free(item);
		}
		if (overflowed) {
			log_warn("events: listener too slow, dropped");
			break;
		}
		if (!gone)
			gone = listener_peer_gone(ws);
	}
	listener_remove(l);
	ws_close(ws, 1000, "");
	ws_free(ws);
	log_debug("events: listener disconnected");
}
