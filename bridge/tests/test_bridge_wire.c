/* SPDX-License-Identifier: MIT */
/*
 * The bridge's framing and flow control, without sockets:
 *  - wire_parse() against a table of malformed and hostile frames, one
 *    row per case with the errno expected, and round trips of the
 *    encoders;
 *  - the credit arithmetic (credit.h) driven by a random model of two
 *    bridges, a network that delays frames and a local reader that
 *    stalls: nothing is ever dropped, the receiver never holds more than
 *    window + one message, a sender beyond its credit is caught, and the
 *    transfer always completes (no deadlock).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "credit.h"
#include "util.h"
#include "wire.h"

/* --- frames ---------------------------------------------------------------- */

#define F_MAX 96

struct frame {
	uint8_t b[F_MAX];
	size_t n;
};

static void hdr(struct frame *f, uint8_t type, uint32_t stream, uint64_t arg)
{
	wire_put_hdr(f->b, type, stream, arg);
	f->n = WIRE_HDR_SIZE;
}

static void good_hello(struct frame *f, uint8_t type, uint32_t max_streams)
{
	struct wire_hello h = { .timeout_ms = 1000, .max_streams = max_streams };

	hdr(f, type, 0, 0);
	wire_put_hello(f->b + WIRE_HDR_SIZE, &h);
	f->n += WIRE_HELLO_SIZE;
}

static void good_open(struct frame *f, uint8_t type)
{
	struct wire_open o = { .kind = WIRE_KIND_CHANNEL, .window = 1 << 20,
			       .max_in = 1000, .max_out = 2000 };

	hdr(f, type, 3, 0);
	wire_put_open(f->b + WIRE_HDR_SIZE, &o);
	f->n += WIRE_OPEN_SIZE;
}

/* Each case builds a frame and names the result wire_parse() must give. */
#define WIRE_CASES(X)                                                          \
	X(empty, -EPROTO, f->n = 0)                                            \
	X(short_header, -EPROTO, hdr(f, WIRE_PING, 0, 0); f->n = 15)           \
	X(type_zero, -EPROTO, hdr(f, 0, 0, 0))                                 \
	X(type_unknown, -EPROTO, hdr(f, WIRE_TYPE_MAX + 1, 0, 0))              \
	X(flags_set, -EPROTO, hdr(f, WIRE_PING, 0, 0); f->b[1] = 1)            \
	X(reserved_set, -EPROTO, hdr(f, WIRE_PING, 0, 0); f->b[3] = 1)         \
	X(ping, 0, hdr(f, WIRE_PING, 0, 0))                                    \
	X(ping_on_stream, -EPROTO, hdr(f, WIRE_PING, 1, 0))                    \
	X(ping_with_arg, -EPROTO, hdr(f, WIRE_PING, 0, 1))                     \
	X(ping_with_payload, -EPROTO, hdr(f, WIRE_PING, 0, 0); f->n++)         \
	X(data_no_message, -EPROTO, hdr(f, WIRE_DATA, 1, 7))                   \
	X(data_empty_message, 0, hdr(f, WIRE_DATA, 1, 7); f->n += 4)           \
	X(data_on_session, -EPROTO, hdr(f, WIRE_DATA, 0, 0))                   \
	X(data_payload, 0, hdr(f, WIRE_DATA, 9, 0); f->n = F_MAX)              \
	X(credit, 0, hdr(f, WIRE_CREDIT, 1, 4096))                             \
	X(credit_zero, -EPROTO, hdr(f, WIRE_CREDIT, 1, 0))                     \
	X(credit_payload, -EPROTO, hdr(f, WIRE_CREDIT, 1, 1); f->n++)          \
	X(close, 0, hdr(f, WIRE_CLOSE, 1, EPIPE))                              \
	X(close_errno_range, -EPROTO, hdr(f, WIRE_CLOSE, 1, 4096))             \
	X(close_on_session, -EPROTO, hdr(f, WIRE_CLOSE, 0, 0))                 \
	X(bye_reason, 0, hdr(f, WIRE_BYE, 0, EPROTO); f->n += 20)              \
	X(bye_on_stream, -EPROTO, hdr(f, WIRE_BYE, 2, 0))                      \
	X(hello, 0, good_hello(f, WIRE_HELLO, 0))                              \
	X(hello_extended, 0, good_hello(f, WIRE_HELLO, 0); f->n += 8)          \
	X(hello_short, -EPROTO, good_hello(f, WIRE_HELLO, 0); f->n--)          \
	X(hello_magic, -EPROTO, good_hello(f, WIRE_HELLO, 0); f->b[16] ^= 1)   \
	X(hello_version, -EPROTONOSUPPORT,                                     \
	  good_hello(f, WIRE_HELLO, 0); f->b[20] = 2)                          \
	X(hello_streams, -EPROTO, good_hello(f, WIRE_HELLO, 5))                \
	X(hello_timeout_tiny, -EPROTO,                                         \
	  good_hello(f, WIRE_HELLO, 0); memset(f->b + 24, 0, 4))               \
	X(hello_on_stream, -EPROTO, good_hello(f, WIRE_HELLO, 0); f->b[4] = 1) \
	X(welcome, 0, good_hello(f, WIRE_WELCOME, 10))                         \
	X(welcome_no_streams, -EPROTO, good_hello(f, WIRE_WELCOME, 0))         \
	X(welcome_too_many, -EPROTO,                                           \
	  good_hello(f, WIRE_WELCOME, WIRE_STREAMS_MAX + 1))                   \
	X(open, 0, good_open(f, WIRE_OPEN))                                    \
	X(opened, 0, good_open(f, WIRE_OPENED))                                \
	X(open_short, -EPROTO, good_open(f, WIRE_OPEN); f->n--)                \
	X(open_on_session, -EPROTO, good_open(f, WIRE_OPEN); f->b[4] = 0)      \
	X(open_kind_zero, -EPROTO, good_open(f, WIRE_OPEN); f->b[16] = 0)      \
	X(open_kind_future, 0, good_open(f, WIRE_OPEN); f->b[16] = 2)          \
	X(open_window_tiny, -EPROTO,                                           \
	  good_open(f, WIRE_OPEN); memset(f->b + 20, 0, 4))                    \
	X(open_window_huge, -EPROTO,                                           \
	  good_open(f, WIRE_OPEN); memset(f->b + 20, 0xff, 4))                 \
	X(open_msg_huge, -EPROTO,                                              \
	  good_open(f, WIRE_OPEN); memset(f->b + 24, 0xff, 8))                 \
	X(open_reserved, -EPROTO, good_open(f, WIRE_OPEN); f->b[18] = 1)

#define CASE_FN(name, expect, build)                                           \
	static void wire_##name(void **state)                                  \
	{                                                                      \
		struct frame fr = { .n = 0 }, *f = &fr;                        \
		struct wire_hdr h;                                             \
		(void)state;                                                   \
		build;                                                         \
		tu_assert_res(wire_parse(f->b, f->n, &h, NULL, NULL), expect); \
	}
WIRE_CASES(CASE_FN)
#undef CASE_FN

/* Encoders and decoder agree, field by field, little-endian on the wire. */
static void wire_roundtrip(void **state)
{
	struct wire_hello hello;
	struct wire_open open;
	struct wire_hdr h;
	struct frame f;
	(void)state;

	hdr(&f, WIRE_DATA, 0x01020304, 0x1122334455667788ull);
	wire_put_len(f.b + f.n, 0x0a0b0c0d);
	f.n += WIRE_LEN_SIZE;
	assert_int_equal(f.b[4], 0x04);  /* little-endian */
	assert_int_equal(f.b[8], 0x88);
	assert_int_equal(f.b[16], 0x0d);
	assert_int_equal(wire_get_len(f.b + 16), 0x0a0b0c0d);
	tu_assert_res(wire_parse(f.b, f.n, &h, NULL, NULL), 0);
	assert_int_equal(h.type, WIRE_DATA);
	assert_int_equal(h.stream, 0x01020304);
	assert_true(h.arg == 0x1122334455667788ull);

	good_hello(&f, WIRE_WELCOME, 77);
	tu_assert_res(wire_parse(f.b, f.n, &h, &hello, NULL), 0);
	assert_int_equal(hello.timeout_ms, 1000);
	assert_int_equal(hello.max_streams, 77);

	good_open(&f, WIRE_OPENED);
	tu_assert_res(wire_parse(f.b, f.n, &h, NULL, &open), 0);
	assert_int_equal(open.kind, WIRE_KIND_CHANNEL);
	assert_int_equal(open.window, 1 << 20);
	assert_true(open.max_in == 1000 && open.max_out == 2000);
	assert_int_equal(open.policy, 0);

	/* A topic's OPENED: 8 more bytes, the policy first. */
	struct wire_open t = { .kind = WIRE_KIND_TOPIC, .window = 1 << 16,
			       .max_out = 4080, .policy = 2 };
	hdr(&f, WIRE_OPENED, 5, 0);
	assert_int_equal(wire_put_open(f.b + f.n, &t), WIRE_OPEN_MAX);
	f.n += WIRE_OPEN_MAX;
	assert_int_equal(f.b[WIRE_HDR_SIZE + 24], 2);
	tu_assert_res(wire_parse(f.b, f.n, &h, NULL, &open), 0);
	assert_int_equal(open.kind, WIRE_KIND_TOPIC);
	assert_int_equal(open.policy, 2);
	assert_true(open.max_out == 4080);
	/* Without them (the import's OPEN of a topic): no policy. */
	tu_assert_res(wire_parse(f.b, f.n - 8, &h, NULL, &open), 0);
	assert_int_equal(open.policy, 0);
	assert_string_equal(wire_type_name(WIRE_CREDIT), "CREDIT");
	assert_string_equal(wire_type_name(200), "?");
}

/* --- credit ---------------------------------------------------------------- */

/* A tiny deterministic generator: the model must be reproducible. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define NET_MAX 4096

/* Frames in flight one way: data lengths (>= 0) or grants (as -n). */
struct pipe {
	int64_t q[NET_MAX];
	unsigned head, tail;
};

static void pipe_push(struct pipe *p, int64_t v)
{
	assert_true(p->tail - p->head < NET_MAX);
	p->q[p->tail++ % NET_MAX] = v;
}

/* One sender, one receiver whose local ring takes a message only now and
 * then.  Every message must arrive, in order, and the receiver's held
 * cost must stay within window + one message. */
static void credit_model(void **state)
{
	const uint32_t window = 64 << 10;
	const uint64_t max_len = 100000; /* larger than the window */
	const unsigned total = (unsigned)tu_scaled(200000);
	struct credit_tx tx = { .window = window };
	struct credit_rx rx = { .window = window };
	static struct pipe fwd, back;
	unsigned sent = 0, delivered = 0, queued = 0, steps = 0;
	uint64_t queue_len[NET_MAX];
	(void)state;

	while (delivered < total) {
		assert_true(++steps < 100u * total); /* no deadlock */
		switch (next_rand() % 4) {
		case 0: /* the sender sends while it has credit */
			if (sent < total && credit_tx_open(&tx)) {
				uint64_t r = next_rand();
				uint64_t len = r % 8 == 0 ? 0
					     : r % 8 == 1 ? max_len
					     : (r >> 8) % 5000;
				credit_tx_sent(&tx, len);
				pipe_push(&fwd, (int64_t)len);
				sent++;
			}
			break;
		case 1: /* a frame reaches the receiver */
			if (fwd.head != fwd.tail) {
				int64_t len = fwd.q[fwd.head++ % NET_MAX];
				tu_assert_res(credit_rx_arrived(&rx, (uint64_t)len), 0);
				assert_true(credit_rx_held(&rx) <=
					    window + credit_cost(max_len));
				queue_len[queued++ % NET_MAX] = (uint64_t)len;
			}
			break;
		case 2: /* the slow local reader makes room for one */
			if (queued > delivered && next_rand() % 3 == 0) {
				credit_rx_delivered(&rx, queue_len[delivered++ %
								   NET_MAX]);
				uint64_t due = credit_rx_due(&rx);
				if (due) {
					credit_rx_granted(&rx, due);
					pipe_push(&back, -(int64_t)due);
				}
			}
			break;
		case 3: /* a grant reaches the sender */
			if (back.head != back.tail)
				tu_assert_res(credit_tx_grant(&tx,
					(uint64_t)-back.q[back.head++ % NET_MAX]), 0);
			break;
		}
	}
	assert_int_equal(sent, total);
	assert_int_equal(queued, total);
}

/* The receiver catches a sender that ignores its credit, and the sender
 * catches a grant of more than it sent. */
static void credit_violations(void **state)
{
	struct credit_rx rx = { .window = WIRE_WINDOW_MIN };
	struct credit_tx tx = { .window = WIRE_WINDOW_MIN };
	unsigned n = 0;
	(void)state;

	while (credit_rx_arrived(&rx, 1000) == 0)
		n++;
	/* Accepted while below the window, refused from there on. */
	assert_int_equal(n, (WIRE_WINDOW_MIN + credit_cost(1000) - 1) /
				    credit_cost(1000));
	credit_tx_sent(&tx, 100);
	tu_assert_res(credit_tx_grant(&tx, credit_cost(100) + 1), -EPROTO);
	tu_assert_res(credit_tx_grant(&tx, 0), -EPROTO);
	tu_assert_res(credit_tx_grant(&tx, credit_cost(100)), 0);
	tu_assert_res(credit_tx_grant(&tx, 1), -EPROTO);
	/* An empty message costs credit: a flood of them is bounded too. */
	assert_true(credit_cost(0) > 0);
}

int main(int argc, char **argv)
{
#define CASE_ROW(name, expect, build) cmocka_unit_test(wire_##name),
	const struct CMUnitTest tests[] = {
		WIRE_CASES(CASE_ROW)
		cmocka_unit_test(wire_roundtrip),
		cmocka_unit_test(credit_model),
		cmocka_unit_test(credit_violations),
	};
#undef CASE_ROW
	return TU_RUN(tests, argc, argv);
}
