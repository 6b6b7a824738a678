/* ferry copy c1[/s1] c2: a local copy of an instance or of a snapshot
 * (LXD's POST /1.0/instances with {"source": {"type": "copy", "source":
 * "c1/s1"}}). The copy gets a fresh MAC and address and is stopped.
 *
 * ferry copy c1 r:[c2]: a copy to another server by LXD's pull migration
 * (copy_remote, also behind `ferry move c1 r:`). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/copy.h"
#include "cli/instance.h"
#include "cli/snapshot.h"
#include "cli/target.h"
#include "common/util.h"
#include "migrate/migrate.h"

enum { OPT_INSTANCE_ONLY = 0x200, OPT_STATELESS, OPT_NO_PROFILES };

static const struct option copy_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "profile", required_argument, NULL, 'p' },
	{ "ephemeral", no_argument, NULL, 'e' },
	{ "instance-only", no_argument, NULL, OPT_INSTANCE_ONLY },
	{ "stateless", no_argument, NULL, OPT_STATELESS },
	{ "no-profiles", no_argument, NULL, OPT_NO_PROFILES },
	{ 0 },
};

/* The source server's HTTPS address and certificate, for the target. */
static int source_identity(struct client *src, char **url_base, char **pem, struct ferry_error **err)
{
	json_t *server = NULL;
	if (client_query(src, "GET", "/1.0", NULL, &server, err) < 0)
		return -1;
	json_t *env = json_object_get(server, "environment");
	const char *addr = json_string_value(json_array_get(json_object_get(env, "addresses"), 0));
	const char *cert = json_string_value(json_object_get(env, "certificate"));
	if (addr == NULL || cert == NULL) {
		json_decref(server);
		return error_bad_request(err, "The source server isn't reachable over the network "
					      "(set its core.https_address)");
	}
	*url_base = xasprintf("https://%s", addr);
	*pem = xstrdup(cert);
	json_decref(server);
	return 0;
}

int copy_remote(const struct copy_remote_args *a, struct ferry_error **err)
{
	struct client *src cleanup_client = NULL, *dst cleanup_client = NULL;
	json_t *inst = NULL, *src_op = NULL, *body = NULL;
	cleanup_free char *url_base = NULL, *pem = NULL;
	/* c1/s1: a snapshot, copied as a new instance (never live). */
	const char *slash = strchr(a->src_name, '/');
	cleanup_free char *instance = slash ? strndup(a->src_name, (size_t)(slash - a->src_name)) : NULL;
	cleanup_free char *path = slash ? snapshot_api_path(instance, slash + 1)
					: xasprintf("/1.0/instances/%s", a->src_name);
	int ret = -1;

	if (client_open(a->src_remote, &src, err) < 0 || client_open(a->dst_remote, &dst, err) < 0)
		return -1;
	if (slash ? snapshot_get(src, instance, slash + 1, &inst, err) < 0 : instance_get(src, a->src_name, &inst, err) < 0)
		return -1;
	const char *status = json_string_value(json_object_get(inst, "status"));
	bool was_running = status != NULL && strcmp(status, "Stopped") != 0;
	/* A running instance moves live unless asked otherwise (--stateless:
	 * the source stops it once the target is ready for it, and starts it
	 * again if the move fails; it starts on the target); a copy of one is
	 * made while it runs, without its state, and it runs on. */
	bool live = was_running && a->move && !a->stateless;
	bool source_stops = was_running && a->move && !live;
	if (source_identity(src, &url_base, &pem, err) < 0)
		goto out;

	/* A move of an instance stopped with its state takes the state along. */
	bool stateful = !was_running && a->move && !a->stateless && json_is_true(json_object_get(inst, "stateful"));
	json_t *offer = json_pack("{s:b, s:b, s:b, s:b}", "migration", 1, "live", live, "instance_only", a->instance_only,
				  "stateful", stateful);
	if (live && a->memory != NULL)
		json_object_set_new(offer, "memory", json_string(a->memory));
	int r = client_query_operation(src, "POST", path, offer, &src_op, err);
	json_decref(offer);
	if (r < 0)
		goto out;
	const char *op_id = json_string_value(json_object_get(src_op, "id"));
	json_t *secrets = json_object_get(src_op, "metadata");
	if (op_id == NULL || !json_is_object(secrets)) {
		error_set(err, 502, 0, "The source answered no migration operation");
		goto out;
	}

	/* A move keeps the instance's MAC and address (volatile.*); a copy gets its own. */
	json_t *config = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(inst, "config"), key, v) {
		if (a->move || strncmp(key, "volatile.", 9) != 0)
			json_object_set(config, key, v);
	}
	if (json_is_object(a->config))
		json_object_update(config, a->config);
	json_t *source = json_pack("{s:s, s:s, s:s, s:s, s:O, s:b}", "type", "migration", "mode", "pull", "operation",
				   "", "certificate", pem, "secrets", secrets, "live", live);
	json_object_set_new(source, "operation", json_sprintf("%s/1.0/operations/%s", url_base, op_id));
	body = json_pack("{s:s, s:o, s:o, s:O, s:O}", "name", a->dst_name, "source", source, "config", config,
			 "devices", json_object_get(inst, "devices"), "profiles",
			 json_is_array(a->profiles) ? a->profiles : json_object_get(inst, "profiles"));
	if (json_object_get(inst, "architecture") != NULL)
		json_object_set(body, "architecture", json_object_get(inst, "architecture"));
	if (client_run_operation(dst, "POST", "/1.0/instances", body, "Transferring instance", NULL, err) < 0) {
		cleanup_error struct ferry_error *e = NULL;
		/* The source's operation ends on its own when nobody connects
		 * (a target that refused before it did); unless live, cancel it
		 * now so the instance is free at once. */
		cleanup_free char *op_path = xasprintf("/1.0/operations/%s", op_id);
		if (!live)
			client_query(src, "DELETE", op_path, NULL, NULL, &e);
		error_free(&e);
		/* The source decides what became of an instance it stopped or
		 * froze (it runs there again, or why not): its answer is the one
		 * to show. */
		if ((live || source_stops) && client_operation_wait(src, src_op, NULL, NULL, &e) < 0 &&
		    strstr(e->msg, "cancelled") == NULL) {
			struct ferry_error *both = NULL;
			/* Whichever side failed first comes first: the source's
			 * refusal ends the target's streams early. */
			if (strstr((*err)->msg, MIGRATE_STREAM_CLOSED_EARLY) != NULL)
				error_set(&both, e->status, e->errnum, "on %s: %s; on %s: %s", a->src_remote, e->msg,
					  a->dst_remote, (*err)->msg);
			else
				error_set(&both, e->status, e->errnum, "on %s: %s; on %s: %s", a->dst_remote,
					  (*err)->msg, a->src_remote, e->msg);
			error_free(err);
			error_move(err, &both);
		}
		goto out;
	}
	json_t *src_final = NULL;
	if (client_operation_wait(src, src_op, NULL, &src_final, err) < 0)
		goto out;
	json_t *times = json_object_get(json_object_get(src_final, "metadata"), "migration_times");
	const char *memory = json_string_value(json_object_get(json_object_get(src_final, "metadata"), "memory"));
	if (live && json_is_object(times) && !cli_quiet)
		printf("Moved \"%s\" live to %s (%s): stopped for %lld ms (checkpoint %lld, transfer %lld, restore %lld, "
		       "resume %lld)\n",
		       a->src_name, a->dst_remote, memory ? memory : "?",
		       (long long)json_integer_value(json_object_get(times, "downtime_ms")),
		       (long long)json_integer_value(json_object_get(times, "checkpoint_ms")),
		       (long long)json_integer_value(json_object_get(times, "transfer_ms")),
		       (long long)json_integer_value(json_object_get(times, "restore_ms")),
		       (long long)json_integer_value(json_object_get(times, "resume_ms")));
	if (live && json_is_object(times) && json_object_get(times, "pages_ms") != NULL && !cli_quiet)
		printf("Its memory followed in %lld ms (%.1f MB)\n",
		       (long long)json_integer_value(json_object_get(times, "pages_ms")),
		       (double)json_integer_value(json_object_get(times, "pages_bytes")) / 1e6);
	json_decref(src_final);
	if (a->move) {
		json_t *del = NULL;
		if (client_query_operation(src, "DELETE", path, NULL, &del, err) < 0 ||
		    client_operation_wait(src, del, NULL, NULL, err) < 0) {
			json_decref(del);
			error_wrap(err, "the instance is on %s now, but removing it from %s failed", a->dst_remote,
				   a->src_remote);
			goto out;
		}
		json_decref(del);
		/* Gone from the source: it runs again on the target. */
		if (was_running && !live && instance_action(dst, a->dst_name, "start", false, -1, false, err) < 0) {
			error_wrap(err, "the instance is on %s now, stopped: starting it failed", a->dst_remote);
			goto out;
		}
	}
	ret = 0;
out:
	json_decref(body);
	json_decref(src_op);
	json_decref(inst);
	return ret;
}

int cmd_copy(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "copy",
		.usage = "[<remote>:]<source>[/<snapshot>] [<remote>:]<destination> [flags]",
		.summary = "Copy instances within or in between servers",
		.help = "  -c, --config          Config key/value to apply to the new instance\n"
			"  -e, --ephemeral       Ephemeral instance\n"
			"      --instance-only   Copy the instance without its snapshots\n"
			"      --no-profiles     Create the instance with no profiles applied\n"
			"  -p, --profile         Profile to apply to the new instance\n"
			"      --stateless       Copy a stateful instance stateless (copies always are: a running one is copied\n"
			"                        as it is while it runs, and runs on)\n",
		.shortopts = "c:p:e",
		.longopts = copy_options,
	};
	bool ephemeral = false, instance_only = false, no_profiles = false, stateless = false;
	json_t *config = json_object(), *profiles = json_array();
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		cleanup_error struct ferry_error *err = NULL;
		cleanup_free char *key = NULL, *value = NULL;
		switch (c) {
		case 'c':
			if (cli_parse_key_value(optarg, &key, &value, &err) < 0) {
				json_decref(config);
				json_decref(profiles);
				return cli_usage_error(&cmd, "%s", err->msg);
			}
			json_object_set_new(config, key, json_string(value));
			break;
		case 'p':
			json_array_append_new(profiles, json_string(optarg));
			break;
		case 'e':
			ephemeral = true;
			break;
		case OPT_INSTANCE_ONLY:
			instance_only = true;
			break;
		case OPT_NO_PROFILES:
			no_profiles = true;
			break;
		case OPT_STATELESS:
			stateless = true;
			break;
		case CLI_OPT_HELP:
			json_decref(config);
			json_decref(profiles);
			return EXIT_OK;
		default:
			json_decref(config);
			json_decref(profiles);
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 2, 2);
	if (rc != 0) {
		json_decref(config);
		json_decref(profiles);
		return rc;
	}
	cleanup_error struct ferry_error *err = NULL;
	struct target src cleanup_target = { 0 }, dst cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	int r = -1;
	if (target_parse(argv[optind], &src, &err) < 0 || target_parse(argv[optind + 1], &dst, &err) < 0)
		goto out;
	if (strcmp(src.remote, dst.remote) != 0) {
		/* From a snapshot: a new instance, named as its instance by default (lxc's way). */
		cleanup_free char *default_name = strndup(src.name, strcspn(src.name, "/"));
		if (no_profiles) {
			json_decref(profiles);
			profiles = json_array();
		}
		struct copy_remote_args args = {
			.src_remote = src.remote, .src_name = src.name,
			.dst_remote = dst.remote, .dst_name = dst.name[0] ? dst.name : default_name,
			.stateless = stateless, .instance_only = instance_only, .config = config,
			.profiles = json_array_size(profiles) > 0 || no_profiles ? profiles : NULL,
		};
		r = copy_remote(&args, &err);
		goto out;
	}
	if (dst.name[0] == '\0' || strchr(dst.name, '/') != NULL) {
		error_bad_request(&err, "Invalid destination \"%s\": an instance name is needed", argv[optind + 1]);
		goto out;
	}
	if (client_open(src.remote, &client, &err) < 0)
		goto out;
	json_t *source = json_pack("{s:s,s:s,s:b}", "type", "copy", "source", src.name, "instance_only", instance_only);
	json_t *body = json_pack("{s:s,s:o,s:b}", "name", dst.name, "source", source, "ephemeral", ephemeral);
	if (json_object_size(config) > 0) {
		/* The source's own config, with the -c keys on top (lxc's way). */
		json_t *obj = NULL;
		char *slash = strchr(src.name, '/');
		if (slash != NULL) {
			cleanup_free char *inst = strndup(src.name, (size_t)(slash - src.name));
			r = snapshot_get(client, inst, slash + 1, &obj, &err);
		} else {
			r = instance_get(client, src.name, &obj, &err);
		}
		if (r < 0) {
			json_decref(body);
			goto out;
		}
		json_t *merged = json_object();
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(obj, "config"), key, v) {
			if (strncmp(key, "volatile.", 9) != 0)
				json_object_set(merged, key, v);
		}
		json_object_update(merged, config);
		json_object_set_new(body, "config", merged);
		json_decref(obj);
	}
	if (no_profiles)
		json_object_set_new(body, "profiles", json_array());
	else if (json_array_size(profiles) > 0)
		json_object_set(body, "profiles", profiles);
	r = client_run_operation(client, "POST", "/1.0/instances", body, NULL, NULL, &err);
	json_decref(body);
out:
	json_decref(config);
	json_decref(profiles);
	return r < 0 ? cli_fail(err) : EXIT_OK;
}
