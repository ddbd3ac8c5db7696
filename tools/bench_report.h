/* SPDX-License-Identifier: MIT */
/*
 * bench_report.h: what `evshm bench` prints: each figure as the median
 * over the runs with its min-max spread, as tables or as JSON.
 */
#ifndef EVSHM_TOOL_BENCH_REPORT_H
#define EVSHM_TOOL_BENCH_REPORT_H

#include "bench_plan.h"

/* The machine, for the report's header. */
struct bench_meta {
	char date[64], host[65], kernel[65], cpu[128];
	long ncpus;
	unsigned left_out;      /* runs of third-party rows that failed */
};

void bench_meta_get(struct bench_meta *m);

/* @res: o->repeat runs of p->n results, run after run. */
void bench_report_table(const struct bench_opts *o, const struct bench_plan *p,
			const struct bench_result *res,
			const struct bench_meta *m);
void bench_report_json(const struct bench_opts *o, const struct bench_plan *p,
		       const struct bench_result *res,
		       const struct bench_meta *m);

/* "64 B", "4 KiB", "1 MiB" into @buf. */
const char *bench_size_str(char *buf, size_t n, uint32_t size);

#endif
