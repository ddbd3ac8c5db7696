/* SPDX-License-Identifier: MIT */
/* opts.c: see opts.h. */
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <evshm.h>

#include "tool.h"
#include "wire.h"

#define DEFAULT_RING (4u << 20)
#define DEFAULT_WINDOW (1u << 20)
#define DEFAULT_HEARTBEAT 1.0
#define DEFAULT_TIMEOUT 5.0
#define DEFAULT_MAX_CHANNELS 256
#define DEFAULT_MAX_SESSIONS 64
#define DEFAULT_STALL 1.0

enum opt_type {
	OPT_FLAG,    /* bool = true */
	OPT_COUNTER, /* uint64_t += 1 */
	OPT_STRING,  /* const char * */
	OPT_SIZE,    /* uint64_t, tool_parse_size, in [min, max] */
	OPT_COUNT,   /* uint64_t, tool_parse_count, in [min, max] */
	OPT_SECONDS, /* double, tool_parse_seconds, in [min, max] */
};

struct opt {
	const char *name;
	char short_name;
	const char *arg;     /* value name for --help; NULL for flags */
	enum opt_type type;
	size_t off;
	double min, max;
	unsigned roles;      /* ROLE_* bits */
	const char *help;
	bool pow2;           /* OPT_SIZE: a power of two */
};

#define BOTH (ROLE_EXPORT | ROLE_IMPORT)
#define F(field) offsetof(struct bridge_cfg, field)

static const struct opt opts[] = {
	{ .name = "local", .arg = "NAME", .type = OPT_STRING, .off = F(local),
	  .roles = BOTH,
	  .help = "evshm name on this host (socket path or @abstract):\n"
		  "export connects to the server there, import listens there" },
	{ .name = "topic", .arg = "NAME", .type = OPT_STRING,
	  .off = F(topic_name), .roles = BOTH,
	  .help = "bridge the topic NAME instead (not with --local):\n"
		  "export subscribes to it once per import, import\n"
		  "publishes it at NAME on its host, same policy" },
	{ .name = "bind", .arg = "ENDPOINT", .type = OPT_STRING,
	  .off = F(endpoint), .roles = ROLE_EXPORT,
	  .help = "ZeroMQ endpoint to accept imports on, e.g.\n"
		  "tcp://10.0.0.2:7300 (tcp://ADDR:* picks a port)" },
	{ .name = "connect", .arg = "ENDPOINT", .type = OPT_STRING,
	  .off = F(endpoint), .roles = ROLE_IMPORT,
	  .help = "ZeroMQ endpoint of the export, e.g. tcp://10.0.0.2:7300" },
	{ .name = "key", .arg = "FILE", .type = OPT_STRING, .off = F(key),
	  .roles = BOTH,
	  .help = "this bridge's key pair (from `evshm-bridge keygen`, mode 0600)" },
	{ .name = "server-key", .arg = "KEY|FILE", .type = OPT_STRING,
	  .off = F(server_key), .roles = ROLE_IMPORT,
	  .help = "the export's public key: only that server is trusted" },
	{ .name = "allow", .arg = "FILE", .type = OPT_STRING, .off = F(allow),
	  .roles = ROLE_EXPORT,
	  .help = "public keys of the imports that may connect, one a line" },
	{ .name = "insecure", .type = OPT_FLAG, .off = F(insecure),
	  .roles = BOTH,
	  .help = "plain TCP: no encryption, no authentication (both sides)" },
	{ .name = "ring", .arg = "SIZE", .type = OPT_SIZE, .off = F(ring),
	  .min = EVSHM_RING_MIN, .max = EVSHM_RING_MAX, .pow2 = true,
	  .roles = BOTH,
	  .help = "largest ring of a bridged channel; messages up to SIZE/2\n"
		  "(default 4M)" },
	{ .name = "window", .arg = "SIZE", .type = OPT_SIZE, .off = F(window),
	  .min = WIRE_WINDOW_MIN, .max = WIRE_WINDOW_MAX, .roles = BOTH,
	  .help = "credit window per channel and direction: the most bytes\n"
		  "in flight or queued in a bridge (default 1M)" },
	{ .name = "heartbeat", .arg = "SEC", .type = OPT_SECONDS,
	  .off = F(heartbeat), .min = 0.05, .max = 600, .roles = BOTH,
	  .help = "send a heartbeat after SEC idle (default 1)" },
	{ .name = "timeout", .arg = "SEC", .type = OPT_SECONDS, .off = F(timeout),
	  .min = 0.1, .max = WIRE_TIMEOUT_MAX_MS / 1000.0, .roles = BOTH,
	  .help = "a session silent for SEC is dead (default 5); local peers\n"
		  "see the failure within SEC + SEC/20.  Also how long the\n"
		  "export may take to answer an open; the far bridge's answer\n"
		  "is awaited SEC + its SEC (an open's: at most 2 x SEC)" },
	{ .name = "max-channels", .arg = "N", .type = OPT_COUNT,
	  .off = F(max_channels), .min = 1, .max = WIRE_STREAMS_MAX,
	  .roles = BOTH,
	  .help = "channels open at once per session (default 256; fewer\n"
		  "in all if the descriptor limit cannot carry them)" },
	{ .name = "max-sessions", .arg = "N", .type = OPT_COUNT,
	  .off = F(max_sessions), .min = 1, .max = 4096, .roles = ROLE_EXPORT,
	  .help = "imports connected at once (default 64; as --max-channels)" },
	{ .name = "subscribers", .arg = "N", .type = OPT_COUNT,
	  .off = F(subscribers), .min = 0, .max = 1024, .roles = ROLE_IMPORT,
	  .help = "--topic: start each stream only once N local\n"
		  "subscribers have joined (default 0: at once)" },
	{ .name = "stall-timeout", .arg = "SEC", .type = OPT_SECONDS,
	  .off = F(stall), .min = 0.001, .max = 2e6, .roles = ROLE_IMPORT,
	  .help = "--topic, reliable: drop a local subscriber that\n"
		  "holds the topic up this long (default 1)" },
	{ .name = "stats-file", .arg = "PATH", .type = OPT_STRING,
	  .off = F(stats_file), .roles = BOTH,
	  .help = "write the counters there every second and at exit" },
	{ .name = "verbose", .short_name = 'v', .type = OPT_COUNTER,
	  .off = F(verbose), .roles = BOTH,
	  .help = "log each channel (-vv: protocol detail)" },
	{ .name = "quiet", .short_name = 'q', .type = OPT_FLAG, .off = F(quiet),
	  .roles = BOTH, .help = "log errors only" },
	{ .name = "help", .short_name = 'h', .type = OPT_FLAG, .roles = BOTH,
	  .help = "this text" },
};

static const char *role_name(enum bridge_role role)
{
	return role == ROLE_EXPORT ? "export" : "import";
}

void opts_usage(FILE *f)
{
	fprintf(f,
		"usage: evshm-bridge export --local|--topic NAME --bind ENDPOINT\n"
		"                           --key FILE --allow FILE [OPTIONS]\n"
		"       evshm-bridge import --local|--topic NAME --connect ENDPOINT\n"
		"                           --key FILE --server-key KEY|FILE [OPTIONS]\n"
		"       evshm-bridge keygen BASENAME\n"
		"       evshm-bridge --help | --version | ROLE --help\n"
		"\n"
		"Carry evshm channels between hosts over ZeroMQ.  On the host of\n"
		"the server, `export` connects each remote client to the evshm\n"
		"server at NAME; on the client's host, `import` listens at NAME\n"
		"and relays every channel to the export.  With --topic, the\n"
		"export subscribes to the topic NAME once per import and the\n"
		"import publishes it at its own NAME (one copy crosses the\n"
		"network per host).  Encrypted and authenticated with CURVE\n"
		"unless --insecure is given.\n"
		"`keygen` writes BASENAME.key (secret) and BASENAME.pub.\n"
		"\n"
		"Manual: evshm-bridge(1) (`man evshm-bridge`).\n");
}

static void role_usage(FILE *f, enum bridge_role role)
{
	fprintf(f, "usage: evshm-bridge %s [OPTIONS]\n\noptions:\n",
		role_name(role));
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];
		char head[64];
		const char *h = o->help;

		if (!(o->roles & role))
			continue;
		/* "-v, --verbose", or "    --local NAME" in the same column. */
		snprintf(head, sizeof(head), "%c%c%s--%s%s%s",
			 o->short_name ? '-' : ' ',
			 o->short_name ? o->short_name : ' ',
			 o->short_name ? ", " : "  ", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		/* The first help line beside the option, the rest below. */
		fprintf(f, "  %-26s", head);
		for (const char *nl; (nl = strchr(h, '\n')); h = nl + 1)
			fprintf(f, " %.*s\n  %-26s", (int)(nl - h), h, "");
		fprintf(f, " %s\n", h);
	}
	fprintf(f, "\nManual: evshm-bridge(1) (`man evshm-bridge`).\n");
}

static int bad(enum bridge_role role, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(enum bridge_role role, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "evshm-bridge %s: %s\n(see `evshm-bridge %s --help`)\n",
		role_name(role), msg, role_name(role));
	return -EINVAL;
}

static int set_value(struct bridge_cfg *cfg, const struct opt *o,
		     const char *v, enum bridge_role role)
{
	char *field = (char *)cfg + o->off;
	uint64_t u;
	double d;

	switch (o->type) {
	case OPT_FLAG:
		*(bool *)(void *)field = true;
		return 0;
	case OPT_COUNTER:
		*(uint64_t *)(void *)field += 1;
		return 0;
	case OPT_STRING:
		if (!*v)
			return bad(role, "--%s needs a value", o->name);
		*(const char **)(void *)field = v;
		return 0;
	case OPT_SIZE:
	case OPT_COUNT:
		if ((o->type == OPT_SIZE ? tool_parse_size(v, &u)
					 : tool_parse_count(v, &u)) < 0 ||
		    (double)u < o->min || (double)u > o->max)
			return bad(role, "--%s: '%s' is out of range", o->name, v);
		if (o->pow2 && (u & (u - 1)))
			return bad(role, "--%s: '%s' is not a power of two",
				   o->name, v);
		*(uint64_t *)(void *)field = u;
		return 0;
	case OPT_SECONDS:
		if (tool_parse_seconds(v, &d) < 0 || d < o->min || d > o->max)
			return bad(role, "--%s: '%s' is out of range", o->name, v);
		*(double *)(void *)field = d;
		return 0;
	}
	return -EINVAL;
}

/* Find the option @arg names ("--name", "--name=v", "-x"). */
static const struct opt *find(const char *arg, const char **inline_val)
{
	*inline_val = NULL;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];
		size_t n = strlen(o->name);

		if (arg[0] == '-' && arg[1] == o->short_name && !arg[2] &&
		    o->short_name)
			return o;
		if (strncmp(arg, "--", 2) || strncmp(arg + 2, o->name, n))
			continue;
		if (arg[2 + n] == '=') {
			*inline_val = arg + 3 + n;
			return o;
		}
		if (!arg[2 + n])
			return o;
	}
	return NULL;
}

static int check(struct bridge_cfg *cfg, enum bridge_role role)
{
	const char *ep = role == ROLE_EXPORT ? "--bind" : "--connect";

	if (!cfg->local == !cfg->topic_name)
		return bad(role, "give one of --local NAME (a channel server) and "
			   "--topic NAME");
	if (!cfg->topic_name && (cfg->subscribers || cfg->stall != DEFAULT_STALL))
		return bad(role, "--subscribers and --stall-timeout go with "
			   "--topic");
	if (cfg->topic_name) {
		cfg->local = cfg->topic_name;
		cfg->topic = true;
	}
	if (!cfg->endpoint)
		return bad(role, "%s ENDPOINT is missing", ep);
	if (cfg->insecure && (cfg->key || cfg->server_key || cfg->allow))
		return bad(role, "--insecure goes without --key, --server-key "
			   "and --allow");
	if (!cfg->insecure && !cfg->key)
		return bad(role, "--key FILE is missing (or --insecure for plain "
			   "TCP)");
	if (!cfg->insecure && role == ROLE_IMPORT && !cfg->server_key)
		return bad(role, "--server-key is missing: the export's public "
			   "key");
	if (!cfg->insecure && role == ROLE_EXPORT && !cfg->allow)
		return bad(role, "--allow FILE is missing: the imports' public "
			   "keys");
	if (cfg->timeout < 2 * cfg->heartbeat)
		return bad(role, "--timeout must be at least twice --heartbeat");
	cfg->heartbeat_ms = (uint32_t)lround(cfg->heartbeat * 1000);
	cfg->timeout_ms = (uint32_t)lround(cfg->timeout * 1000);
	cfg->stall_ms = (uint32_t)lround(cfg->stall * 1000);
	return 0;
}

int opts_parse(struct bridge_cfg *cfg, enum bridge_role role, int argc,
	       char **argv)
{
	*cfg = (struct bridge_cfg){
		.role = role,
		.ring = DEFAULT_RING,
		.window = DEFAULT_WINDOW,
		.heartbeat = DEFAULT_HEARTBEAT,
		.timeout = DEFAULT_TIMEOUT,
		.max_channels = DEFAULT_MAX_CHANNELS,
		.max_sessions = DEFAULT_MAX_SESSIONS,
		.stall = DEFAULT_STALL,
	};
	for (int i = 1; i < argc; i++) {
		const char *v;
		const struct opt *o = find(argv[i], &v);

		/* -vv: -v twice. */
		if (!o && argv[i][0] == '-' && argv[i][1] == 'v' &&
		    strspn(argv[i] + 1, "v") == strlen(argv[i] + 1)) {
			cfg->verbose += strlen(argv[i] + 1);
			continue;
		}
		if (!o || !(o->roles & role))
			return bad(role, "unknown option '%s'", argv[i]);
		if (!strcmp(o->name, "help")) {
			role_usage(stdout, role);
			return 1;
		}
		if (!o->arg && v)
			return bad(role, "--%s takes no value", o->name);
		if (o->arg && !v) {
			if (i + 1 >= argc)
				return bad(role, "--%s needs a value", o->name);
			v = argv[++i];
		}
		if (set_value(cfg, o, v, role) < 0)
			return -EINVAL;
	}
	return check(cfg, role);
}
