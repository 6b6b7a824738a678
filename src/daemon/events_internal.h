/* The listener side of events.h, for api_events.c. */
#pragma once

#include "common/ws.h"

enum event_type_bit {
	EVENT_OPERATION = 1 << 0,
	EVENT_LOGGING = 1 << 1,
	EVENT_LIFECYCLE = 1 << 2,
};
#define EVENT_ALL (EVENT_OPERATION | EVENT_LOGGING | EVENT_LIFECYCLE)

/* "operation" -> EVENT_OPERATION; 0 for an unknown type. */
unsigned event_type_bit(const char *type);
/* Send every event of the types in mask to ws until the client goes away;
 * then free ws. Runs on the websocket's thread. */
void events_listen(struct ws *ws, unsigned mask);
