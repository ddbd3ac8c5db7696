/* SPDX-License-Identifier: MIT */
/*
 * stall-server NAME SECONDS [N]: a local server whose first N clients'
 * connects stall (N = 1 if not given), for bridge/tests/stall.sh.
 *
 * It listens at the abstract NAME with a plain socket (the library's
 * type, SOCK_SEQPACKET), accepts the first N
 * connections and never answers them (their evshm_connect() waits in
 * the handshake until its timeout).  Then it listens at NAME with the
 * library, takes one client, and checks that the first N connections are
 * still open: if a client that stalled had already given up, the next
 * connect waited behind it (exit 3).  It reads one message from
 * the second client and exits 0.  Everything within SECONDS
 * (exit 4 otherwise).  Logs on stderr.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <evshm.h>

int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct evshm_listener *l;
	struct evshm_chan *c;
	struct pollfd p;
	static char buf[1 << 16];
	size_t n;
	int raw, first[64], nfirst = argc > 3 ? atoi(argv[3]) : 1, res, ms;

	if (argc < 3 || argc > 4 || argv[1][0] != '@' ||
	    (n = strlen(argv[1])) > sizeof(a.sun_path) || atoi(argv[2]) <= 0 ||
	    nfirst < 1 || nfirst > 64) {
		fprintf(stderr, "usage: stall-server @NAME SECONDS [N]\n");
		return 2;
	}
	ms = atoi(argv[2]) * 1000;
	alarm((unsigned)atoi(argv[2])); /* the bound of everything */
	memcpy(a.sun_path + 1, argv[1] + 1, n - 1); /* abstract */
	raw = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (raw < 0 ||
	    bind(raw, (struct sockaddr *)&a,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0 ||
	    listen(raw, 8) < 0) {
		perror("stall-server: listen");
		return 1;
	}
	fprintf(stderr, "stall-server: listening\n");
	for (int i = 0; i < nfirst; i++) {
		first[i] = accept4(raw, NULL, NULL, SOCK_CLOEXEC);
		if (first[i] < 0) {
			perror("stall-server: accept");
			return 1;
		}
		fprintf(stderr, "stall-server: stalling client %d\n", i + 1);
	}
	close(raw);
	res = evshm_listen(&l, argv[1], NULL);
	if (res < 0) {
		fprintf(stderr, "stall-server: evshm_listen: %s\n",
			evshm_strerror(res));
		return 1;
	}
	fprintf(stderr, "stall-server: stalling the first %d client%s\n",
		nfirst, nfirst > 1 ? "s" : "");
	res = evshm_accept(l, &c, ms);
	if (res < 0) {
		fprintf(stderr, "stall-server: evshm_accept: %s\n",
			evshm_strerror(res));
		return 4;
	}
	for (int i = 0; i < nfirst; i++) {
		p = (struct pollfd){ .fd = first[i], .events = POLLRDHUP };
		if (poll(&p, 1, 0) > 0 &&
		    (p.revents & (POLLRDHUP | POLLHUP))) {
			fprintf(stderr, "stall-server: stalled client %d had "
				"given up before the next one came: the next "
				"waited for it\n", i + 1);
			return 3;
		}
	}
	fprintf(stderr, "stall-server: the next client is in, the first %d "
		"still stalled\n", nfirst);
	res = evshm_recv(c, buf, sizeof(buf), ms);
	fprintf(stderr, "stall-server: %s\n", res >= 0 ? "a message came"
		: evshm_strerror(res));
	evshm_close(c);
	evshm_listener_close(l);
	for (int i = 0; i < nfirst; i++)
		close(first[i]);
	return res >= 0 ? 0 : 1;
}
