/* SPDX-License-Identifier: MIT */
/*
 * sharemap-publish: the writer's side of a published map. Every change is one sequence-lock window:
 * seq made odd, the words written, seq made even (release), so a reader that saw the same even seq
 * before and after its reads read one state. Bitmap pages of shared runs are never written (clearing
 * skips a page whose summary bit is clear), so they stay holes in the file.
 */
#include "sharemap-publish.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conversion.h"
#include "pubmap-layout.h"
#include "sharemap.h"
#include "util.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

struct pubmap {
	int fd;
	uint8_t *base; /* our writable MAP_SHARED mapping, made before the seal */
	uint64_t bytes;
	uint64_t granule, granules;
	struct gmem_pubmap_header *hdr;
	uint64_t *summary, *bitmap;
};

static void store(uint64_t *w, uint64_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELAXED);
}

static void begin_change(struct pubmap *p)
{
	store(&p->hdr->seq, p->hdr->seq + 1);
	/* The odd seq is visible before any word below changes. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void end_change(struct pubmap *p)
{
	__atomic_store_n(&p->hdr->seq, p->hdr->seq + 1, __ATOMIC_RELEASE);
}

static bool page_empty(const struct pubmap *p, uint64_t page)
{
	const uint64_t *w = p->bitmap + page * (GMEM_PUBMAP_PAGE / 8);
	uint64_t words = GMEM_PUBMAP_PAGE / 8;
	for (uint64_t i = 0; i < words; i++)
		if (w[i])
			return false;
	return true;
}

/* Sets or clears granules [start, end) inside one change window. */
static void set_bits(struct pubmap *p, uint64_t start, uint64_t end, bool set)
{
	while (start < end) {
		uint64_t page = start / GMEM_PUBMAP_PAGE_BITS;
		uint64_t page_end = MIN(end, (page + 1) * GMEM_PUBMAP_PAGE_BITS);
		uint64_t sbit = UINT64_C(1) << (page % 64);
		uint64_t *sw = &p->summary[page / 64];

		if (!set && !(*sw & sbit)) {
			start = page_end; /* all clear already: leave the hole alone */
			continue;
		}
		for (uint64_t b = start; b < page_end;) {
			uint64_t bit = b % 64, n = MIN(64 - bit, page_end - b);
			uint64_t mask = (n == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << n) - 1)) << bit;
			uint64_t *w = &p->bitmap[b / 64];
			store(w, set ? *w | mask : *w & ~mask);
			b += n;
		}
		if (set)
			store(sw, *sw | sbit);
		else if (page_empty(p, page))
			store(sw, *sw & ~sbit);
		start = page_end;
	}
}

static int fill_private(uint64_t start, uint64_t len, enum share_state state, void *arg)
{
	if (state == SHARE_PRIVATE)
		set_bits(arg, start, start + len, true);
	return 0;
}

int pubmap_new(const char *name, uint64_t granule, const struct sharemap *sm, const struct conv_range *busy,
	       size_t n_busy, struct pubmap **ret)
{
	struct pubmap *p = calloc(1, sizeof(*p));
	uint64_t sum_off, bm_off;
	char label[96];
	int r;

	if (!p)
		return -ENOMEM;
	p->fd = -EBADF;
	p->base = MAP_FAILED;
	p->granule = granule;
	p->granules = sharemap_granules(sm);
	gmem_pubmap_geometry(p->granules, &sum_off, &bm_off, &p->bytes);

	snprintf(label, sizeof(label), "gmem-map:%s", name);
	p->fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (p->fd < 0 || ftruncate(p->fd, (off_t)p->bytes) < 0) {
		r = negative_errno();
		goto fail;
	}
	p->base = mmap(NULL, p->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (p->base == MAP_FAILED) {
		r = negative_errno();
		goto fail;
	}
	p->hdr = (struct gmem_pubmap_header *)p->base;
	p->summary = (uint64_t *)(p->base + sum_off);
	p->bitmap = (uint64_t *)(p->base + bm_off);
	*p->hdr = (struct gmem_pubmap_header){
		.magic = GMEM_PUBMAP_MAGIC,
		.version = GMEM_PUBMAP_VERSION,
		.header_bytes = sizeof(struct gmem_pubmap_header),
		.granule = granule,
		.granules = p->granules,
		.summary_offset = sum_off,
		.bitmap_offset = bm_off,
		.file_bytes = p->bytes,
	};
	sharemap_walk(sm, 0, p->granules, fill_private, p);
	for (size_t i = 0; i < n_busy; i++)
		set_bits(p, busy[i].offset / granule, (busy[i].offset + busy[i].length) / granule, true);

	/* After our mapping exists: FUTURE_WRITE refuses every new writable mapping and write(), through any
	 * file of this inode (a /proc reopen included), while ours keeps working. */
	unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
#ifndef GMEM_TEST_UNSEALED_MAP
	seals |= F_SEAL_FUTURE_WRITE;
#endif
	if (fcntl(p->fd, F_ADD_SEALS, seals) < 0) {
		r = negative_errno();
		goto fail;
	}
	*ret = p;
	return 0;

fail:
	pubmap_free(p);
	return r;
}

struct pubmap *pubmap_free(struct pubmap *p)
{
	if (!p)
		return NULL;
	if (p->base != MAP_FAILED)
		munmap(p->base, p->bytes);
	safe_close(p->fd);
	free(p);
	return NULL;
}

int pubmap_open_reader(struct pubmap *p, int *ret_fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p->fd);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	*ret_fd = fd;
	return 0;
}

uint64_t pubmap_file_bytes(const struct pubmap *p)
{
	return p->bytes;
}

void pubmap_retire(struct pubmap *p)
{
	if (!p)
		return;
	begin_change(p);
	store(&p->hdr->flags, p->hdr->flags | GMEM_PUBMAP_DESTROYED);
	end_change(p);
}

void pubmap_set(struct pubmap *p, const struct conv_range *ranges, size_t n, bool shared)
{
	if (!p || n == 0)
		return;
	begin_change(p);
	for (size_t i = 0; i < n; i++)
		set_bits(p, ranges[i].offset / p->granule, (ranges[i].offset + ranges[i].length) / p->granule, !shared);
	end_change(p);
}
