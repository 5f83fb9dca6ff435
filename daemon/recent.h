/* SPDX-License-Identifier: MIT */
/*
 * recent: the last GMEM_RECENT_MAX conversions that ended, for `gmemctl conversions`. A fixed ring inside
 * the manager: the oldest entry is overwritten, so what gmemd remembers never grows with its uptime.
 * Each entry keeps its guest's id and owner, so that visibility can still be decided once the guest is
 * gone (then only its owner, root and admins see it: the grants went with the guest).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmem-proto.h"

struct recent_entry {
	struct gmem_wire_conversion w;
	uint64_t guest_id;
	uid_t owner;
};

struct recent {
	struct recent_entry e[GMEM_RECENT_MAX];
	size_t next; /* where the next one goes */
	size_t n;    /* how many are held (at most GMEM_RECENT_MAX) */
};

void recent_push(struct recent *r, const struct recent_entry *e);
/* The i-th newest (0 = the last to end), or NULL past the end. */
const struct recent_entry *recent_get(const struct recent *r, size_t i);
