/* netctl: each function of src/runtime/network.h on the command line, for
 * tests/network/test_network.sh. Prints results on stdout; on failure the
 * error's message on stderr and exit status 1. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "common/error.h"
#include "runtime/network.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: netctl pick-subnet\n"
		"       netctl bridge-ensure BRIDGE GATEWAY_CIDR nat|nonat\n"
		"       netctl bridge-delete BRIDGE\n"
		"       netctl veth-create PID PEER HOST_NAME BRIDGE HWADDR [MTU]\n"
		"       netctl configure-inside PID PEER NAME [CIDR [GATEWAY]]\n"
		"       netctl link-delete IFNAME\n"
		"       netctl new-host-name | new-hwaddr\n"
		"       netctl state PID\n"
		"       netctl announce PID IFNAME\n"
		"       netctl nat-rules BRIDGE   (the bridge's nft table, as nft lists it)\n"
		"       netctl nft COMMAND        (any nft command, in this network namespace)\n");
	return 2;
}

/* An nft command through libnftables (no nft binary needed), in the
 * network namespace netctl runs in: the test's own look at the ruleset. */
static int nft(const char *cmd)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	int rc = nft_run_cmd_from_buffer(ctx, cmd);
	if (rc != 0)
		fprintf(stderr, "netctl: %s", nft_ctx_get_error_buffer(ctx));
	else
		fputs(nft_ctx_get_output_buffer(ctx), stdout);
	nft_ctx_free(ctx);
	return rc == 0 ? 0 : 1;
}

static int nat_rules(const char *bridge)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "list table ip ferry-%s", bridge);
	return nft(cmd);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	struct ferry_error *err = NULL;
	int rc = 0;

	if (strcmp(cmd, "pick-subnet") == 0 && argc == 2) {
		char *cidr = NULL;
		rc = network_pick_subnet(&cidr, &err);
		if (rc == 0)
			printf("%s\n", cidr);
		free(cidr);
	} else if (strcmp(cmd, "bridge-ensure") == 0 && argc == 5) {
		rc = network_bridge_ensure(argv[2], argv[3], strcmp(argv[4], "nat") == 0, &err);
	} else if (strcmp(cmd, "bridge-delete") == 0 && argc == 3) {
		rc = network_bridge_delete(argv[2], &err);
	} else if (strcmp(cmd, "veth-create") == 0 && (argc == 7 || argc == 8)) {
		struct runtime_nic nic = {
			.name = "eth0",
			.host_name = argv[4],
			.bridge = argv[5],
			.hwaddr = argv[6],
			.mtu = argc == 8 ? (unsigned)atoi(argv[7]) : 0,
		};
		rc = network_veth_create(&nic, argv[3], atoi(argv[2]), &err);
	} else if (strcmp(cmd, "configure-inside") == 0 && argc >= 5 && argc <= 7) {
		struct runtime_nic nic = {
			.name = argv[4],
			.ipv4_cidr = argc > 5 ? argv[5] : NULL,
			.ipv4_gateway = argc > 6 ? argv[6] : NULL,
		};
		rc = network_configure_inside(atoi(argv[2]), argv[3], &nic, &err);
	} else if (strcmp(cmd, "link-delete") == 0 && argc == 3) {
		rc = network_link_delete(argv[2], &err);
	} else if (strcmp(cmd, "new-host-name") == 0 && argc == 2) {
		char *name = network_new_host_name();
		printf("%s\n", name);
		free(name);
	} else if (strcmp(cmd, "new-hwaddr") == 0 && argc == 2) {
		char *mac = network_new_hwaddr();
		printf("%s\n", mac);
		free(mac);
	} else if (strcmp(cmd, "state") == 0 && argc == 3) {
		json_t *state = NULL;
		rc = network_state_json(atoi(argv[2]), &state, &err);
		if (rc == 0) {
			json_dumpf(state, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
			printf("\n");
			json_decref(state);
		}
	} else if (strcmp(cmd, "announce") == 0 && argc == 4) {
		rc = network_announce(atoi(argv[2]), argv[3], &err);
	} else if (strcmp(cmd, "nat-rules") == 0 && argc == 3) {
		return nat_rules(argv[2]);
	} else if (strcmp(cmd, "nft") == 0 && argc == 3) {
		return nft(argv[2]);
	} else {
		return usage();
	}

	if (rc < 0) {
		fprintf(stderr, "netctl: %s\n", err != NULL ? err->msg : "failed");
		error_free(&err);
		return 1;
	}
	return 0;
}
