/* SPDX-License-Identifier: MIT */
/*
 * zap.h: the export's ZAP handler (ZeroMQ RFC 27): during each CURVE
 * handshake libzmq asks it whether the client's public key may connect.
 * Only keys on the --allow list get "200"; every refusal is counted
 * (sessions_refused) and logged with the client's address and key,
 * within @refusals (at most a line a second: a refusal costs its
 * client only a connection).  The
 * handler runs in the bridge's own loop; libzmq holds the handshake (at
 * most ZMQ_HANDSHAKE_IVL) until it answers.
 */
#ifndef EVSHM_BRIDGE_ZAP_H
#define EVSHM_BRIDGE_ZAP_H

#include "keys.h"
#include "log.h"

/* Bind the handler's socket in @ctx (before any CURVE server binds).
 * NULL with @*err on failure. */
void *zap_open(void *ctx, int *err);

/* Answer every request waiting on @sock. */
void zap_serve(void *sock, const struct allow_list *al,
	       struct log_limit *refusals);

#endif
