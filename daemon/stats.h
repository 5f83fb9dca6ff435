/* SPDX-License-Identifier: MIT */
/*
 * stats: what `gmemctl top` shows of one guest — its conversions by outcome, the latency of its most
 * recent ones, and its slowest participant of late. Allocated at a guest's first conversion, so the
 * thousands of guests that never convert cost nothing.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "gmem-proto.h"

#define STATS_WINDOW 128 /* latencies kept per guest: p50/p99 are over the last this many */

struct guest_stats {
	uint64_t conversions, committed, aborted, unverified;
	uint32_t latency_us[STATS_WINDOW]; /* a ring: the most recent conversions' latencies */
	uint64_t n_latency;                /* recorded in all; the ring holds the last min(n, WINDOW) */
	/* The slowest voter among the last STATS_WINDOW conversions, replaced when a slower one comes or
	 * when it has aged out of the window. */
	uint64_t slowest_client_id, slowest_vote_us, slowest_at; /* at: n_latency when it was seen */
	pid_t slowest_pid;
	char slowest_name[GMEM_NAME_MAX + 1];
};

struct conv_slowest {
	uint64_t client_id, vote_us;
	pid_t pid;
	const char *name;
};

/* Records one finished conversion in *s (allocated on first use). slowest may be NULL (no vote came). */
int stats_record(struct guest_stats **s, int outcome, uint64_t latency_us, const struct conv_slowest *slowest);
/* The p50 and p99 of the window (0 when empty), and how many latencies they are over. */
void stats_percentiles(const struct guest_stats *s, uint64_t *p50, uint64_t *p99, uint64_t *n);
