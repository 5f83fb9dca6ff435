/* SPDX-License-Identifier: MIT */
/*
 * journal: gmemd's durable state on tmpfs (DESIGN.md, "Durability and restarts") — json lines, one
 * record each, every line carrying a CRC-32C of its own text, appended with one write() and no fsync:
 * gmemd must survive its own crash, not the host's, and tmpfs is gone with the host anyway.
 *
 * A line is the record's JSON object with `,"crc":"xxxxxxxx"}` in place of its closing brace, the CRC
 * taken over every byte before that suffix; so each line is still one JSON object. Every record has a
 * number "n", growing by one over the life of the state dir; the snapshot says up to which n it holds,
 * and replay skips journal records it already covers (a crash between writing a snapshot and emptying
 * the journal leaves both).
 *
 * What a damaged file means (the scan below):
 *   - a bad record with nothing valid after it is what a crash inside an append leaves: the "torn tail",
 *     discarded, its offset logged;
 *   - a bad record followed by a valid one is corruption: the caller refuses to start, naming the
 *     offset (unless told to recover from the snapshot).
 * A failed or short append is undone (the file is cut back to its last good byte), so a later append
 * never turns a torn tail into corruption.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define JOURNAL_FILE "journal.jsonl"
#define SNAPSHOT_FILE "snapshot.jsonl"
#define JOURNAL_VERSION 1

uint32_t journal_crc32c(const void *buf, size_t len);

/* One record as a line (with its CRC and the newline). *ret is malloc'd. Return: 0, -EINVAL, -ENOMEM. */
int journal_encode(struct json_object *rec, char **ret, size_t *ret_len);
/* One line without its newline back to a record (owned by the caller). Return: 0 or -EBADMSG. */
int journal_decode(const char *line, size_t len, struct json_object **ret);

struct journal_scan {
	struct json_object **recs; /* owned, in file order */
	uint64_t *offsets;         /* owned: the byte offset of each record */
	size_t n;
	uint64_t good_end;       /* bytes of whole valid records: where appends go on */
	bool torn;               /* a damaged tail was found (and is not in recs) */
	uint64_t torn_offset;
	bool corrupt;            /* a bad record with a valid one after it */
	uint64_t corrupt_offset; /* of the first bad record; recs hold the records before it */
};

/* Splits buf into records. Return: 0 (possibly with a torn tail), -EBADMSG (corrupt: s->corrupt_offset),
 * -ENOMEM. s is filled either way and released with journal_scan_free. */
int journal_scan_buf(const char *buf, size_t len, struct journal_scan *s);
/* The same for a file; a missing file is an empty scan (0). */
int journal_scan_file(int dirfd, const char *name, struct journal_scan *s);
void journal_scan_free(struct journal_scan *s);

struct journal {
	int dirfd;
	int fd;                   /* JOURNAL_FILE, O_WRONLY */
	uint64_t size;            /* bytes of whole records in it */
	uint64_t n;               /* the last record number given */
	uint64_t since_snapshot;  /* records appended since the journal was last emptied */
	uint64_t compact_records; /* compact when since_snapshot reaches this; 0 = never */
	char backend[16];
	/* The snapshot in the making (journal_snapshot_*). */
	char *snap;
	size_t snap_len, snap_cap;
	int snap_err;
};

/* Opens the journal in dirfd (borrowed, must outlive j) for appends after good_end, its first free
 * record number after n. Return: 0 or -errno. */
int journal_open(struct journal *j, int dirfd, const char *backend, uint64_t good_end, uint64_t n,
		 uint64_t compact_records);
void journal_close(struct journal *j);
/* Starts a new journal from nothing: an empty file with a head record (base = j->n). */
int journal_reset(struct journal *j);

/*
 * Appends rec (its "n" is set here) with one write(). A failed or short write is undone and returned:
 * -ENOSPC for a short write on a full file system, else the write's -errno. rec is borrowed.
 */
int journal_append(struct journal *j, struct json_object *rec);
/* Whether the caller should write a snapshot now (compaction is on and enough records piled up). */
bool journal_want_snapshot(const struct journal *j);

/* A snapshot: begin, add each record of the full state, commit (written to a temporary file, renamed
 * over SNAPSHOT_FILE, then the journal is emptied). A failure leaves the old snapshot and journal. */
void journal_snapshot_begin(struct journal *j, uint64_t next_guest_id);
void journal_snapshot_add(struct journal *j, struct json_object *rec);
int journal_snapshot_commit(struct journal *j);

/* Small builders for records: a new object with "t" set. */
struct json_object *journal_record(const char *type);
