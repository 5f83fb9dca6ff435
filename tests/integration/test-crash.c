/* SPDX-License-Identifier: MIT */
/*
 * test-crash: gmemd SIGKILLed at each point of a conversion and restarted (this test plays systemd, so
 * guest memory survives in the fd store). The test build gmemd-hooks kills itself at the named point
 * (testhook.h): after the begin is written, after a vote, after the commit decision is written, after
 * an ack. Two device participants (child processes) vote yes and ack; when gmemd goes they are in doubt
 * and must not move on their own: they reconnect and ask the restarted gmemd (resolve). Checked: the
 * outcome is abort without a written decision and commit with one; the participants learn it; neither
 * heard abort or done from anyone; the map is all old or all new; and the guest's pattern reads back,
 * having been held by no process but the harness while gmemd was dead.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sdharness.h"

#define SIZE (8u << 20)
#define HALF (SIZE / 2)

static struct sdh h;

struct part_state {
	struct child_io *io;
	uint64_t epoch, seq;
	bool voted, heard_end;
};


static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	struct part_state *s = userdata;
	s->epoch = cv->epoch;
	s->seq = cv->seq;
	/* A yes is a promise: from here this participant is in doubt until it hears the outcome. */
	s->voted = true;
	(void)gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	(void)userdata;
	(void)gmem_ack(c, cv->epoch, cv->seq);
}

static void on_end(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	struct part_state *s = userdata;
	(void)c;
	(void)cv;
	s->heard_end = true;
}

static const struct gmem_participant_ops part_ops = {
	.prepare = on_prepare,
	.commit = on_commit,
	.abort = on_end,
	.done = on_end,
};

/* A device participant attached to [offset, offset + HALF). Reports "ready", then after gmemd dies
 * "resolved <outcome>" (or "not-in-doubt"), and whether it heard an end from the dead gmemd. */
static int participant(struct child_io *io, void *arg)
{
	uint64_t offset = (uint64_t)(uintptr_t)arg;
	struct part_state s = { .io = io };
	struct gmem_client *c;

	sdh_close_inherited(&h);
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_DEVICE, &c) == 0);
	gmem_set_participant(c, &part_ops, &s);
	CHECK(gmem_attach(c, "g", offset, HALF, GMEM_ATTACH_IOMMU, NULL) == 0);
	msg_send(io->out, "ready");
	for (;;) {
		struct pollfd p = { .fd = gmem_get_fd(c), .events = POLLIN };
		CHECK(poll(&p, 1, (int)(30000 * harness_scale())) == 1);
		if (gmem_dispatch(c) == -ECONNRESET)
			break;
	}
	gmem_disconnect(c);
	if (s.heard_end)
		msg_send(io->out, "heard-end");
	if (!s.voted) {
		msg_send(io->out, "not-in-doubt");
		return 0;
	}
	/* In doubt: wait for a gmemd to come back and ask it; never decide alone. */
	int64_t deadline = harness_deadline(20000);
	while (gmem_connect(h.d.socket, GMEM_ROLE_DEVICE, &c) < 0) {
		CHECK(harness_now_ms() < deadline);
		usleep(5000);
	}
	enum gmem_outcome o;
	int r = gmem_resolve(c, s.epoch, s.seq, &o);
	if (r < 0) {
		fprintf(stderr, "resolve: %s (%s)\n", strerror(-r), gmem_last_error(c));
		return 1;
	}
	char line[64];
	snprintf(line, sizeof(line), "resolved %d", (int)o);
	msg_send(io->out, line);
	gmem_disconnect(c);
	return 0;
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 13 + 5 + (i >> 12));
}

static void fill(struct gmem_client *c, bool check)
{
	int fd;
	CHECK(gmem_guest_open(c, "g", &fd, NULL) == 0);
	unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	for (size_t i = 0; i < SIZE; i++) {
		if (!check)
			p[i] = pattern(i);
		else if (p[i] != pattern(i)) {
			fprintf(stderr, "byte %zu reads %u, not %u\n", i, p[i], pattern(i));
			exit(1);
		}
	}
	munmap(p, SIZE);
	close(fd);
}

static int other_holders(dev_t dev, ino_t ino)
{
	int n = 0;
	DIR *proc = opendir("/proc");
	CHECK(proc);
	for (struct dirent *e; (e = readdir(proc));) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		char path[64];
		if (*end || pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		DIR *fds = opendir(path);
		if (!fds)
			continue;
		for (struct dirent *f; (f = readdir(fds));) {
			char p2[512];
			struct stat st;
			snprintf(p2, sizeof(p2), "%s/%s", path, f->d_name);
			if (f->d_name[0] != '.' && stat(p2, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
				n++;
		}
		closedir(fds);
	}
	closedir(proc);
	return n;
}

/* The map over the guest: 0 all shared, 1 all private, -1 mixed. */
static int map_state(struct gmem_client *c)
{
	struct gmem_run *runs;
	size_t n;
	CHECK(gmem_map(c, "g", &runs, &n, NULL, NULL) == 0);
	int st = n == 1 ? (int)runs[0].state : -1;
	free(runs);
	return st;
}

static bool arg_break;   /* the control: replay ends conversions the wrong way; this test must fail */
static bool arg_compact; /* a snapshot after every record: conversions in flight go into snapshots */

static void run_point(const char *point, enum gmem_outcome expect)
{
	char env[64];
	const char *envs[] = { env, NULL };
	const char *extra[] = { "--pool-size", "256M", arg_compact ? "--journal-compact-records" : NULL, "1", NULL };
	struct child a, b;
	char line[128];

	fprintf(stderr, "== crash at %s\n", point);
	snprintf(env, sizeof(env), "GMEM_TEST_CRASH_AT=%s", point);
	sdh_init(&h);
	sdh_start(&h, "GMEMD_HOOKS", extra, envs);
	struct gmem_client *c;
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	CHECK(gmem_guest_create(c, "g", SIZE, 0, NULL) == 0);
	fill(c, false);
	child_start(&a, participant, (void *)(uintptr_t)0);
	child_start(&b, participant, (void *)(uintptr_t)HALF);
	msg_expect(a.from_child, "ready", 5000);
	msg_expect(b.from_child, "ready", 5000);

	struct gmem_range all = { 0, SIZE };
	struct gmem_convert_result res;
	int r = gmem_convert(c, "g", &all, 1, GMEM_PRIVATE, 0, &res);
	CHECK(r == -ECONNRESET); /* gmemd died under it: the requester has no outcome from it */
	gmem_disconnect(c);
	CHECK_EQ(sdh_wait_exit(&h, 10000), 128 + 9);

	if (arg_compact) {
		/* The begin was compacted into the snapshot: replay must find the conversion there. */
		char path[400], snap[8192];
		snprintf(path, sizeof(path), "%s/snapshot.jsonl", h.d.state);
		FILE *f = fopen(path, "r");
		CHECK(f);
		size_t k = fread(snap, 1, sizeof(snap) - 1, f);
		fclose(f);
		snap[k] = '\0';
		CHECK(strstr(snap, "\"t\":\"begin\""));
	}
	/* gmemd is dead: only we, as the fd store, hold the guest's memory. */
	struct stat st;
	CHECK(fstat(sdh_stored(&h, "guest-1"), &st) == 0);
	CHECK_EQ(other_holders(st.st_dev, st.st_ino), 0);

	static const char *const broken[] = { "GMEM_TEST_BREAK=replay-outcome", NULL };
	sdh_start(&h, arg_break ? "GMEMD_HOOKS" : "GMEMD", extra, arg_break ? broken : NULL);
	int resolved = 0;
	struct child *kids[] = { &a, &b };
	for (int k = 0; k < 2; k++) {
		CHECK(msg_recv(kids[k]->from_child, line, sizeof(line), 20000));
		/* Nobody told them the end before gmemd died: none was decided and sent. */
		CHECK(strcmp(line, "heard-end") != 0);
		if (strcmp(line, "not-in-doubt") == 0)
			continue;
		unsigned long long o;
		CHECK(sscanf(line, "resolved %llu", &o) == 1);
		CHECK_EQ(o, expect);
		resolved++;
	}
	CHECK_EQ(child_wait(&a), 0);
	CHECK_EQ(child_wait(&b), 0);
	/* From "vote" on, somebody voted yes before gmemd died, and learnt the outcome. */
	if (strcmp(point, "begin") != 0)
		CHECK(resolved >= 1);

	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	CHECK_EQ(map_state(c), expect == GMEM_COMMITTED ? GMEM_PRIVATE : GMEM_SHARED);
	fill(c, true);
	/* gmemd serves on: the guest converts back and forth. */
	CHECK(gmem_convert(c, "g", &all, 1, GMEM_SHARED, 0, &res) == 0);
	CHECK_EQ(res.outcome, GMEM_COMMITTED);
	gmem_convert_result_free(&res);
	CHECK_EQ(map_state(c), GMEM_SHARED);
	gmem_disconnect(c);
	CHECK_EQ(sdh_stop(&h), 0);
	sdh_cleanup(&h);
	fprintf(stderr, "crash at %s: %s, %d participant(s) in doubt resolved\n", point,
		expect == GMEM_COMMITTED ? "committed" : "aborted", resolved);
}

int main(int argc, char **argv)
{
	/* One point per run when named (meson runs them as separate tests), all of them otherwise. */
	const char *only = argc > 1 ? argv[1] : NULL;
	arg_break = argc > 2 && strcmp(argv[2], "--break") == 0;
	arg_compact = argc > 2 && strcmp(argv[2], "--compact") == 0;
	static const struct {
		const char *point;
		enum gmem_outcome expect;
	} points[] = {
		{ "begin", GMEM_ABORTED },
		{ "vote", GMEM_ABORTED },
		{ "decided", GMEM_COMMITTED },
		{ "ack", GMEM_COMMITTED },
	};
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		if (!only || strcmp(only, points[i].point) == 0)
			run_point(points[i].point, points[i].expect);
	return 0;
}
