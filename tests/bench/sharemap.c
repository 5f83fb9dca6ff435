/* SPDX-License-Identifier: MIT */
/*
 * Figures for the sharemap: bytes for an untouched 1 TiB guest and for alternating 4 KiB granules over
 * 64 GiB, and the cost of a one-granule set and of a 2 MiB count_not on guests of different sizes. Build
 * with -O2 -DNDEBUG: debug builds check invariants after every set.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sharemap.h"

#define GRANULE 4096 /* bytes, for the labels only: the map counts granules */
#define GRANULES(bytes) ((uint64_t)(bytes) / GRANULE)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)
#define OPS 200000

static uint64_t rnd_state = 0x9e3779b97f4a7c15;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * UINT64_C(0x2545f4914f6cdd1d);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "%s: %s\n", what, strerror(-r));
	exit(EXIT_FAILURE);
}

static struct sharemap *new_map(uint64_t n)
{
	struct sharemap *m;
	int r = sharemap_new(n, SHARE_SHARED, &m);

	if (r < 0)
		die("sharemap_new", r);
	return m;
}

static void set(struct sharemap *m, uint64_t start, uint64_t len, enum share_state s)
{
	int r = sharemap_set(m, start, len, s);

	if (r < 0)
		die("sharemap_set", r);
}

/* Every odd granule private, one set each; returns ns per set. */
static double alternate(struct sharemap *m)
{
	uint64_t n = sharemap_granules(m), t0 = now_ns();

	for (uint64_t g = 1; g < n; g += 2)
		set(m, g, 1, SHARE_PRIVATE);
	return (double)(now_ns() - t0) / (double)(n / 2);
}

/*
 * ns per one-granule set, as set/unset pairs at random places: on an untouched map each splits a run and
 * merges it back; on the alternating one each flips a bit of a bitmap. The best of three rounds.
 */
static double ns_per_set(struct sharemap *m, enum share_state from)
{
	enum share_state to = from == SHARE_SHARED ? SHARE_PRIVATE : SHARE_SHARED;
	uint64_t n = sharemap_granules(m), *pos = malloc(OPS * sizeof(*pos)), best = UINT64_MAX;

	if (!pos)
		die("malloc", -ENOMEM);
	for (int i = 0; i < OPS; i++) {
		pos[i] = rnd() % n;
		/* On the alternating map, the shared granules: flip one and flip it back. */
		if (from == SHARE_SHARED && sharemap_get(m, pos[i]) != SHARE_SHARED)
			pos[i] ^= 1;
	}
	for (int rep = 0; rep < 3; rep++) {
		uint64_t t0 = now_ns(), dt;

		for (int i = 0; i < OPS; i++) {
			set(m, pos[i], 1, to);
			set(m, pos[i], 1, from);
		}
		dt = now_ns() - t0;
		best = dt < best ? dt : best;
	}
	free(pos);
	return (double)best / (2.0 * OPS);
}

static double ns_per_count(struct sharemap *m, uint64_t len)
{
	uint64_t n = sharemap_granules(m), sum = 0, t0;
	double ns;

	t0 = now_ns();
	for (int i = 0; i < OPS; i++)
		sum += sharemap_count_not(m, rnd() % (n - len), len, SHARE_SHARED);
	ns = (double)(now_ns() - t0) / OPS;
	/* Printed so that the loop cannot be dropped. */
	printf("    (checksum %" PRIu64 ")\n", sum);
	return ns;
}

int main(void)
{
	struct sharemap *tib = new_map(GRANULES(TiB)), *gib = new_map(GRANULES(GiB));
	struct sharemap *g64 = new_map(GRANULES(64 * GiB));
	double build;

	printf("bytes:\n");
	printf("  1 TiB untouched:             %10zu bytes, %zu segment(s)\n", sharemap_bytes(tib),
	       sharemap_segments(tib));
	build = alternate(g64);
	printf("  64 GiB alternating 4 KiB:    %10zu bytes, %zu segments (built at %.1f ns per set)\n",
	       sharemap_bytes(g64), sharemap_segments(g64), build);

	printf("one-granule set (split a run and merge it back):\n");
	printf("  1 GiB:   %6.1f ns\n", ns_per_set(gib, SHARE_SHARED));
	{
		struct sharemap *u64 = new_map(GRANULES(64 * GiB));

		printf("  64 GiB:  %6.1f ns\n", ns_per_set(u64, SHARE_SHARED));
		sharemap_free(u64);
	}
	printf("  1 TiB:   %6.1f ns\n", ns_per_set(tib, SHARE_SHARED));
	printf("one-granule set inside a bitmap (64 GiB alternating): %.1f ns\n",
	       ns_per_set(g64, SHARE_SHARED));

	printf("count_not over 2 MiB (%" PRIu64 " granules):\n", GRANULES(2 << 20));
	printf("  1 TiB untouched:       %6.1f ns\n", ns_per_count(tib, GRANULES(2 << 20)));
	printf("  64 GiB alternating:    %6.1f ns\n", ns_per_count(g64, GRANULES(2 << 20)));
	printf("count_not over 1 GiB on 64 GiB alternating: %.1f ns\n", ns_per_count(g64, GRANULES(GiB)));

	set(g64, 0, sharemap_granules(g64), SHARE_SHARED);
	printf("64 GiB alternating, all set back to shared: %zu bytes, %zu segment(s)\n", sharemap_bytes(g64),
	       sharemap_segments(g64));

	sharemap_free(tib);
	sharemap_free(gib);
	sharemap_free(g64);
	return 0;
}
