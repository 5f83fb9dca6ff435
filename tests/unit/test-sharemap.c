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
#include <time.h>

#include "sharemap.h"
#include "util.h"

#define CHUNK ((uint64_t)SHAREMAP_CHUNK)
#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GRANULES_1G (UINT64_C(1) << 18) /* 1 GiB of 4 KiB granules */
#define GRANULES_64G (UINT64_C(1) << 24)
#define GRANULES_1T (UINT64_C(1) << 28)

/* xorshift64*: the same sequence on every libc, so a failure can be replayed. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * UINT64_C(0x2545f4914f6cdd1d);
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static struct sharemap *new_map(uint64_t n, enum share_state initial)
{
	struct sharemap *m = NULL;

	assert_int_equal(sharemap_new(n, initial, &m), 0);
	assert_non_null(m);
	assert_int_equal(sharemap_granules(m), n);
	assert_int_equal(sharemap_segments(m), 1);
	return m;
}

static void set(struct sharemap *m, uint64_t start, uint64_t len, enum share_state s)
{
	int r = sharemap_set(m, start, len, s);

	if (r != 0)
		fail_msg("set [%ju, +%ju) to %d: %d", (uintmax_t)start, (uintmax_t)len, s, r);
}

struct run {
	uint64_t start, len;
	enum share_state state;
};

#define MAX_RUNS 64

struct runs {
	struct run v[MAX_RUNS];
	size_t n;
};

static int collect(uint64_t start, uint64_t len, enum share_state state, void *arg)
{
	struct runs *r = arg;

	assert_true(r->n < MAX_RUNS);
	r->v[r->n++] = (struct run){ start, len, state };
	return 0;
}

/* Walks [start, start + len) and compares with the expected runs, given as (start, len, state) triples. */
static void expect_walk(const struct sharemap *m, uint64_t start, uint64_t len, size_t n,
			const struct run *want)
{
	struct runs got = { .n = 0 };

	assert_int_equal(sharemap_walk(m, start, len, collect, &got), 0);
	if (got.n != n)
		fail_msg("walk [%ju, +%ju): %zu runs, want %zu", (uintmax_t)start, (uintmax_t)len, got.n, n);
	for (size_t i = 0; i < n; i++)
		if (got.v[i].start != want[i].start || got.v[i].len != want[i].len ||
		    got.v[i].state != want[i].state)
			fail_msg("run %zu: [%ju, +%ju) %d, want [%ju, +%ju) %d", i, (uintmax_t)got.v[i].start,
				 (uintmax_t)got.v[i].len, got.v[i].state, (uintmax_t)want[i].start,
				 (uintmax_t)want[i].len, want[i].state);
}

#define EXPECT_WALK(m, start, len, ...)                                                                  \
	do {                                                                                             \
		const struct run _want[] = { __VA_ARGS__ };                                              \
		expect_walk(m, start, len, sizeof(_want) / sizeof(_want[0]), _want);                     \
	} while (0)

#define S SHARE_SHARED
#define P SHARE_PRIVATE

static void test_basic(void **state)
{
	struct sharemap *m = new_map(1000, S);

	(void)state;
	for (uint64_t g = 0; g < 1000; g++)
		assert_int_equal(sharemap_get(m, g), S);
	assert_int_equal(sharemap_count_not(m, 0, 1000, S), 0);
	assert_int_equal(sharemap_count_not(m, 0, 1000, P), 1000);
	EXPECT_WALK(m, 0, 1000, { 0, 1000, S });

	set(m, 100, 100, P);
	assert_int_equal(sharemap_get(m, 99), S);
	assert_int_equal(sharemap_get(m, 100), P);
	assert_int_equal(sharemap_get(m, 199), P);
	assert_int_equal(sharemap_get(m, 200), S);
	assert_int_equal(sharemap_segments(m), 3);
	assert_int_equal(sharemap_count_not(m, 0, 1000, S), 100);
	assert_int_equal(sharemap_count_not(m, 0, 1000, P), 900);
	assert_int_equal(sharemap_count_not(m, 150, 100, S), 50);
	assert_int_equal(sharemap_count_not(m, 100, 100, P), 0);
	assert_int_equal(sharemap_count_not(m, 150, 1, P), 0);
	EXPECT_WALK(m, 0, 1000, { 0, 100, S }, { 100, 100, P }, { 200, 800, S });
	/* A walk is clipped to its range. */
	EXPECT_WALK(m, 150, 100, { 150, 50, P }, { 200, 50, S });
	EXPECT_WALK(m, 120, 1, { 120, 1, P });
	/* Setting what is already so changes nothing. */
	set(m, 120, 10, P);
	set(m, 500, 10, S);
	assert_int_equal(sharemap_segments(m), 3);
	sharemap_free(m);

	m = new_map(7, P);
	assert_int_equal(sharemap_get(m, 6), P);
	assert_int_equal(sharemap_count_not(m, 0, 7, S), 7);
	set(m, 0, 7, S);
	EXPECT_WALK(m, 0, 7, { 0, 7, S });
	assert_null(sharemap_free(m));
	assert_null(sharemap_free(NULL));
}

/* Large enough that a handful of runs stays cheaper than a bitmap of the chunk. */
#define N (10 * CHUNK)

static void test_merge(void **state)
{
	struct sharemap *m = new_map(N, S);

	(void)state;
	set(m, 10, 10, P);
	set(m, 30, 10, P);
	assert_int_equal(sharemap_segments(m), 5);
	/* Filling the gap merges three runs into one. */
	set(m, 20, 10, P);
	assert_int_equal(sharemap_segments(m), 3);
	EXPECT_WALK(m, 0, N, { 0, 10, S }, { 10, 30, P }, { 40, N - 40, S });
	/* Merging with the runs at the very ends. */
	set(m, 0, 10, P);
	assert_int_equal(sharemap_segments(m), 2);
	set(m, 40, N - 40, P);
	assert_int_equal(sharemap_segments(m), 1);
	EXPECT_WALK(m, 0, N, { 0, N, P });
	/* Overlapping several runs at once. */
	set(m, 100, 1, S);
	set(m, 200, 1, S);
	set(m, 300, 1, S);
	assert_int_equal(sharemap_segments(m), 7);
	set(m, 50, 400, S);
	assert_int_equal(sharemap_segments(m), 3);
	EXPECT_WALK(m, 0, N, { 0, 50, P }, { 50, 400, S }, { 450, N - 450, P });
	/* Runs merge across chunk boundaries too. */
	set(m, CHUNK - 10, 20, S);
	set(m, 3 * CHUNK - 10, 20, S);
	assert_int_equal(sharemap_segments(m), 7);
	set(m, CHUNK + 10, 2 * CHUNK - 20, S);
	assert_int_equal(sharemap_segments(m), 5);
	EXPECT_WALK(m, 0, N, { 0, 50, P }, { 50, 400, S }, { 450, CHUNK - 460, P },
		    { CHUNK - 10, 2 * CHUNK + 20, S }, { 3 * CHUNK + 10, N - 3 * CHUNK - 10, P });
	set(m, 0, N, S);
	assert_int_equal(sharemap_segments(m), 1);

	/* A neighbour that ends or starts exactly on the chunk boundary where the set begins or ends. */
	set(m, 0, CHUNK, P);
	set(m, 2 * CHUNK, CHUNK, P);
	set(m, CHUNK, 10, P);
	assert_int_equal(sharemap_segments(m), 4);
	set(m, 2 * CHUNK - 10, 10, P);
	assert_int_equal(sharemap_segments(m), 4);
	EXPECT_WALK(m, 0, N, { 0, CHUNK + 10, P }, { CHUNK + 10, CHUNK - 20, S },
		    { 2 * CHUNK - 10, CHUNK + 10, P }, { 3 * CHUNK, N - 3 * CHUNK, S });
	set(m, 0, N, S);
	assert_int_equal(sharemap_segments(m), 1);
	sharemap_free(m);
}

/* Makes granules lo + 1, lo + 3, ... below hi private, one set each. */
static void alternate(struct sharemap *m, uint64_t lo, uint64_t hi)
{
	for (uint64_t g = lo + 1; g < hi; g += 2)
		set(m, g, 1, P);
}

static int stop_after_two(uint64_t start, uint64_t len, enum share_state st, void *arg)
{
	int *calls = arg;

	(void)start, (void)len, (void)st;
	return ++*calls == 2 ? 42 : 0;
}

/* Walks merge runs across segment boundaries: a run ending where a bitmap begins with the same state. */
static void test_walk_across_bitmaps(void **state)
{
	struct sharemap *m = new_map(3 * CHUNK, S);
	int calls = 0;

	(void)state;
	/* Chunk 1 becomes a bitmap whose even bits are private, starting with a private bit. */
	for (uint64_t g = CHUNK; g < 2 * CHUNK; g += 2)
		set(m, g, 1, P);
	assert_int_equal(sharemap_segments(m), 3);
	set(m, CHUNK - 5, 5, P);
	EXPECT_WALK(m, CHUNK - 10, 13, { CHUNK - 10, 5, S }, { CHUNK - 5, 6, P }, { CHUNK + 1, 1, S },
		    { CHUNK + 2, 1, P });
	/* The bitmap's last bit is shared and continues into the shared run after it. */
	EXPECT_WALK(m, 2 * CHUNK - 3, 10, { 2 * CHUNK - 3, 1, S }, { 2 * CHUNK - 2, 1, P },
		    { 2 * CHUNK - 1, 8, S });
	assert_int_equal(sharemap_count_not(m, 0, 3 * CHUNK, S), CHUNK / 2 + 5);
	assert_int_equal(sharemap_count_not(m, CHUNK - 5, 10, P), 2);

	/* fn's non-zero return stops the walk and is handed back. */
	assert_int_equal(sharemap_walk(m, 0, 3 * CHUNK, stop_after_two, &calls), 42);
	assert_int_equal(calls, 2);
	sharemap_free(m);
}

static void test_bitmap_roundtrip(void **state)
{
	struct sharemap *m = new_map(4 * CHUNK, S);
	size_t max_segs = 0, max_bytes = 0;

	(void)state;
	for (uint64_t g = CHUNK + 1; g < 2 * CHUNK; g += 2) {
		set(m, g, 1, P);
		max_segs = MAX(max_segs, sharemap_segments(m));
		max_bytes = MAX(max_bytes, sharemap_bytes(m));
	}
	/* Shared run, the bitmap, shared run. */
	assert_int_equal(sharemap_segments(m), 3);
	assert_true(sharemap_bytes(m) >= CHUNK / 8);
	/* Runs gave way to a bitmap long before they cost more than a few bitmaps. */
	assert_true(max_segs < 600);
	assert_true(max_bytes <= 3 * CHUNK / 8 + 1024);
	assert_int_equal(sharemap_count_not(m, 0, 4 * CHUNK, S), CHUNK / 2);
	assert_int_equal(sharemap_count_not(m, CHUNK, CHUNK, P), CHUNK / 2);
	assert_int_equal(sharemap_get(m, CHUNK + 1), P);
	assert_int_equal(sharemap_get(m, CHUNK + 2), S);

	/* One by one back to shared: the bitmap becomes runs again, then a single run. */
	for (uint64_t g = CHUNK + 1; g < 2 * CHUNK; g += 2) {
		set(m, g, 1, S);
		max_bytes = MAX(max_bytes, sharemap_bytes(m));
	}
	assert_true(max_bytes <= 3 * CHUNK / 8 + 1024);
	assert_int_equal(sharemap_segments(m), 1);
	assert_true(sharemap_bytes(m) <= 1024);

	/* A set covering the whole bitmap chunk frees it at once (the leak checker sees the rest). */
	alternate(m, CHUNK, 2 * CHUNK);
	assert_int_equal(sharemap_segments(m), 3);
	set(m, CHUNK, CHUNK, S);
	assert_int_equal(sharemap_segments(m), 1);
	assert_true(sharemap_bytes(m) <= 1024);

	/* The same in the other state: a bitmap chunk made all private merges with private neighbours. */
	alternate(m, CHUNK, 2 * CHUNK);
	set(m, 0, CHUNK, P);
	set(m, 2 * CHUNK, CHUNK, P);
	assert_int_equal(sharemap_segments(m), 4);
	set(m, CHUNK, CHUNK, P);
	assert_int_equal(sharemap_segments(m), 2);
	EXPECT_WALK(m, 0, 4 * CHUNK, { 0, 3 * CHUNK, P }, { 3 * CHUNK, CHUNK, S });

	/* A set across several bitmaps keeps only the ends, which may fall back to runs. */
	set(m, 0, 4 * CHUNK, S);
	alternate(m, 0, 4 * CHUNK);
	assert_int_equal(sharemap_segments(m), 4);
	set(m, 100, 4 * CHUNK - 200, P);
	/* 50 private granules at each end: 100 runs or so per end chunk, which is cheaper as runs. */
	assert_int_equal(sharemap_count_not(m, 0, 4 * CHUNK, S), 4 * CHUNK - 200 + 100);
	assert_int_equal(sharemap_get(m, 99), P);
	assert_int_equal(sharemap_get(m, 98), S);
	assert_int_equal(sharemap_get(m, 4 * CHUNK - 101), P);
	assert_int_equal(sharemap_get(m, 4 * CHUNK - 100), S);
	assert_int_equal(sharemap_get(m, 4 * CHUNK - 99), P);
	set(m, 0, 4 * CHUNK, S);
	assert_int_equal(sharemap_segments(m), 1);
	sharemap_free(m);
}

static void test_partial_last_chunk(void **state)
{
	struct sharemap *m = new_map(3 * CHUNK + 100, S);

	(void)state;
	/* In a 100-granule chunk, 16 bytes of bits beat any three runs. */
	set(m, 3 * CHUNK + 50, 1, P);
	assert_int_equal(sharemap_segments(m), 2);
	assert_int_equal(sharemap_get(m, 3 * CHUNK + 50), P);
	assert_int_equal(sharemap_get(m, 3 * CHUNK + 49), S);
	assert_int_equal(sharemap_get(m, 3 * CHUNK + 99), S);
	EXPECT_WALK(m, 3 * CHUNK - 10, 110, { 3 * CHUNK - 10, 60, S }, { 3 * CHUNK + 50, 1, P },
		    { 3 * CHUNK + 51, 49, S });
	set(m, 3 * CHUNK + 50, 1, S);
	assert_int_equal(sharemap_segments(m), 1);

	alternate(m, 3 * CHUNK, 3 * CHUNK + 100);
	assert_int_equal(sharemap_segments(m), 2);
	assert_int_equal(sharemap_count_not(m, 0, 3 * CHUNK + 100, S), 50);
	assert_int_equal(sharemap_count_not(m, 3 * CHUNK + 99, 1, S), 1);
	set(m, 3 * CHUNK - 10, 110, P);
	assert_int_equal(sharemap_segments(m), 2);
	EXPECT_WALK(m, 0, 3 * CHUNK + 100, { 0, 3 * CHUNK - 10, S }, { 3 * CHUNK - 10, 110, P });
	sharemap_free(m);

	/* A last chunk of one granule can never be mixed. */
	m = new_map(2 * CHUNK + 1, S);
	set(m, 2 * CHUNK, 1, P);
	assert_int_equal(sharemap_segments(m), 2);
	set(m, 2 * CHUNK - 1, 1, P);
	assert_int_equal(sharemap_segments(m), 2);
	EXPECT_WALK(m, 0, 2 * CHUNK + 1, { 0, 2 * CHUNK - 1, S }, { 2 * CHUNK - 1, 2, P });
	sharemap_free(m);

	/* A guest smaller than a chunk: one 8-byte bitmap word holds it all. */
	m = new_map(50, S);
	set(m, 10, 1, P);
	assert_int_equal(sharemap_segments(m), 1);
	EXPECT_WALK(m, 0, 50, { 0, 10, S }, { 10, 1, P }, { 11, 39, S });
	set(m, 0, 50, P);
	assert_int_equal(sharemap_segments(m), 1);
	EXPECT_WALK(m, 0, 50, { 0, 50, P });
	sharemap_free(m);
}

static void test_invalid(void **state)
{
	struct sharemap *m = NULL;
	struct runs got = { .n = 0 };

	(void)state;
	assert_int_equal(sharemap_new(0, S, &m), -EINVAL);
	assert_int_equal(sharemap_new(10, (enum share_state)2, &m), -EINVAL);
	assert_null(m);

	m = new_map(N, S);
	set(m, 10, 10, P);
	assert_int_equal(sharemap_set(m, 0, 0, P), -EINVAL);
	assert_int_equal(sharemap_set(m, N, 1, P), -EINVAL);
	assert_int_equal(sharemap_set(m, N - 1, 2, P), -EINVAL);
	assert_int_equal(sharemap_set(m, 0, N + 1, P), -EINVAL);
	assert_int_equal(sharemap_set(m, 1, UINT64_MAX, P), -EINVAL);
	assert_int_equal(sharemap_set(m, UINT64_MAX, 1, P), -EINVAL);
	assert_int_equal(sharemap_set(m, 0, 1, (enum share_state)2), -EINVAL);
	/* Nothing changed. */
	assert_int_equal(sharemap_segments(m), 3);
	EXPECT_WALK(m, 0, N, { 0, 10, S }, { 10, 10, P }, { 20, N - 20, S });
	/* The exact ends are fine. */
	set(m, N - 1, 1, P);
	set(m, 0, N, S);

	assert_int_equal(sharemap_walk(m, 0, N + 1, collect, &got), -EINVAL);
	assert_int_equal(sharemap_walk(m, N + 1, 0, collect, &got), -EINVAL);
	assert_int_equal(sharemap_walk(m, 1, UINT64_MAX, collect, &got), -EINVAL);
	assert_int_equal(sharemap_walk(m, 50, 0, collect, &got), 0);
	assert_int_equal(sharemap_walk(m, N, 0, collect, &got), 0);
	assert_int_equal(got.n, 0);
	sharemap_free(m);
}

/* Checks a walk against the model: contiguous, uniform and maximal runs covering exactly the range. */
struct model_walk {
	const uint8_t *model;
	const uint8_t *fill[2]; /* n zeros, n ones: whole runs compare with one memcmp */
	uint64_t next, end;
	size_t runs;
};

static int check_run(uint64_t start, uint64_t len, enum share_state st, void *arg)
{
	struct model_walk *w = arg;

	if (start != w->next || len == 0 || len > w->end - start || (st != S && st != P))
		fail_msg("run [%ju, +%ju) %d after %ju", (uintmax_t)start, (uintmax_t)len, st,
			 (uintmax_t)w->next);
	if (memcmp(w->model + start, w->fill[st], len) != 0)
		fail_msg("run [%ju, +%ju) %d is not uniform in the model", (uintmax_t)start, (uintmax_t)len,
			 st);
	if (start + len < w->end && w->model[start + len] == st)
		fail_msg("run [%ju, +%ju) %d is not maximal", (uintmax_t)start, (uintmax_t)len, st);
	w->next = start + len;
	w->runs++;
	return 0;
}

static size_t check_walk(const struct sharemap *m, struct model_walk *w, uint64_t start, uint64_t len)
{
	w->next = start;
	w->end = start + len;
	w->runs = 0;
	assert_int_equal(sharemap_walk(m, start, len, check_run, w), 0);
	assert_int_equal(w->next, start + len);
	return w->runs;
}

static uint64_t model_count_not(const uint8_t *model, uint64_t start, uint64_t len, enum share_state st)
{
	uint64_t count = 0;

	for (uint64_t g = start; g < start + len; g++)
		count += model[g] != st;
	return count;
}

/* Mostly short sets, some of a chunk or more, which wipe out what the short ones built up. */
static uint64_t random_len(uint64_t n)
{
	uint64_t k = rnd_below(100), max;

	if (k < 60)
		max = 8;
	else if (k < 85)
		max = 256;
	else if (k < 96)
		max = CHUNK;
	else
		max = 3 * CHUNK;
	return 1 + rnd_below(MIN(max, n));
}

/* A range of random start and a length that is usually short: the model's count is a plain loop. */
static void random_range(uint64_t n, uint64_t *start, uint64_t *len)
{
	uint64_t max = UINT64_C(1) << rnd_below(19);

	*len = 1 + rnd_below(MIN(max, n));
	*start = rnd_below(n - *len + 1);
}

static void random_run(uint64_t n, unsigned ops, bool want_bitmaps)
{
	uint8_t *model = calloc(n, 1), *ones = malloc(n), *zeros = calloc(n, 1);
	struct model_walk w = { .model = model };
	struct sharemap *m = new_map(n, S);
	unsigned with_bitmaps = 0, bitmaps_gone = 0;
	uint64_t hot = 0;
	bool had = false;

	assert_non_null(model);
	assert_non_null(ones);
	assert_non_null(zeros);
	memset(ones, 1, n);
	w.fill[S] = zeros;
	w.fill[P] = ones;

	for (unsigned op = 0; op < ops; op++) {
		enum share_state st = rnd_below(2) ? P : S;
		uint64_t len = random_len(n), start, rs, rl;
		size_t runs;
		bool has;

		/*
		 * Phases of tiny sets around a hot spot, which move between chunk boundaries and random
		 * places, fill chunks with runs until they turn into bitmaps; the mixed phases in between
		 * turn them back.
		 */
		if (op % 200 == 0)
			hot = rnd_below(2) ? rnd_below(n / CHUNK + 1) * CHUNK : rnd_below(n);
		if (op % 1000 < 400) {
			uint64_t lo = hot > 1024 ? hot - 1024 : 0;

			start = lo + rnd_below(2048);
			start = MIN(start, n - 1);
			len = 1 + rnd_below(4);
		} else {
			start = rnd_below(n);
		}
		len = MIN(len, n - start);

		set(m, start, len, st);
		memset(model + start, st, len);

		for (int i = 0; i < 16; i++) {
			uint64_t g = rnd_below(n);

			assert_int_equal(sharemap_get(m, g), model[g]);
		}
		assert_int_equal(sharemap_get(m, start), st);
		assert_int_equal(sharemap_get(m, start + len - 1), st);
		if (start > 0)
			assert_int_equal(sharemap_get(m, start - 1), model[start - 1]);
		if (start + len < n)
			assert_int_equal(sharemap_get(m, start + len), model[start + len]);

		runs = check_walk(m, &w, 0, n);
		random_range(n, &rs, &rl);
		check_walk(m, &w, rs, rl);
		for (int i = 0; i < 2; i++) {
			enum share_state cs = i ? P : S;

			random_range(n, &rs, &rl);
			assert_int_equal(sharemap_count_not(m, rs, rl, cs),
					 model_count_not(model, rs, rl, cs));
		}

		/* Without bitmaps the segments are exactly the maximal runs; a bitmap stands for many. */
		assert_true(sharemap_segments(m) <= runs);
		has = sharemap_segments(m) < runs;
		with_bitmaps += has;
		bitmaps_gone += had && !has;
		had = has;
	}
	assert_int_equal(sharemap_count_not(m, 0, n, S), model_count_not(model, 0, n, S));
	print_message("n=%ju: %u ops, %u with bitmaps, bitmaps gone %u times\n", (uintmax_t)n, ops,
		      with_bitmaps, bitmaps_gone);
	if (want_bitmaps) {
		/* The run must have exercised both directions of the conversion. */
		assert_true(with_bitmaps > ops / 20);
		assert_true(bitmaps_gone > 0);
	}
	set(m, 0, n, S);
	assert_int_equal(sharemap_segments(m), 1);
	assert_true(sharemap_bytes(m) <= 1024);
	sharemap_free(m);
	free(model);
	free(ones);
	free(zeros);
}

static void test_random(void **state)
{
	(void)state;
	random_run(5 * CHUNK + 123, 4000, true);
	random_run(CHUNK, 1000, true);
	random_run(2 * CHUNK + 1, 1000, true);
	random_run(100, 1000, true);
	random_run(1, 50, false);
}

/* Acceptance: an untouched 1 TiB guest is one segment and at most 1 KiB. */
static void test_size_untouched_tib(void **state)
{
	struct sharemap *m;

	(void)state;
	m = new_map(GRANULES_1T, S);
	print_message("1 TiB untouched: %zu bytes\n", sharemap_bytes(m));
	assert_true(sharemap_bytes(m) <= 1024);
	sharemap_free(m);
	m = new_map(GRANULES_1T, P);
	assert_true(sharemap_bytes(m) <= 1024);
	sharemap_free(m);
}

/*
 * Acceptance: every other 4 KiB granule private over 64 GiB costs at most 4 MiB, built by 2^23 single
 * granule sets in a few seconds; setting it all back to shared leaves one segment and a few bytes.
 */
static void test_size_alternating(void **state)
{
	struct sharemap *m = new_map(GRANULES_64G, S);
	uint64_t t0 = now_ns(), dt;

	(void)state;
	alternate(m, 0, GRANULES_64G);
	dt = now_ns() - t0;
	print_message("64 GiB alternating: %zu bytes, %zu segments, built in %ju ms\n", sharemap_bytes(m),
		      sharemap_segments(m), (uintmax_t)(dt / 1000000));
	assert_true(sharemap_bytes(m) <= 4 * MiB);
	assert_int_equal(sharemap_segments(m), GRANULES_64G / CHUNK);
	/* Generous: this is to catch work per set that grows with the map, not to benchmark. */
	assert_true(dt < UINT64_C(30) * 1000000000);
	assert_int_equal(sharemap_count_not(m, 0, GRANULES_64G, S), GRANULES_64G / 2);
	assert_int_equal(sharemap_count_not(m, 12345, 512, P), 256);
	for (int i = 0; i < 1000; i++) {
		uint64_t g = rnd_below(GRANULES_64G);

		assert_int_equal(sharemap_get(m, g), g % 2 ? P : S);
	}

	set(m, 0, GRANULES_64G, S);
	print_message("64 GiB back to shared: %zu bytes, %zu segments\n", sharemap_bytes(m),
		      sharemap_segments(m));
	assert_int_equal(sharemap_segments(m), 1);
	assert_true(sharemap_bytes(m) <= 1024);
	sharemap_free(m);
}

/* The same back to shared one granule at a time, on 1 GiB: the array must shrink as segments go. */
static void test_alternating_unset_one_by_one(void **state)
{
	struct sharemap *m = new_map(GRANULES_1G, S);

	(void)state;
	alternate(m, 0, GRANULES_1G);
	assert_int_equal(sharemap_segments(m), GRANULES_1G / CHUNK);
	assert_true(sharemap_bytes(m) <= GRANULES_1G / 8 + 16 * KiB);
	/* Every other chunk forwards, the rest backwards. */
	for (uint64_t c = 0; c < GRANULES_1G / CHUNK; c += 2)
		for (uint64_t g = c * CHUNK + 1; g < (c + 1) * CHUNK; g += 2)
			set(m, g, 1, S);
	for (uint64_t c = 1; c < GRANULES_1G / CHUNK; c += 2)
		for (uint64_t g = (c + 1) * CHUNK - 1; g > c * CHUNK; g -= 2)
			set(m, g, 1, S);
	assert_int_equal(sharemap_segments(m), 1);
	assert_int_equal(sharemap_count_not(m, 0, GRANULES_1G, S), 0);
	assert_true(sharemap_bytes(m) <= 1024);
	sharemap_free(m);
}

#define PAIRS 20000

/* ns for PAIRS set-private/set-shared pairs of one granule at the given places; the best of three. */
static uint64_t time_pairs(struct sharemap *m, const uint64_t *pos)
{
	uint64_t best = UINT64_MAX;

	for (int rep = 0; rep < 3; rep++) {
		uint64_t t0 = now_ns(), dt;

		for (int i = 0; i < PAIRS; i++)
			if (sharemap_set(m, pos[i], 1, P) != 0 || sharemap_set(m, pos[i], 1, S) != 0)
				fail();
		dt = now_ns() - t0;
		best = MIN(best, dt);
	}
	assert_int_equal(sharemap_segments(m), 1);
	return best;
}

/* Acceptance: a 4 KiB set costs about the same on a 1 TiB guest as on a 1 GiB one. */
static void test_set_cost_independent_of_size(void **state)
{
	uint64_t *pos = malloc(PAIRS * sizeof(*pos)), t_gib, t_tib;
	struct sharemap *gib = new_map(GRANULES_1G, S), *tib = new_map(GRANULES_1T, S);

	(void)state;
	assert_non_null(pos);
	for (int i = 0; i < PAIRS; i++)
		pos[i] = 1 + rnd_below(GRANULES_1G - 2);
	t_gib = time_pairs(gib, pos);
	for (int i = 0; i < PAIRS; i++)
		pos[i] = 1 + rnd_below(GRANULES_1T - 2);
	t_tib = time_pairs(tib, pos);
	print_message("1-granule set+unset: 1 GiB %ju ns, 1 TiB %ju ns per pair\n",
		      (uintmax_t)(t_gib / PAIRS), (uintmax_t)(t_tib / PAIRS));
	assert_true(t_tib <= 2 * t_gib);
	assert_true(sharemap_bytes(tib) <= 1024);
	sharemap_free(gib);
	sharemap_free(tib);
	free(pos);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_walk_across_bitmaps),
		cmocka_unit_test(test_bitmap_roundtrip),
		cmocka_unit_test(test_partial_last_chunk),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_size_untouched_tib),
		cmocka_unit_test(test_size_alternating),
		cmocka_unit_test(test_alternating_unset_one_by_one),
		cmocka_unit_test(test_set_cost_independent_of_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
