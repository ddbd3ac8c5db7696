/* SPDX-License-Identifier: MIT */
/*
 * peer_ps_hostile: what `evshm ps` must survive, for tests/tool/ps_hostile.sh
 * and ps_live.sh.  It knows the region layout (src/region.h) to break it.
 *
 *   peer_ps_hostile regions [--hold=MS]
 *     Opens one memfd per case of the table below and prints, per case,
 *       case NAME fd N expect invalid|channel|topic
 *     then "ready", and holds them --hold ms (default 300000) while one
 *     of them (truncating) keeps shrinking and growing.  With
 *     CAP_SYS_ADMIN one more case, foreign_fs: a plain file of another
 *     filesystem under a region's name.  "invalid": ps
 *     must list that descriptor as an invalid region; "channel" /
 *     "topic": a valid region with absurd figures, shown for what it is.
 *
 *   peer_ps_hostile corrupt NAME [--send=N] [--hold=MS]
 *     Connects to a channel server at NAME, sends N good 100-byte
 *     messages, then commits a record longer than the largest message
 *     and kicks the server: an honest server then fails with -EPROTO
 *     ("ring: record longer than the largest message"), its sticky
 *     error.  Prints "ready" and holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "bell.h"
#include "os.h"
#include "chan.h"
#include "evshm.h"
#include "region.h"
#include "util.h"

#define RING 4096u
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)

/* The ids of the absurd channel and topic (pairs of cases). */
static const uint8_t id_chan[REGION_ID_SIZE] = { 0xba, 0xd0, 1 };
static const uint8_t id_topic[REGION_ID_SIZE] = { 0xba, 0xd0, 2 };
static const uint8_t id_dup[REGION_ID_SIZE] = { 0xba, 0xd0, 3 };

/* --- what each case does to a sane header ---------------------------------- */

static void garbage(struct region *r)
{
	uint8_t *p = (uint8_t *)r;

	tu_fill(p, REGION_HDR_SIZE, 0xbad);
}

static void wrong_kind(struct region *r)
{
	r->kind = REGION_PUB; /* in a memfd named evshm:chan */
}

static void foreign_error(struct region *r)
{
	atomic_store(&r->error, -ENOMEM); /* evshm never sets it */
}

static void unterminated(struct region *r)
{
	memset(r->name, 'x', sizeof(r->name));
}

/* A name a terminal would obey if it were printed raw. */
#define EVIL_NAME "@evil\x1b[2J\x1b]0;owned\x07\xff\xfe\\"

static void absurd_client(struct region *r)
{
	memcpy(r->id, id_chan, sizeof(r->id));
	strcpy(r->name, EVIL_NAME);
	r->pid = 1;
	atomic_store(&r->tail, 16);
	atomic_store(&r->head, 0);
	atomic_store(&r->msgs_sent, UINT64_MAX);
	atomic_store(&r->bytes_sent, UINT64_MAX);
	atomic_store(&r->msgs_recv, UINT64_MAX - 1);
	atomic_store(&r->tx_kicks, UINT64_MAX);
	atomic_store(&r->rx_kicks, UINT64_MAX); /* the sum wraps */
	atomic_store(&r->tx_state, UINT32_MAX);
	atomic_store(&r->cpu, UINT32_MAX);
	atomic_store(&r->error, -EPROTO);
	atomic_store(&r->reason, 9999); /* no such check */
}

static void absurd_server(struct region *r)
{
	memcpy(r->id, id_chan, sizeof(r->id));
	strcpy(r->name, EVIL_NAME);
	/* Its head is past the client's tail: the client's fill is
	 * unknown.  Its tail is far past anything the client released:
	 * its own fill is capped at its ring. */
	atomic_store(&r->tail, UINT64_MAX);
	atomic_store(&r->head, UINT64_MAX - 15);
	atomic_store(&r->bytes_recv, UINT64_MAX);
}

static void absurd_pub(struct region *r)
{
	memcpy(r->id, id_topic, sizeof(r->id));
	strcpy(r->name, "@absurd-topic");
	atomic_store(&r->tail, 0);
	atomic_store(&r->subscribers, UINT64_MAX);
	atomic_store(&r->horizon, UINT64_MAX);
}

static void absurd_sub(struct region *r)
{
	memcpy(r->id, id_topic, sizeof(r->id));
	strcpy(r->name, "@absurd-topic");
	atomic_store(&r->head, 1ull << 40); /* past the publisher's tail */
	atomic_store(&r->lost, UINT64_MAX);
}

static void dup_id(struct region *r)
{
	memcpy(r->id, id_dup, sizeof(r->id));
	strcpy(r->name, "@dup");
}

/* --- the cases ------------------------------------------------------------- */

/* One row per case: the memfd's name, the header (kind, role, ring), the
 * file's size (0: the right one), sealed or not, what breaks it, and what
 * ps must make of it. */
#define CASES(X)                                                               \
	X(garbage, "evshm:chan", REGION_CHAN, 1, RING, 0, true, garbage, "invalid") \
	X(short, "evshm:chan", REGION_CHAN, 1, RING, 100, true, NULL, "invalid")  \
	X(size, "evshm:chan", REGION_CHAN, 1, RING, 3 * RING, true, NULL, "invalid") \
	X(unsealed, "evshm:chan", REGION_CHAN, 1, RING, 0, false, NULL, "invalid") \
	X(kind, "evshm:chan", REGION_CHAN, 1, RING, 0, true, wrong_kind, "invalid") \
	X(error, "evshm:chan", REGION_CHAN, 1, RING, 0, true, foreign_error, "invalid") \
	X(name, "evshm:chan", REGION_CHAN, 1, RING, 0, true, unterminated, "invalid") \
	X(memfd_name, "evshm:\x1b[2Jchan", REGION_CHAN, 1, RING, 0, true, NULL, "invalid") \
	X(truncating, "evshm:chan", REGION_CHAN, 1, RING, 0, false, NULL, "invalid") \
	X(absurd_client, "evshm:chan", REGION_CHAN, 1, RING, 0, true, absurd_client, "channel") \
	X(absurd_server, "evshm:chan", REGION_CHAN, 2, RING, 0, true, absurd_server, "channel") \
	X(absurd_pub, "evshm:pub", REGION_PUB, 2, RING, 0, true, absurd_pub, "topic") \
	X(absurd_sub, "evshm:sub", REGION_SUB, 1, 0, 0, true, absurd_sub, "topic") \
	X(dup, "evshm:chan", REGION_CHAN, 1, RING, 0, true, dup_id, "channel")

struct hcase {
	const char *name, *memfd;
	uint32_t kind, role, ring;
	size_t size;
	bool seal;
	void (*edit)(struct region *r);
	const char *expect;
};

static const struct hcase cases[] = {
#define ROW(n, m, k, ro, ri, sz, se, ed, ex)                                   \
	{ .name = #n, .memfd = m, .kind = k, .role = ro, .ring = ri,          \
	  .size = sz, .seal = se, .edit = ed, .expect = ex },
	CASES(ROW)
#undef ROW
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* A sane header for @c, then @c's damage. */
static void header(const struct hcase *c, struct region *r)
{
	memset(r, 0, REGION_HDR_SIZE);
	r->magic = REGION_MAGIC;
	r->version = REGION_VERSION;
	r->kind = c->kind;
	r->hdr_size = REGION_HDR_SIZE;
	r->ring_size = c->ring;
	r->role = c->role;
	r->pid = (uint32_t)getpid();
	tu_fill(r->id, sizeof(r->id), (uint32_t)(c - cases));
	snprintf(r->name, sizeof(r->name), "@hostile-%s", c->name);
	if (c->edit)
		c->edit(r);
}

static int make(const struct hcase *c)
{
	size_t full = region_size(c->ring);
	size_t size = c->size ? c->size : full;
	union {
		struct region r;
		uint8_t page[REGION_HDR_SIZE];
	} u;
	int fd = memfd_create(c->memfd, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	tu_check(fd >= 0);
	tu_check(ftruncate(fd, (off_t)size) == 0);
	header(c, &u.r);
	tu_check(pwrite(fd, u.page, size < sizeof(u.page) ? size : sizeof(u.page),
			0) >= 0);
	if (c->seal)
		tu_check(fcntl(fd, F_ADD_SEALS, SEALS) == 0);
	return fd;
}

/* The truncating case: shrink to nothing, grow, rewrite the header, again,
 * until the hold ends. */
struct flapper {
	int fd;
	const struct hcase *c;
	uint64_t until_ms;
};

static void *flap(void *arg)
{
	struct flapper *f = arg;
	union {
		struct region r;
		uint8_t page[REGION_HDR_SIZE];
	} u;
	const struct timespec pause = { .tv_nsec = 200000 };

	header(f->c, &u.r);
	while (tu_now_ms() < f->until_ms) {
		tu_check(ftruncate(f->fd, 0) == 0);
		nanosleep(&pause, NULL);
		tu_check(ftruncate(f->fd, (off_t)region_size(f->c->ring)) == 0);
		tu_check(pwrite(f->fd, u.page, sizeof(u.page), 0) ==
			 (ssize_t)sizeof(u.page));
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* A plain file named like a region, on a tmpfs mounted nowhere any more
 * (in a mount namespace of our own): /proc shows it as
 * "/memfd:evshm:chan".  Stands for a file on FUSE, which ps must not stat
 * or open.  Needs CAP_SYS_ADMIN; -1 without. */
static int foreign_file(void)
{
	char dir[] = "/tmp/evshm-ps-XXXXXX", path[64];
	int fd;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || !mkdtemp(dir))
		return -1;
	if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") < 0) {
		rmdir(dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/memfd:evshm:chan", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	tu_check(umount2(dir, MNT_DETACH) == 0);
	rmdir(dir);
	return fd;
}

static void hold_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int regions(uint64_t hold)
{
	struct flapper fl = { .fd = -1, .until_ms = tu_now_ms() + hold };
	int fds[NCASES], extra[2] = { -1, -1 }, foreign;
	pthread_t th;

	for (size_t i = 0; i < NCASES; i++) {
		fds[i] = make(&cases[i]);
		printf("case %s fd %d expect %s\n", cases[i].name, fds[i],
		       cases[i].expect);
		if (!strcmp(cases[i].name, "truncating")) {
			fl.fd = fds[i];
			fl.c = &cases[i];
		}
		if (!strcmp(cases[i].name, "dup")) {
			/* The same file under three numbers: one region. */
			extra[0] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
			extra[1] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
			tu_check(extra[0] >= 0 && extra[1] >= 0);
		}
	}
	tu_check(fl.fd >= 0);
	foreign = foreign_file();
	if (foreign >= 0)
		printf("case foreign_fs fd %d expect invalid\n", foreign);
	tu_check(pthread_create(&th, NULL, flap, &fl) == 0);
	printf("ready\n");
	fflush(stdout);
	pthread_join(th, NULL);
	for (size_t i = 0; i < NCASES; i++)
		close(fds[i]);
	close(extra[0]);
	close(extra[1]);
	if (foreign >= 0)
		close(foreign);
	return 0;
}

/* --- a channel end that breaks its ring -------------------------------------- */

static int corrupt(const char *name, uint64_t n, uint64_t hold)
{
	uint8_t msg[100] = { 0 };
	struct evshm_chan *c;

	tu_check_res(tu_wait_listening(name, 10000), 0);
	tu_check_res(evshm_connect(&c, name, NULL, 10000), 0);
	for (uint64_t i = 0; i < n; i++)
		tu_check_res(evshm_send(c, msg, sizeof(msg), 10000), 0);
	/* The next record, published as the ring publishes one (seq last,
	 * release), claiming a whole ring of payload. */
	struct ring_tx *tx = &c->tx.ring;
	uint8_t *h = tx->data + (tx->tail & (tx->size - 1));
	uint32_t len = tx->size, flags = 0;

	memcpy(h, &len, sizeof(len));
	memcpy(h + 4, &flags, sizeof(flags));
	__atomic_store_n((uint64_t *)(void *)(h + 8), tx->seq, __ATOMIC_RELEASE);
	tu_check_res(os_bell_kick(c->kick), 0);
	printf("ready\n");
	fflush(stdout);
	hold_ms(hold);
	evshm_close(c);
	return 0;
}

static uint64_t opt(int argc, char **argv, const char *name, uint64_t dflt)
{
	size_t n = strlen(name);

	for (int i = 2; i < argc; i++)
		if (!strncmp(argv[i], name, n) && argv[i][n] == '=')
			return strtoull(argv[i] + n + 1, NULL, 0);
	return dflt;
}

int main(int argc, char **argv)
{
	uint64_t hold = opt(argc, argv, "--hold", 300000);

	/* The test kills us (it dies with the test's shell). */
	tu_check_res(tu_die_with_parent(), 0);

	if (argc >= 2 && !strcmp(argv[1], "regions"))
		return regions(hold);
	if (argc >= 3 && !strcmp(argv[1], "corrupt"))
		return corrupt(argv[2], opt(argc, argv, "--send", 3), hold);
	fprintf(stderr, "usage: peer_ps_hostile regions [--hold=MS] | "
			"corrupt NAME [--send=N] [--hold=MS]\n");
	return 2;
}
