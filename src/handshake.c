/* SPDX-License-Identifier: MIT */
/*
 * handshake.c: one handshake message each way, and the client's way in.
 */
#include "handshake.h"

#include <errno.h>
#include <string.h>

#include "endpoint.h"
#include "err.h"
#include "fdpass.h"
#include "opts.h"
#include "os.h"

int hs_recv(int sock, enum proto_type want, struct proto_msg *m, int *fds,
	    unsigned nfds, uint64_t deadline)
{
	unsigned char buf[sizeof(*m) + 1]; /* + 1: a longer one shows */
	int got[PROTO_NFDS];
	unsigned n = 0;
	int res;

	/* Room for the most any handshake message carries: more is a
	 * truncation (all closed by fdp_recv), fewer is counted below. */
	res = fdp_recv(sock, buf, sizeof(buf), got, PROTO_NFDS, &n,
		       os_remaining_ms(deadline));
	if (res == -EPIPE)
		return -ECONNRESET;
	if (res == -EAGAIN)
		return -ETIMEDOUT;
	if (res == -EMSGSIZE || res == -EOVERFLOW)
		return ERR_PROTO(HS_RECV);
	if (res < 0)
		return res;
	res = proto_parse(buf, (size_t)res, want, m);
	if (res == 0 && n != nfds)
		res = ERR_PROTO(HS_NFDS);
	/* A REJECT parses as its errno, but one that carries descriptors is
	 * malformed (docs/protocol.md 3.4). */
	else if (res < 0 && res != -EPROTO && n && m->type == PROTO_REJECT)
		res = ERR_PROTO(HS_NFDS);
	if (res < 0) {
		os_close_untrusted(got, n);
		return res;
	}
	if (n && fds)
		memcpy(fds, got, n * sizeof(int));
	return 0;
}

int hs_send(int sock, const struct proto_msg *m, const int *fds,
	    unsigned nfds, uint64_t deadline)
{
	int res = fdp_send(sock, m, sizeof(*m), fds, nfds,
			   os_remaining_ms(deadline));

	if (res == -EPIPE)
		res = -ECONNRESET;
	return res == -EAGAIN ? -ETIMEDOUT : res;
}

void hs_reject(int sock, int err)
{
	struct proto_msg m;

	proto_reject(&m, proto_errno_reject(err));
	fdp_send(sock, &m, sizeof(m), NULL, 0, 0);
}

int hs_reject_reason(int sock, int res)
{
	struct proto_msg m;

	for (int i = 0; i < 2 && res == -ECONNRESET; i++) {
		int r = hs_recv(sock, PROTO_WELCOME, &m, NULL, 0, os_deadline(0));

		/* A REJECT parses as its errno; anything else is not one. */
		if (r != -ECONNRESET && r != -ETIMEDOUT && r != -EPROTO && r != 0)
			return r;
	}
	return res;
}

int hs_client_finish(const struct hs_client *hc, const struct proto_msg *hello,
		     const int *ours, struct proto_msg *m, int *fds,
		     uint32_t max_ring)
{
	int res = hs_send(hc->sock, hello, ours, PROTO_NFDS, hc->deadline);

	if (res == 0)
		res = hs_recv(hc->sock, PROTO_WELCOME, m, fds, PROTO_NFDS,
			      hc->deadline);
	if (res == -ECONNRESET)
		res = hs_reject_reason(hc->sock, res);
	if (res < 0)
		return res;
	if (memcmp(m->id, hello->id, sizeof(m->id)) != 0)
		res = ERR_PROTO(HS_ID);
	else if (m->kind != hello->kind)
		res = ERR_PROTO(HS_KIND);
	else if (m->ring_size > max_ring)
		res = -EFBIG;
	if (res < 0)
		os_close_untrusted(fds, PROTO_NFDS);
	return res;
}

int hs_client_start(const char *name, const struct evshm_opts *o,
		    uint32_t kind, int timeout_ms, struct hs_client *out)
{
	uint64_t deadline = os_deadline(timeout_ms);
	int res;

	bool rights_off = false;

	out->sock = -1;
	/* Refuse descriptors until we send our own HELLO: a server we have
	 * not vetted cannot make us hold a file of its choice. */
	res = ep_connect_norights(name, timeout_ms, &out->sock, &rights_off);
	if (res < 0)
		return res;
	out->fds_possible = !rights_off;
	/* Who answers, before we send it anything. */
	res = ep_peercred(out->sock, &out->pid, &out->uid, &out->gid);
	if (res == 0)
		res = opts_authorize(o, false, out->pid, out->uid, out->gid);
	if (res < 0)
		goto out_close;
	out->deadline = os_min_deadline(deadline,
					os_deadline(o->handshake_timeout_ms));
	res = hs_recv(out->sock, PROTO_READY, &out->ready, NULL, 0,
		      out->deadline);
	if (res == -ECONNRESET)
		res = hs_reject_reason(out->sock, res);
	if (res < 0)
		goto out_close;
	if (out->ready.kind != kind) {
		res = -EPROTOTYPE;
		goto out_close;
	}
	/* From here the WELCOME (and its descriptors) may come. */
	if (!out->fds_possible) {
		os_passrights(out->sock, true);
		out->fds_possible = true;
	}
	return 0;

out_close:
	os_close_sock(out->sock, out->fds_possible);
	out->sock = -1;
	return res;
}
