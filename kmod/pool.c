// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The pool: physical ranges reserved at boot (memmap=SIZE$ADDR) and named by the ranges= module
 * parameter. The module claims them (request_mem_region), keeps a live write-back memremap of each
 * (so PAT gives user mappings write-back too, not uncached-minus), scrubs them once when claiming
 * them (reserved memory keeps its contents across a warm reboot or kexec), and hands out extents
 * to guests itself, so no daemon bug can give two guests the same PFNs. Callers hold gmem_lock.
 */
#include <linux/bitmap.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/numa.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "gmem_pfn.h"

struct gmem_range {
	phys_addr_t base;
	u64 bytes;
	int nid;
	void *va;             /* the live MEMREMAP_WB mapping */
	unsigned long *used;  /* one bit per 4 KiB page, set = given to a guest */
	u64 free;
	struct resource *res;
};

static struct gmem_range gmem_ranges[GMEM_PFN_MAX_RANGES];
static unsigned int gmem_nr_ranges;

/* Zero [va, va+bytes) in 2 MiB steps, yielding between them: a pool can be many GiB. */
static void gmem_zero(void *va, u64 bytes)
{
#ifndef GMEM_PFN_TEST_NO_SCRUB
	while (bytes) {
		u64 n = min_t(u64, bytes, SZ_2M);

		memset(va, 0, n);
		va += n;
		bytes -= n;
		cond_resched();
	}
#endif
}

/* One "BASE+SIZE[@NODE]" item. */
static int gmem_parse_range(char *item, struct gmem_range *r)
{
	char *p = item, *end;
	long nid = NUMA_NO_NODE;
	u64 base, bytes;

	base = memparse(p, &end);
	if (end == p || *end != '+')
		return -EINVAL;
	p = end + 1;
	bytes = memparse(p, &end);
	if (end == p)
		return -EINVAL;
	if (*end == '@') {
		if (kstrtol(end + 1, 0, &nid) || nid < 0 || nid >= MAX_NUMNODES)
			return -EINVAL;
	} else if (*end) {
		return -EINVAL;
	}
	if (!bytes || !PAGE_ALIGNED(base) || !PAGE_ALIGNED(bytes) || base + bytes < base)
		return -EINVAL;
	/* The page bitmap counts in unsigned int: 16 TiB per range at most. */
	if ((bytes >> PAGE_SHIFT) > UINT_MAX)
		return -E2BIG;
	r->base = base;
	r->bytes = bytes;
	r->nid = nid;
	return 0;
}

static void gmem_release_range(struct gmem_range *r)
{
	if (r->va)
		memunmap(r->va);
	if (r->res)
		release_mem_region(r->base, r->bytes);
	bitmap_free(r->used);
	memset(r, 0, sizeof(*r));
}

static int gmem_claim_range(struct gmem_range *r)
{
	/* System RAM belongs to the page allocator: handing it out would give two owners the same page. */
	if (region_intersects(r->base, r->bytes, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE) !=
	    REGION_DISJOINT) {
		pr_err("gmem_pfn: range %pa+%llx overlaps System RAM (reserve it with memmap=)\n",
		       &r->base, r->bytes);
		return -EINVAL;
	}
	r->res = request_mem_region(r->base, r->bytes, "gmem_pfn");
	if (!r->res) {
		pr_err("gmem_pfn: range %pa+%llx is busy\n", &r->base, r->bytes);
		return -EBUSY;
	}
	r->used = bitmap_zalloc(r->bytes >> PAGE_SHIFT, GFP_KERNEL);
	if (!r->used)
		goto fail;
	r->va = memremap(r->base, r->bytes, MEMREMAP_WB);
	if (!r->va) {
		pr_err("gmem_pfn: cannot map range %pa+%llx write-back\n", &r->base, r->bytes);
		goto fail;
	}
	gmem_zero(r->va, r->bytes);
	r->free = r->bytes;
	return 0;
fail:
	gmem_release_range(r);
	return -ENOMEM;
}

int gmem_pool_init(const char *spec)
{
	char *copy, *cur, *item;
	int r = 0;

	if (!spec || !*spec) {
		pr_err("gmem_pfn: no ranges= given\n");
		return -EINVAL;
	}
	copy = kstrdup(spec, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	cur = copy;
	while ((item = strsep(&cur, ",")) != NULL) {
		struct gmem_range *rg;

		if (gmem_nr_ranges == GMEM_PFN_MAX_RANGES) {
			r = -E2BIG;
			break;
		}
		rg = &gmem_ranges[gmem_nr_ranges];
		r = gmem_parse_range(item, rg);
		if (r) {
			pr_err("gmem_pfn: bad range '%s' (want BASE+SIZE[@NODE], page-aligned)\n", item);
			memset(rg, 0, sizeof(*rg));
			break;
		}
		r = gmem_claim_range(rg);
		if (r)
			break;
		gmem_nr_ranges++;
	}
	kfree(copy);
	if (r)
		gmem_pool_exit();
	return r;
}

void gmem_pool_exit(void)
{
	while (gmem_nr_ranges)
		gmem_release_range(&gmem_ranges[--gmem_nr_ranges]);
}

unsigned int gmem_pool_nr_ranges(void)
{
	return gmem_nr_ranges;
}

void gmem_pool_stats(u64 *total, u64 *free)
{
	unsigned int i;

	*total = *free = 0;
	for (i = 0; i < gmem_nr_ranges; i++) {
		*total += gmem_ranges[i].bytes;
		*free += gmem_ranges[i].free;
	}
}

int gmem_pool_range_info(unsigned int i, struct gmem_pfn_pool_range *out)
{
	if (i >= gmem_nr_ranges)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->base = gmem_ranges[i].base;
	out->bytes = gmem_ranges[i].bytes;
	out->free_bytes = gmem_ranges[i].free;
	out->node = gmem_ranges[i].nid;
	return 0;
}

bool gmem_pool_has_node(int nid)
{
	unsigned int i;

	for (i = 0; i < gmem_nr_ranges; i++)
		if (gmem_ranges[i].nid == nid)
			return true;
	return false;
}

/*
 * Walks the free granules, lowest addresses first, until `bytes` are found. Without `ext` it only
 * counts the extents needed; with it, it fills them and marks their pages used. Returns the number
 * of extents, or -ENOSPC.
 */
static int gmem_pool_walk(u64 bytes, unsigned int shift, int nid, struct gmem_extent *ext)
{
	unsigned long gpages = 1UL << (shift - PAGE_SHIFT);
	u64 got = 0;
	int n = 0;
	unsigned int i;

	for (i = 0; i < gmem_nr_ranges && got < bytes; i++) {
		struct gmem_range *r = &gmem_ranges[i];
		unsigned long npages = r->bytes >> PAGE_SHIFT, idx;
		phys_addr_t first = ALIGN(r->base, 1ULL << shift);
		bool contiguous = false;

		if (nid != NUMA_NO_NODE && r->nid != nid)
			continue;
		if (first >= r->base + r->bytes)
			continue;
		for (idx = (first - r->base) >> PAGE_SHIFT; idx + gpages <= npages && got < bytes;
		     idx += gpages) {
			if (find_next_bit(r->used, idx + gpages, idx) < idx + gpages) {
				contiguous = false;
				continue;
			}
			if (!contiguous)
				n++;
			if (ext) {
				struct gmem_extent *e = &ext[n - 1];

				if (!contiguous) {
					e->offset = got;
					e->phys = r->base + ((u64)idx << PAGE_SHIFT);
					e->bytes = 0;
					e->range = i;
				}
				e->bytes += 1ULL << shift;
				bitmap_set(r->used, idx, gpages);
				r->free -= 1ULL << shift;
			}
			contiguous = true;
			got += 1ULL << shift;
		}
	}
	return got < bytes ? -ENOSPC : n;
}

int gmem_pool_alloc(u64 bytes, unsigned int shift, int nid, struct gmem_extent **ret,
		    unsigned int *ret_nr)
{
	struct gmem_extent *ext;
	int n;

	lockdep_assert_held(&gmem_lock);
	n = gmem_pool_walk(bytes, shift, nid, NULL);
	if (n < 0)
		return n;
	ext = kvcalloc(n, sizeof(*ext), GFP_KERNEL);
	if (!ext)
		return -ENOMEM;
	gmem_pool_walk(bytes, shift, nid, ext);
	*ret = ext;
	*ret_nr = n;
	return 0;
}

/* Scrubs and returns extents to the pool; the caller guarantees nothing maps them any more. */
void gmem_pool_free(struct gmem_extent *ext, unsigned int nr)
{
	unsigned int i;

	lockdep_assert_held(&gmem_lock);
	for (i = 0; i < nr; i++) {
		struct gmem_range *r = &gmem_ranges[ext[i].range];
		unsigned long idx = (ext[i].phys - r->base) >> PAGE_SHIFT;

		gmem_zero(r->va + (ext[i].phys - r->base), ext[i].bytes);
		bitmap_clear(r->used, idx, ext[i].bytes >> PAGE_SHIFT);
		r->free += ext[i].bytes;
	}
}

/* Zeroes `bytes` at `off_in_ext` inside one extent (GMEM_PFN_SET_RANGE_ZERO). */
void gmem_pool_scrub(const struct gmem_extent *ext, u64 off_in_ext, u64 bytes)
{
	struct gmem_range *r = &gmem_ranges[ext->range];

	gmem_zero(r->va + (ext->phys - r->base) + off_in_ext, bytes);
}
