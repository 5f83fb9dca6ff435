/* SPDX-License-Identifier: MIT */
/*
 * Conversions with real participant processes. Each participant is a child that attaches to a range,
 * maps it, writes a pattern and behaves as told. The test judges by itself, not by the children's word:
 * it reads each child's mapping through /proc/PID/mem and checksums it, and reads /proc/PID/maps to see
 * whether the range is still mapped. A control child that unmaps at prepare time shows that check can
 * fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)

enum behaviour {
	YES,              /* votes yes, acks, unmaps on a to-private commit */
	NO,               /* votes no */
	NEVER,            /* never votes */
	UNMAP_AT_PREPARE, /* control: unmaps at prepare (what a one-phase invalidation does), votes yes */
	DIE_AT_PREPARE,   /* tells the parent, then waits to be killed before voting */
	DIE_AFTER_YES,    /* votes yes, tells the parent, waits to be killed */
	DIE_AT_COMMIT,    /* votes yes; at commit tells the parent and waits to be killed */
	YES_ON_GO,        /* votes yes when the parent says "go" */
};

struct part_arg {
	enum behaviour how;
	uint64_t offset, length;
};

static struct gmemd d;
static const char *guest = "g";

struct child_state {
	struct child_io *io;
	struct part_arg *arg;
	unsigned char *map;
	uint64_t pending_epoch, pending_seq;
	/* What the last prepare said: commit, abort and done must say the same (libgmem fills them in). */
	enum gmem_target target;
	size_t n_ranges;
	struct gmem_range first;
};

static void check_as_prepared(struct child_state *s, const struct gmem_conversion *cv)
{
	if (cv->target != s->target || cv->n_ranges != s->n_ranges ||
	    (s->n_ranges && (cv->ranges[0].offset != s->first.offset || cv->ranges[0].length != s->first.length))) {
		fprintf(stderr, "participant: event of conversion %llu does not repeat its prepare's target and "
			"ranges\n", (unsigned long long)cv->seq);
		abort();
	}
}

static unsigned char pattern(uint64_t i)
{
	return (unsigned char)(i * 13 + (i >> 12) + 1);
}

static void tell(struct child_state *s, const char *what, unsigned long long v)
{
	char line[64];
	snprintf(line, sizeof(line), "%s %llu", what, v);
	msg_send(s->io->out, line);
}

static void c_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct child_state *s = ud;
	s->target = cv->target;
	s->n_ranges = cv->n_ranges;
	if (cv->n_ranges)
		s->first = cv->ranges[0];
	tell(s, "prepare", cv->seq);
	switch (s->arg->how) {
	case YES:
	case DIE_AT_COMMIT:
		gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
		break;
	case NO:
		gmem_vote(c, cv->epoch, cv->seq, false, EBUSY, "test participant refuses\x1b[31m with escapes");
		break;
	case NEVER:
		break;
	case UNMAP_AT_PREPARE:
		munmap(s->map, s->arg->length);
		s->map = NULL;
		gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
		break;
	case DIE_AT_PREPARE:
		for (;;)
			pause();
	case DIE_AFTER_YES:
		gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
		msg_send(s->io->out, "voted");
		for (;;)
			pause();
	case YES_ON_GO:
		s->pending_epoch = cv->epoch;
		s->pending_seq = cv->seq;
		break;
	}
}

static void c_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct child_state *s = ud;
	check_as_prepared(s, cv);
	tell(s, "commit", cv->seq);
	if (s->arg->how == DIE_AT_COMMIT)
		for (;;)
			pause();
	if (s->map && cv->wave == 1) { /* devices go in wave 1 of a to-private conversion */
		munmap(s->map, s->arg->length);
		s->map = NULL;
	}
	gmem_ack(c, cv->epoch, cv->seq);
}

static void c_abort(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)c;
	check_as_prepared(ud, cv);
	tell(ud, "abort", cv->seq);
}

static void c_done(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)c;
	check_as_prepared(ud, cv);
	tell(ud, "done", (unsigned long long)cv->outcome);
}

static const struct gmem_participant_ops child_ops = {
	.prepare = c_prepare, .commit = c_commit, .abort = c_abort, .done = c_done,
};

static int participant(struct child_io *io, void *argp)
{
	struct part_arg *arg = argp;
	struct child_state s = { .io = io, .arg = arg };
	struct gmem_client *c;
	int fd;

	if (gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) < 0)
		return 10;
	gmem_set_participant(c, &child_ops, &s);
	if (gmem_guest_open(c, guest, &fd, NULL) < 0 ||
	    gmem_attach(c, guest, arg->offset, arg->length, GMEM_ATTACH_MMAP, NULL) < 0)
		return 11;
	s.map = mmap(NULL, arg->length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)arg->offset);
	if (s.map == MAP_FAILED)
		return 12;
	for (uint64_t i = 0; i < arg->length; i++)
		s.map[i] = pattern(arg->offset + i);
	tell(&s, "ready", (unsigned long long)(uintptr_t)s.map);

	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			char line[64];
			if (!msg_recv(io->in, line, sizeof(line), 1000) || strcmp(line, "exit") == 0)
				break;
			if (strcmp(line, "go") == 0 && s.pending_seq) {
				gmem_vote(c, s.pending_epoch, s.pending_seq, true, 0, NULL);
				s.pending_seq = 0;
			}
		}
		if (p[0].revents && gmem_dispatch(c) < 0)
			return 13;
	}
	gmem_disconnect(c);
	return 0;
}

struct part {
	struct child child;
	struct part_arg arg;
	uintptr_t addr;
};

static void part_start(struct part *p, enum behaviour how, uint64_t off, uint64_t len)
{
	char line[64];
	p->arg = (struct part_arg){ how, off, len };
	child_start(&p->child, participant, &p->arg);
	CHECK(msg_recv(p->child.from_child, line, sizeof(line), 10000));
	CHECK(sscanf(line, "ready %lu", &p->addr) == 1);
}

static void part_expect_prefix(struct part *p, const char *prefix)
{
	char line[64];
	if (!msg_recv(p->child.from_child, line, sizeof(line), 10000) || strncmp(line, prefix, strlen(prefix))) {
		fprintf(stderr, "participant %d: expected '%s...', got '%s'\n", p->child.pid, prefix, line);
		exit(1);
	}
}

static int part_stop(struct part *p)
{
	msg_send(p->child.to_child, "exit");
	return child_wait(&p->child);
}

/* The test's own check: is the child's range still mapped, with the pattern in it? */
static bool intact(const struct part *p)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", p->child.pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	unsigned char *buf = malloc(p->arg.length);
	CHECK(buf);
	ssize_t n = pread(fd, buf, p->arg.length, (off_t)p->addr);
	close(fd);
	bool ok = n == (ssize_t)p->arg.length;
	for (uint64_t i = 0; ok && i < p->arg.length; i++)
		ok = buf[i] == pattern(p->arg.offset + i);
	free(buf);
	return ok;
}

static bool mapped(const struct part *p)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", p->child.pid);
	FILE *f = fopen(path, "r");
	bool found = false;
	CHECK(f);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= p->addr && p->addr < hi)
			found = true;
	}
	fclose(f);
	return found;
}

/* Handles live here as well as in locals: a forked participant inherits them, and memcheck in the child
 * must find them reachable, not lost. */
static struct gmem_client *handles[8];

static struct gmem_client *requester(void)
{
	struct gmem_client *c;
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);
	for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++)
		if (!handles[i]) {
			handles[i] = c;
			break;
		}
	return c;
}

static enum gmem_outcome convert(struct gmem_client *c, uint64_t off, uint64_t len, enum gmem_target t,
				 struct gmem_convert_result *res)
{
	struct gmem_range r = { off, len };
	CHECK_EQ(gmem_convert(c, guest, &r, 1, t, 0, res), 0);
	return res->outcome;
}

static uint64_t private_bytes(struct gmem_client *c)
{
	struct gmem_run *runs;
	size_t n;
	uint64_t sh, pr;
	CHECK_EQ(gmem_map(c, guest, &runs, &n, &sh, &pr), 0);
	free(runs);
	return pr;
}

static bool nobody_attached(void *arg)
{
	struct gmem_guest_info *gs;
	size_t n;
	bool none = false;
	if (gmem_guest_list(arg, &gs, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(gs[i].name, guest) == 0)
			none = gs[i].attachments == 0;
	free(gs);
	return none;
}

static void reset(struct gmem_client *c)
{
	struct gmem_convert_result res;
	/* A participant that exited is gone once gmemd has read its close, not when waitpid says so: until
	 * then it would be asked to prepare, and its leaving would abort the reset. */
	CHECK(wait_until(nobody_attached, c, 5000));
	CHECK_EQ(convert(c, 0, 64 * MiB, GMEM_SHARED, &res), GMEM_COMMITTED);
	gmem_convert_result_free(&res);
	CHECK_EQ(private_bytes(c), 0);
}

static void test_all_yes(struct gmem_client *c)
{
	struct part p[3];
	struct gmem_convert_result res;
	for (int i = 0; i < 3; i++)
		part_start(&p[i], YES, (uint64_t)i * MiB, 2 * MiB); /* overlapping ranges */
	CHECK_EQ(convert(c, 0, 4 * MiB, GMEM_PRIVATE, &res), GMEM_COMMITTED);
	CHECK_EQ(res.participants, 3);
	CHECK_EQ(res.changed, 4 * MiB);
	gmem_convert_result_free(&res);
	for (int i = 0; i < 3; i++) {
		part_expect_prefix(&p[i], "prepare");
		part_expect_prefix(&p[i], "commit");
		part_expect_prefix(&p[i], "done 0");
		CHECK(!mapped(&p[i])); /* each let go of its view */
	}
	CHECK_EQ(private_bytes(c), 4 * MiB);
	/* Nothing left to change: completes at once with no participants. */
	CHECK_EQ(convert(c, 0, 4 * MiB, GMEM_PRIVATE, &res), GMEM_COMMITTED);
	CHECK_EQ(res.changed, 0);
	CHECK_EQ(res.participants, 0);
	gmem_convert_result_free(&res);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(part_stop(&p[i]), 0);
	reset(c);
}

/* One refuses: aborted, and every participant still maps its data (judged by the test). Returns whether
 * all participants passed the intactness check. */
static bool abort_leaves_everyone_intact(struct gmem_client *c, enum behaviour third)
{
	struct part p[3];
	struct gmem_convert_result res;
	part_start(&p[0], YES, 0, 2 * MiB);
	part_start(&p[1], NO, MiB, 2 * MiB);
	part_start(&p[2], third, 2 * MiB, 2 * MiB);
	CHECK_EQ(convert(c, 0, 4 * MiB, GMEM_PRIVATE, &res), GMEM_ABORTED);
	CHECK_EQ(res.n_refusals, 1);
	CHECK_EQ(res.refusals[0].pid, p[1].child.pid);
	CHECK_EQ(res.refusals[0].err, EBUSY);
	CHECK(strstr(res.refusals[0].reason, "test participant refuses"));
	CHECK_EQ(res.changed, 0);
	gmem_convert_result_free(&res);
	bool ok = true;
	for (int i = 0; i < 3; i++) {
		part_expect_prefix(&p[i], "prepare");
		part_expect_prefix(&p[i], "abort");
		part_expect_prefix(&p[i], "done 1");
		ok &= mapped(&p[i]) && intact(&p[i]);
	}
	CHECK_EQ(private_bytes(c), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(part_stop(&p[i]), 0);
	return ok;
}

static void test_timeout(struct gmem_client *c)
{
	struct part p[2];
	struct gmem_convert_result res;
	part_start(&p[0], YES, 0, MiB);
	part_start(&p[1], NEVER, 0, MiB);
	CHECK_EQ(convert(c, 0, MiB, GMEM_PRIVATE, &res), GMEM_ABORTED);
	CHECK_EQ(res.n_refusals, 1);
	CHECK_EQ(res.refusals[0].pid, p[1].child.pid);
	CHECK(res.refusals[0].timed_out);
	gmem_convert_result_free(&res);
	CHECK(intact(&p[0]) && intact(&p[1]));
	for (int i = 0; i < 2; i++)
		CHECK_EQ(part_stop(&p[i]), 0);
}

static void kill_part(struct part *p)
{
	kill(p->child.pid, SIGKILL);
	CHECK_EQ(child_wait(&p->child), 128 + SIGKILL);
}

struct async_result {
	bool done;
	int err;
	enum gmem_outcome outcome;
	uint64_t n_refusals;
	bool refuser_gone;
};

static void async_done(struct gmem_client *c, int err, const struct gmem_convert_result *r, void *ud)
{
	struct async_result *a = ud;
	(void)c;
	a->done = true;
	a->err = err;
	if (r) {
		a->outcome = r->outcome;
		a->n_refusals = r->n_refusals;
		a->refuser_gone = r->n_refusals && r->refusals[0].gone;
	}
}

static void wait_async(struct gmem_client *c, struct async_result *a)
{
	int64_t deadline = harness_deadline(10000);
	while (!a->done) {
		struct pollfd p = { .fd = gmem_get_fd(c), .events = POLLIN };
		CHECK(harness_now_ms() < deadline);
		poll(&p, 1, 100);
		CHECK(gmem_dispatch(c) >= 0);
	}
	CHECK_EQ(a->err, 0);
}

static void test_kills(struct gmem_client *c)
{
	struct gmem_range r = { 0, MiB };
	struct part p[2];
	struct async_result a;

	/* Killed before voting: aborted, the refuser is named as gone. */
	part_start(&p[0], DIE_AT_PREPARE, 0, MiB);
	a = (struct async_result){ 0 };
	CHECK_EQ(gmem_convert_async(c, guest, &r, 1, GMEM_PRIVATE, 0, async_done, &a), 0);
	part_expect_prefix(&p[0], "prepare");
	kill_part(&p[0]);
	wait_async(c, &a);
	CHECK_EQ(a.outcome, GMEM_ABORTED);
	CHECK(a.refuser_gone);
	CHECK_EQ(private_bytes(c), 0);

	/* Killed after voting yes: the yes stands; memfd cannot see it let go: committed-unverified. */
	part_start(&p[0], DIE_AFTER_YES, 0, MiB);
	part_start(&p[1], YES_ON_GO, 0, MiB);
	a = (struct async_result){ 0 };
	CHECK_EQ(gmem_convert_async(c, guest, &r, 1, GMEM_PRIVATE, 0, async_done, &a), 0);
	part_expect_prefix(&p[0], "prepare");
	part_expect_prefix(&p[0], "voted");
	part_expect_prefix(&p[1], "prepare");
	kill_part(&p[0]);
	msg_send(p[1].child.to_child, "go");
	wait_async(c, &a);
	CHECK_EQ(a.outcome, GMEM_COMMITTED_UNVERIFIED);
	CHECK_EQ(private_bytes(c), MiB);
	CHECK_EQ(part_stop(&p[1]), 0);
	reset(c);

	/* Killed during commit (before its ack): still committed, unverified. */
	part_start(&p[0], DIE_AT_COMMIT, 0, MiB);
	a = (struct async_result){ 0 };
	CHECK_EQ(gmem_convert_async(c, guest, &r, 1, GMEM_PRIVATE, 0, async_done, &a), 0);
	part_expect_prefix(&p[0], "prepare");
	part_expect_prefix(&p[0], "commit");
	kill_part(&p[0]);
	wait_async(c, &a);
	CHECK_EQ(a.outcome, GMEM_COMMITTED_UNVERIFIED);
	CHECK_EQ(private_bytes(c), MiB);

	/* And the next conversion is served. */
	part_start(&p[1], YES, 0, MiB);
	struct gmem_convert_result res;
	CHECK_EQ(convert(c, 0, MiB, GMEM_SHARED, &res), GMEM_COMMITTED);
	CHECK_EQ(res.participants, 1);
	gmem_convert_result_free(&res);
	CHECK_EQ(part_stop(&p[1]), 0);
	CHECK_EQ(private_bytes(c), 0);
}

/* Two requesters at once on overlapping ranges: serialised, and the map is what applying them in the
 * daemon's order (their sequence numbers) gives. */
static void test_overlapping_requesters(void)
{
	struct gmem_client *a = requester(), *b = requester(), *c = requester();
	struct async_result ra = { 0 }, rb = { 0 };
	struct gmem_range x = { 0, 8 * MiB }, y = { 4 * MiB, 8 * MiB };
	struct part p;

	/* A participant that waits makes the first conversion last long enough for the second to queue. */
	part_start(&p, YES_ON_GO, 0, 16 * MiB);
	CHECK_EQ(gmem_convert_async(a, guest, &x, 1, GMEM_PRIVATE, 0, async_done, &ra), 0);
	part_expect_prefix(&p, "prepare");
	CHECK_EQ(gmem_convert_async(b, guest, &y, 1, GMEM_SHARED, 0, async_done, &rb), 0);
	/* While x is in flight, attaching to its changing range is refused at once; elsewhere it is fine. */
	uint64_t id;
	CHECK_EQ(gmem_attach(c, guest, 6 * MiB, MiB, GMEM_ATTACH_MMAP, &id), -EBUSY);
	CHECK(strstr(gmem_last_error(c), "in flight"));
	CHECK_EQ(gmem_attach(c, guest, 32 * MiB, MiB, GMEM_ATTACH_MMAP, &id), 0);
	CHECK_EQ(gmem_detach(c, id), 0);
	msg_send(p.child.to_child, "go");
	wait_async(a, &ra);
	part_expect_prefix(&p, "commit");
	part_expect_prefix(&p, "done");
	/* The second one is a no-op for [4M, 8M) ... until the first made it private: it must change 4M. */
	part_expect_prefix(&p, "prepare");
	msg_send(p.child.to_child, "go");
	wait_async(b, &rb);
	CHECK_EQ(ra.outcome, GMEM_COMMITTED);
	CHECK_EQ(rb.outcome, GMEM_COMMITTED);

	struct gmem_run *runs;
	size_t n;
	CHECK_EQ(gmem_map(c, guest, &runs, &n, NULL, NULL), 0);
	/* x then y: [0,4M) private, the rest shared. */
	CHECK_EQ(n, 2);
	CHECK(runs[0].offset == 0 && runs[0].length == 4 * MiB && runs[0].state == GMEM_PRIVATE);
	CHECK(runs[1].offset == 4 * MiB && runs[1].state == GMEM_SHARED);
	free(runs);
	CHECK_EQ(part_stop(&p), 0);
	gmem_disconnect(a);
	gmem_disconnect(b);
	reset(c);
	gmem_disconnect(c);
}

static void test_bad_requests(struct gmem_client *c)
{
	struct gmem_convert_result res;
	struct gmem_range r = { 1, 4096 };
	CHECK_EQ(gmem_convert(c, guest, &r, 1, GMEM_PRIVATE, 0, &res), -EINVAL);
	r = (struct gmem_range){ 60 * MiB, 8 * MiB };
	CHECK_EQ(gmem_convert(c, guest, &r, 1, GMEM_PRIVATE, 0, &res), -ERANGE);
	r = (struct gmem_range){ 0, 4096 };
	CHECK_EQ(gmem_convert(c, "nope", &r, 1, GMEM_PRIVATE, 0, &res), -ENOENT);
	CHECK_EQ(gmem_convert(c, guest, &r, 1, GMEM_PRIVATE, GMEM_CONVERT_FORCE, &res), -EOPNOTSUPP);
	/* Votes and acks for conversions that are not running. */
	CHECK_EQ(gmem_vote(c, 1, 999, true, 0, NULL), -ESTALE);
	CHECK_EQ(gmem_ack(c, 1, 999), -ESTALE);
}

int main(void)
{
	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", "--prepare-timeout", "300", "--ack-timeout", "300",
					  NULL });
	struct gmem_client *c = requester();
	CHECK_EQ(gmem_guest_create(c, guest, 64 * MiB, 0, NULL), 0);

	test_bad_requests(c);
	printf("ok bad convert requests refused\n");
	test_all_yes(c);
	printf("ok 3 participants, all yes: committed, each unmapped, map private\n");
	CHECK(abort_leaves_everyone_intact(c, YES));
	printf("ok one votes no: aborted, every mapping and its data intact\n");
	CHECK(!abort_leaves_everyone_intact(c, UNMAP_AT_PREPARE));
	printf("ok control: a participant unmapping at prepare is caught by the same check\n");
	test_timeout(c);
	printf("ok a participant that never votes: aborted by timeout\n");
	test_kills(c);
	printf("ok SIGKILL before voting / after yes / during commit, then the next conversion\n");
	test_overlapping_requesters();
	printf("ok overlapping requesters are serialised; attach during a conversion is EBUSY on its range\n");

	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
