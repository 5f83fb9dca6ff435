/* SPDX-License-Identifier: MIT */
/*
 * test-journal: the journal's line codec, the scan that tells a torn tail from corruption (a journal cut
 * at every byte of its last record, a byte flipped at every position of an earlier one), replay on files
 * (snapshot, skipped records, another backend, --recover-from-snapshot) and the state it rebuilds
 * (presumed abort, a decided commit, the map change).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"
#include "replay.h"
#include "sharemap.h"

static struct json_object *rec_guest(uint64_t id, const char *name)
{
	struct json_object *o = journal_record("guest");
	json_object_object_add(o, "id", json_object_new_uint64(id));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "size", json_object_new_uint64(1 << 20));
	json_object_object_add(o, "granule", json_object_new_uint64(4096));
	json_object_object_add(o, "owner", json_object_new_uint64(1000));
	json_object_object_add(o, "dev", json_object_new_uint64(7));
	json_object_object_add(o, "ino", json_object_new_uint64(100 + id));
	return o;
}

static struct json_object *rec_conv(const char *type, uint64_t seq)
{
	struct json_object *o = journal_record(type);
	json_object_object_add(o, "epoch", json_object_new_uint64(42));
	json_object_object_add(o, "seq", json_object_new_uint64(seq));
	return o;
}

static struct json_object *rec_begin(uint64_t seq, uint64_t guest)
{
	struct json_object *o = rec_conv("begin", seq);
	json_object_object_add(o, "guest", json_object_new_uint64(guest));
	json_object_object_add(o, "target", json_object_new_string("private"));
	struct json_object *r = json_object_new_array(), *p = json_object_new_array();
	json_object_array_add(p, json_object_new_uint64(8192));
	json_object_array_add(p, json_object_new_uint64(4096));
	json_object_array_add(r, p);
	json_object_object_add(o, "ranges", r);
	return o;
}

/* A buffer of n encoded lines; starts[i] is where line i begins. */
struct buf {
	char data[8192];
	size_t len;
	size_t starts[16];
	size_t n;
};

static void buf_add(struct buf *b, struct json_object *o)
{
	char *line;
	size_t len;
	assert_int_equal(journal_encode(o, &line, &len), 0);
	json_object_put(o);
	assert_true(b->len + len <= sizeof(b->data));
	b->starts[b->n++] = b->len;
	memcpy(b->data + b->len, line, len);
	b->len += len;
	free(line);
}

static struct json_object *rec_head(void)
{
	struct json_object *h = journal_record("head");
	json_object_object_add(h, "v", json_object_new_int(JOURNAL_VERSION));
	json_object_object_add(h, "backend", json_object_new_string("memfd"));
	return h;
}

static void sample(struct buf *b)
{
	memset(b, 0, sizeof(*b));
	buf_add(b, rec_head());
	buf_add(b, rec_guest(1, "vm-one"));
	buf_add(b, rec_guest(2, "vm-two"));
	buf_add(b, rec_begin(5, 1));
	struct json_object *d = rec_conv("decide", 5);
	json_object_object_add(d, "commit", json_object_new_boolean(1));
	buf_add(b, d);
}

static void test_codec_roundtrip(void **state)
{
	(void)state;
	char *line;
	size_t len;
	struct json_object *o = rec_guest(3, "g"), *back = NULL;
	assert_int_equal(journal_encode(o, &line, &len), 0);
	assert_int_equal(line[len - 1], '\n');
	/* Still one JSON object per line: any json-lines reader can read the journal. */
	struct json_object *plain = json_tokener_parse(line);
	assert_non_null(plain);
	json_object_put(plain);
	assert_int_equal(journal_decode(line, len - 1, &back), 0);
	json_object_object_add(o, "crc", NULL);
	json_object_object_del(o, "crc");
	assert_string_equal(json_object_to_json_string(back), json_object_to_json_string(o));
	json_object_put(back);
	/* Every single flipped bit of the line is caught. */
	for (size_t i = 0; i + 1 < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			line[i] ^= (char)(1 << bit);
			back = NULL;
			assert_int_equal(journal_decode(line, len - 1, &back), -EBADMSG);
			line[i] ^= (char)(1 << bit);
		}
	}
	free(line);
	json_object_put(o);
	/* Nothing to put the CRC after. */
	o = json_object_new_object();
	assert_int_equal(journal_encode(o, &line, &len), -EINVAL);
	json_object_put(o);
}

static void test_cut_last_record(void **state)
{
	(void)state;
	struct buf b;
	sample(&b);
	size_t last = b.starts[b.n - 1];
	/* Every cut inside the last record: its tail is torn, the records before are whole, no corruption. */
	for (size_t cut = last; cut <= b.len; cut++) {
		struct journal_scan s;
		assert_int_equal(journal_scan_buf(b.data, cut, &s), 0);
		assert_false(s.corrupt);
		if (cut == last || cut == b.len) {
			assert_false(s.torn);
		} else {
			assert_true(s.torn);
			assert_int_equal(s.torn_offset, last);
		}
		assert_int_equal(s.n, cut == b.len ? b.n : b.n - 1);
		assert_int_equal(s.good_end, cut == b.len ? b.len : last);
		journal_scan_free(&s);
	}
}

static void test_flip_earlier_record(void **state)
{
	(void)state;
	struct buf b;
	sample(&b);
	/* A flipped byte anywhere in record 2 (its newline too) with valid records after it: damage, and the
	 * offset named is record 2's. */
	for (size_t i = b.starts[2]; i < b.starts[3]; i++) {
		struct journal_scan s;
		b.data[i] ^= 0x20;
		assert_int_equal(journal_scan_buf(b.data, b.len, &s), -EBADMSG);
		assert_true(s.corrupt);
		assert_int_equal(s.corrupt_offset, b.starts[2]);
		assert_int_equal(s.n, 2);
		journal_scan_free(&s);
		b.data[i] ^= 0x20;
	}
	/* The same flip in the last record: nothing valid after it, so it is a torn tail. */
	struct journal_scan s;
	b.data[b.starts[b.n - 1] + 3] ^= 0x20;
	assert_int_equal(journal_scan_buf(b.data, b.len, &s), 0);
	assert_true(s.torn);
	assert_int_equal(s.torn_offset, b.starts[b.n - 1]);
	journal_scan_free(&s);
}

/* ---- files ---- */

static char dir[64];
static int dfd = -1;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/gmem-journal-XXXXXX");
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return dfd >= 0 ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	close(dfd);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void write_file(const char *name, const char *data, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static size_t read_file(const char *name, char *data, size_t size)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t k = read(fd, data, size);
	close(fd);
	assert_true(k >= 0);
	return (size_t)k;
}

/* journal_append borrows the record: this one consumes it. */
static int app(struct journal *j, struct json_object *rec)
{
	int r = journal_append(j, rec);
	json_object_put(rec);
	return r;
}

/* A journal written through journal_append: a guest, a grant, three conversions at different steps. */
static void write_sample(struct journal *j, uint64_t compact)
{
	assert_int_equal(journal_open(j, dfd, "memfd", 0, 0, compact), 0);
	assert_int_equal(app(j, rec_guest(1, "vm-one")), 0);
	assert_int_equal(app(j, rec_guest(2, "vm-two")), 0);
	struct json_object *g = journal_record("grant");
	json_object_object_add(g, "id", json_object_new_uint64(1));
	json_object_object_add(g, "kind", json_object_new_string("uid"));
	json_object_object_add(g, "who", json_object_new_uint64(1001));
	json_object_object_add(g, "role", json_object_new_string("device"));
	assert_int_equal(app(j, g), 0);
	/* 5: committed and applied; 6: decided commit, not applied; 7: no decision. */
	assert_int_equal(app(j, rec_begin(5, 1)), 0);
	struct json_object *d = rec_conv("decide", 5);
	json_object_object_add(d, "commit", json_object_new_boolean(1));
	assert_int_equal(app(j, d), 0);
	assert_int_equal(app(j, rec_conv("applied", 5)), 0);
	struct json_object *done = rec_conv("done", 5);
	json_object_object_add(done, "outcome", json_object_new_string("committed"));
	assert_int_equal(app(j, done), 0);
	assert_int_equal(app(j, rec_begin(6, 2)), 0);
	d = rec_conv("decide", 6);
	json_object_object_add(d, "commit", json_object_new_boolean(1));
	assert_int_equal(app(j, d), 0);
	assert_int_equal(app(j, rec_begin(7, 1)), 0);
}

static void check_sample_state(struct replay_state *s)
{
	assert_string_equal(s->backend, "memfd");
	assert_int_equal(s->n_guests, 2);
	assert_int_equal(s->next_guest_id, 3);
	struct replay_guest *g1 = replay_find_guest(s, 1);
	assert_non_null(g1);
	assert_int_equal(g1->n_grants, 1);
	assert_int_equal(g1->grants[0].id, 1001);
	assert_int_equal(g1->ino, 101);
	/* Conversion 5's map change was recorded: granule 2 is private. */
	assert_int_equal(sharemap_get(g1->map, 2), SHARE_PRIVATE);
	assert_int_equal(sharemap_get(g1->map, 1), SHARE_SHARED);
	/* 6 and 7 are left for the restart to finish: 6 decided commit (finish again), 7 presumed abort. */
	assert_int_equal(s->n_convs, 2);
	assert_int_equal(s->convs[0].seq, 6);
	assert_int_equal(s->convs[0].decision, 0);
	assert_false(s->convs[0].applied);
	assert_int_equal(s->convs[1].seq, 7);
	assert_int_equal(s->convs[1].decision, -1);
}

static void test_replay_file(void **state)
{
	(void)state;
	struct journal j;
	struct replay_state s;
	write_sample(&j, 0);
	journal_close(&j);
	assert_int_equal(replay_load(dfd, "memfd", false, &s), 0);
	check_sample_state(&s);
	replay_state_free(&s);
	/* The other backend's journal is refused. */
	assert_int_equal(replay_load(dfd, "kmod", false, &s), -EXDEV);
}

static void test_replay_cut_every_offset(void **state)
{
	(void)state;
	static char full[16384], cut[16384];
	struct journal j;
	write_sample(&j, 0);
	size_t last_start = j.size;
	assert_int_equal(app(&j, rec_guest(3, "vm-three")), 0);
	journal_close(&j);
	size_t len = read_file(JOURNAL_FILE, full, sizeof(full));
	assert_true(len > last_start);

	for (size_t at = last_start; at <= len; at++) {
		struct replay_state s;
		write_file(JOURNAL_FILE, full, at);
		assert_int_equal(replay_load(dfd, "memfd", false, &s), 0);
		assert_int_equal(s.n_guests, at == len ? 3 : 2);
		assert_int_equal(s.good_end, at == len ? len : last_start);
		/* Appends go on after the last whole record: the torn tail is cut off, not built upon. */
		assert_int_equal(journal_open(&j, dfd, "memfd", s.good_end, s.n, 0), 0);
		assert_int_equal(app(&j, rec_guest(9, "vm-nine")), 0);
		journal_close(&j);
		replay_state_free(&s);
		assert_int_equal(replay_load(dfd, "memfd", false, &s), 0);
		assert_int_equal(s.n_guests, at == len ? 4 : 3);
		assert_non_null(replay_find_guest(&s, 9));
		replay_state_free(&s);
		size_t now = read_file(JOURNAL_FILE, cut, sizeof(cut));
		assert_true(now > (at == len ? len : last_start));
	}
}

static void test_replay_corrupt(void **state)
{
	(void)state;
	static char data[16384];
	struct journal j;
	struct replay_state s;

	write_sample(&j, 0);
	journal_close(&j);
	size_t len = read_file(JOURNAL_FILE, data, sizeof(data));
	/* Record 3 (the first guest's) starts after the head's and nothing else: find its line. */
	const char *second = memchr(data, '\n', len) + 1;
	size_t off = (size_t)(second - data);
	data[off + 10] ^= 0x01;
	write_file(JOURNAL_FILE, data, len);
	assert_int_equal(replay_load(dfd, "memfd", false, &s), -EBADMSG);
	/* Recovering: the snapshot (none here) and the records before the damage: the head alone. */
	assert_int_equal(replay_load(dfd, "memfd", true, &s), 0);
	assert_true(s.rewrite);
	assert_int_equal(s.n_guests, 0);
	replay_state_free(&s);
}

static void test_snapshot(void **state)
{
	(void)state;
	static char old[16384];
	struct journal j;
	struct replay_state s;

	write_sample(&j, 0);
	size_t oldlen = j.size;
	/* The snapshot of what the sample holds, as gmemd would write it (its own state, not the records). */
	journal_snapshot_begin(&j, 3);
	struct json_object *g = rec_guest(1, "vm-one");
	journal_snapshot_add(&j, g);
	json_object_put(g);
	g = rec_guest(2, "vm-two");
	journal_snapshot_add(&j, g);
	json_object_put(g);
	uint64_t n_at_snapshot = j.n;
	(void)read_file(JOURNAL_FILE, old, sizeof(old));
	assert_int_equal(journal_snapshot_commit(&j), 0);
	assert_int_equal(j.since_snapshot, 0);
	/* Emptied: only a head. */
	assert_true(j.size < 120);
	assert_int_equal(app(&j, rec_guest(3, "vm-three")), 0);
	journal_close(&j);
	assert_int_equal(replay_load(dfd, "memfd", false, &s), 0);
	assert_int_equal(s.n_guests, 3);
	assert_int_equal(s.n, n_at_snapshot + 2);
	replay_state_free(&s);

	/* A crash between the snapshot's rename and the journal's reset leaves the old journal: the records
	 * the snapshot covers are skipped, not applied twice. */
	write_file(JOURNAL_FILE, old, oldlen);
	assert_int_equal(replay_load(dfd, "memfd", false, &s), 0);
	assert_int_equal(s.n_guests, 2);
	replay_state_free(&s);

	/* A damaged snapshot is refused, even with --recover-from-snapshot: there is nothing to recover from. */
	size_t len = read_file(SNAPSHOT_FILE, old, sizeof(old));
	old[len / 2] ^= 0x01;
	write_file(SNAPSHOT_FILE, old, len);
	assert_int_equal(replay_load(dfd, "memfd", false, &s), -EBADMSG);
	assert_int_equal(replay_load(dfd, "memfd", true, &s), -EBADMSG);
}

static void test_compaction_threshold(void **state)
{
	(void)state;
	struct journal j;
	assert_int_equal(journal_open(&j, dfd, "memfd", 0, 0, 3), 0);
	assert_false(journal_want_snapshot(&j));
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(app(&j, rec_guest(i, i == 1 ? "a" : i == 2 ? "b" : "c")), 0);
	assert_true(journal_want_snapshot(&j));
	journal_close(&j);
	/* Off: never. */
	assert_int_equal(journal_open(&j, dfd, "memfd", 0, 0, 0), 0);
	for (uint64_t i = 1; i <= 10; i++) {
		char name[8];
		snprintf(name, sizeof(name), "g%llu", (unsigned long long)i);
		assert_int_equal(app(&j, rec_guest(i, name)), 0);
	}
	assert_false(journal_want_snapshot(&j));
	journal_close(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_roundtrip),
		cmocka_unit_test(test_cut_last_record),
		cmocka_unit_test(test_flip_earlier_record),
		cmocka_unit_test_setup_teardown(test_replay_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_replay_cut_every_offset, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_replay_corrupt, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_snapshot, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_compaction_threshold, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
