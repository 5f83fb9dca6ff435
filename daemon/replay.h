/* SPDX-License-Identifier: MIT */
/*
 * replay: the snapshot and the journal read back into a plain state (guests, their maps and grants,
 * conversions not done, outcomes kept for in-doubt participants), with no manager, backend or socket:
 * the unit tests drive it on files alone. replay-manager.c turns that state into a running gmemd.
 *
 * Rules (DESIGN.md, "Durability and restarts"): the journal of another backend is refused; records the
 * snapshot already covers are skipped; a torn journal tail is dropped and logged with its offset;
 * corruption (in the journal, or anything bad in the snapshot) refuses the start naming the file and
 * offset — unless recover_from_snapshot, which keeps the snapshot and the journal's records before the
 * damage, and asks the caller to rewrite both.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "conversion.h"
#include "gmem-proto.h"
#include "policy.h"

struct json_object;
struct sharemap;

struct replay_guest {
	uint64_t id;
	char name[GMEM_NAME_MAX + 1];
	uint64_t size, granule;
	uint32_t owner;
	uint64_t dev, ino;      /* of its memfd (memfd backend), to check what the fd store gives back */
	struct backend_ident ident; /* of its module guest (kmod backend), to check what the module still holds */
	struct sharemap *map;   /* owned */
	struct grant *grants;   /* owned */
	size_t n_grants;
	bool lost;              /* its memory did not come back at an earlier start */
};

struct replay_conv {
	uint64_t epoch, seq, guest_id;
	bool to_private, zero;
	struct conv_range *ranges; /* owned: the changing ranges (bytes) */
	size_t n_ranges;
	size_t n_parts;
	int decision;              /* -1 none (presumed abort), 0 commit, 1 abort */
	bool applied;              /* the backend step and the map change were recorded */
};

/* What an in-doubt participant may ask about after a restart (PROTOCOL.md, "resolve"). */
struct replay_outcome {
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX + 1];
	int outcome; /* enum gmem_outcome */
};
#define REPLAY_OUTCOMES_MAX 256

/* The last REPLAY_OUTCOMES_MAX outcomes of conversions a restart finished, oldest first from head. */
struct outcome_ring {
	struct replay_outcome v[REPLAY_OUTCOMES_MAX];
	size_t n, head;
};
void outcome_ring_add(struct outcome_ring *r, uint64_t epoch, uint64_t seq, const char *guest, int outcome);
const struct replay_outcome *outcome_ring_find(const struct outcome_ring *r, uint64_t epoch, uint64_t seq);

struct replay_state {
	char backend[16];
	uint64_t n;             /* the last record number seen */
	uint64_t next_guest_id; /* guest ids are never reused */
	struct replay_guest *guests;
	size_t n_guests, cap_guests;
	struct replay_conv *convs; /* begun and not done, in begin order */
	size_t n_convs, cap_convs;
	struct outcome_ring outcomes;
	uint64_t records;       /* applied */
	uint64_t good_end;      /* where journal appends continue */
	bool rewrite;           /* recovered: write a fresh snapshot and journal before serving */
};

/* Applies one record. Return: 0, or -EBADMSG with errmsg for a record that does not make sense. */
int replay_apply(struct replay_state *s, struct json_object *rec, char *errmsg, size_t errlen);
/* Reads SNAPSHOT_FILE and JOURNAL_FILE of dirfd into s. Return: 0, -EBADMSG (corrupt, logged with the
 * offset), -EXDEV (another backend's journal, logged), -errno. */
int replay_load(int dirfd, const char *backend, bool recover_from_snapshot, struct replay_state *s);
void replay_state_free(struct replay_state *s);

struct replay_guest *replay_find_guest(struct replay_state *s, uint64_t id);

struct manager;
/* replay-manager.c: at start, before the listener — loads the state dir, takes guest memory back from
 * the fd store (or marks guests lost), finishes the conversions the last gmemd left (presumed abort;
 * a decided commit is finished again) and opens the journal for appends. Return: 0 or -errno (logged). */
int replay_restore(struct manager *m);
