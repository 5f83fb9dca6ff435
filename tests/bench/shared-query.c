/* SPDX-License-Identifier: MIT */
/*
 * bench-shared-query: the cost of one local shareability query (gmem_range_is_shared) against a map
 * gmemd published, for ranges of 4 KiB, 2 MiB and 1 GiB, in a guest that is all shared, and in one that
 * alternates shared and private every 4 KiB in its first GiB (the worst case for the bitmap). Prints ns
 * per query; a program, not a test. GMEMD names the gmemd to start (default: build/daemon/gmemd).
 */
#include <gmem/gmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void yes(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void ack(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_ack(c, cv->epoch, cv->seq);
}

static const struct gmem_participant_ops ops = { .prepare = yes, .commit = ack };

static void measure(const char *what, const struct gmem_shared_map *m, uint64_t off, uint64_t len, int expect)
{
	unsigned n = 0;
	volatile int sink = 0;
	for (unsigned i = 0; i < 1000; i++) /* warm */
		sink += gmem_range_is_shared(m, off, len);
	double t0 = now_ns(), t1;
	do {
		for (unsigned i = 0; i < 1000; i++)
			sink += gmem_range_is_shared(m, off, len);
		n += 1000;
		t1 = now_ns();
	} while (t1 - t0 < 2e8);
	CHECK_EQ(gmem_range_is_shared(m, off, len), expect);
	printf("%-44s %8.1f ns/query (%u queries)\n", what, (t1 - t0) / n, n);
	(void)sink;
}

int main(void)
{
	struct gmemd d;
	struct gmem_client *c;
	struct gmem_shared_map *m;
	struct gmem_convert_result res;

	if (!getenv("GMEMD"))
		setenv("GMEMD", "build/daemon/gmemd", 0);
	gmemd_start(&d, (const char *[]){ "--pool-size", "2T", NULL });
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);
	gmem_set_participant(c, &ops, NULL);
	CHECK_EQ(gmem_guest_create(c, "b", 1ULL << 40, 0, NULL), 0);
	CHECK_EQ(gmem_lease(c, "b"), 0);
	CHECK_EQ(gmem_shared_map_open(c, "b", &m), 0);
	measure("all shared, 4 KiB range", m, 64 * MiB, 4096, 1);
	measure("all shared, 2 MiB range", m, 64 * MiB, 2 * MiB, 1);
	measure("all shared, 1 GiB range", m, 64 * GiB, 1 * GiB, 1);
	measure("all shared, the whole 1 TiB", m, 0, 1ULL << 40, 1);

	/* Every other 4 KiB of the first GiB private: 1,024 ranges per conversion. */
	struct gmem_range r[1024];
	for (uint64_t base = 0; base < GiB; base += 1024 * 8192) {
		for (unsigned i = 0; i < 1024; i++)
			r[i] = (struct gmem_range){ base + i * 8192ULL + 4096, 4096 };
		CHECK_EQ(gmem_convert(c, "b", r, 1024, GMEM_PRIVATE, 0, &res), 0);
		CHECK_EQ(res.outcome, GMEM_COMMITTED);
		gmem_convert_result_free(&res);
	}
	measure("alternating, 4 KiB shared range", m, 64 * MiB, 4096, 1);
	measure("alternating, 2 MiB range (first word private)", m, 64 * MiB, 2 * MiB, 0);
	measure("alternating, 1 GiB range past them (shared)", m, 64 * GiB, 1 * GiB, 1);
	gmem_shared_map_close(m);
	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
