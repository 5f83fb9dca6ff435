/* SPDX-License-Identifier: MIT */
/*
 * pool: the extent allocator behind every backend.
 *
 * Owns the free list of one address space [0, size): the memfd backend's byte budget, or (later) the PFN
 * ranges the module holds. A guest is carved out of it as one or more extents; every extent's start and
 * length are multiples of the alignment asked for (the guest's granule), so a fragmented pool can still
 * serve a guest as long as enough aligned space is free. Pure: no I/O, no logging.
 *
 * Invariants: the free list is sorted by start, its extents never overlap and never touch (a release
 * coalesces with both neighbours), and used + sum(free) == size.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct pool_extent {
	uint64_t start;
	uint64_t len;
};

struct pool;

/* size and unit must be non-zero powers-of-two multiples: size % unit == 0, unit a power of two. */
int pool_new(uint64_t size, uint64_t unit, struct pool **ret);
struct pool *pool_free(struct pool *p);

/*
 * Allocate len bytes aligned to align (a power of two >= the pool's unit; len % align == 0).
 * First fit in address order as one extent; if no single free extent can hold it, gathers aligned
 * pieces from the lowest addresses up. On success *ret_ext is a malloc'd array (owned by the caller,
 * given back with pool_release and then free()) of *ret_n extents in address order.
 * Return: 0, -EINVAL (bad len/align), -ENOSPC (not enough aligned free space; nothing changes), -ENOMEM.
 */
int pool_alloc(struct pool *p, uint64_t len, uint64_t align, struct pool_extent **ret_ext, size_t *ret_n);

/* Give extents back; each must have come from pool_alloc and not been released yet. Coalesces. */
void pool_release(struct pool *p, const struct pool_extent *ext, size_t n);

uint64_t pool_size(const struct pool *p);
uint64_t pool_used(const struct pool *p);
/* Number of free extents: a measure of fragmentation (1 for an empty pool, 0 for a full one). */
size_t pool_free_extents(const struct pool *p);
/* Largest single free extent usable at the given alignment (for status and tests). */
uint64_t pool_largest_free(const struct pool *p, uint64_t align);
