/* SPDX-License-Identifier: MIT */
/* tool.c: helpers shared by the evshm subcommands (see tool.h). */
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int tool_spawn_self(pid_t *pid, char *const argv[])
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	return -posix_spawn(pid, exe, NULL, NULL, argv, environ);
}

int tool_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Split "<number><suffix>" and return the number; *end at the suffix. */
static int parse_number(const char *s, double *num, const char **end)
{
	char *e;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	*num = strtod(s, &e);
	if (errno || e == s || !isfinite(*num))
		return -EINVAL;
	*end = e;
	return 0;
}

int tool_parse_size(const char *s, uint64_t *out)
{
	static const char *const units[] = { "", "k", "m", "g" };
	const char *e;
	double v;

	if (parse_number(s, &v, &e) < 0)
		return -EINVAL;
	for (unsigned u = 0; u < 4; u++) {
		size_t n = strlen(units[u]);
		if (strncasecmp(e, units[u], n))
			continue;
		const char *rest = e + n;
		if (u == 0 && *rest && strcasecmp(rest, "b"))
			continue;
		if (u > 0 && *rest && strcasecmp(rest, "ib") &&
		    strcasecmp(rest, "b"))
			continue;
		v = ldexp(v, 10 * (int)u);
		if (v != floor(v) || v >= 18446744073709551615.0)
			return -EINVAL;
		*out = (uint64_t)v;
		return 0;
	}
	return -EINVAL;
}

int tool_parse_seconds(const char *s, double *out)
{
	const char *e;
	double v;

	if (parse_number(s, &v, &e) < 0)
		return -EINVAL;
	if (!strcmp(e, "ms"))
		v /= 1000;
	else if (*e && strcmp(e, "s"))
		return -EINVAL;
	*out = v;
	return 0;
}

int tool_parse_count(const char *s, uint64_t *out)
{
	const char *e;
	double v;

	if (parse_number(s, &v, &e) < 0)
		return -EINVAL;
	if (!strcmp(e, "k"))
		v *= 1e3;
	else if (!strcmp(e, "M"))
		v *= 1e6;
	else if (*e)
		return -EINVAL;
	if (v != floor(v) || v >= 1e18)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

int tool_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t tool_read(int fd, void *buf, size_t n)
{
	for (;;) {
		ssize_t r = read(fd, buf, n);
		if (r >= 0 || errno != EINTR)
			return r < 0 ? -errno : r;
	}
}

const char *tool_fmt_bytes(char *buf, size_t n, double bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, n, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
	return buf;
}

void tool_err(const char *cmd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = snprintf(line, sizeof(line), "evshm %s: ", cmd);

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write, so that two processes' lines do not mix. */
	fprintf(stderr, "%s\n", line);
}

/* --- the option table --------------------------------------------------- */

#define HELP_COL 22   /* where option descriptions start */
#define OPT_MAX 40    /* options one subcommand may have */

/* "  --name, -x ARG" into @buf; its length. */
static int opt_left(char *buf, size_t n, const struct tool_option *o)
{
	char sh[8] = "";

	if (o->short_name)
		snprintf(sh, sizeof(sh), ", -%c", o->short_name);
	return snprintf(buf, n, "  --%s%s%s%s", o->name, sh, o->arg ? " " : "",
			o->arg ? o->arg : "");
}

static void opt_print(FILE *f, const struct tool_option *o)
{
	char left[96];
	int w = opt_left(left, sizeof(left), o);
	const char *h = o->help;

	fputs(left, f);
	if (w + 2 > HELP_COL) {
		fputc('\n', f);
		w = 0;
	}
	for (bool first = true; *h; first = false) {
		size_t len = strcspn(h, "\n");
		fprintf(f, "%*s%.*s\n", first ? HELP_COL - w : HELP_COL, "",
			(int)len, h);
		h += len + (h[len] == '\n');
	}
}

void tool_usage(const struct tool_cmd *c, FILE *f)
{
	static const struct tool_option help = {
		.name = "help", .short_name = 'h', .help = "this text",
	};

	fprintf(f, "usage: evshm %s%s%s\n", c->name, *c->synopsis ? " " : "",
		c->synopsis);
	if (c->about)
		fprintf(f, "\n%s", c->about);
	fprintf(f, "\noptions:\n");
	for (size_t i = 0; i < c->nopts; i++)
		opt_print(f, &c->opts[i]);
	opt_print(f, &help);
	if (c->footer)
		fprintf(f, "\n%s", c->footer);
	fprintf(f, "\nSee evshm(1).\n");
}

int tool_usage_error(const struct tool_cmd *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	tool_err(c->name, "%s", line);
	fprintf(stderr, "usage: evshm %s%s%s (`evshm %s --help`: the options)\n",
		c->name, *c->synopsis ? " " : "", c->synopsis, c->name);
	return TOOL_EXIT_USAGE;
}

/* getopt_long's value for option @i: its letter, or 256 + i. */
static int opt_val(const struct tool_option *o, size_t i)
{
	return o->short_name ? o->short_name : 256 + (int)i;
}

static const struct tool_option *opt_find(const struct tool_cmd *c, int val)
{
	for (size_t i = 0; i < c->nopts; i++)
		if (opt_val(&c->opts[i], i) == val)
			return &c->opts[i];
	return NULL;
}

static int opt_store(const struct tool_option *o, void *opts, const char *v)
{
	char *field = (char *)opts + o->off;
	uint64_t n;
	double d;

	switch (o->type) {
	case TOOL_OPT_FLAG:
		*(bool *)field = true;
		return 0;
	case TOOL_OPT_SIZE:
	case TOOL_OPT_COUNT:
		if ((o->type == TOOL_OPT_SIZE ? tool_parse_size(v, &n)
					      : tool_parse_count(v, &n)) < 0 ||
		    (double)n < o->min || (double)n > o->max)
			return -EINVAL;
		*(uint64_t *)field = n;
		return 0;
	case TOOL_OPT_SECONDS:
		if (tool_parse_seconds(v, &d) < 0 || d < o->min || d > o->max)
			return -EINVAL;
		*(double *)field = d;
		return 0;
	case TOOL_OPT_CUSTOM:
		return o->set(opts, v);
	}
	return -EINVAL;
}

int tool_getopt(const struct tool_cmd *c, int argc, char **argv, void *opts,
		int *first)
{
	struct option lo[OPT_MAX + 2];
	char so[3 * OPT_MAX + 8], *sp = so;
	int v;

	if (c->nopts > OPT_MAX)
		abort(); /* a table this long is a bug of ours */
	*sp++ = ':'; /* a missing value is ':', not '?' */
	*sp++ = 'h';
	for (size_t i = 0; i < c->nopts; i++) {
		const struct tool_option *o = &c->opts[i];
		lo[i] = (struct option){ .name = o->name,
					 .has_arg = o->arg ? required_argument
							   : no_argument,
					 .val = opt_val(o, i) };
		if (o->short_name) {
			*sp++ = o->short_name;
			if (o->arg)
				*sp++ = ':';
		}
	}
	*sp = '\0';
	lo[c->nopts] = (struct option){ .name = "help", .val = 'h' };
	lo[c->nopts + 1] = (struct option){ 0 };

	opterr = 0;
	optind = 0; /* a full restart of getopt's state */
	while ((v = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		const char *arg = argv[optind - 1];
		const struct tool_option *o = opt_find(c, v);
		if (v == 'h') {
			tool_usage(c, stdout);
			return TOOL_EXIT_OK;
		}
		if (v == ':')
			return tool_usage_error(c, "%s needs a value", arg);
		if (v == '?') {
			if ((o = opt_find(c, optopt)) && !o->arg)
				return tool_usage_error(c, "--%s takes no value",
							o->name);
			if (optopt && optopt < 256)
				return tool_usage_error(c, "unknown option '-%c'",
							optopt);
			return tool_usage_error(c, "unknown option '%s'", arg);
		}
		if (!o || opt_store(o, opts, optarg) < 0)
			return tool_usage_error(c, "bad value '%s' for --%s",
						optarg ? optarg : "",
						o ? o->name : "?");
	}
	*first = optind;
	return -1;
}

int tool_each_item(const char *list, int (*each)(const char *item, void *arg),
		   void *arg)
{
	char buf[256];
	int n = 0;

	if (strlen(list) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, list);
	for (char *save, *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save), n++)
		if (strlen(t) > 63 || each(t, arg) < 0)
			return -EINVAL;
	return n ? 0 : -EINVAL;
}
