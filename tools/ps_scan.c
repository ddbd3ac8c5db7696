/* SPDX-License-Identifier: MIT */
/*
 * ps_scan.c: finding the evshm regions of every process we may look at,
 * and reading them without disturbing anyone (see ps.h).
 *
 * Permissions are the kernel's: /proc/PID/fd of another user's process can
 * be read only with ptrace read access to it (root, or CAP_SYS_PTRACE), so
 * such processes are counted as hidden and their regions stay unseen.
 *
 * A descriptor is looked at in four steps, none of which can block or
 * touch anything of the owner's:
 *  1. readlink /proc/PID/fd/N: only "/memfd:evshm:..." goes on;
 *  2. open it O_PATH: this pins the very file and asks nothing of its
 *     filesystem or driver;
 *  3. its mount (our /proc/self/fdinfo of it) must be the one every memfd
 *     lives on (the kernel's internal one, as a memfd of ours shows it):
 *     a file elsewhere under that name (on FUSE, say, where even a stat
 *     can wait on a server that never answers) is never touched; and it
 *     must be a regular file, so a FIFO or a device that a process put
 *     under that number meanwhile is never opened;
 *  4. reopen that file read-only through our own /proc/self/fd, check its
 *     name again, its seals, and read its header with pread
 *     (evshm_region_read: nothing mapped, so a file truncated meanwhile
 *     cannot fault us).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ps.h"
#include "sys.h"

#define LINK_PREFIX "/memfd:evshm:"
#define DELETED " (deleted)"
/* What evshm seals every region with: a file without them is no region
 * a peer would have accepted. */
#define REGION_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE)

/* @name is a process directory of /proc: all digits. */
static bool is_number(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if (!isdigit((unsigned char)*name))
			return false;
	return true;
}

/* The memfd name in a link "/memfd:NAME (deleted)" into @out. */
static void memfd_name(const char *link, char *out, size_t n)
{
	const char *name = link + strlen("/memfd:");
	size_t len = strlen(name), dl = strlen(DELETED);

	if (len >= dl && !strcmp(name + len - dl, DELETED))
		len -= dl;
	snprintf(out, n, "%.*s", (int)len, name);
}

/* The memfd name evshm gives a region of @kind. */
static const char *kind_memfd(unsigned kind)
{
	switch (kind) {
	case EVSHM_REGION_CHAN: return "evshm:chan";
	case EVSHM_REGION_PUB: return "evshm:pub";
	case EVSHM_REGION_SUB: return "evshm:sub";
	}
	return "?";
}

/* The mount id that /proc/@pid/fdinfo/@n gives; -errno if none. */
static int fdinfo_mnt_id(pid_t pid, int n, long *id)
{
	char path[64], buf[512], *p;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, n);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	sys_close(fd);
	if (len <= 0)
		return len < 0 ? -errno : -ENOENT;
	buf[len] = '\0';
	p = strstr(buf, "\nmnt_id:");
	if (!p)
		return -ENOENT;
	*id = strtol(p + strlen("\nmnt_id:"), NULL, 10);
	return 0;
}

/* The mount of every memfd: that of one of our own.  The tool is
 * single-threaded: learnt once. */
static int memfd_mnt_id(long *id)
{
	static long cached;
	static int res = 1;

	if (res == 1) {
		int fd = memfd_create("evshm-ps-probe", MFD_CLOEXEC);

		res = fd < 0 ? -errno : fdinfo_mnt_id(getpid(), fd, &cached);
		sys_close(fd);
	}
	*id = cached;
	return res;
}

/* The file behind /proc/@pid/fd/@n, opened read-only in *@fd if it is a
 * regular file on the memfd mount whose name is still ours; its identity
 * in *@st. */
static int open_region(pid_t pid, int n, int *fd, struct stat *st)
{
	char path[64], link[64];
	long mnt, memfd_mnt;
	int pfd, res = 0;
	ssize_t len;

	res = memfd_mnt_id(&memfd_mnt);
	if (res < 0)
		return res;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, n);
	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	/* The mount of the file pinned, not of what the number holds now. */
	res = fdinfo_mnt_id(getpid(), pfd, &mnt);
	if (res == 0 && mnt != memfd_mnt)
		res = -EXDEV;
	if (res < 0)
		goto out_close;
	if (fstat(pfd, st) < 0) {
		res = -errno;
		goto out_close;
	}
	if (!S_ISREG(st->st_mode)) {
		res = -EBADF;
		goto out_close;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (*fd < 0) {
		res = -errno;
		goto out_close;
	}
	/* The number may have been given to another file between the
	 * readlink that brought us here and the open: then it is not ours. */
	len = readlink(path, link, sizeof(link) - 1);
	if (len < (ssize_t)strlen(LINK_PREFIX) ||
	    memcmp(link, LINK_PREFIX, strlen(LINK_PREFIX))) {
		*fd = sys_close(*fd);
		res = -ESTALE;
	}
out_close:
	sys_close(pfd);
	return res;
}

/* Read region @r (pid, fd and memfd set) into @r. */
static void read_region(struct ps_region *r)
{
	struct stat st;
	int fd = -1;

	r->when_ns = sys_now_ns();
	r->seals = -EBADF;
	r->err = open_region(r->pid, r->fd, &fd, &st);
	if (r->err == -EXDEV)
		r->why = "not a memfd: a file of another filesystem";
	else if (r->err == -EBADF)
		r->why = "not a regular file";
	if (r->err < 0)
		return;
	r->dev = (uint64_t)st.st_dev;
	r->ino = (uint64_t)st.st_ino;
	r->size = (uint64_t)st.st_size;
	r->seals = sys_memfd_seals(fd);
	/* What the library can say about a region it refuses goes into
	 * info.reason, if it says anything: start from nothing. */
	memset(&r->info, 0, sizeof(r->info));
	r->err = evshm_region_read(fd, &r->info);
	sys_close(fd);
	if (r->err < 0) {
		r->why = r->info.reason;
		if (!r->why && r->err == -EIO)
			r->why = "shorter than a region header";
		else if (!r->why && r->err == -EPROTO)
			r->why = "not a valid evshm region header";
		return;
	}
	r->why = NULL;
	if (r->seals < 0 || (r->seals & REGION_SEALS) != REGION_SEALS) {
		r->err = -EPROTO;
		r->why = r->seals < 0 ? "not a memfd"
				      : "not sealed as every evshm region is";
	} else if (strcmp(r->memfd, kind_memfd(r->info.kind))) {
		r->err = -EPROTO;
		r->why = "its header says another kind than its name";
	}
}

int ps_reread(struct ps_region *r)
{
	struct ps_region copy = *r;

	read_region(&copy);
	if (copy.err < 0 || copy.dev != r->dev || copy.ino != r->ino)
		return copy.err < 0 ? copy.err : -ESTALE;
	r->when_ns = copy.when_ns;
	r->info = copy.info;
	return 0;
}

/* The command and effective uid of process @pid, from its status. */
static void read_status(pid_t pid, char *comm, size_t n, uid_t *uid)
{
	char path[64], buf[4096];
	ssize_t len;
	int fd;

	snprintf(comm, n, "?");
	*uid = (uid_t)-1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	len = read(fd, buf, sizeof(buf) - 1);
	sys_close(fd);
	if (len <= 0)
		return;
	buf[len] = '\0';
	for (char *save, *l = strtok_r(buf, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		unsigned long real, eff;

		if (!strncmp(l, "Name:\t", 6))
			snprintf(comm, n, "%s", l + 6);
		else if (sscanf(l, "Uid: %lu %lu", &real, &eff) == 2)
			*uid = (uid_t)eff;
	}
}

static struct ps_region *add_region(struct ps_snap *s)
{
	if (s->n == PS_MAX_REGIONS) {
		s->truncated = true;
		return NULL;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct ps_region *r = realloc(s->r, cap * sizeof(*r));

		if (!r)
			return NULL;
		s->r = r;
		s->cap = cap;
	}
	memset(&s->r[s->n], 0, sizeof(s->r[0]));
	return &s->r[s->n++];
}

/* Every region of process @pid. */
static int scan_pid(struct ps_snap *s, pid_t pid)
{
	char path[64], link[128];
	size_t first = s->n;
	struct dirent *e;
	int dfd, res = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == EACCES || errno == EPERM)
			s->hidden++;
		return 0; /* hidden, or gone meanwhile */
	}
	d = fdopendir(dfd);
	if (!d) {
		sys_close(dfd);
		return 0;
	}
	while ((e = readdir(d))) {
		struct ps_region *r;
		ssize_t len;

		if (!is_number(e->d_name))
			continue;
		len = readlinkat(dfd, e->d_name, link, sizeof(link) - 1);
		if (len < (ssize_t)strlen(LINK_PREFIX))
			continue;
		link[len] = '\0';
		if (memcmp(link, LINK_PREFIX, strlen(LINK_PREFIX)))
			continue;
		r = add_region(s);
		if (!r) {
			res = s->truncated ? 0 : -ENOMEM;
			break;
		}
		r->pid = pid;
		r->fd = atoi(e->d_name);
		memfd_name(link, r->memfd, sizeof(r->memfd));
		read_region(r);
		if (r->err == -ESTALE || r->err == -ENOENT)
			s->n--; /* closed or replaced meanwhile: not a region */
	}
	closedir(d);
	if (s->n > first) {
		char comm[sizeof(s->r[0].comm)];
		uid_t uid;

		read_status(pid, comm, sizeof(comm), &uid);
		for (size_t i = first; i < s->n; i++) {
			memcpy(s->r[i].comm, comm, sizeof(comm));
			s->r[i].uid = uid;
		}
	}
	return res;
}

static int cmp_file(const void *a, const void *b)
{
	const struct ps_region *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	/* The holder that says it is the owner first, then by pid. */
	bool ox = x->err == 0 && x->info.pid == (uint32_t)x->pid;
	bool oy = y->err == 0 && y->info.pid == (uint32_t)y->pid;
	if (ox != oy)
		return ox ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->fd < y->fd ? -1 : x->fd > y->fd;
}

static int cmp_pid(const void *a, const void *b)
{
	const struct ps_region *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->fd < y->fd ? -1 : x->fd > y->fd;
}

/* A file held several times (dup(), a fork, a descriptor in transit) is
 * one region: all but its first holder are marked dup.  Then the regions
 * in the order of their processes. */
static void mark_dups(struct ps_snap *s)
{
	/* Nothing found: s->r is NULL, which qsort() must not be given. */
	if (s->n < 2)
		return;
	qsort(s->r, s->n, sizeof(s->r[0]), cmp_file);
	for (size_t i = 1; i < s->n; i++) {
		const struct ps_region *a = &s->r[i - 1];
		struct ps_region *b = &s->r[i];

		/* ino 0: the file could not be opened, nothing to compare */
		b->dup = a->ino && a->dev == b->dev && a->ino == b->ino;
	}
	qsort(s->r, s->n, sizeof(s->r[0]), cmp_pid);
}

int ps_scan(struct ps_snap *s)
{
	struct timespec ts;
	struct dirent *e;
	DIR *d;
	int res = 0;

	memset(s, 0, sizeof(*s));
	s->when_ns = sys_now_ns();
	clock_gettime(CLOCK_REALTIME, &ts);
	s->wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while (res == 0 && !s->truncated && (e = readdir(d)))
		if (is_number(e->d_name))
			res = scan_pid(s, (pid_t)atol(e->d_name));
	closedir(d);
	if (res == 0)
		mark_dups(s);
	return res;
}

void ps_snap_free(struct ps_snap *s)
{
	free(s->r);
	free(s->valid);
	free(s->chans);
	free(s->topics);
	memset(s, 0, sizeof(*s));
}
