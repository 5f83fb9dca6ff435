/* SPDX-License-Identifier: MIT */
/*
 * journal: the line codec (a CRC-32C per record), the scan that tells a torn tail from corruption,
 * appends that undo themselves when they fail, and the snapshot that compacts it all (journal.h).
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define CRC_SUFFIX_LEN 18 /* ,"crc":"xxxxxxxx"} */

uint32_t journal_crc32c(const void *buf, size_t len)
{
	static uint32_t table[256];
	static bool ready;
	const unsigned char *p = buf;
	uint32_t crc = ~0u;

	if (!ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1; /* Castagnoli, reflected */
			table[i] = c;
		}
		ready = true;
	}
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

int journal_encode(struct json_object *rec, char **ret, size_t *ret_len)
{
	size_t len;
	const char *s = json_object_to_json_string_length(rec, JSON_C_TO_STRING_PLAIN, &len);
	if (!s)
		return -ENOMEM;
	if (len < 3 || s[0] != '{' || s[len - 1] != '}')
		return -EINVAL; /* not an object, or an empty one: nothing to put the CRC after */
	size_t body = len - 1;
	char *line = malloc(body + CRC_SUFFIX_LEN + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, s, body);
	snprintf(line + body, CRC_SUFFIX_LEN + 2, ",\"crc\":\"%08x\"}\n", journal_crc32c(s, body));
	*ret = line;
	*ret_len = body + CRC_SUFFIX_LEN + 1;
	return 0;
}

int journal_decode(const char *line, size_t len, struct json_object **ret)
{
	char want[9];

	if (len < CRC_SUFFIX_LEN + 2 || line[0] != '{')
		return -EBADMSG;
	const char *suf = line + len - CRC_SUFFIX_LEN;
	if (memcmp(suf, ",\"crc\":\"", 8) != 0 || memcmp(suf + 16, "\"}", 2) != 0)
		return -EBADMSG;
	/* Compared as text, exactly as written: "A" for "a" is damage too. */
	snprintf(want, sizeof(want), "%08x", journal_crc32c(line, len - CRC_SUFFIX_LEN));
	if (memcmp(suf + 8, want, 8) != 0)
		return -EBADMSG;

	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *o = json_tokener_parse_ex(tok, line, (int)len);
	bool whole = o && json_tokener_get_parse_end(tok) == len && json_object_is_type(o, json_type_object);
	json_tokener_free(tok);
	if (!whole) {
		json_object_put(o);
		return -EBADMSG;
	}
	json_object_object_del(o, "crc");
	*ret = o;
	return 0;
}

static int push(struct journal_scan *s, struct json_object *o, uint64_t off)
{
	if (s->n >= 16 && (s->n & (s->n - 1)) == 0) { /* full at 16, 32, 64, ...: double */
		struct json_object **g = realloc(s->recs, s->n * 2 * sizeof(*g));
		if (!g)
			return -ENOMEM;
		s->recs = g;
		uint64_t *go = realloc(s->offsets, s->n * 2 * sizeof(*go));
		if (!go)
			return -ENOMEM;
		s->offsets = go;
	} else if (!s->recs) {
		s->recs = malloc(16 * sizeof(*s->recs));
		s->offsets = malloc(16 * sizeof(*s->offsets));
		if (!s->recs || !s->offsets)
			return -ENOMEM;
	}
	s->offsets[s->n] = off;
	s->recs[s->n++] = o;
	return 0;
}

int journal_scan_buf(const char *buf, size_t len, struct journal_scan *s)
{
	bool bad = false;
	uint64_t bad_at = 0;

	memset(s, 0, sizeof(*s));
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t llen = nl ? (size_t)(nl - (buf + off)) : len - off;
		struct json_object *o = NULL;
		/* A line without its newline never made it whole: an append is one write, newline last. */
		int r = nl ? journal_decode(buf + off, llen, &o) : -EBADMSG;
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			if (!bad) {
				bad = true;
				bad_at = off;
			}
		} else if (bad) {
			/* Something valid after a bad record: not a torn append but damage. */
			json_object_put(o);
			s->corrupt = true;
			s->corrupt_offset = bad_at;
			return -EBADMSG;
		} else {
			if (push(s, o, off) < 0) {
				json_object_put(o);
				return -ENOMEM;
			}
			s->good_end = off + llen + 1;
		}
		off += llen + (nl ? 1 : 0);
	}
	if (bad) {
		s->torn = true;
		s->torn_offset = bad_at;
	}
	return 0;
}

int journal_scan_file(int dirfd, const char *name, struct journal_scan *s)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (fd < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	size_t len = (size_t)st.st_size;
	_cleanup_free_ char *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	for (size_t got = 0; got < len;) {
		ssize_t k = read(fd, buf + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0) {
			len = got; /* shrank under us: scan what is there */
			break;
		}
		got += (size_t)k;
	}
	return journal_scan_buf(buf, len, s);
}

void journal_scan_free(struct journal_scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		json_object_put(s->recs[i]);
	free(s->recs);
	free(s->offsets);
	memset(s, 0, sizeof(*s));
}

struct json_object *journal_record(const char *type)
{
	struct json_object *o = json_object_new_object();
	if (o)
		json_object_object_add(o, "t", json_object_new_string(type));
	return o;
}

/* Writes all of line at the end, or cuts the file back to where it was. */
static int write_line(struct journal *j, const char *line, size_t len)
{
	ssize_t k;
	do
		k = pwrite(j->fd, line, len, (off_t)j->size);
	while (k < 0 && errno == EINTR);
	if (k == (ssize_t)len) {
		j->size += len;
		return 0;
	}
	int r = k < 0 ? negative_errno() : -ENOSPC;
	/* Shrinking needs no space; a part record left behind would turn the next append into damage. */
	if (k > 0 && ftruncate(j->fd, (off_t)j->size) < 0)
		r = negative_errno();
	return r;
}

static int append_numbered(struct journal *j, struct json_object *rec)
{
	_cleanup_free_ char *line = NULL;
	size_t len;

	json_object_object_add(rec, "n", json_object_new_uint64(j->n + 1));
	int r = journal_encode(rec, &line, &len);
	if (r < 0)
		return r;
	r = write_line(j, line, len);
	if (r < 0)
		return r;
	j->n++;
	j->since_snapshot++;
	return 0;
}

static struct json_object *head_record(const struct journal *j, const char *base_key)
{
	struct json_object *h = journal_record("head");
	if (!h)
		return NULL;
	json_object_object_add(h, "v", json_object_new_int(JOURNAL_VERSION));
	json_object_object_add(h, "backend", json_object_new_string(j->backend));
	json_object_object_add(h, base_key, json_object_new_uint64(j->n));
	return h;
}

int journal_reset(struct journal *j)
{
	if (ftruncate(j->fd, 0) < 0)
		return negative_errno();
	j->size = 0;
	j->since_snapshot = 0;
	struct json_object *h = head_record(j, "base");
	if (!h)
		return -ENOMEM;
	int r = append_numbered(j, h);
	json_object_put(h);
	j->since_snapshot = 0;
	return r;
}

int journal_open(struct journal *j, int dirfd, const char *backend, uint64_t good_end, uint64_t n,
		 uint64_t compact_records)
{
	memset(j, 0, sizeof(*j));
	j->dirfd = dirfd;
	j->n = n;
	j->compact_records = compact_records;
	snprintf(j->backend, sizeof(j->backend), "%s", backend);
	j->fd = openat(dirfd, JOURNAL_FILE, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0)
		return negative_errno();
	/* Drops a torn tail, if the scan found one: appends continue after the last whole record. */
	if (ftruncate(j->fd, (off_t)good_end) < 0) {
		int r = negative_errno();
		j->fd = safe_close(j->fd);
		return r;
	}
	j->size = good_end;
	return good_end == 0 ? journal_reset(j) : 0;
}

void journal_close(struct journal *j)
{
	j->fd = safe_close(j->fd);
	free(j->snap);
	j->snap = NULL;
}

int journal_append(struct journal *j, struct json_object *rec)
{
	if (j->fd < 0)
		return -EBADF;
	return append_numbered(j, rec);
}

bool journal_want_snapshot(const struct journal *j)
{
	return j->compact_records && j->since_snapshot >= j->compact_records;
}

static void snap_put(struct journal *j, struct json_object *rec)
{
	char *line;
	size_t len;

	if (j->snap_err)
		return;
	if (!rec) {
		j->snap_err = -ENOMEM;
		return;
	}
	int r = journal_encode(rec, &line, &len);
	if (r < 0) {
		j->snap_err = r;
		return;
	}
	if (j->snap_len + len > j->snap_cap) {
		size_t cap = MAX(j->snap_cap * 2, j->snap_len + len + 4096);
		char *g = realloc(j->snap, cap);
		if (!g) {
			free(line);
			j->snap_err = -ENOMEM;
			return;
		}
		j->snap = g;
		j->snap_cap = cap;
	}
	memcpy(j->snap + j->snap_len, line, len);
	j->snap_len += len;
	free(line);
}

void journal_snapshot_begin(struct journal *j, uint64_t next_guest_id)
{
	j->snap_len = 0;
	j->snap_err = 0;
	struct json_object *h = head_record(j, "n");
	if (h)
		json_object_object_add(h, "next_guest", json_object_new_uint64(next_guest_id));
	snap_put(j, h);
	json_object_put(h);
}

void journal_snapshot_add(struct journal *j, struct json_object *rec)
{
	snap_put(j, rec);
}

static int write_file(int dirfd, const char *name, const char *buf, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return negative_errno();
	for (size_t off = 0; off < len;) {
		ssize_t k = write(fd, buf + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int r = k < 0 ? negative_errno() : -ENOSPC;
			(void)unlinkat(dirfd, name, 0);
			return r;
		}
		off += (size_t)k;
	}
	return 0;
}

int journal_snapshot_commit(struct journal *j)
{
	static const char tmp[] = SNAPSHOT_FILE ".tmp";
	int r = j->snap_err;

	if (r == 0)
		r = write_file(j->dirfd, tmp, j->snap, j->snap_len);
	/* The rename is the switch: before it the old snapshot and the whole journal hold; after it the
	 * new snapshot does, and the journal records it covers are skipped at replay until emptied here. */
	if (r == 0 && renameat(j->dirfd, tmp, j->dirfd, SNAPSHOT_FILE) < 0) {
		r = negative_errno();
		(void)unlinkat(j->dirfd, tmp, 0);
	}
	if (r == 0)
		r = journal_reset(j);
	j->snap_len = 0;
	j->snap_err = 0;
	return r;
}
