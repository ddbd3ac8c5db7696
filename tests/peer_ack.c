/* SPDX-License-Identifier: MIT */
/*
 * peer_ack: a receiver for `evshm send` that lies in its confirmation,
 * for tests/tool/pipe_ack.sh.  Public API only.
 *
 *   peer_ack NAME LEN
 *
 * Listen at NAME, accept one sender, receive the stream up to its empty
 * end message, then answer with a confirmation of LEN bytes (0 to 64):
 * the byte count received in the first min(LEN, 8) bytes, 0xAA in the
 * rest; then wait (10 s at most) for the sender to hang up.  Exit 0, or 1
 * on any failure, 2 on bad usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evshm.h"

#define IO_MS 10000

int main(int argc, char **argv)
{
	struct evshm_listener *l = NULL;
	struct evshm_chan *c = NULL;
	static char buf[1 << 20];
	unsigned char ack[64];
	uint64_t total = 0;
	int res;

	if (argc != 3 || atoi(argv[2]) < 0 || atoi(argv[2]) > 64) {
		fprintf(stderr, "usage: peer_ack NAME LEN (0 to 64)\n");
		return 2;
	}
	size_t len = (size_t)atoi(argv[2]);
	if ((res = evshm_listen(&l, argv[1], NULL)) < 0 ||
	    (res = evshm_accept(l, &c, IO_MS)) < 0) {
		fprintf(stderr, "peer_ack: meeting: %s\n", evshm_strerror(res));
		return 1;
	}
	evshm_listener_close(l);
	printf("ready\n");
	fflush(stdout);
	while ((res = evshm_recv(c, buf, sizeof(buf), IO_MS)) > 0)
		total += (uint64_t)res;
	if (res < 0) {
		fprintf(stderr, "peer_ack: receiving: %s\n", evshm_strerror(res));
		return 1;
	}
	memset(ack, 0xAA, sizeof(ack));
	memcpy(ack, &total, len < sizeof(total) ? len : sizeof(total));
	if ((res = evshm_send(c, ack, len, IO_MS)) < 0) {
		fprintf(stderr, "peer_ack: answering: %s\n", evshm_strerror(res));
		return 1;
	}
	res = evshm_recv(c, buf, sizeof(buf), IO_MS); /* until it hangs up */
	evshm_close(c);
	return res == -EPIPE || res == -ECONNRESET ? 0 : 1;
}
