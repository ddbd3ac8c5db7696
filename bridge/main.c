/* SPDX-License-Identifier: MIT */
/*
 * evshm-bridge: evshm channels between hosts, over ZeroMQ.  main() only
 * dispatches:
 *
 *   evshm-bridge export ...   beside the server     (export.c)
 *   evshm-bridge import ...   beside the clients    (import.c)
 *   evshm-bridge keygen BASE  a CURVE key pair      (keys.c)
 *
 * The manual is man/evshm-bridge.1.scd; the design is docs/bridge.md.
 */
#include <stdio.h>
#include <string.h>

#include <evshm.h>
#include <zmq.h>

#include "bridge.h"
#include "keys.h"
#include "opts.h"

static int keygen(int argc, char **argv)
{
	char err[512];

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: evshm-bridge keygen BASENAME\n\n"
		       "Write a new CURVE key pair to BASENAME.key (secret, mode\n"
		       "0600) and its public key to BASENAME.pub.  Neither file may\n"
		       "exist.  Give BASENAME.pub to the other side: an export lists\n"
		       "its imports' keys with --allow, an import names the export's\n"
		       "with --server-key.\n\nManual: evshm-bridge(1).\n");
		return BRIDGE_EXIT_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: evshm-bridge keygen BASENAME\n");
		return BRIDGE_EXIT_USAGE;
	}
	if (keys_generate(argv[1], err, sizeof(err)) < 0) {
		fprintf(stderr, "evshm-bridge keygen: %s\n", err);
		return BRIDGE_EXIT_FAIL;
	}
	printf("wrote %s.key (secret) and %s.pub\n", argv[1], argv[1]);
	return BRIDGE_EXIT_OK;
}

static int role(enum bridge_role r, int argc, char **argv)
{
	struct bridge_cfg cfg;
	int res = opts_parse(&cfg, r, argc, argv);

	if (res)
		return res > 0 ? BRIDGE_EXIT_OK : BRIDGE_EXIT_USAGE;
	if (bridge_fd_limits(&cfg) < 0)
		return BRIDGE_EXIT_FAIL;
	return r == ROLE_EXPORT ? bridge_export(&cfg) : bridge_import(&cfg);
}

int main(int argc, char **argv)
{
	int major, minor, patch;

	if (argc < 2) {
		opts_usage(stderr);
		return BRIDGE_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		opts_usage(stdout);
		return BRIDGE_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		zmq_version(&major, &minor, &patch);
		printf("evshm-bridge %s (libevshm %s, libzmq %d.%d.%d%s)\n",
		       EVSHM_VERSION_STRING, evshm_version(), major, minor, patch,
		       zmq_has("curve") ? ", CURVE" : ", no CURVE");
		return BRIDGE_EXIT_OK;
	}
	if (!strcmp(argv[1], "export"))
		return role(ROLE_EXPORT, argc - 1, argv + 1);
	if (!strcmp(argv[1], "import"))
		return role(ROLE_IMPORT, argc - 1, argv + 1);
	if (!strcmp(argv[1], "keygen"))
		return keygen(argc - 1, argv + 1);
	fprintf(stderr, "evshm-bridge: unknown command '%s'\n\n", argv[1]);
	opts_usage(stderr);
	return BRIDGE_EXIT_USAGE;
}
