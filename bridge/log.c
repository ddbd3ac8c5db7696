/* SPDX-License-Identifier: MIT */
/* log.c: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

static const char *log_role = "bridge";
static enum log_level log_max = LOG_NOTICE;

void log_init(const char *role, enum log_level max)
{
	log_role = role;
	log_max = max;
}

int log_enabled(enum log_level level)
{
	return level <= log_max;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const tag[] = { "error: ", "", "", "debug: " };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02d %02d:%02d:%02d.%03ld evshm-bridge[%d] %s: %s",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid(),
		     log_role, tag[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write: lines of several processes never mix.  Nothing useful
	 * can be done if stderr is gone. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void log_limited(struct log_limit *l, enum log_level level, const char *fmt,
		 ...)
{
	uint64_t now = loop_now_ms();
	char msg[900];
	va_list ap;

	if (!log_enabled(level))
		return;
	if (now < l->next_ms) {
		l->held++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->held)
		log_msg(level, "%s (and %llu more like it in the second before, "
			"not logged)", msg, (unsigned long long)l->held);
	else
		log_msg(level, "%s", msg);
	l->held = 0;
	l->next_ms = now + 1000;
}

void log_limit_flush(struct log_limit *l, const char *what, bool force)
{
	if (!l->held || (!force && loop_now_ms() < l->next_ms))
		return;
	log_notice("%llu more %s in the second before, not logged",
		   (unsigned long long)l->held, what);
	l->held = 0;
}
