/* SPDX-License-Identifier: MIT */
/*
 * region.c: creating our region (memfd, map, initialise, seal) and
 * attaching the peer's (check, map read-only, verify the header).
 */
#include "region.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "os.h"

static const char *kind_name(enum region_kind kind)
{
	switch (kind) {
	case REGION_PUB: return REGION_MEMFD_PREFIX "pub";
	case REGION_SUB: return REGION_MEMFD_PREFIX "sub";
	default: return REGION_MEMFD_PREFIX "chan";
	}
}

int region_create(const struct region_info *info, struct region **out,
		  int *ro_fd)
{
	size_t len = region_size(info->ring_size);
	struct region *r;
	int fd, res;
	void *p;

	res = os_memfd(kind_name(info->kind), len, &fd);
	if (res < 0)
		return res;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		res = -errno;
		goto out_close;
	}
	r = p;
	/* A fresh memfd reads as zeros: only the non-zero fields. */
	r->magic = REGION_MAGIC;
	r->version = REGION_VERSION;
	r->kind = info->kind;
	r->hdr_size = REGION_HDR_SIZE;
	r->ring_size = info->ring_size;
	r->role = info->role;
	r->pid = (uint32_t)getpid();
	r->features = info->features;
	memcpy(r->id, info->id, REGION_ID_SIZE);
	if (info->name) {
		size_t n = strnlen(info->name, REGION_NAME_MAX - 1);
		memcpy(r->name, info->name, n);
	}
	/* No move passes "never": the peer's first commit (release) must
	 * not kick a side that has not armed. */
	atomic_init(&r->space_event, UINT64_MAX);
	atomic_init(&r->data_event, UINT64_MAX);
	/* Map first, then seal: F_SEAL_FUTURE_WRITE leaves our writable
	 * mapping working and forbids every new one. */
	res = os_memfd_seal(fd);
	if (res < 0)
		goto out_unmap;
	res = os_reopen_ro(fd, ro_fd);
	if (res < 0)
		goto out_unmap;
	os_close(fd);
	*out = r;
	return 0;

out_unmap:
	munmap(p, len);
out_close:
	os_close(fd);
	return res;
}

int region_attach(int fd, enum region_kind kind, uint32_t ring_size,
		  const struct region **out)
{
	size_t len = region_size(ring_size);
	const struct region *r;
	int res;
	void *p;

	res = os_check_memfd(fd, len);
	if (res < 0)
		return res;
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		/* The peer chose the descriptor: one that passes the checks
		 * but cannot be mapped for reading (a write-only reopen) is a
		 * malformed offer.  Only a lack of memory is ours. */
		return errno == ENOMEM ? -ENOMEM : ERR_PROTO(FD_MAP);
	r = p;
	res = region_check_header(r, kind, ring_size);
	if (res < 0) {
		munmap(p, len);
		return res;
	}
	*out = r;
	return 0;
}

int region_check_header(const struct region *r, enum region_kind kind,
			uint32_t ring_size)
{
	/* Informative (we use the sizes of the handshake), but a mismatch
	 * means the peer is confused: refuse it. */
	if (r->magic != REGION_MAGIC || r->version != REGION_VERSION ||
	    r->kind != (uint32_t)kind || r->hdr_size != REGION_HDR_SIZE ||
	    r->ring_size != ring_size)
		return ERR_PROTO(FD_HEADER);
	return 0;
}

void region_unmap(const struct region *r, uint32_t ring_size)
{
	if (r)
		munmap((void *)r, region_size(ring_size));
}

void region_set_error(struct region *r, int err, unsigned reason)
{
	atomic_store_explicit(&r->reason, reason, memory_order_relaxed);
	atomic_store_explicit(&r->error, err, memory_order_release);
}
