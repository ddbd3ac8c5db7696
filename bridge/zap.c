/* SPDX-License-Identifier: MIT */
/* zap.c: see zap.h. */
#include "zap.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <zmq.h>

#include "log.h"
#include "stats.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES 8 /* version, id, domain, address, routing id,
		      * mechanism, credentials (one for CURVE), spare */

void *zap_open(void *ctx, int *err)
{
	void *s = zmq_socket(ctx, ZMQ_REP);
	int zero = 0;

	if (!s || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_bind(s, ZAP_ENDPOINT) < 0) {
		*err = -zmq_errno();
		if (s)
			zmq_close(s);
		return NULL;
	}
	return s;
}

static bool frame_is(zmq_msg_t *m, const char *text)
{
	return zmq_msg_size(m) == strlen(text) &&
	       !memcmp(zmq_msg_data(m), text, strlen(text));
}

static void frame_text(zmq_msg_t *m, char *out, size_t cap)
{
	size_t n = zmq_msg_size(m) < cap - 1 ? zmq_msg_size(m) : cap - 1;

	memcpy(out, zmq_msg_data(m), n);
	out[n] = '\0';
}

static void reply(void *sock, zmq_msg_t *id, const char *code,
		  const char *text, const char *user)
{
	zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(sock, zmq_msg_data(id), zmq_msg_size(id), ZMQ_SNDMORE);
	zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
	zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(sock, "", 0, 0);
}

/* Decide one request of @n frames. */
static void decide(void *sock, zmq_msg_t *f, int n,
		   const struct allow_list *al, struct log_limit *refusals)
{
	char addr[64] = "?", z85[KEY_Z85_LEN + 1] = "?";
	const struct allow_entry *e = NULL;

	if (n >= 4)
		frame_text(&f[3], addr, sizeof(addr));
	if (n != 7 || !frame_is(&f[0], "1.0") || !frame_is(&f[5], "CURVE") ||
	    zmq_msg_size(&f[6]) != KEY_BIN_LEN) {
		log_limited(refusals, LOG_NOTICE, "refused a client from %s: "
			    "not a CURVE handshake", addr);
		stats.sessions_refused++;
		if (n >= 2)
			reply(sock, &f[1], "400", "CURVE only", "");
		return;
	}
	keys_z85(zmq_msg_data(&f[6]), z85);
	e = keys_allowed(al, zmq_msg_data(&f[6]));
	if (!e) {
		log_limited(refusals, LOG_NOTICE, "refused a client from %s: "
			    "its key %s is not in the allow-list", addr, z85);
		stats.sessions_refused++;
		reply(sock, &f[1], "400", "key not allowed", "");
		return;
	}
	if (strcmp(e->label, z85))
		log_info("key %s (%s) from %s accepted", e->label, z85, addr);
	else
		log_info("key %s from %s accepted", z85, addr);
	/* The label becomes the connection's User-Id: the session logs it. */
	reply(sock, &f[1], "200", "OK", e->label);
}

void zap_serve(void *sock, const struct allow_list *al,
	       struct log_limit *refusals)
{
	for (;;) {
		zmq_msg_t f[ZAP_FRAMES];
		int n = 0, more = 1;

		while (more) {
			zmq_msg_t tmp;
			zmq_msg_init(&tmp);
			if (zmq_msg_recv(&tmp, sock, n ? 0 : ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&tmp);
				break;
			}
			more = zmq_msg_more(&tmp);
			if (n < ZAP_FRAMES) {
				zmq_msg_init(&f[n]);
				zmq_msg_move(&f[n++], &tmp);
			}
			zmq_msg_close(&tmp);
		}
		if (n == 0)
			return;
		decide(sock, f, n, al, refusals);
		for (int i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
	}
}
