#include "daemon/request.h"

const struct route api_instance_logs_routes[] = {
	{ NULL },
};
