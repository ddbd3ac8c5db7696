/* SPDX-License-Identifier: MIT */
/*
 * fuzz_region.c: a region's header page as a peer (or any file) may write
 * it (docs/protocol.md 4.1, 4.4 step 6, 11).
 *
 *  - region_check_header(), what a receiver runs on the peer's mapped
 *    header: 0 only for the header the handshake announced.
 *  - evshm_region_read(), what evshm ps runs on any process's memfd: the
 *    input becomes the file's contents (and, if its last byte is odd and
 *    its header names a ring of at most 1 MiB, its size becomes what that
 *    header says, to get past the size check); whatever it reports must be
 *    valid (kind, role, ring size, a terminated name, known states, an
 *    error evshm sets and a reason only with one).
 */
#include "evshm.h"
#include "proto.h"
#include "region.h"

#include "fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void fuzz_check_header(const uint8_t *data, size_t size)
{
	static union {
		struct region r;
		uint8_t page[REGION_HDR_SIZE];
	} u;

	memset(&u, 0, sizeof(u));
	memcpy(u.page, data, size < sizeof(u.page) ? size : sizeof(u.page));
	for (uint32_t kind = 0; kind <= REGION_SUB + 1; kind++) {
		uint32_t ring = u.r.ring_size;
		int res = region_check_header(&u.r, kind, ring);

		CHECK(res == 0 || res == -EPROTO);
		CHECK((res == 0) ==
		      (u.r.magic == REGION_MAGIC && u.r.version == REGION_VERSION &&
		       u.r.kind == kind && u.r.hdr_size == REGION_HDR_SIZE));
		CHECK(region_check_header(&u.r, kind, ring + 4096) == -EPROTO);
	}
}

static void fuzz_read(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct evshm_region_info info;
	struct region hdr;

	if (fd < 0)
		fd = memfd_create("evshm:fuzz", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
	if (size >= sizeof(hdr) && (data[size - 1] & 1)) {
		memcpy(&hdr, data, sizeof(hdr));
		if (hdr.ring_size <= (1u << 20))
			CHECK(ftruncate(fd, (off_t)region_size(hdr.ring_size)) == 0);
	}
	memset(&info, 0xa5, sizeof(info));
	int res = evshm_region_read(fd, &info);
	CHECK(res == 0 || res == -EPROTO || res == -EIO);
	if (res < 0)
		return;
	CHECK(info.kind >= REGION_CHAN && info.kind <= REGION_SUB);
	CHECK(info.role == REGION_CLIENT || info.role == REGION_SERVER);
	if (info.kind == REGION_SUB)
		CHECK(info.ring_size == 0);
	else
		CHECK(proto_ring_size_ok(info.ring_size));
	CHECK(memchr(info.name, '\0', sizeof(info.name)) != NULL);
	CHECK((info.tx_state & ~3u) == 0 && (info.rx_state & ~3u) == 0);
	CHECK(info.error == 0 || info.error == -EPROTO ||
	      info.error == -ECONNABORTED);
	if (info.reason)
		CHECK(info.error != 0 && strlen(info.reason) > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_check_header(data, size);
	fuzz_read(data, size);
	return 0;
}
