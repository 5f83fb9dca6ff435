/* SPDX-License-Identifier: MIT */
/*
 * sharemap: which granules of one guest are shared and which private.
 *
 * Its cost is at most about min(runs, one bit per granule): the guest is a sorted sequence of segments,
 * each either a uniform run [start, start+len) in one state, or a bitmap chunk of SHAREMAP_CHUNK granules
 * (aligned to SHAREMAP_CHUNK) for regions where runs would cost more than bits. A chunk becomes a bitmap
 * when the runs inside it would take more memory than its bitmap, and turns back into a run when it
 * becomes uniform; neighbouring runs of one state are always merged. So an untouched 1 TiB guest is one
 * segment, and alternating 4 KiB granules over 64 GiB cost 2 MiB of bits plus a small index.
 *
 * Granules are indices (offset / granule size); the map knows nothing of bytes. Pure: no I/O, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHAREMAP_CHUNK 32768 /* granules per bitmap chunk: 4 KiB of bits */

enum share_state {
	SHARE_SHARED = 0,
	SHARE_PRIVATE = 1,
};

struct sharemap;

/* A map of n granules (n >= 1), all in state initial. */
int sharemap_new(uint64_t n, enum share_state initial, struct sharemap **ret);
struct sharemap *sharemap_free(struct sharemap *m);

uint64_t sharemap_granules(const struct sharemap *m);

/* Sets [start, start+len) to state. -EINVAL when the range is empty or past the end, -ENOMEM (the map
 * is then unchanged). */
int sharemap_set(struct sharemap *m, uint64_t start, uint64_t len, enum share_state state);

/* The state of one granule. */
enum share_state sharemap_get(const struct sharemap *m, uint64_t granule);

/* Granules in [start, start+len) that are NOT in state (0: the whole range already is). */
uint64_t sharemap_count_not(const struct sharemap *m, uint64_t start, uint64_t len, enum share_state state);

/*
 * Calls fn for each maximal run of one state inside [start, start+len), in order; fn returning
 * non-zero stops the walk and is returned. Runs are reported merged across segment boundaries.
 */
int sharemap_walk(const struct sharemap *m, uint64_t start, uint64_t len,
		  int (*fn)(uint64_t start, uint64_t len, enum share_state state, void *arg), void *arg);

/* Heap bytes the map uses now (its own struct, the segment array, every bitmap). */
size_t sharemap_bytes(const struct sharemap *m);
/* Number of segments (runs + bitmap chunks): for tests. */
size_t sharemap_segments(const struct sharemap *m);
