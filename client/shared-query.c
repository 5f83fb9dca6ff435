/* SPDX-License-Identifier: MIT */
/*
 * shared-query: the reader's side of a published shareability map (proto/pubmap-layout.h). Lock-free:
 * a query reads the sequence word, the summary and bitmap words it needs, and the sequence word again,
 * and reads again when a change went through in between, so an answer always comes from one state of
 * the map. Bitmap pages whose summary bit is clear are not read at all, which keeps the holes of a
 * mostly shared guest holes: reading a hole of a shared memfd mapping would allocate a page for it.
 *
 * GMEM_TEST_SKIP_SEQCHECK (tests only) builds a reader that ignores the sequence word: the control
 * that shows the concurrent-conversion test catches torn reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "pubmap-layout.h"
#include "util.h"

#define GMEM_EXPORT __attribute__((visibility("default")))

struct gmem_shared_map {
	int fd; /* owned: a read-only file of the map, to pass on */
	const uint8_t *base;
	uint64_t bytes;
	uint64_t granule, granules;
	const uint64_t *seq, *flags, *summary, *bitmap;
};

static uint64_t load(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_RELAXED);
}

static int validate(const struct gmem_pubmap_header *h, uint64_t bytes)
{
	uint64_t sum_off, bm_off, file_bytes;
	if (bytes < GMEM_PUBMAP_PAGE || h->magic != GMEM_PUBMAP_MAGIC || h->version != GMEM_PUBMAP_VERSION ||
	    h->header_bytes != sizeof(*h) || h->granules == 0 ||
	    (h->granule != GMEM_GRANULE_4K && h->granule != GMEM_GRANULE_2M))
		return -EPROTO;
	gmem_pubmap_geometry(h->granules, &sum_off, &bm_off, &file_bytes);
	if (h->summary_offset != sum_off || h->bitmap_offset != bm_off || h->file_bytes != file_bytes ||
	    file_bytes != bytes)
		return -EPROTO;
	return 0;
}

GMEM_EXPORT int gmem_shared_map_from_fd(int fd, struct gmem_shared_map **ret)
{
	struct stat st;
	int e;

	if (fd < 0 || !ret)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	struct gmem_shared_map *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->bytes = (uint64_t)st.st_size;
	m->base = MAP_FAILED;
	m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (m->fd < 0) {
		e = negative_errno();
		goto fail;
	}
	/* The header's geometry is read once, here: gmemd changes only seq and flags after publishing. */
	if (m->bytes < GMEM_PUBMAP_PAGE) {
		e = -EPROTO;
		goto fail;
	}
	m->base = mmap(NULL, m->bytes, PROT_READ, MAP_SHARED, m->fd, 0);
	if (m->base == MAP_FAILED) {
		e = negative_errno();
		goto fail;
	}
	const struct gmem_pubmap_header *h = (const void *)m->base;
	e = validate(h, m->bytes);
	if (e < 0)
		goto fail;
	m->granule = h->granule;
	m->granules = h->granules;
	m->seq = &h->seq;
	m->flags = &h->flags;
	m->summary = (const uint64_t *)(m->base + h->summary_offset);
	m->bitmap = (const uint64_t *)(m->base + h->bitmap_offset);
	*ret = m;
	return 0;

fail:
	gmem_shared_map_close(m);
	return e;
}

GMEM_EXPORT int gmem_shared_map_open(struct gmem_client *c, const char *name, struct gmem_shared_map **ret)
{
	struct gmem_guest_args a;
	struct gmem_publish_map_reply r = { 0 };
	int fd = -EBADF, e;

	if (!name || !gmem_name_valid(name) || !ret)
		return -EINVAL;
	c->err[0] = '\0';
	if (!(c->features & GMEM_FEATURE_PUBLISH_MAP)) {
		snprintf(c->err, sizeof(c->err), "this gmemd (%s) does not publish maps", c->server);
		return -EOPNOTSUPP;
	}
	snprintf(a.name, sizeof(a.name), "%s", name);
	e = gmem_call(c, GMEM_OP_PUBLISH_MAP, &a, &r, &fd);
	if (e < 0)
		return e;
	_cleanup_close_ int owned = fd;
	e = gmem_shared_map_from_fd(owned, ret);
	if (e == 0 && ((*ret)->granule != r.granule || (*ret)->granules != r.granules)) {
		gmem_shared_map_close(*ret);
		e = -EPROTO;
	}
	if (e == -EPROTO)
		snprintf(c->err, sizeof(c->err), "the published map is not in a layout this libgmem reads");
	return e;
}

GMEM_EXPORT int gmem_shared_map_fd(const struct gmem_shared_map *m)
{
	return m->fd;
}

GMEM_EXPORT void gmem_shared_map_close(struct gmem_shared_map *m)
{
	if (!m)
		return;
	if (m->base != MAP_FAILED && m->base)
		munmap((void *)m->base, m->bytes);
	safe_close(m->fd);
	free(m);
}

/* Granules set in [start, end), stopping early at the first one when any_only. */
static uint64_t count_set(const struct gmem_shared_map *m, uint64_t start, uint64_t end, bool any_only)
{
	uint64_t n = 0;
	while (start < end) {
		uint64_t page = start / GMEM_PUBMAP_PAGE_BITS;
		uint64_t page_end = MIN(end, (page + 1) * GMEM_PUBMAP_PAGE_BITS);
		uint64_t sw = load(&m->summary[page / 64]);
		if (!sw) {
			/* 64 pages without a set bit: 2 million granules skipped in one load. */
			start = MIN(end, (page / 64 + 1) * 64 * GMEM_PUBMAP_PAGE_BITS);
			continue;
		}
		if (!(sw & (UINT64_C(1) << (page % 64)))) {
			start = page_end;
			continue;
		}
		for (uint64_t b = start; b < page_end;) {
			uint64_t bit = b % 64, k = MIN(64 - bit, page_end - b);
			uint64_t mask = (k == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << k) - 1)) << bit;
			n += (uint64_t)__builtin_popcountll(load(&m->bitmap[b / 64]) & mask);
			if (any_only && n)
				return n;
			b += k;
		}
		start = page_end;
	}
	return n;
}

static int query(const struct gmem_shared_map *m, uint64_t offset, uint64_t length, bool any_only,
		 uint64_t *ret)
{
	if (!m || length == 0 || offset % m->granule || length % m->granule)
		return -EINVAL;
	uint64_t start = offset / m->granule, n = length / m->granule;
	if (start > m->granules || n > m->granules - start)
		return -ERANGE;
	for (unsigned spins = 0;; spins++) {
		uint64_t s1 = __atomic_load_n(m->seq, __ATOMIC_ACQUIRE);
#ifndef GMEM_TEST_SKIP_SEQCHECK
		if (s1 & 1) {
			/* gmemd is in the middle of a change of a few microseconds: let it run. */
			if (spins > 64)
				sched_yield();
			continue;
		}
#endif
		bool gone = load(m->flags) & GMEM_PUBMAP_DESTROYED;
		uint64_t v = gone ? 0 : count_set(m, start, start + n, any_only);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
#ifndef GMEM_TEST_SKIP_SEQCHECK
		if (load(m->seq) != s1)
			continue;
#else
		(void)s1;
#endif
		if (gone)
			return -ENODEV;
		*ret = v;
		return 0;
	}
}

GMEM_EXPORT int gmem_range_is_shared(const struct gmem_shared_map *m, uint64_t offset, uint64_t length)
{
	uint64_t v;
	int r = query(m, offset, length, true, &v);
	return r < 0 ? r : v == 0;
}

GMEM_EXPORT int gmem_range_count_private(const struct gmem_shared_map *m, uint64_t offset, uint64_t length,
					 uint64_t *ret_granules)
{
	uint64_t v;
	int r = query(m, offset, length, false, &v);
	if (r == 0)
		*ret_granules = v;
	return r;
}
