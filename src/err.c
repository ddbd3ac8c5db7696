/* SPDX-License-Identifier: MIT */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const texts[R_COUNT] = {
#define EVSHM_REASON_TEXT(name, text) [R_##name] = text,
	EVSHM_REASONS(EVSHM_REASON_TEXT)
#undef EVSHM_REASON_TEXT
};

static _Thread_local enum err_reason last;

int err_proto(enum err_reason reason, const char *file, int line)
{
	const char *dbg = getenv("EVSHM_DEBUG");

	last = reason;
	if (dbg && *dbg && *dbg != '0')
		fprintf(stderr, "evshm[%d]: %s (%s:%d)\n", (int)getpid(),
			texts[reason], file, line);
	return -EPROTO;
}

enum err_reason err_last(void)
{
	return last;
}

void err_clear(void)
{
	last = R_NONE;
}

const char *err_text(unsigned reason)
{
	return reason < R_COUNT ? texts[reason] : "unknown reason";
}
