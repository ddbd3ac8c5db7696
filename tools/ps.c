/* SPDX-License-Identifier: MIT */
/*
 * ps.c: `evshm ps` (one look at every evshm channel and topic on the host
 * that we may see) and `evshm top` (the same, again and again, with rates).
 *
 * Pairing: the two regions of a channel carry the same 16-byte id (the
 * client draws it, the server's WELCOME repeats it), and so do a topic's
 * publisher and every subscriber (the publisher's READY gives it).  A group
 * of regions with one id is one channel (at most one client and one
 * server) or one topic (at most one publisher).  The id is the regions' own
 * say: a group that does not fit (two clients claiming one id: a forger,
 * or a copy) is not paired at all, each region is shown alone and marked
 * ambiguous, rather than paired by a guess.
 *
 * A ring's fill needs two regions, read at two moments.  They are read
 * again, reader before writer (client, server, client again; every
 * subscriber, then the publisher): an honest ring's head then never shows
 * past its tail, and a fill computed from them is never negative.  A head
 * past a tail can only come from a broken or lying side: unknown.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps.h"
#include "sys.h"
#include "tool.h"

struct ps_opts {
	bool json;
	double watch;           /* seconds between samples; 0: one sample */
	uint64_t iterations;    /* with --watch: samples; 0: until killed */
	struct ps_filter filter;
};

/* --- pairing -------------------------------------------------------------- */

/* Channels first, then topics; by id; publisher before subscribers,
 * client before server; then by process. */
static int family(const struct ps_region *r)
{
	return r->info.kind == EVSHM_REGION_CHAN ? 0 : 1;
}

static int cmp_group(const void *a, const void *b)
{
	const struct ps_region *x = *(const struct ps_region *const *)a;
	const struct ps_region *y = *(const struct ps_region *const *)b;
	int c;

	if (family(x) != family(y))
		return family(x) - family(y);
	c = memcmp(x->info.id, y->info.id, sizeof(x->info.id));
	if (c)
		return c;
	if (x->info.kind != y->info.kind)
		return x->info.kind < y->info.kind ? -1 : 1;
	if (x->info.role != y->info.role)
		return x->info.role < y->info.role ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->fd < y->fd ? -1 : x->fd > y->fd;
}

static bool same_group(const struct ps_region *x, const struct ps_region *y)
{
	return family(x) == family(y) &&
	       !memcmp(x->info.id, y->info.id, sizeof(x->info.id));
}

/* What @tail's writer committed that @head's reader has not released, at
 * most @cap; unknown when the head is past the tail. */
static void set_queued(struct ps_region *r, uint64_t tail, uint64_t head,
		       uint64_t cap)
{
	r->has_queued = head <= tail;
	r->queued = !r->has_queued ? 0 : tail - head < cap ? tail - head : cap;
}

/* Both rings of a channel, from reads in the order that keeps an honest
 * head at or below its tail (see the top of the file).  A reread that
 * fails (the side just closed) leaves the first read, and the order is
 * then not guaranteed: a head past its tail shows as unknown. */
static void chan_fill(struct ps_chan *c)
{
	uint64_t client_head;

	ps_reread(c->client);
	client_head = c->client->info.head;
	ps_reread(c->server);
	ps_reread(c->client);
	/* The fill of a channel ring cannot exceed the ring; what the reads
	 * overstate (releases between them) is capped there. */
	set_queued(c->client, c->client->info.tail, c->server->info.head,
		   c->client->info.ring_size);
	set_queued(c->server, c->server->info.tail, client_head,
		   c->server->info.ring_size);
}

/* Each subscriber's lag: subscribers first, then the publisher.  A
 * lapped subscriber (latest) may lag more than the ring: not capped. */
static void topic_lag(struct ps_topic *t)
{
	for (size_t i = 0; i < t->nsubs; i++)
		ps_reread(t->subs[i]);
	ps_reread(t->pub);
	for (size_t i = 0; i < t->nsubs; i++)
		set_queued(t->subs[i], t->pub->info.tail, t->subs[i]->info.head,
			   UINT64_MAX);
}

static void pair_chan(struct ps_snap *s, struct ps_region **g, size_t n)
{
	size_t clients = 0;

	while (clients < n && g[clients]->info.role == 1)
		clients++;
	if (clients <= 1 && n - clients <= 1) {
		struct ps_chan *c = &s->chans[s->nchans++];

		*c = (struct ps_chan){ .client = clients ? g[0] : NULL,
				       .server = n > clients ? g[clients] : NULL };
		if (c->client && c->server)
			chan_fill(c);
		return;
	}
	for (size_t i = 0; i < n; i++)
		s->chans[s->nchans++] = (struct ps_chan){
			.client = i < clients ? g[i] : NULL,
			.server = i < clients ? NULL : g[i],
			.ambiguous = true,
		};
}

static void pair_topic(struct ps_snap *s, struct ps_region **g, size_t n)
{
	size_t pubs = 0;

	while (pubs < n && g[pubs]->info.kind == EVSHM_REGION_PUB)
		pubs++;
	if (pubs <= 1) {
		struct ps_topic *t = &s->topics[s->ntopics++];

		*t = (struct ps_topic){ .pub = pubs ? g[0] : NULL,
					.subs = g + pubs, .nsubs = n - pubs };
		if (t->pub)
			topic_lag(t);
		return;
	}
	for (size_t i = 0; i < pubs; i++)
		s->topics[s->ntopics++] = (struct ps_topic){ .pub = g[i],
							     .ambiguous = true };
	if (n > pubs)
		s->topics[s->ntopics++] = (struct ps_topic){
			.subs = g + pubs, .nsubs = n - pubs, .ambiguous = true };
}

/* The lowest pid among a channel's sides: channels of one process, and a
 * server's channels, are shown together. */
static pid_t chan_pid(const struct ps_chan *c)
{
	if (c->server && (!c->client || c->server->pid <= c->client->pid))
		return c->server->pid;
	return c->client->pid;
}

static int cmp_chan(const void *a, const void *b)
{
	const struct ps_chan *x = a, *y = b;
	const struct ps_region *rx = x->server ? x->server : x->client;
	const struct ps_region *ry = y->server ? y->server : y->client;

	if (chan_pid(x) != chan_pid(y))
		return chan_pid(x) < chan_pid(y) ? -1 : 1;
	return cmp_group(&rx, &ry);
}

static int pair(struct ps_snap *s)
{
	s->valid = calloc(s->n ? s->n : 1, sizeof(*s->valid));
	s->chans = calloc(s->n ? s->n : 1, sizeof(*s->chans));
	s->topics = calloc(s->n + 1, sizeof(*s->topics));
	if (!s->valid || !s->chans || !s->topics)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		if (s->r[i].err == 0 && !s->r[i].dup)
			s->valid[s->nvalid++] = &s->r[i];
	qsort(s->valid, s->nvalid, sizeof(*s->valid), cmp_group);
	for (size_t i = 0, j; i < s->nvalid; i = j) {
		for (j = i + 1; j < s->nvalid; j++)
			if (!same_group(s->valid[i], s->valid[j]))
				break;
		if (family(s->valid[i]) == 0)
			pair_chan(s, s->valid + i, j - i);
		else
			pair_topic(s, s->valid + i, j - i);
	}
	qsort(s->chans, s->nchans, sizeof(*s->chans), cmp_chan);
	return 0;
}

/* --- samples -------------------------------------------------------------- */

static int cmp_file(const void *a, const void *b)
{
	const struct ps_region *x = *(const struct ps_region *const *)a;
	const struct ps_region *y = *(const struct ps_region *const *)b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Point each region of @s at the same file in @prev, for its rates. */
static int link_prev(struct ps_snap *s, const struct ps_snap *prev)
{
	const struct ps_region **idx;
	size_t n = 0;

	if (!prev->n)
		return 0;
	idx = calloc(prev->n, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < prev->n; i++)
		if (prev->r[i].err == 0 && !prev->r[i].dup)
			idx[n++] = &prev->r[i];
	qsort(idx, n, sizeof(*idx), cmp_file);
	for (size_t i = 0; i < s->n; i++) {
		const struct ps_region *key = &s->r[i];
		const struct ps_region **hit;

		if (key->err || key->dup)
			continue;
		hit = bsearch(&key, idx, n, sizeof(*idx), cmp_file);
		s->r[i].prev = hit ? *hit : NULL;
	}
	free(idx);
	return 0;
}

static int sample(struct ps_snap *s, const struct ps_snap *prev)
{
	int res = ps_scan(s);

	if (res == 0)
		res = pair(s);
	if (res == 0 && prev)
		res = link_prev(s, prev);
	return res;
}

/* --- the command ---------------------------------------------------------- */

static int add_pid(const char *item, void *arg)
{
	struct ps_filter *f = arg;
	uint64_t v;

	if (f->npids == PS_MAX_PIDS || tool_parse_count(item, &v) < 0 ||
	    v == 0 || v > INT32_MAX)
		return -EINVAL;
	f->pids[f->npids++] = (pid_t)v;
	return 0;
}

static int set_pids(void *opts, const char *val)
{
	return tool_each_item(val, add_pid, &((struct ps_opts *)opts)->filter);
}

static int set_name(void *opts, const char *val)
{
	if (!*val)
		return -EINVAL;
	((struct ps_opts *)opts)->filter.name = val;
	return 0;
}

#define F(field, ctype) TOOL_FIELD(struct ps_opts, field, ctype)

static const struct tool_option ps_options[] = {
	{ .name = "json", .type = TOOL_OPT_FLAG, .off = F(json, bool),
	  .help = "one JSON object per sample, on one line\n"
		  "(the keys: evshm(1))" },
	{ .name = "watch", .short_name = 'w', .arg = "SEC",
	  .type = TOOL_OPT_SECONDS, .off = F(watch, double), .min = 0.01,
	  .max = 86400,
	  .help = "sample again every SEC seconds, with rates per\n"
		  "second (`evshm top`: every second)" },
	{ .name = "iterations", .short_name = 'n', .arg = "N",
	  .type = TOOL_OPT_COUNT, .off = F(iterations, uint64_t), .min = 1,
	  .max = 1e9, .help = "with --watch: stop after N samples" },
	{ .name = "pid", .short_name = 'p', .arg = "PID,...",
	  .type = TOOL_OPT_CUSTOM, .set = set_pids,
	  .help = "only channels and topics with a side in one of\n"
		  "these processes (up to 32)" },
	{ .name = "name", .arg = "NAME", .type = TOOL_OPT_CUSTOM,
	  .set = set_name,
	  .help = "only channels and topics met at NAME (as either\n"
		  "side gave it)" },
};

#define PS_ABOUT                                                              \
	"Every evshm channel and topic on this host that you may see, read\n" \
	"from the processes' descriptors (/proc/PID/fd): both sides, ring\n"  \
	"sizes and fill, messages and bytes each way, kicks, sleeps, spins,\n" \
	"sticky errors, each subscriber's lag.  Nothing is mapped or written:\n" \
	"looking never disturbs a channel.  Figures are the processes' own\n" \
	"(untrusted); a region that is not valid is listed as invalid.\n"     \
	"Other users' processes are seen only by root.\n"

static const struct tool_cmd ps_cmd = {
	.name = "ps",
	.synopsis = "[--json] [--watch SEC [--iterations N]] [--pid PID,...] "
		    "[--name NAME]",
	.about = PS_ABOUT,
	.opts = ps_options,
	.nopts = sizeof(ps_options) / sizeof(ps_options[0]),
	.footer = "Exit status: 0, 1 if /proc cannot be read, or 4 if\n"
		  "writing stdout failed.\n",
};

static const struct tool_cmd top_cmd = {
	.name = "top",
	.synopsis = "[--json] [--watch SEC] [--iterations N] [--pid PID,...] "
		    "[--name NAME]",
	.about = "`evshm ps --watch 1`: refreshed every second (--watch), "
		 "with rates.\n\n" PS_ABOUT,
	.opts = ps_options,
	.nopts = sizeof(ps_options) / sizeof(ps_options[0]),
	.footer = "Exit status: 0, 1 if /proc cannot be read, or 4 if\n"
		  "writing stdout failed.\n",
};

/* Forget the sample @s links to (its regions' prev). */
static void unlink_prev(struct ps_snap *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->r[i].prev = NULL;
}

int tool_ps(int argc, char **argv)
{
	bool top = !strcmp(argv[0], "top");
	const struct tool_cmd *cmd = top ? &top_cmd : &ps_cmd;
	struct ps_opts o = { .watch = top ? 1.0 : 0 };
	struct ps_snap snap[2] = { { 0 } }, *cur = &snap[0], *prev = NULL;
	bool clear = false, out_err = false;
	uint64_t next;
	int first, res;

	if ((res = tool_getopt(cmd, argc, argv, &o, &first)) >= 0)
		return res;
	if (first < argc)
		return tool_usage_error(cmd, "unexpected operand '%s'",
					argv[first]);
	if (o.iterations && o.watch == 0)
		return tool_usage_error(cmd, "--iterations goes with --watch");
	struct ps_view v = { .filter = &o.filter, .rates = o.watch > 0,
			     .interval = o.watch };
	clear = v.rates && !o.json && isatty(STDOUT_FILENO);
	next = sys_now_ns();
	for (uint64_t k = 1;; k++) {
		res = sample(cur, prev);
		if (res < 0) {
			tool_err(cmd->name, "cannot look at /proc: %s",
				 evshm_strerror(res));
			break;
		}
		if (clear)
			fputs("\033[H\033[2J", stdout);
		else if (v.rates && !o.json && k > 1)
			putchar('\n');
		if (o.json)
			ps_print_json(stdout, cur, &v);
		else
			ps_print_text(stdout, cur, &v);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			/* A full disk, a reader gone with SIGPIPE ignored
			 * (--watch would write on forever): say so. */
			tool_err(cmd->name, "writing stdout: %s", strerror(errno));
			out_err = true;
			break;
		}
		if (!v.rates || k == o.iterations)
			break;
		if (prev) {
			unlink_prev(cur);
			ps_snap_free(prev);
		}
		prev = cur;
		cur = prev == &snap[0] ? &snap[1] : &snap[0];
		next += (uint64_t)(o.watch * 1e9);
		uint64_t now = sys_now_ns();
		if (next > now)
			sys_sleep_ns(next - now);
		else
			next = now; /* fell behind (a slow scan): no burst */
	}
	unlink_prev(cur);
	ps_snap_free(&snap[0]);
	ps_snap_free(&snap[1]);
	if (out_err)
		return TOOL_EXIT_IO;
	return res < 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
