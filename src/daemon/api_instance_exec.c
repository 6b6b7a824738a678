#include "daemon/request.h"

const struct route api_instance_exec_routes[] = {
	{ NULL },
};
