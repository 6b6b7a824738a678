#include "daemon/request.h"

const struct route api_instances_routes[] = {
	{ NULL },
};
