/* SPDX-License-Identifier: MIT */
/*
 * recent: the ring of ended conversions (see recent.h).
 */
#include "recent.h"

void recent_push(struct recent *r, const struct recent_entry *e)
{
	r->e[r->next] = *e;
	r->next = (r->next + 1) % GMEM_RECENT_MAX;
	if (r->n < GMEM_RECENT_MAX)
		r->n++;
}

const struct recent_entry *recent_get(const struct recent *r, size_t i)
{
	if (i >= r->n)
		return NULL;
	return &r->e[(r->next + GMEM_RECENT_MAX - 1 - i) % GMEM_RECENT_MAX];
}
