/* SPDX-License-Identifier: MIT */
/*
 * stats: counters and a ring of recent latencies per guest. Percentiles are computed when asked (a
 * sort of at most STATS_WINDOW values), never on the conversion path.
 */
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int stats_record(struct guest_stats **sp, int outcome, uint64_t latency_us, const struct conv_slowest *slowest)
{
	struct guest_stats *s = *sp;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		*sp = s;
	}
	s->conversions++;
	if (outcome == GMEM_COMMITTED)
		s->committed++;
	else if (outcome == GMEM_ABORTED)
		s->aborted++;
	else
		s->unverified++;
	s->latency_us[s->n_latency % STATS_WINDOW] = (uint32_t)MIN(latency_us, UINT32_MAX);
	s->n_latency++;
	bool aged = s->n_latency - s->slowest_at > STATS_WINDOW;
	if (slowest && (aged || !s->slowest_client_id || slowest->vote_us >= s->slowest_vote_us)) {
		s->slowest_client_id = slowest->client_id;
		s->slowest_vote_us = slowest->vote_us;
		s->slowest_pid = slowest->pid;
		s->slowest_at = s->n_latency;
		snprintf(s->slowest_name, sizeof(s->slowest_name), "%s", slowest->name);
	} else if (aged) {
		s->slowest_client_id = 0;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void stats_percentiles(const struct guest_stats *s, uint64_t *p50, uint64_t *p99, uint64_t *n)
{
	uint32_t v[STATS_WINDOW];
	size_t k = s ? (size_t)MIN(s->n_latency, (uint64_t)STATS_WINDOW) : 0;
	*p50 = *p99 = 0;
	*n = k;
	if (!k)
		return;
	memcpy(v, s->latency_us, k * sizeof(*v));
	qsort(v, k, sizeof(*v), cmp_u32);
	/* Nearest rank: the smallest value with at least p% of the window at or below it. */
	*p50 = v[(k * 50 + 99) / 100 - 1];
	*p99 = v[(k * 99 + 99) / 100 - 1];
}
