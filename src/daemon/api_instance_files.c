#include "daemon/request.h"

const struct route api_instance_files_routes[] = {
	{ NULL },
};
