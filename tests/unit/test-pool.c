/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define UNIT (4 * KiB)

struct snap {
	uint64_t used;
	size_t nfree;
	uint64_t largest;
};

static struct snap snap(const struct pool *p)
{
	return (struct snap){ .used = pool_used(p),
			      .nfree = pool_free_extents(p),
			      .largest = pool_largest_free(p, 1) };
}

static void assert_snap_equal(struct snap a, struct snap b)
{
	assert_int_equal(a.used, b.used);
	assert_int_equal(a.nfree, b.nfree);
	assert_int_equal(a.largest, b.largest);
}

static struct pool *new_pool(uint64_t size, uint64_t unit)
{
	struct pool *p = NULL;

	assert_int_equal(pool_new(size, unit, &p), 0);
	assert_non_null(p);
	assert_int_equal(pool_size(p), size);
	assert_int_equal(pool_used(p), 0);
	assert_int_equal(pool_free_extents(p), 1);
	return p;
}

/* Allocates and checks the result is exactly the one extent [start, start + len). */
static struct pool_extent *alloc_one(struct pool *p, uint64_t len, uint64_t align, uint64_t start)
{
	struct pool_extent *ext = NULL;
	size_t n = 0;

	assert_int_equal(pool_alloc(p, len, align, &ext, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ext[0].start, start);
	assert_int_equal(ext[0].len, len);
	return ext;
}

static void release(struct pool *p, struct pool_extent *ext, size_t n)
{
	pool_release(p, ext, n);
	free(ext);
}

/* A failing call must leave the pool exactly as it was, and must not touch the out-parameters. */
static void expect_alloc_fail(struct pool *p, uint64_t len, uint64_t align, int err)
{
	struct pool_extent *ext = (struct pool_extent *)&ext;
	size_t n = 12345;
	struct snap before = snap(p);

	assert_int_equal(pool_alloc(p, len, align, &ext, &n), err);
	assert_ptr_equal(ext, (struct pool_extent *)&ext);
	assert_int_equal(n, 12345);
	assert_snap_equal(snap(p), before);
}

static void test_new(void **state)
{
	struct pool *p = (struct pool *)&p;

	(void)state;
	assert_int_equal(pool_new(0, UNIT, &p), -EINVAL);
	assert_int_equal(pool_new(MiB, 0, &p), -EINVAL);
	assert_int_equal(pool_new(MiB, 3, &p), -EINVAL);
	assert_int_equal(pool_new(12 * KiB, 12 * KiB, &p), -EINVAL);
	assert_int_equal(pool_new(6 * KiB, UNIT, &p), -EINVAL);
	assert_int_equal(pool_new(2 * KiB, UNIT, &p), -EINVAL);
	assert_ptr_equal(p, (struct pool *)&p);

	p = new_pool(UNIT, UNIT);
	assert_int_equal(pool_largest_free(p, UNIT), UNIT);
	assert_int_equal(pool_largest_free(p, 2 * UNIT), 0);
	assert_null(pool_free(p));
	assert_null(pool_free(NULL));
}

static void test_whole_pool(void **state)
{
	struct pool *p = new_pool(MiB, UNIT);
	struct pool_extent *ext;

	(void)state;
	for (int round = 0; round < 3; round++) {
		ext = alloc_one(p, MiB, UNIT, 0);
		assert_int_equal(pool_used(p), MiB);
		assert_int_equal(pool_free_extents(p), 0);
		assert_int_equal(pool_largest_free(p, UNIT), 0);
		expect_alloc_fail(p, UNIT, UNIT, -ENOSPC);
		release(p, ext, 1);
		assert_int_equal(pool_used(p), 0);
		assert_int_equal(pool_free_extents(p), 1);
		assert_int_equal(pool_largest_free(p, UNIT), MiB);
	}
	/* The whole pool is also one extent at its own size as alignment. */
	ext = alloc_one(p, MiB, MiB, 0);
	release(p, ext, 1);
	pool_free(p);
}

static void test_exhaustion(void **state)
{
	struct pool *p = new_pool(MiB, UNIT);
	struct pool_extent *a, *b, *c, *ext;
	size_t n;

	(void)state;
	a = alloc_one(p, 256 * KiB, UNIT, 0);
	b = alloc_one(p, 256 * KiB, UNIT, 256 * KiB);
	c = alloc_one(p, 256 * KiB, UNIT, 512 * KiB);
	expect_alloc_fail(p, 256 * KiB + UNIT, UNIT, -ENOSPC);
	expect_alloc_fail(p, MiB, UNIT, -ENOSPC);
	expect_alloc_fail(p, UINT64_C(1) << 62, UNIT, -ENOSPC);

	/* Same with the free space in two pieces, so that the gathering path has to give up too. */
	release(p, b, 1);
	assert_int_equal(pool_free_extents(p), 2);
	expect_alloc_fail(p, 512 * KiB + UNIT, UNIT, -ENOSPC);
	expect_alloc_fail(p, 1024 * KiB, UNIT, -ENOSPC);

	/* Still intact: exactly the free space can be taken afterwards. */
	assert_int_equal(pool_alloc(p, 512 * KiB, UNIT, &ext, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ext[0].start, 256 * KiB);
	assert_int_equal(ext[0].len, 256 * KiB);
	assert_int_equal(ext[1].start, 768 * KiB);
	assert_int_equal(ext[1].len, 256 * KiB);
	assert_int_equal(pool_used(p), MiB);
	assert_int_equal(pool_free_extents(p), 0);
	expect_alloc_fail(p, UNIT, UNIT, -ENOSPC);

	release(p, ext, n);
	release(p, a, 1);
	release(p, c, 1);
	assert_int_equal(pool_used(p), 0);
	assert_int_equal(pool_free_extents(p), 1);
	pool_free(p);
}

static void test_first_fit(void **state)
{
	struct pool *p = new_pool(MiB, UNIT);
	struct pool_extent *a, *b, *c, *d;

	(void)state;
	a = alloc_one(p, UNIT, UNIT, 0);
	/* Aligned inside [4K, 1M): the unaligned head [4K, 64K) and the tail stay free. */
	b = alloc_one(p, 64 * KiB, 64 * KiB, 64 * KiB);
	assert_int_equal(pool_free_extents(p), 2);
	assert_int_equal(pool_largest_free(p, UNIT), MiB - 128 * KiB);
	assert_int_equal(pool_largest_free(p, 64 * KiB), MiB - 128 * KiB);
	assert_int_equal(pool_largest_free(p, 256 * KiB), 768 * KiB);
	/* Lowest address first: the head is used before the larger tail. */
	c = alloc_one(p, 8 * KiB, UNIT, UNIT);
	d = alloc_one(p, 60 * KiB, UNIT, 128 * KiB);
	assert_int_equal(pool_free_extents(p), 2);
	assert_int_equal(pool_used(p), 136 * KiB);

	release(p, b, 1);
	release(p, d, 1);
	release(p, a, 1);
	release(p, c, 1);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_used(p), 0);
	pool_free(p);
}

static void test_fragmentation(void **state)
{
	struct pool *p = new_pool(MiB, UNIT);
	struct pool_extent *a, *b, *c, *d, *ext;
	size_t n;

	(void)state;
	a = alloc_one(p, 64 * KiB, UNIT, 0);
	b = alloc_one(p, 128 * KiB, UNIT, 64 * KiB);
	c = alloc_one(p, 192 * KiB, UNIT, 192 * KiB);
	d = alloc_one(p, MiB - 384 * KiB, UNIT, 384 * KiB);
	assert_int_equal(pool_free_extents(p), 0);
	release(p, a, 1);
	release(p, c, 1);
	assert_int_equal(pool_free_extents(p), 2);
	assert_int_equal(pool_used(p), MiB - 256 * KiB);
	assert_int_equal(pool_largest_free(p, UNIT), 192 * KiB);

	expect_alloc_fail(p, 256 * KiB + UNIT, UNIT, -ENOSPC);

	assert_int_equal(pool_alloc(p, 256 * KiB, UNIT, &ext, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ext[0].start, 0);
	assert_int_equal(ext[0].len, 64 * KiB);
	assert_int_equal(ext[1].start, 192 * KiB);
	assert_int_equal(ext[1].len, 192 * KiB);
	assert_int_equal(pool_used(p), MiB);
	assert_int_equal(pool_free_extents(p), 0);
	release(p, ext, n);

	/* Gathering trims the last piece and leaves the rest of that extent free. */
	assert_int_equal(pool_alloc(p, 224 * KiB, UNIT, &ext, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ext[0].start, 0);
	assert_int_equal(ext[0].len, 64 * KiB);
	assert_int_equal(ext[1].start, 192 * KiB);
	assert_int_equal(ext[1].len, 160 * KiB);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_largest_free(p, UNIT), 32 * KiB);
	release(p, ext, n);

	/* Whenever one hole is big enough, first fit takes it whole rather than gathering. */
	release(p, alloc_one(p, 128 * KiB, UNIT, 192 * KiB), 1);
	assert_int_equal(pool_free_extents(p), 2);

	release(p, d, 1);
	release(p, b, 1);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_used(p), 0);
	pool_free(p);
}

static void test_coalesce_neighbours(void **state)
{
	struct pool *p = new_pool(5 * UNIT, UNIT);
	struct pool_extent *e[5];

	(void)state;
	for (int i = 0; i < 5; i++)
		e[i] = alloc_one(p, UNIT, UNIT, (uint64_t)i * UNIT);
	release(p, e[1], 1);
	release(p, e[3], 1);
	assert_int_equal(pool_free_extents(p), 2);
	/* Both sides at once. */
	release(p, e[2], 1);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_largest_free(p, UNIT), 3 * UNIT);
	/* Left neighbour only, then right neighbour only. */
	release(p, e[4], 1);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_largest_free(p, UNIT), 4 * UNIT);
	release(p, e[0], 1);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_largest_free(p, UNIT), 5 * UNIT);
	assert_int_equal(pool_used(p), 0);
	pool_free(p);
}

static void test_coalesce_scrambled(void **state)
{
	enum { N = 256 };
	struct pool *p = new_pool(N * UNIT, UNIT);
	struct pool_extent *e[N];

	(void)state;
	for (int i = 0; i < N; i++)
		e[i] = alloc_one(p, UNIT, UNIT, (uint64_t)i * UNIT);
	assert_int_equal(pool_free_extents(p), 0);
	/* 97 is coprime with 256, so this visits every index once, in no useful order. */
	for (int i = 0; i < N; i++) {
		int k = (i * 97 + 13) % N;

		release(p, e[k], 1);
	}
	assert_int_equal(pool_used(p), 0);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_largest_free(p, UNIT), N * UNIT);
	/* Only a truly single extent can satisfy this in one piece. */
	release(p, alloc_one(p, N * UNIT, UNIT, 0), 1);
	pool_free(p);
}

static void test_alignment(void **state)
{
	enum { CHUNKS = 4096 };
	const uint64_t huge = 2 * MiB;
	struct pool *p = new_pool(CHUNKS * UNIT, UNIT);
	struct pool_extent *chunk[CHUNKS], *ext;
	struct snap before;
	size_t n;

	(void)state;
	for (int i = 0; i < CHUNKS; i++)
		chunk[i] = alloc_one(p, UNIT, UNIT, (uint64_t)i * UNIT);
	for (int i = 0; i < CHUNKS; i += 2) {
		release(p, chunk[i], 1);
		chunk[i] = NULL;
	}
	/* 8 MiB free in 4 KiB holes: plenty of bytes, none of them usable at 2 MiB. */
	assert_int_equal(pool_used(p), 8 * MiB);
	assert_int_equal(pool_free_extents(p), CHUNKS / 2);
	assert_int_equal(pool_largest_free(p, UNIT), UNIT);
	assert_int_equal(pool_largest_free(p, huge), 0);
	expect_alloc_fail(p, huge, huge, -ENOSPC);
	expect_alloc_fail(p, 2 * huge, huge, -ENOSPC);

	/*
	 * Free runs [2M - 8K, 4M + 4K) and [8M - 8K, 10M + 4K): each holds exactly one aligned 2 MiB piece
	 * with an unaligned head and tail around it.
	 */
	for (int i = 0; i < CHUNKS; i++) {
		bool in_a = i >= 511 && i < 1025, in_b = i >= 2047 && i < 2561;

		if (chunk[i] && (in_a || in_b)) {
			release(p, chunk[i], 1);
			chunk[i] = NULL;
		}
	}
	assert_int_equal(pool_largest_free(p, UNIT), huge + 12 * KiB);
	assert_int_equal(pool_largest_free(p, huge), huge);
	expect_alloc_fail(p, 3 * huge, huge, -ENOSPC);

	before = snap(p);
	assert_int_equal(pool_alloc(p, 2 * huge, huge, &ext, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ext[0].start, huge);
	assert_int_equal(ext[0].len, huge);
	assert_int_equal(ext[1].start, 4 * huge);
	assert_int_equal(ext[1].len, huge);
	/* Each run split around its piece: head and tail both stay free. */
	assert_int_equal(pool_free_extents(p), before.nfree + 2);
	assert_int_equal(pool_largest_free(p, huge), 0);
	assert_int_equal(pool_largest_free(p, UNIT), 8 * KiB);
	expect_alloc_fail(p, huge, huge, -ENOSPC);

	/* The unaligned leftovers still serve small allocations. */
	release(p, alloc_one(p, 8 * KiB, UNIT, 0x1fe000), 1);

	release(p, ext, n);
	assert_snap_equal(snap(p), before);

	for (int i = 0; i < CHUNKS; i++)
		if (chunk[i])
			release(p, chunk[i], 1);
	assert_int_equal(pool_used(p), 0);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_largest_free(p, huge), CHUNKS * UNIT);
	pool_free(p);
}

static void test_invalid(void **state)
{
	struct pool *p = new_pool(MiB, UNIT);
	struct pool_extent *a = alloc_one(p, 12 * KiB, UNIT, 0);

	(void)state;
	expect_alloc_fail(p, 0, UNIT, -EINVAL);
	expect_alloc_fail(p, UNIT, 0, -EINVAL);
	expect_alloc_fail(p, 3 * UNIT, 3 * UNIT, -EINVAL);
	expect_alloc_fail(p, UNIT, UNIT / 2, -EINVAL);
	expect_alloc_fail(p, UNIT, 1, -EINVAL);
	expect_alloc_fail(p, UNIT + 1, UNIT, -EINVAL);
	expect_alloc_fail(p, 3 * UNIT, 2 * UNIT, -EINVAL);
	expect_alloc_fail(p, UNIT, 2 * UNIT, -EINVAL);
	expect_alloc_fail(p, UINT64_MAX, UNIT, -EINVAL);
	expect_alloc_fail(p, UINT64_C(1) << 63, UINT64_C(1) << 63, -ENOSPC);
	/* -EINVAL wins over -ENOSPC: a bad request is bad whatever the pool's state. */
	expect_alloc_fail(p, 2 * MiB + 1, UNIT, -EINVAL);
	assert_int_equal(pool_largest_free(p, 0), 0);
	assert_int_equal(pool_largest_free(p, 3 * UNIT), 0);
	release(p, a, 1);
	pool_free(p);
}

/* Address arithmetic at the top of the 64-bit range, where a naive round-up or start + len would wrap. */
static void test_huge(void **state)
{
	const uint64_t half = UINT64_C(1) << 63, quarter = UINT64_C(1) << 62;
	struct pool *p = new_pool(UINT64_MAX, 1);
	struct pool_extent *a, *b, *c, *ext;
	size_t n;

	(void)state;
	assert_int_equal(pool_largest_free(p, 1), UINT64_MAX);
	assert_int_equal(pool_largest_free(p, half), half);
	a = alloc_one(p, 1, 1, 0);
	/* [1, 2^64 - 1): the 2^63-aligned piece would end at 2^64. */
	assert_int_equal(pool_largest_free(p, half), 0);
	expect_alloc_fail(p, half, half, -ENOSPC);
	b = alloc_one(p, quarter, quarter, quarter);
	c = alloc_one(p, quarter, quarter, half);
	assert_int_equal(pool_free_extents(p), 2);
	expect_alloc_fail(p, quarter, quarter, -ENOSPC);
	assert_int_equal(pool_largest_free(p, 1), quarter - 1);
	/* Two tails of 2^62 - 1 and 2^62 - 1 bytes, gathered at 1-byte alignment. */
	assert_int_equal(pool_alloc(p, 2 * quarter - 2, 1, &ext, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ext[0].start, 1);
	assert_int_equal(ext[0].len, quarter - 1);
	assert_int_equal(ext[1].start, half + quarter);
	assert_int_equal(ext[1].len, quarter - 1);
	assert_int_equal(pool_used(p), UINT64_MAX);
	release(p, ext, n);
	release(p, c, 1);
	release(p, a, 1);
	release(p, b, 1);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_used(p), 0);
	pool_free(p);

	p = new_pool(half, UNIT);
	a = alloc_one(p, half, half, 0);
	release(p, a, 1);
	a = alloc_one(p, UNIT, UNIT, 0);
	assert_int_equal(pool_largest_free(p, quarter), quarter);
	b = alloc_one(p, quarter, quarter, quarter);
	expect_alloc_fail(p, quarter, quarter, -ENOSPC);
	release(p, b, 1);
	release(p, a, 1);
	assert_int_equal(pool_free_extents(p), 1);
	pool_free(p);
}

/*
 * Randomized against a bitmap of units. The model plans each allocation from scratch out of the bitmap's
 * free runs, knowing nothing of the pool's free list, so the pool's answer must match it exactly.
 */
enum { R_UNITS = 1024, R_OPS = 6000, R_LIVE_MAX = 200 };

struct live {
	struct pool_extent *ext;
	size_t n;
	uint64_t len;
};

static uint64_t rng_state = UINT64_C(0x2545f4914f6cdd1d);

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t model_runs(const bool *map, uint64_t run_start[], uint64_t run_end[])
{
	size_t k = 0;

	for (uint64_t u = 0; u < R_UNITS;) {
		if (map[u]) {
			u++;
			continue;
		}
		run_start[k] = u;
		while (u < R_UNITS && !map[u])
			u++;
		run_end[k++] = u;
	}
	return k;
}

static uint64_t model_usable(uint64_t s, uint64_t e, uint64_t align, uint64_t *ret_start)
{
	uint64_t as = (s + align - 1) / align * align;

	*ret_start = as;
	return as >= e ? 0 : (e - as) / align * align;
}

/* In units. Returns the number of pieces, 0 for -ENOSPC. */
static size_t model_plan(const bool *map, uint64_t len, uint64_t align, struct pool_extent *out)
{
	uint64_t rs[R_UNITS], re[R_UNITS], as, remaining = len;
	size_t nruns = model_runs(map, rs, re), k = 0;

	for (size_t i = 0; i < nruns; i++)
		if (model_usable(rs[i], re[i], align, &as) >= len) {
			out[0] = (struct pool_extent){ as, len };
			return 1;
		}
	for (size_t i = 0; i < nruns && remaining; i++) {
		uint64_t u = model_usable(rs[i], re[i], align, &as);

		if (u) {
			u = u < remaining ? u : remaining;
			out[k++] = (struct pool_extent){ as, u };
			remaining -= u;
		}
	}
	return remaining ? 0 : k;
}

static void model_check(const struct pool *p, const bool *map)
{
	uint64_t rs[R_UNITS], re[R_UNITS], used = 0, longest = 0, as;
	size_t nruns = model_runs(map, rs, re);

	for (int u = 0; u < R_UNITS; u++)
		used += map[u];
	assert_int_equal(pool_used(p), used * UNIT);
	/* Fully coalesced: exactly one free extent per maximal free run. */
	assert_int_equal(pool_free_extents(p), nruns);
	for (size_t i = 0; i < nruns; i++)
		longest = re[i] - rs[i] > longest ? re[i] - rs[i] : longest;
	assert_int_equal(pool_largest_free(p, UNIT), longest * UNIT);
	for (uint64_t align = 2; align <= 64; align *= 4) {
		longest = 0;
		for (size_t i = 0; i < nruns; i++) {
			uint64_t u = model_usable(rs[i], re[i], align, &as);

			longest = u > longest ? u : longest;
		}
		assert_int_equal(pool_largest_free(p, align * UNIT), longest * UNIT);
	}
}

static void model_mark(bool *map, const struct pool_extent *ext, size_t n, bool used)
{
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ext[i].start % UNIT, 0);
		assert_int_equal(ext[i].len % UNIT, 0);
		assert_true(ext[i].len > 0);
		assert_true(ext[i].start + ext[i].len <= R_UNITS * UNIT);
		for (uint64_t u = ext[i].start / UNIT; u < (ext[i].start + ext[i].len) / UNIT; u++) {
			/* Setting a unit already set is two live allocations overlapping. */
			assert_int_equal(map[u], !used);
			map[u] = used;
		}
	}
}

static void release_live(struct pool *p, bool *map, struct live *l)
{
	if (l->n > 1 && rng() % 2) {
		/* Extents may also come back one at a time, in any order. */
		for (size_t i = l->n; i-- > 0;) {
			pool_release(p, &l->ext[i], 1);
			model_mark(map, &l->ext[i], 1, false);
		}
	} else {
		pool_release(p, l->ext, l->n);
		model_mark(map, l->ext, l->n, false);
	}
	free(l->ext);
}

static void test_random(void **state)
{
	struct pool *p = new_pool(R_UNITS * UNIT, UNIT);
	static bool map[R_UNITS];
	static struct live live[R_LIVE_MAX];
	static struct pool_extent want[R_UNITS];
	size_t nlive = 0, nmulti = 0, nnospc = 0, nsingle = 0;

	(void)state;
	memset(map, 0, sizeof(map));
	for (int op = 0; op < R_OPS; op++) {
		if (nlive < R_LIVE_MAX && (nlive == 0 || rng() % 100 < 55)) {
			uint64_t align = UINT64_C(1) << (rng() % 5),
				 max = R_UNITS / align / (rng() % 10 ? 16 : 1);
			uint64_t len = align * (1 + rng() % max);
			size_t nwant = model_plan(map, len, align, want);
			struct pool_extent *ext = NULL;
			size_t n = 0;
			int r = pool_alloc(p, len * UNIT, align * UNIT, &ext, &n);

			if (nwant == 0) {
				assert_int_equal(r, -ENOSPC);
				nnospc++;
			} else {
				assert_int_equal(r, 0);
				assert_int_equal(n, nwant);
				for (size_t i = 0; i < n; i++) {
					assert_int_equal(ext[i].start, want[i].start * UNIT);
					assert_int_equal(ext[i].len, want[i].len * UNIT);
					assert_int_equal(ext[i].start % (align * UNIT), 0);
					assert_int_equal(ext[i].len % (align * UNIT), 0);
				}
				model_mark(map, ext, n, true);
				live[nlive++] = (struct live){ ext, n, len * UNIT };
				if (n > 1)
					nmulti++;
				else
					nsingle++;
			}
		} else {
			size_t k = rng() % nlive;

			release_live(p, map, &live[k]);
			live[k] = live[--nlive];
		}
		model_check(p, map);
	}
	while (nlive > 0) {
		size_t k = rng() % nlive;

		release_live(p, map, &live[k]);
		live[k] = live[--nlive];
		model_check(p, map);
	}
	assert_int_equal(pool_used(p), 0);
	assert_int_equal(pool_free_extents(p), 1);
	assert_int_equal(pool_largest_free(p, UNIT), R_UNITS * UNIT);
	/* Make sure the run actually exercised every path, not just the easy one. */
	print_message("random: %zu single, %zu gathered, %zu -ENOSPC\n", nsingle, nmulti, nnospc);
	assert_true(nsingle > 500);
	assert_true(nmulti > 100);
	assert_true(nnospc > 100);
	pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new),
		cmocka_unit_test(test_whole_pool),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_first_fit),
		cmocka_unit_test(test_fragmentation),
		cmocka_unit_test(test_coalesce_neighbours),
		cmocka_unit_test(test_coalesce_scrambled),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_huge),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
