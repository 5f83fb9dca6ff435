/* SPDX-License-Identifier: MIT */
/*
 * test-journal: the journal through a real gmemd.
 *   enospc   the state dir on a small tmpfs, filled up while a conversion waits for its vote: the
 *            decision record cannot be written, so the conversion aborts (the participant hears abort,
 *            never commit), the short write is undone, and gmemd restarts cleanly on that journal.
 *   damage   a journal cut inside its last record starts (the tail dropped, its offset logged); a
 *            flipped byte in an earlier record refuses the start naming the offset, and
 *            --recover-from-snapshot starts from the snapshot.
 *   figure   the acceptance figure: 100 guests and a 10,000-record journal, compaction off, SIGKILL,
 *            then exec to READY=1 with every guest listed: under one second (scaled under valgrind).
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sdharness.h"

static struct sdh h;
static const char *const extra[] = { "--pool-size", "1G", NULL };

static bool log_says(const char *what)
{
	char line[2048];
	bool found = false;
	FILE *f = fopen(h.d.log, "r");
	CHECK(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static off_t journal_size(void)
{
	char path[400];
	struct stat st;
	snprintf(path, sizeof(path), "%s/journal.jsonl", h.d.state);
	CHECK(stat(path, &st) == 0);
	return st.st_size;
}

/* ---- enospc ---- */

static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	struct child_io *io = userdata;
	msg_send(io->out, "prepared");
	/* Held here while the parent fills the state dir's file system. */
	msg_expect(io->in, "vote", 20000);
	CHECK(gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL) == 0);
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	struct child_io *io = userdata;
	msg_send(io->out, "commit");
	(void)gmem_ack(c, cv->epoch, cv->seq);
}

static void on_abort(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	struct child_io *io = userdata;
	(void)c;
	(void)cv;
	msg_send(io->out, "abort");
}

static const struct gmem_participant_ops ops = { .prepare = on_prepare, .commit = on_commit, .abort = on_abort };

static int participant(struct child_io *io, void *arg)
{
	struct gmem_client *c;
	(void)arg;
	sdh_close_inherited(&h);
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_DEVICE, &c) == 0);
	gmem_set_participant(c, &ops, io);
	CHECK(gmem_attach(c, "g", 0, 1 << 20, GMEM_ATTACH_IOMMU, NULL) == 0);
	msg_send(io->out, "ready");
	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		CHECK(poll(p, 2, (int)(30000 * harness_scale())) > 0);
		if (p[1].revents)
			break; /* the parent is done with us (EOF) */
		if (gmem_dispatch(c) < 0)
			return 1;
	}
	gmem_disconnect(c);
	return 0;
}

struct outcome {
	bool done;
	int err;
	enum gmem_outcome outcome;
};

static void on_converted(struct gmem_client *c, int err, const struct gmem_convert_result *r, void *userdata)
{
	struct outcome *o = userdata;
	(void)c;
	o->done = true;
	o->err = err;
	if (r)
		o->outcome = r->outcome;
}

static void test_enospc(void)
{
	char mnt[200], filler[260];
	fprintf(stderr, "== enospc\n");
	sdh_init(&h);
	/* A mount namespace of our own, so the small tmpfs is nobody else's business. */
	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0) {
		const char *ci = getenv("CI");
		fprintf(stderr, "enospc: no mount namespace (%s)%s\n", strerror(errno),
			ci && strcmp(ci, "true") == 0 ? "" : "; skipped");
		CHECK(!(ci && strcmp(ci, "true") == 0));
		sdh_cleanup(&h);
		exit(77);
	}
	CHECK(strlen(h.d.dir) < 180);
	snprintf(mnt, sizeof(mnt), "%.180s/small", h.d.dir);
	CHECK(mkdir(mnt, 0700) == 0);
	CHECK(mount("tmpfs", mnt, "tmpfs", 0, "size=64k") == 0);
	snprintf(h.d.state, sizeof(h.d.state), "%s/state", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);

	sdh_start(&h, "GMEMD", extra, NULL);
	struct gmem_client *c;
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	CHECK(gmem_guest_create(c, "g", 1 << 20, 0, NULL) == 0);
	struct child p;
	child_start(&p, participant, NULL);
	msg_expect(p.from_child, "ready", 5000);

	struct outcome o = { 0 };
	struct gmem_range r = { 0, 1 << 20 };
	CHECK(gmem_convert_async(c, "g", &r, 1, GMEM_PRIVATE, 0, on_converted, &o) == 0);
	msg_expect(p.from_child, "prepared", 5000);

	/* The begin is written. Leave less room in the journal's last page than a decision record takes
	 * (tmpfs gives whole pages), by adding guests whose records end just short of the page's end. */
	off_t before = journal_size();
	char name[80];
	CHECK(gmem_guest_create(c, "p0", 4096, 0, NULL) == 0);
	long base = (long)(journal_size() - before) - 2; /* a guest record's bytes besides its name */
	for (int i = 1; i < 200; i++) {
		long room = 4096 - (long)(journal_size() % 4096);
		if (room < 60)
			break;
		long len = room - 20 - base; /* the name that leaves 20 bytes */
		if (len < 2)
			len = 64; /* too little to aim: step over the page end */
		if (len > 64)
			len = 64;
		snprintf(name, sizeof(name), "p%d-", i);
		while ((long)strlen(name) < len)
			strcat(name, "x");
		CHECK(gmem_guest_create(c, name, 4096, 0, NULL) == 0);
	}
	CHECK(4096 - journal_size() % 4096 < 60);
	/* And no page left anywhere. */
	int ffd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(ffd >= 0);
	static char block[4096];
	while (write(ffd, block, sizeof(block)) > 0)
		;
	CHECK(errno == ENOSPC);
	off_t full = journal_size();

	msg_send(p.to_child, "vote");
	char line[64];
	CHECK(msg_recv(p.from_child, line, sizeof(line), 10000));
	CHECK(strcmp(line, "abort") == 0); /* never "commit": the decision was not written */
	int64_t deadline = harness_deadline(10000);
	while (!o.done) {
		struct pollfd pf = { .fd = gmem_get_fd(c), .events = POLLIN };
		CHECK(harness_now_ms() < deadline);
		(void)poll(&pf, 1, 100);
		CHECK(gmem_dispatch(c) >= 0);
	}
	CHECK_EQ(o.err, 0);
	CHECK_EQ(o.outcome, GMEM_ABORTED);
	CHECK(log_says("No space left on device"));
	/* The short write was undone: the journal is as long as before the attempt (the abort's records
	 * could not be written either). */
	CHECK_EQ(journal_size(), full);
	close(p.to_child);
	CHECK_EQ(child_wait(&p), 0);
	gmem_disconnect(c);

	/* Room again: gmemd restarts on that journal, without complaint, the conversion aborted. */
	close(ffd);
	CHECK(unlink(filler) == 0);
	sdh_kill(&h);
	sdh_start(&h, "GMEMD", extra, NULL);
	CHECK(!log_says("damaged"));
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	struct gmem_run *runs;
	size_t n;
	CHECK(gmem_map(c, "g", &runs, &n, NULL, NULL) == 0);
	CHECK(n == 1 && runs[0].state == GMEM_SHARED);
	free(runs);
	gmem_disconnect(c);
	CHECK_EQ(sdh_stop(&h), 0);
	CHECK(umount(mnt) == 0);
	sdh_cleanup(&h);
	fprintf(stderr, "enospc: the decision could not be written: aborted, journal intact\n");
}

/* ---- damage ---- */

static size_t read_journal(char *buf, size_t size)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/journal.jsonl", h.d.state);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	ssize_t k = read(fd, buf, size);
	close(fd);
	CHECK(k > 0);
	return (size_t)k;
}

static void write_journal(const char *buf, size_t len)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/journal.jsonl", h.d.state);
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

static size_t guests_listed(void)
{
	struct gmem_client *c;
	struct gmem_guest_info *gs;
	size_t n, lost;
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	CHECK(gmem_guest_list(c, &gs, &n) == 0);
	free(gs);
	CHECK(gmem_guest_list_lost(c, &gs, &lost) == 0);
	free(gs);
	gmem_disconnect(c);
	return n + lost;
}

static bool have_snapshot(void *arg)
{
	char path[400];
	(void)arg;
	snprintf(path, sizeof(path), "%s/snapshot.jsonl", h.d.state);
	return access(path, F_OK) == 0;
}

static void test_damage(void)
{
	static char buf[65536];
	const char *compact[] = { "--pool-size", "1G", "--journal-compact-records", "4", NULL };
	fprintf(stderr, "== damage\n");
	sdh_init(&h);
	sdh_start(&h, "GMEMD", compact, NULL);
	struct gmem_client *c;
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	/* Compaction after 4 records: a snapshot holds the first guests, the journal the last ones. */
	for (int i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "vm-%d", i);
		CHECK(gmem_guest_create(c, name, 1 << 20, 0, NULL) == 0);
	}
	/* Compaction runs on a loop iteration of its own, after the reply: wait for its file, and add one
	 * guest after it, so the journal surely ends with a guest record (and not only its head). */
	CHECK(wait_until(have_snapshot, NULL, 5000));
	CHECK(gmem_guest_create(c, "vm-6", 1 << 20, 0, NULL) == 0);
	gmem_disconnect(c);
	sdh_kill(&h);
	size_t len = read_journal(buf, sizeof(buf));

	/* Cut inside the last record: a torn tail, dropped and logged with its offset. */
	size_t last = len - 1;
	while (last > 0 && buf[last - 1] != '\n')
		last--;
	write_journal(buf, last + 7);
	sdh_start(&h, "GMEMD", compact, NULL);
	char want[128];
	snprintf(want, sizeof(want), "discarded a torn record at byte %zu", last);
	CHECK(log_says(want));
	CHECK_EQ(guests_listed(), 6);
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	/* Two more records, so one follows the record damaged below whatever the compaction did. */
	CHECK(gmem_guest_create(c, "vm-x", 1 << 20, 0, NULL) == 0);
	CHECK(gmem_guest_create(c, "vm-y", 1 << 20, 0, NULL) == 0);
	gmem_disconnect(c);
	sdh_kill(&h);

	/* A flipped byte in the second record, valid ones after it: refused, the offset named. */
	len = read_journal(buf, sizeof(buf));
	const char *nl1 = memchr(buf, '\n', len);
	CHECK(nl1);
	size_t second = (size_t)(nl1 + 1 - buf);
	const char *nl2 = memchr(buf + second, '\n', len - second);
	CHECK(nl2 && (size_t)(nl2 + 1 - buf) < len); /* a record after the one damaged */
	buf[second + 5] ^= 0x01;
	write_journal(buf, len);
	sdh_spawn(&h, "GMEMD", compact, NULL);
	CHECK(!sdh_wait_ready(&h, 10000));
	snprintf(want, sizeof(want), "journal.jsonl is damaged at byte %zu", second);
	CHECK(log_says(want));
	/* --recover-from-snapshot: the snapshot and the records before the damage. */
	const char *recover[] = { "--pool-size", "1G", "--recover-from-snapshot", NULL };
	sdh_start(&h, "GMEMD", recover, NULL);
	size_t n = guests_listed();
	CHECK(n >= 4 && n < 8);
	sdh_kill(&h);
	/* The rewritten state starts plainly next time. */
	sdh_start(&h, "GMEMD", extra, NULL);
	CHECK_EQ(guests_listed(), n);
	CHECK_EQ(sdh_stop(&h), 0);
	sdh_cleanup(&h);
	fprintf(stderr, "damage: torn tail dropped, damage refused at byte %zu, recovered %zu guests\n", second, n);
}

/* ---- the acceptance figure ---- */

static void test_figure(void)
{
	const char *off[] = { "--pool-size", "1G", "--journal-compact-records", "0", NULL };
	fprintf(stderr, "== figure\n");
	sdh_init(&h);
	sdh_start(&h, "GMEMD", off, NULL);
	struct gmem_client *c;
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	for (int i = 0; i < 100; i++) {
		char name[16];
		snprintf(name, sizeof(name), "vm-%03d", i);
		CHECK(gmem_guest_create(c, name, 2 << 20, 0, NULL) == 0);
	}
	/* Grants and revokes make up the rest: one record each. */
	for (int i = 0; i < 4950; i++) {
		char name[16];
		snprintf(name, sizeof(name), "vm-%03d", i % 100);
		CHECK(gmem_grant(c, name, "uid:4242", GMEM_ROLE_DEVICE) == 0);
		CHECK(gmem_revoke(c, name, "uid:4242", GMEM_ROLE_DEVICE) == 0);
	}
	gmem_disconnect(c);
	sdh_kill(&h);
	CHECK(journal_size() > 0);

	sdh_start(&h, "GMEMD", off, NULL);
	int64_t ready = h.ready_ms - h.exec_ms;
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	struct gmem_guest_info *gs;
	size_t n;
	CHECK(gmem_guest_list(c, &gs, &n) == 0);
	int64_t listed = harness_now_ms() - h.exec_ms;
	free(gs);
	gmem_disconnect(c);
	CHECK(log_says("replayed 10001 journal records: 100 guests back"));
	CHECK_EQ(n, 100);
	fprintf(stderr, "figure: 100 guests, 10,001 journal records, compaction off: exec to READY=1 %lld ms, "
		"every guest listed %lld ms after exec (journal %lld bytes)\n", (long long)ready, (long long)listed,
		(long long)journal_size());
	CHECK(listed < (int64_t)(1000 * harness_scale()));
	CHECK_EQ(sdh_stop(&h), 0);
	sdh_cleanup(&h);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	if (!only || strcmp(only, "damage") == 0)
		test_damage();
	if (!only || strcmp(only, "figure") == 0)
		test_figure();
	/* Last: it moves this process into a mount namespace of its own. */
	if (!only || strcmp(only, "enospc") == 0)
		test_enospc();
	return 0;
}
