#include "daemon/request.h"

const struct route api_instance_state_routes[] = {
	{ NULL },
};
