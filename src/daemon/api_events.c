/* /1.0/events: a websocket that receives every event of the asked types. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/events_internal.h"
#include "daemon/request.h"

static void events_run(struct ws *ws, void *data)
{
	unsigned mask = (unsigned)(unsigned long)data;
	events_listen(ws, mask);
}

static struct response *events_get(struct request *req)
{
	const char *types = request_query(req, "type");
	unsigned mask = 0;
	if (types == NULL || *types == '\0') {
		mask = EVENT_ALL;
	} else {
		cleanup_free char *copy = xstrdup(types);
		char *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
			unsigned bit = event_type_bit(t);
			if (bit == 0)
				return response_error(400, "'%s' isn't a supported event type", t);
			mask |= bit;
		}
	}
	return response_websocket(events_run, (void *)(unsigned long)mask);
}

const struct route api_events_routes[] = {
	{ "GET", "/1.0/events", events_get },
	{ NULL },
};
