/* /1.0/events: every event goes to every listener whose type filter matches. */
#pragma once

#include <jansson.h>

/* type: "operation", "logging" or "lifecycle". metadata is stolen.
 * Event: {"type":..., "timestamp":..., "metadata":..., "location":"none", "project":"default"} */
void events_send(const char *type, json_t *metadata);
/* A lifecycle event: action "instance-started", source "/1.0/instances/c1". */
void events_lifecycle(const char *action, const char *source, json_t *context);
