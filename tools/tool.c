/* SPDX-License-Identifier: MIT */
/* tool.c: helpers shared by the evshm subcommands (see tool.h). */
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
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

int tool_pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
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

bool tool_opt(int argc, char **argv, int *i, const char *name,
	      const char *short_, const char **val, bool *bad, const char *cmd)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (short_ && !strcmp(a, short_)) {
		a = name; /* fall through as the long form, no "=value" */
	} else if (strncmp(a, name, n) || (a[n] && a[n] != '=')) {
		return false;
	}
	if (!val) {
		if (a != name && a[n] == '=') {
			tool_err(cmd, "%s takes no value", name);
			*bad = true;
		}
		return true;
	}
	if (a != name && a[n] == '=') {
		*val = a + n + 1;
		return true;
	}
	if (*i + 1 >= argc) {
		tool_err(cmd, "%s needs a value", name);
		*bad = true;
		return true;
	}
	*val = argv[++*i];
	return true;
}
