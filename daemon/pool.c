/* SPDX-License-Identifier: MIT */
/*
 * pool: the free list is a sorted array rather than a tree: a pool holds thousands of extents at most,
 * so a binary search plus memmove is both fast enough and far easier to keep correct.
 *
 * pool_release cannot fail, yet giving back an extent that touches no free neighbour needs a new slot.
 * So pool_alloc reserves that slot up front: the array's capacity never drops below the number of free
 * extents plus the number of extents handed out and not yet released (each release adds at most one).
 */
#include "pool.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define POOL_INITIAL_CAP 16

struct pool {
	uint64_t size;
	uint64_t unit;
	uint64_t used;
	size_t nr_live; /* extents handed out by pool_alloc and not yet released */
	struct pool_extent *free;
	size_t n;
	size_t cap;
};

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static uint64_t ext_end(const struct pool_extent *e)
{
	return e->start + e->len;
}

/* Written so that nothing wraps even for an extent ending at UINT64_MAX and align up to 2^63. */
static uint64_t align_pad(uint64_t start, uint64_t align)
{
	return (align - (start & (align - 1))) & (align - 1);
}

static uint64_t usable_len(const struct pool_extent *e, uint64_t align, uint64_t *ret_start)
{
	uint64_t pad = align_pad(e->start, align);

	if (pad >= e->len)
		return 0;
	if (ret_start)
		*ret_start = e->start + pad;
	return (e->len - pad) & ~(align - 1);
}

/* Index of the first free extent starting after addr. */
static size_t upper_bound(const struct pool *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->free[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void check_invariants(const struct pool *p)
{
#ifndef NDEBUG
	uint64_t free_bytes = 0;

	assert(p->n <= p->cap);
	assert(p->n + p->nr_live <= p->cap);
	for (size_t i = 0; i < p->n; i++) {
		const struct pool_extent *e = &p->free[i];

		assert(e->len > 0);
		assert(e->start % p->unit == 0 && e->len % p->unit == 0);
		assert(e->len <= p->size && e->start <= p->size - e->len);
		/* Strictly greater: touching neighbours would mean a missed coalesce. */
		assert(i == 0 || e->start > ext_end(&p->free[i - 1]));
		free_bytes += e->len;
	}
	assert(p->used <= p->size && free_bytes == p->size - p->used);
#else
	(void)p;
#endif
}

static int reserve(struct pool *p, size_t need)
{
	struct pool_extent *a;
	size_t cap;

	if (need <= p->cap)
		return 0;
	cap = MAX(need, p->cap * 2);
	a = reallocarray(p->free, cap, sizeof(*a));
	if (!a)
		return -ENOMEM;
	p->free = a;
	p->cap = cap;
	return 0;
}

int pool_new(uint64_t size, uint64_t unit, struct pool **ret)
{
	struct pool *p;

	assert(ret);
	if (!is_pow2(unit) || size == 0 || size % unit != 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->free = calloc(POOL_INITIAL_CAP, sizeof(*p->free));
	if (!p->free) {
		free(p);
		return -ENOMEM;
	}
	p->cap = POOL_INITIAL_CAP;
	p->size = size;
	p->unit = unit;
	p->free[0] = (struct pool_extent){ .start = 0, .len = size };
	p->n = 1;
	*ret = p;
	return 0;
}

struct pool *pool_free(struct pool *p)
{
	if (p) {
		free(p->free);
		free(p);
	}
	return NULL;
}

/* Removes [start, start + len) from the one free extent holding it; may split it, so needs a free slot. */
static void carve(struct pool *p, uint64_t start, uint64_t len)
{
	size_t i = upper_bound(p, start);
	struct pool_extent *e;
	uint64_t head, tail;

	assert(i > 0);
	e = &p->free[i - 1];
	assert(start >= e->start && len <= e->len && start - e->start <= e->len - len);
	head = start - e->start;
	tail = e->len - head - len;

	if (head == 0 && tail == 0) {
		memmove(e, e + 1, (p->n - i) * sizeof(*e));
		p->n--;
	} else if (head == 0) {
		e->start = start + len;
		e->len = tail;
	} else if (tail == 0) {
		e->len = head;
	} else {
		assert(p->n < p->cap);
		memmove(e + 2, e + 1, (p->n - i) * sizeof(*e));
		e->len = head;
		e[1] = (struct pool_extent){ .start = start + len, .len = tail };
		p->n++;
	}
	p->used += len;
}

/* Plans the allocation without touching the pool, so that -ENOSPC and -ENOMEM leave it unchanged. */
static int plan(const struct pool *p, uint64_t len, uint64_t align, struct pool_extent **ret_ext,
		size_t *ret_n)
{
	_cleanup_free_ struct pool_extent *ext = NULL;
	uint64_t remaining = len, start;
	size_t k = 0, i;

	for (i = 0; i < p->n; i++)
		if (usable_len(&p->free[i], align, &start) >= len) {
			ext = malloc(sizeof(*ext));
			if (!ext)
				return -ENOMEM;
			ext[0] = (struct pool_extent){ .start = start, .len = len };
			*ret_ext = TAKE_PTR(ext);
			*ret_n = 1;
			return 0;
		}

	/* Nothing fits whole: count the pieces first so that running short allocates nothing. */
	for (i = 0; i < p->n && remaining > 0; i++) {
		uint64_t u = usable_len(&p->free[i], align, NULL);

		if (u > 0) {
			remaining -= MIN(u, remaining);
			k++;
		}
	}
	if (remaining > 0)
		return -ENOSPC;

	ext = reallocarray(NULL, k, sizeof(*ext));
	if (!ext)
		return -ENOMEM;
	remaining = len;
	for (i = 0, k = 0; remaining > 0; i++) {
		uint64_t u;

		assert(i < p->n);
		u = usable_len(&p->free[i], align, &start);
		if (u > 0) {
			ext[k] = (struct pool_extent){ .start = start, .len = MIN(u, remaining) };
			remaining -= ext[k++].len;
		}
	}
	*ret_ext = TAKE_PTR(ext);
	*ret_n = k;
	return 0;
}

int pool_alloc(struct pool *p, uint64_t len, uint64_t align, struct pool_extent **ret_ext, size_t *ret_n)
{
	_cleanup_free_ struct pool_extent *ext = NULL;
	size_t k;
	int r;

	assert(p && ret_ext && ret_n);
	if (len == 0 || !is_pow2(align) || align < p->unit || len % align != 0)
		return -EINVAL;
	if (len > p->size - p->used)
		return -ENOSPC;

	r = plan(p, len, align, &ext, &k);
	if (r < 0)
		return r;
	/* Each carve adds at most one free extent, and each new live extent may later add one on release. */
	r = reserve(p, p->n + p->nr_live + 2 * k);
	if (r < 0)
		return r;

	for (size_t j = 0; j < k; j++)
		carve(p, ext[j].start, ext[j].len);
	p->nr_live += k;
	check_invariants(p);

	*ret_ext = TAKE_PTR(ext);
	*ret_n = k;
	return 0;
}

static void release_one(struct pool *p, const struct pool_extent *x)
{
	size_t i = upper_bound(p, x->start);
	struct pool_extent *left = i > 0 ? &p->free[i - 1] : NULL;
	struct pool_extent *right = i < p->n ? &p->free[i] : NULL;
	uint64_t end;
	bool merge_left, merge_right;

	assert(x->len > 0 && x->len <= p->used && x->start <= p->size - x->len);
	assert(x->start % p->unit == 0 && x->len % p->unit == 0);
	assert(p->nr_live > 0);
	end = ext_end(x);
	/* Overlap with a free neighbour means a double release or an extent we never handed out. */
	assert(!left || ext_end(left) <= x->start);
	assert(!right || end <= right->start);

	merge_left = left && ext_end(left) == x->start;
	merge_right = right && right->start == end;

	if (merge_left && merge_right) {
		left->len += x->len + right->len;
		memmove(right, right + 1, (p->n - i - 1) * sizeof(*right));
		p->n--;
	} else if (merge_left) {
		left->len += x->len;
	} else if (merge_right) {
		right->start = x->start;
		right->len += x->len;
	} else {
		/* The slot was reserved by pool_alloc; running out means the caller broke the contract. */
		if (p->n >= p->cap)
			abort();
		memmove(&p->free[i + 1], &p->free[i], (p->n - i) * sizeof(*p->free));
		p->free[i] = *x;
		p->n++;
	}
	p->used -= x->len;
	p->nr_live--;
}

void pool_release(struct pool *p, const struct pool_extent *ext, size_t n)
{
	assert(p && (ext || n == 0));
	for (size_t i = 0; i < n; i++)
		release_one(p, &ext[i]);
	check_invariants(p);
}

uint64_t pool_size(const struct pool *p)
{
	return p->size;
}

uint64_t pool_used(const struct pool *p)
{
	return p->used;
}

size_t pool_free_extents(const struct pool *p)
{
	return p->n;
}

/* Rounded down to a multiple of align, because that is the most pool_alloc could hand out from it. */
uint64_t pool_largest_free(const struct pool *p, uint64_t align)
{
	uint64_t best = 0;

	if (!is_pow2(align))
		return 0;
	for (size_t i = 0; i < p->n; i++)
		best = MAX(best, usable_len(&p->free[i], align, NULL));
	return best;
}
