#include "daemon/request.h"

const struct route api_profiles_routes[] = {
	{ NULL },
};
