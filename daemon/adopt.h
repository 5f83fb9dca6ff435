/* SPDX-License-Identifier: MIT */
/*
 * adopt: guests whose memory outlived a gmemd (kmod: the module keeps its guests until destroyed)
 * taken back as guests — by replay for the guests the journal names, by an operator for orphans, the
 * module guests no journal names (the state dir was wiped). The memory is never recreated: what is
 * adopted is exactly the module guest with the recorded size, granule, cookie and PFN base, with its
 * contents and the shared/private state the module enforces.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmem-proto.h"

struct manager;
struct backend_guest;
struct sharemap;
struct guest;

/*
 * The map of an adopted guest: the backend's where it keeps one (the module enforces it: it wins), else
 * the journal's. journal (consumed, NULL when there is none) is compared with the backend's and a
 * difference is logged. Return: 0 with *ret owned by the caller, or -errno.
 */
int adopt_map(struct manager *m, const char *name, struct backend_guest *mem, uint64_t size, uint64_t granule,
	      struct sharemap *journal, struct sharemap **ret);

/* list-orphans: the backend's guests no guest of gmemd holds, module id > after. */
int orphans_list(struct manager *m, uint64_t after, struct gmem_orphans_reply *r, char *err, size_t errlen);
/* adopt: orphan a->id becomes guest a->name owned by a->owner, journaled. */
int orphan_adopt(struct manager *m, const struct gmem_adopt_args *a, struct guest **ret, char *err, size_t errlen);
/* destroy-orphan: the orphan's memory is scrubbed and returned to the pool. */
int orphan_destroy(struct manager *m, uint64_t id, char *err, size_t errlen);
