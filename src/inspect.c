/* SPDX-License-Identifier: MIT */
/*
 * inspect.c: a region's header for evshm ps, read with pread() (nothing
 * mapped: a hostile file cannot fault us) and validated like anything a
 * peer wrote.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "evshm.h"
#include "proto.h"
#include "region.h"

static_assert(sizeof(((struct evshm_region_info *)0)->name) == REGION_NAME_MAX,
	      "name");
static_assert(sizeof(((struct evshm_region_info *)0)->id) == REGION_ID_SIZE,
	      "id");

/* A field of the copy (no one else can change it: plain reads). */
#define GET(f) atomic_load_explicit(&r->f, memory_order_relaxed)

int evshm_region_read(int fd, struct evshm_region_info *info)
{
	union {
		struct region r;
		char page[REGION_HDR_SIZE];
	} u;
	const struct region *r = &u.r;
	struct stat st;
	ssize_t n;

	if (fd < 0 || !info)
		return -EINVAL;
	/* Copy first, then validate the copy. */
	do
		n = pread(fd, u.page, sizeof(u.page), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(u.page))
		return -EIO;
	if (r->magic != REGION_MAGIC || r->version != REGION_VERSION ||
	    r->hdr_size != REGION_HDR_SIZE)
		return -EPROTO;
	if (r->kind < REGION_CHAN || r->kind > REGION_SUB ||
	    (r->role != REGION_CLIENT && r->role != REGION_SERVER))
		return -EPROTO;
	if (r->kind == REGION_SUB ? r->ring_size != 0 :
				    !proto_ring_size_ok(r->ring_size))
		return -EPROTO;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != region_size(r->ring_size))
		return -EPROTO;
	if (!memchr(r->name, '\0', sizeof(r->name)))
		return -EPROTO;

	memset(info, 0, sizeof(*info));
	info->kind = r->kind;
	info->role = r->role;
	info->pid = r->pid;
	info->ring_size = r->ring_size;
	info->features = r->features;
	memcpy(info->id, r->id, sizeof(info->id));
	memcpy(info->name, r->name, sizeof(info->name));
	info->tail = GET(tail);
	info->head = GET(head);
	info->msgs_sent = GET(msgs_sent);
	info->bytes_sent = GET(bytes_sent);
	info->msgs_recv = GET(msgs_recv);
	info->bytes_recv = GET(bytes_recv);
	info->lost = GET(lost);
	info->kicks_sent = GET(tx_kicks) + GET(rx_kicks);
	info->sleeps = GET(tx_sleeps) + GET(rx_sleeps);
	info->spins = GET(tx_spins) + GET(rx_spins);
	info->tx_state = GET(tx_state) & (WS_ASLEEP | WS_FENCELESS);
	info->rx_state = GET(rx_state) & (WS_ASLEEP | WS_FENCELESS);
	info->cpu = GET(cpu);
	info->error = GET(error);
	/* Only the codes evshm sets; a reason is told only with an error. */
	if (info->error != 0 && info->error != -EPROTO &&
	    info->error != -ECONNABORTED)
		return -EPROTO;
	/* A reason is told only with an error, and only one evshm sets
	 * (0, "none", is what a read between the owner's two stores sees). */
	info->reason = info->error && GET(reason) != R_NONE ? err_text(GET(reason)) :
							       NULL;
	info->horizon = GET(horizon);
	info->subscribers = GET(subscribers);
	info->dropped = GET(dropped);
	return 0;
}
