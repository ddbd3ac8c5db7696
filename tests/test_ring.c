/* SPDX-License-Identifier: MIT */
/*
 * The ring without sockets or processes: two regions in heap memory, one
 * per side, exactly as they are laid out in the memfds.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"
#include "util.h"

struct pair {
	struct region *a, *b; /* a produces into its ring, b consumes it */
	uint32_t size;
	struct ring_tx tx;    /* a's producer */
	struct ring_rx rx;    /* b's consumer */
};

static struct region *region_new(uint32_t size)
{
	struct region *r = aligned_alloc(4096, REGION_HDR_SIZE + size);
	assert_non_null(r);
	memset(r, 0, REGION_HDR_SIZE + size);
	region_init(r, size);
	return r;
}

static void pair_init(struct pair *p, uint32_t size)
{
	p->size = size;
	p->a = region_new(size);
	p->b = region_new(size);
	ring_tx_init(&p->tx, p->a, p->b, size);
	ring_rx_init(&p->rx, p->b, p->a, size);
}

static void pair_free(struct pair *p)
{
	free(p->a);
	free(p->b);
}

static int put(struct pair *p, const void *buf, size_t len)
{
	void *dst;
	int res = ring_tx_reserve(&p->tx, len, &dst);
	if (res < 0)
		return res;
	memcpy(dst, buf, len);
	return ring_tx_commit(&p->tx, len);
}

static int get(struct pair *p, void *buf, size_t cap)
{
	const void *src;
	size_t len;
	int res = ring_rx_peek(&p->rx, &src, &len, NULL);
	if (res < 0)
		return res;
	assert_true(len <= cap);
	memcpy(buf, src, len);
	res = ring_rx_release(&p->rx);
	assert_true(res >= 0);
	return (int)len;
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31u + i * 7u);
}

static void test_basic(void **state)
{
	(void)state;
	struct pair p;
	uint8_t buf[64];
	pair_init(&p, 4096);

	assert_int_equal(get(&p, buf, sizeof(buf)), -EAGAIN);
	assert_true(put(&p, "hello", 5) >= 0);
	assert_true(put(&p, "", 0) >= 0);
	assert_int_equal(get(&p, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(get(&p, buf, sizeof(buf)), 0);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EAGAIN);
	/* 5 bytes: 8-byte header + 8 rounded payload; 0 bytes: header only. */
	assert_int_equal(atomic_load(&p.a->tail), 16 + 8);
	assert_int_equal(atomic_load(&p.b->head), 16 + 8);
	pair_free(&p);
}

static void test_peek_is_stable(void **state)
{
	(void)state;
	struct pair p;
	const void *a, *b;
	size_t la, lb;
	pair_init(&p, 4096);
	assert_true(put(&p, "abc", 3) >= 0);
	assert_int_equal(ring_rx_peek(&p.rx, &a, &la, NULL), 0);
	assert_int_equal(ring_rx_peek(&p.rx, &b, &lb, NULL), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(la, 3);
	assert_int_equal(ring_rx_release(&p.rx) >= 0, 1);
	assert_int_equal(ring_rx_release(&p.rx), -EINVAL);
	pair_free(&p);
}

static void test_sizes_and_full(void **state)
{
	(void)state;
	struct pair p;
	void *dst;
	uint32_t max = ring_max_msg(4096);
	pair_init(&p, 4096);

	assert_int_equal(max, 2048 - 8);
	assert_int_equal(ring_tx_reserve(&p.tx, max + 1, &dst), -EMSGSIZE);
	assert_int_equal(ring_tx_reserve(&p.tx, max, &dst), 0);
	assert_int_equal(ring_tx_reserve(&p.tx, 1, &dst), -EBUSY);
	assert_int_equal(ring_tx_commit(&p.tx, max + 1), -EINVAL);
	assert_true(ring_tx_commit(&p.tx, max) >= 0);
	assert_int_equal(ring_tx_commit(&p.tx, 0), -EINVAL);
	assert_int_equal(ring_tx_reserve(&p.tx, 0, &dst), 0);
	assert_int_equal(ring_tx_commit_flags(&p.tx, 0, 0x4), -EINVAL);
	ring_tx_cancel(&p.tx);
	/* Exactly half the ring is used: one more maximum message fills it. */
	assert_int_equal(ring_tx_reserve(&p.tx, max, &dst), 0);
	assert_true(ring_tx_commit(&p.tx, max) >= 0);
	assert_int_equal(ring_tx_reserve(&p.tx, 0, &dst), -EAGAIN);

	uint8_t *buf = malloc(max);
	assert_int_equal(get(&p, buf, max), (int)max);
	assert_int_equal(ring_tx_reserve(&p.tx, 0, &dst), 0);
	ring_tx_cancel(&p.tx);
	free(buf);
	pair_free(&p);
}

/* A shorter commit than the reservation publishes just that much. */
static void test_commit_shorter(void **state)
{
	(void)state;
	struct pair p;
	void *dst;
	uint8_t buf[256];
	pair_init(&p, 4096);
	assert_int_equal(ring_tx_reserve(&p.tx, 200, &dst), 0);
	memcpy(dst, "xyz", 3);
	assert_true(ring_tx_commit(&p.tx, 3) >= 0);
	assert_int_equal(get(&p, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "xyz", 3);
	pair_free(&p);
}

/* Random sizes through a small ring: every wrap, with and without pad. */
static void test_wrap_random(void **state)
{
	(void)state;
	struct pair p;
	uint32_t max = ring_max_msg(4096);
	uint8_t *in = malloc(max), *out = malloc(max);
	unsigned seed = 12345;
	uint32_t sent = 0, got = 0;
	pair_init(&p, 4096);

	while (got < 200000) {
		int burst = rand_r(&seed) % 8;
		for (int i = 0; i < burst; i++) {
			size_t len = (size_t)rand_r(&seed) % (rand_r(&seed) % 4 ? 64 : max + 1);
			fill(in, len, sent);
			int res = put(&p, in, len);
			if (res == -EAGAIN)
				break;
			assert_true(res >= 0);
			sent++;
		}
		int n = rand_r(&seed) % 8;
		for (int i = 0; i < n; i++) {
			int len = get(&p, out, max);
			if (len == -EAGAIN)
				break;
			assert_true(len >= 0);
			fill(in, (size_t)len, got);
			assert_memory_equal(in, out, (size_t)len);
			got++;
		}
	}
	free(in);
	free(out);
	pair_free(&p);
}

/* Kicks: a commit asks for one only if the consumer armed, and only once. */
static void test_kick_data(void **state)
{
	(void)state;
	struct pair p;
	uint8_t buf[16];
	pair_init(&p, 4096);

	assert_int_equal(put(&p, "a", 1), 0); /* nobody sleeps */
	assert_int_equal(get(&p, buf, sizeof(buf)), 1);
	assert_int_equal(ring_rx_prepare_wait(&p.rx), -EAGAIN);
	assert_int_equal(put(&p, "b", 1), 1); /* the sleeper must be woken */
	assert_int_equal(put(&p, "c", 1), 0); /* already woken */
	/* Arming with data pending says so instead of sleeping. */
	assert_int_equal(ring_rx_prepare_wait(&p.rx), 0);
	assert_int_equal(get(&p, buf, sizeof(buf)), 1);
	assert_int_equal(get(&p, buf, sizeof(buf)), 1);
	assert_int_equal(put(&p, "d", 1), 0); /* stale event: no kick */
	pair_free(&p);
}

static void test_kick_space(void **state)
{
	(void)state;
	struct pair p;
	void *dst;
	uint8_t buf[2048];
	uint32_t len = 1000; /* record 1008: four fill the ring */
	pair_init(&p, 4096);

	for (int i = 0; i < 4; i++)
		assert_true(put(&p, buf, len) >= 0);
	assert_int_equal(ring_tx_reserve(&p.tx, len, &dst), -EAGAIN);
	assert_int_equal(ring_tx_prepare_wait(&p.tx, len), -EAGAIN);
	/* Freeing one record is enough room: exactly that release kicks. */
	assert_int_equal(ring_rx_peek(&p.rx, &(const void *){ 0 }, &(size_t){ 0 }, NULL), 0);
	assert_int_equal(ring_rx_release(&p.rx), 1);
	assert_int_equal(ring_rx_peek(&p.rx, &(const void *){ 0 }, &(size_t){ 0 }, NULL), 0);
	assert_int_equal(ring_rx_release(&p.rx), 0);
	assert_int_equal(ring_tx_reserve(&p.tx, len, &dst), 0);
	ring_tx_cancel(&p.tx);

	/* A big message waits for as much room as it needs, not for any. */
	pair_free(&p);
	pair_init(&p, 4096);
	for (int i = 0; i < 4; i++)
		assert_true(put(&p, buf, len) >= 0);
	assert_int_equal(ring_tx_prepare_wait(&p.tx, 2000), -EAGAIN);
	assert_int_equal(get(&p, buf, sizeof(buf)), (int)len);
	assert_int_equal(ring_rx_peek(&p.rx, &(const void *){ 0 }, &(size_t){ 0 }, NULL), 0);
	assert_int_equal(ring_rx_release(&p.rx), 1); /* now 2080 bytes free */
	pair_free(&p);
}

/* --- a hostile producer -------------------------------------------------- */

static void test_hostile_tail(void **state)
{
	(void)state;
	struct pair p;
	uint8_t buf[4096];
	pair_init(&p, 4096);

	atomic_store(&p.a->tail, 4096 + 8); /* more than the ring holds */
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	atomic_store(&p.a->tail, 12); /* misaligned */
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	atomic_store(&p.a->tail, 0);

	assert_true(put(&p, "abc", 3) >= 0);
	assert_true(put(&p, "abc", 3) >= 0);
	assert_int_equal(get(&p, buf, sizeof(buf)), 3);
	assert_int_equal(get(&p, buf, sizeof(buf)), 3);
	atomic_store(&p.a->tail, 8); /* backwards, behind our head */
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	pair_free(&p);
}

static void set_hdr(struct pair *p, uint32_t off, uint32_t len, uint32_t flags)
{
	uint32_t hdr[2] = { len, flags };
	memcpy(region_data(p->a) + off, hdr, 8);
}

/* Each case starts from a fresh consumer: after -EPROTO a ring is dead. */
static void rx_reset(struct pair *p, uint32_t head)
{
	atomic_store(&p->b->head, head);
	ring_rx_init(&p->rx, p->b, p->a, p->size);
}

static void test_hostile_records(void **state)
{
	(void)state;
	struct pair p;
	uint8_t buf[4096];
	pair_init(&p, 4096);

	/* Length larger than the published data. */
	set_hdr(&p, 0, 100, 0);
	atomic_store(&p.a->tail, 64);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	/* Length over the maximum message. */
	rx_reset(&p, 0);
	set_hdr(&p, 0, 3000, 0);
	atomic_store(&p.a->tail, 4096);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	/* Unknown flags next to PAD. */
	rx_reset(&p, 0);
	set_hdr(&p, 0, 4088, RING_F_PAD | 2);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	/* A pad that does not reach the end of the ring. */
	rx_reset(&p, 0);
	set_hdr(&p, 0, 100, RING_F_PAD);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	/* A pad with nothing published after it. */
	rx_reset(&p, 2008);
	set_hdr(&p, 2008, 4096 - 2008 - 8, RING_F_PAD);
	atomic_store(&p.a->tail, 4096);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	/* A pad followed by a pad. */
	rx_reset(&p, 2008);
	set_hdr(&p, 0, 4088, RING_F_PAD);
	atomic_store(&p.a->tail, 4096 + 64);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	/* The same pad followed by a sane record is fine. */
	rx_reset(&p, 2008);
	set_hdr(&p, 0, 5, 0);
	assert_int_equal(get(&p, buf, sizeof(buf)), 5);
	/* Reserved flag bits on a plain record. */
	rx_reset(&p, 0);
	set_hdr(&p, 0, 5, 0x4);
	atomic_store(&p.a->tail, 16);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	/* RING_F_FDS is a valid flag and is reported. */
	rx_reset(&p, 0);
	set_hdr(&p, 0, 5, RING_F_FDS);
	const void *ptr;
	size_t len;
	uint32_t flags = 0;
	assert_int_equal(ring_rx_peek(&p.rx, &ptr, &len, &flags), 0);
	assert_int_equal(flags, RING_F_FDS);
	/* A record that would run past the end of the ring. */
	rx_reset(&p, 4000);
	set_hdr(&p, 4000, 1000, 0);
	atomic_store(&p.a->tail, 4000 + 1008);
	assert_int_equal(get(&p, buf, sizeof(buf)), -EPROTO);
	pair_free(&p);
}

/* --- a hostile consumer --------------------------------------------------- */

static void test_hostile_head(void **state)
{
	(void)state;
	struct pair p;
	void *dst;
	uint8_t buf[2048];
	pair_init(&p, 4096);

	for (int i = 0; i < 4; i++)
		assert_true(put(&p, buf, 1000) >= 0);
	atomic_store(&p.b->head, 8192); /* past our tail */
	assert_int_equal(ring_tx_reserve(&p.tx, 1000, &dst), -EPROTO);
	atomic_store(&p.b->head, 4);     /* misaligned */
	assert_int_equal(ring_tx_reserve(&p.tx, 1000, &dst), -EPROTO);
	atomic_store(&p.b->head, 1008);  /* fine: one record consumed */
	assert_int_equal(ring_tx_reserve(&p.tx, 1000, &dst), 0);
	ring_tx_cancel(&p.tx);
	atomic_store(&p.b->head, 0);     /* backwards */
	assert_int_equal(ring_tx_prepare_wait(&p.tx, 2000), -EPROTO);
	pair_free(&p);
}

/* --- two threads, sleeping for real --------------------------------------- */

/*
 * Lost-wakeup stress: no spinning at all, every "empty" and every "full"
 * goes to sleep on an eventfd with no timeout.  A single lost wakeup hangs
 * the test (CTest's timeout then fails it).  A tiny ring makes both sides
 * sleep very often.
 */
struct mt {
	struct pair p;
	int data_bell, space_bell;
	uint32_t count;
	uint64_t sleeps_tx, sleeps_rx;
};

static void sleep_on(int bell)
{
	struct pollfd pfd = { .fd = bell, .events = POLLIN };
	while (poll(&pfd, 1, -1) < 0)
		;
	uint64_t v;
	while (read(bell, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

static void *mt_producer(void *arg)
{
	struct mt *m = arg;
	uint8_t buf[512];
	unsigned seed = 7;
	for (uint32_t i = 0; i < m->count; i++) {
		size_t len = 4 + (size_t)rand_r(&seed) % (sizeof(buf) - 4);
		memcpy(buf, &i, 4);
		fill(buf + 4, len - 4, i);
		void *dst;
		int res;
		while ((res = ring_tx_reserve(&m->p.tx, len, &dst)) == -EAGAIN) {
			if (ring_tx_prepare_wait(&m->p.tx, len) == -EAGAIN) {
				m->sleeps_tx++;
				sleep_on(m->space_bell);
			}
		}
		assert_int_equal(res, 0);
		memcpy(dst, buf, len);
		res = ring_tx_commit(&m->p.tx, len);
		if (res == 1)
			assert_int_equal(eventfd_write(m->data_bell, 1), 0);
		/* Now and then let the consumer run dry, so that it sleeps
		 * whatever the relative speeds of the two threads. */
		if (i % 500 == 250)
			usleep(1000);
	}
	return NULL;
}

static void *mt_consumer(void *arg)
{
	struct mt *m = arg;
	uint8_t buf[512];
	for (uint32_t i = 0; i < m->count; i++) {
		const void *src;
		size_t len;
		int res;
		while ((res = ring_rx_peek(&m->p.rx, &src, &len, NULL)) == -EAGAIN) {
			if (ring_rx_prepare_wait(&m->p.rx) == -EAGAIN) {
				m->sleeps_rx++;
				sleep_on(m->data_bell);
			}
		}
		assert_int_equal(res, 0);
		uint32_t seq;
		memcpy(&seq, src, 4);
		assert_int_equal(seq, i);
		fill(buf, len - 4, i);
		assert_memory_equal(buf, (const uint8_t *)src + 4, len - 4);
		if (ring_rx_release(&m->p.rx) == 1)
			assert_int_equal(eventfd_write(m->space_bell, 1), 0);
		/* And let the producer fill the ring, so that it sleeps. */
		if (i % 500 == 0)
			usleep(1000);
	}
	return NULL;
}

static void test_threads_no_lost_wakeup(void **state)
{
	(void)state;
	struct mt m = { .count = 300000 };
	pthread_t a, b;
	const char *n = getenv("EVSHM_TEST_SCALE");
	if (n && atoi(n) > 0)
		m.count /= (uint32_t)atoi(n);
	pair_init(&m.p, 4096);
	m.data_bell = eventfd(0, EFD_CLOEXEC);
	m.space_bell = eventfd(0, EFD_CLOEXEC);
	assert_true(m.data_bell >= 0 && m.space_bell >= 0);
	assert_int_equal(pthread_create(&a, NULL, mt_producer, &m), 0);
	assert_int_equal(pthread_create(&b, NULL, mt_consumer, &m), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	print_message("%u messages, producer slept %llu times, consumer %llu\n",
		      m.count, (unsigned long long)m.sleeps_tx,
		      (unsigned long long)m.sleeps_rx);
	/* Both sides did sleep (the pauses above see to it), so the wakeup
	 * path was exercised both ways. */
	assert_true(m.sleeps_tx > 0 && m.sleeps_rx > 0);
	close(m.data_bell);
	close(m.space_bell);
	pair_free(&m.p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_peek_is_stable),
		cmocka_unit_test(test_sizes_and_full),
		cmocka_unit_test(test_commit_shorter),
		cmocka_unit_test(test_wrap_random),
		cmocka_unit_test(test_kick_data),
		cmocka_unit_test(test_kick_space),
		cmocka_unit_test(test_hostile_tail),
		cmocka_unit_test(test_hostile_records),
		cmocka_unit_test(test_hostile_head),
		cmocka_unit_test(test_threads_no_lost_wakeup),
	};
	return TU_RUN(tests, argc, argv);
}
