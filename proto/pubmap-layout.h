/* SPDX-License-Identifier: MIT */
/*
 * pubmap-layout: the layout of a published shareability map (PROTOCOL.md, "publish-map"), shared by
 * the writer (gmemd, daemon/sharemap-publish.c) and the reader (libgmem, client/shared-query.c).
 *
 *   page 0        the header below, then the summary if it fits in the rest of the page
 *   [summary]     one bit per page of the bitmap: clear = that page holds no set bit
 *   bitmap        page-aligned: one bit per granule, set = NOT shared (private, or changing)
 *
 * Words are uint64_t in host order (the file never leaves the host); bit b of the bitmap is bit b % 64
 * of word b / 64. A shared run costs nothing: its bitmap pages are never written, so they stay holes,
 * and a reader skips them by their summary bit without touching (and so allocating) them.
 *
 * Consistency is a sequence lock: the writer makes seq odd, writes, makes it even again. A reader
 * reads seq (even), the words it needs, then seq again; an answer counts only if both reads match.
 */
#pragma once

#include <stdint.h>

#define GMEM_PUBMAP_MAGIC UINT64_C(0x3170616d6d656d67) /* "gmemmap1" read as little-endian bytes */
#define GMEM_PUBMAP_VERSION 1
#define GMEM_PUBMAP_PAGE 4096u
#define GMEM_PUBMAP_PAGE_BITS (GMEM_PUBMAP_PAGE * 8u) /* granules covered by one bitmap page */

struct gmem_pubmap_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_bytes; /* sizeof(struct gmem_pubmap_header) */
	uint64_t seq;          /* even: stable; odd: the writer is in the middle of a change */
	uint64_t granule;      /* bytes */
	uint64_t granules;     /* bits in the bitmap */
	uint64_t summary_offset; /* bytes from the start of the file, 8-aligned */
	uint64_t bitmap_offset;  /* bytes from the start of the file, page-aligned */
	uint64_t file_bytes;
	uint64_t flags;          /* GMEM_PUBMAP_DESTROYED; changed inside a seq window like the bits */
};

#define GMEM_PUBMAP_DESTROYED UINT64_C(1) /* the guest is gone: the map answers nothing any more */

/* Where everything goes for a map of n granules (n >= 1). */
static inline void gmem_pubmap_geometry(uint64_t n, uint64_t *summary_offset, uint64_t *bitmap_offset,
					uint64_t *file_bytes)
{
	uint64_t bitmap_pages = (n + GMEM_PUBMAP_PAGE_BITS - 1) / GMEM_PUBMAP_PAGE_BITS;
	uint64_t summary_bytes = (bitmap_pages + 63) / 64 * 8;
	uint64_t hdr = (sizeof(struct gmem_pubmap_header) + 7) & ~UINT64_C(7);
	uint64_t sum_off = hdr + summary_bytes <= GMEM_PUBMAP_PAGE ? hdr : GMEM_PUBMAP_PAGE;
	uint64_t bm_off = (sum_off + summary_bytes + GMEM_PUBMAP_PAGE - 1) / GMEM_PUBMAP_PAGE * GMEM_PUBMAP_PAGE;
	*summary_offset = sum_off;
	*bitmap_offset = bm_off;
	*file_bytes = bm_off + bitmap_pages * GMEM_PUBMAP_PAGE;
}
