/* SPDX-License-Identifier: MIT */
/*
 * journal-state: what gmemd writes to its journal (journal.h) and when — guests with their owner and
 * memory identity, destroys, grants, each conversion's begin (with its participant set), decision, map
 * change and done, and the outcomes a restart decided — plus the snapshot of the whole state that
 * compaction writes, from a fresh loop iteration.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct manager;
struct guest;
struct grant;
struct lost_guest;
struct conv_range;
struct json_object;

/* Appends rec (consumed; NULL is -ENOMEM). Return: 0 or -errno, logged. */
int jstate_append(struct manager *m, struct json_object *rec);
/* A guest record for g (at create, and in snapshots). */
struct json_object *jstate_guest_record(struct manager *m, const struct guest *g);
struct json_object *jstate_lost_record(const struct lost_guest *l);
/* Best effort: a failure is logged (replay then brings the guest back as lost). */
void jstate_destroy(struct manager *m, uint64_t id);
/* A grant or revoke. Return: 0 or -errno. */
int jstate_grant(struct manager *m, uint64_t guest_id, const struct grant *gr, bool grant);
/* [[offset, length], ...] */
struct json_object *jstate_ranges(const struct conv_range *r, size_t n);
/* Writes the snapshot now. Return: 0 or -errno (logged; the journal keeps growing). */
int jstate_snapshot(struct manager *m);
