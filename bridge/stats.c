/* SPDX-License-Identifier: MIT */
/* stats.c: see stats.h. */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct bridge_stats stats;

void stats_queued(int64_t cost)
{
	stats.queued_bytes += (uint64_t)cost;
	if (stats.queued_bytes > stats.queued_bytes_peak)
		stats.queued_bytes_peak = stats.queued_bytes;
}

/* VmRSS and VmHWM of this process, in KiB (0 if unknown). */
static void memory_kib(unsigned long *rss, unsigned long *hwm)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	*rss = *hwm = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %lu", rss);
		sscanf(line, "VmHWM: %lu", hwm);
	}
	fclose(f);
}

int stats_write(const char *path)
{
	char tmp[4096];
	unsigned long rss, hwm;
	FILE *f;
	int fd, res = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* Whatever is at the temporary name (a leftover of a kill -9, or a
	 * link someone put there, where others may write) is replaced, never
	 * written through. */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0666);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		res = -errno;
		close(fd);
		unlink(tmp);
		return res;
	}
	memory_kib(&rss, &hwm);
#define STATS_LINE(name, text) \
	fprintf(f, "%s %llu\n", #name, (unsigned long long)stats.name);
	STATS_COUNTERS(STATS_LINE)
#undef STATS_LINE
	fprintf(f, "rss_kib %lu\nrss_peak_kib %lu\n", rss, hwm);
	if (fflush(f) != 0 || ferror(f))
		res = -EIO;
	if (fclose(f) != 0 && !res)
		res = -errno;
	if (!res && rename(tmp, path) < 0)
		res = -errno;
	if (res)
		unlink(tmp);
	return res;
}
