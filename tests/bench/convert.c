/* SPDX-License-Identifier: MIT */
/*
 * bench-convert: what one conversion costs through gmemd, next to the floor measured in the same run.
 *
 * gmem side: a real gmemd (memfd backend) started by the harness; N participant processes (role device,
 * an mmap attachment over each whole guest, the guest file mapped), each voting yes at prepare and acking
 * at commit at once from gmem_dispatch(); the requester is this process (role vmm, no lease, so not a
 * participant) timing blocking gmem_convert() calls that alternate private/shared on the same ranges.
 * Rows per N: one 4 KiB range (4K guest), one 2 MiB range (2M-granule guest), and 512 discontiguous
 * 4 KiB ranges (every other granule) in one conversion.
 *
 * Floor: plain processes doing gmem's message pattern with 64-byte binary messages over AF_UNIX
 * SOCK_SEQPACKET and epoll, no daemon logic: requester (this process) -> coordinator -> prepare to N
 * participants -> N votes -> commit in role-ordered waves (devices: wave 1 to-private, wave 3 to-shared;
 * the empty vmm wave and the backend step cost nothing) -> acks -> done to every participant -> reply.
 * Same process count as the gmem run (requester + coordinator in place of gmemd + N participants).
 * gmem_vote and gmem_ack are synchronous calls that gmemd answers: 2N messages this floor does not send.
 * BENCH_FLOOR_ANSWERS=1 adds them (the coordinator answers each vote and ack, the participant waits for it).
 *
 * Placement: nothing is pinned, in either run (left to the scheduler, like PERF.md's "unpinned").
 * gmem and floor runs alternate in CHUNKS chunks so drift hits both alike.
 *
 * Run: GMEMD=build/daemon/gmemd build/tests/bench/bench-convert
 * Exit status: 0 unless a correctness check failed (a conversion not committed or changing the wrong
 * number of bytes, a participant error, a wrong final map, a hang).
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)

#define CHUNKS 5
#define GUEST_SIZE (4 * MiB)
#define BATCH 512
#define MAX_N 8
#define CONVERT_TIMEOUT_MS 10000

enum row_kind { ROW_4K, ROW_2M, ROW_BATCH, N_KINDS };
static const char *const kind_names[N_KINDS] = { "4 KiB", "2 MiB", "512 x 4 KiB" };

static const int ns[] = { 1, 2, 4, 8 };
#define N_NS (sizeof(ns) / sizeof(ns[0]))
/* Measured conversions per row (all chunks together) and warm-up conversions per row per chunk; the
 * 512-range batch is slow enough to get fewer. Sized for ~30-40 s on 2 cores. */
static const int k_of_n[N_NS] = { 4000, 4000, 2000, 1000 };
static const int k_batch_of_n[N_NS] = { 500, 500, 300, 200 };
#define WARMUP 50
#define WARMUP_BATCH 10

/* PERF.md, binary p50 unpinned (us): the range for N=4 is 140-186. */
static const double perf_lo[N_NS] = { 59, 56, 140, 309 };
static const double perf_hi[N_NS] = { 59, 56, 186, 309 };

static struct gmemd d;
static int failed; /* a correctness check failed */

static void fail(const char *what)
{
	printf("FAIL: %s\n", what);
	fflush(stdout);
	failed = 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- samples ---- */

struct samples {
	double *us;  /* latencies */
	size_t n, cap;
	int64_t total_ns; /* wall time of the measured loops */
};

static void samples_add(struct samples *s, double us)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->us = realloc(s->us, s->cap * sizeof(*s->us));
		CHECK(s->us);
	}
	s->us[s->n++] = us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(struct samples *s, double p)
{
	if (!s->n)
		return 0;
	qsort(s->us, s->n, sizeof(*s->us), cmp_double);
	size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
	return s->us[i < s->n ? i : s->n - 1];
}

static double rate(const struct samples *s)
{
	return s->total_ns ? (double)s->n * 1e9 / (double)s->total_ns : 0;
}

/* ---- child processes ---- */

static void stop_child(pid_t pid, int tell_fd, int *status)
{
	int st;
	if (tell_fd >= 0) {
		/* Ask politely first so a participant can report its own errors through its exit status. */
		static const char line[] = "exit\n";
		(void)!write(tell_fd, line, sizeof(line) - 1);
		for (int i = 0; i < 2000; i++) {
			if (waitpid(pid, &st, WNOHANG) == pid) {
				*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				return;
			}
			usleep(1000);
		}
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) == pid)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	else
		*status = -1;
}

/* ---- gmem participants ---- */

struct guest_set {
	char name[N_KINDS][32];
};

struct gpart_state {
	int errors;
	uint64_t seen_done;
};

static void gp_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct gpart_state *s = ud;
	int r = gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
	if (r < 0) {
		fprintf(stderr, "participant %d: vote on %llu: %s (%s)\n", getpid(), (unsigned long long)cv->seq,
			strerror(-r), gmem_last_error(c));
		s->errors++;
	}
}

static void gp_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct gpart_state *s = ud;
	int r = gmem_ack(c, cv->epoch, cv->seq);
	if (r < 0) {
		fprintf(stderr, "participant %d: ack on %llu: %s (%s)\n", getpid(), (unsigned long long)cv->seq,
			strerror(-r), gmem_last_error(c));
		s->errors++;
	}
}

static void gp_abort(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct gpart_state *s = ud;
	(void)c;
	fprintf(stderr, "participant %d: conversion %llu aborted\n", getpid(), (unsigned long long)cv->seq);
	s->errors++;
}

static void gp_done(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct gpart_state *s = ud;
	(void)c;
	s->seen_done++;
	if (cv->outcome != GMEM_COMMITTED) {
		fprintf(stderr, "participant %d: conversion %llu ended %d\n", getpid(), (unsigned long long)cv->seq,
			(int)cv->outcome);
		s->errors++;
	}
}

static const struct gmem_participant_ops gp_ops = {
	.prepare = gp_prepare, .commit = gp_commit, .abort = gp_abort, .done = gp_done,
};

static int gmem_participant(struct child_io *io, void *arg)
{
	const struct guest_set *gs = arg;
	struct gpart_state s = { 0 };
	struct gmem_client *c;
	int r = gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c);
	if (r < 0) {
		fprintf(stderr, "participant: connect: %s\n", strerror(-r));
		return 10;
	}
	gmem_set_timeout(c, CONVERT_TIMEOUT_MS);
	gmem_set_participant(c, &gp_ops, &s);
	for (int k = 0; k < N_KINDS; k++) {
		struct gmem_guest_info info;
		int fd;
		r = gmem_guest_open(c, gs->name[k], &fd, &info);
		if (r == 0)
			r = gmem_attach(c, gs->name[k], 0, info.size, GMEM_ATTACH_MMAP, NULL);
		if (r < 0) {
			fprintf(stderr, "participant: %s: %s (%s)\n", gs->name[k], strerror(-r), gmem_last_error(c));
			return 11;
		}
		void *map = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			perror("participant: mmap");
			return 12;
		}
		close(fd); /* the mapping keeps the file */
	}
	msg_send(io->out, "ready");

	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 14;
		}
		if (p[1].revents)
			break; /* "exit" or EOF: either way we are done */
		if (p[0].revents && gmem_dispatch(c) < 0) {
			fprintf(stderr, "participant %d: gmemd closed the connection\n", getpid());
			return 13;
		}
	}
	gmem_disconnect(c);
	return s.errors ? 20 : 0;
}

struct gparts {
	struct child ch[MAX_N];
	int n;
};

static void gparts_start(struct gparts *g, int n, struct guest_set *gs)
{
	char line[64];
	g->n = n;
	for (int i = 0; i < n; i++)
		child_start(&g->ch[i], gmem_participant, gs);
	for (int i = 0; i < n; i++)
		if (!msg_recv(g->ch[i].from_child, line, sizeof(line), 10000) || strcmp(line, "ready") != 0) {
			printf("FAIL: gmem participant %d did not get ready\n", g->ch[i].pid);
			for (int j = 0; j < n; j++) {
				int st;
				stop_child(g->ch[j].pid, -1, &st);
			}
			gmemd_print_log(&d);
			gmemd_stop(&d);
			exit(1);
		}
}

static void gparts_stop(struct gparts *g)
{
	for (int i = 0; i < g->n; i++) {
		int st;
		stop_child(g->ch[i].pid, g->ch[i].to_child, &st);
		close(g->ch[i].to_child);
		close(g->ch[i].from_child);
		if (st != 0) {
			char what[96];
			snprintf(what, sizeof(what), "gmem participant %d exited with status %d", g->ch[i].pid, st);
			fail(what);
		}
	}
	g->n = 0;
}

/* ---- gmem requester ---- */

struct grow {
	const char *guest;
	struct gmem_range ranges[BATCH];
	size_t n_ranges;
	uint64_t bytes;
	enum gmem_target next; /* the target of the next conversion */
	struct samples s;
};

/* One conversion; returns its latency in us, or -1 after a failure (reported). */
static double gmem_one(struct gmem_client *c, struct grow *row, int n)
{
	struct gmem_convert_result res;
	int64_t t0 = now_ns();
	int r = gmem_convert(c, row->guest, row->ranges, row->n_ranges, row->next, 0, &res);
	int64_t t1 = now_ns();
	char what[256];
	if (r < 0) {
		snprintf(what, sizeof(what), "gmem_convert %s to %s: %s (%s)", row->guest,
			 row->next == GMEM_PRIVATE ? "private" : "shared", strerror(-r), gmem_last_error(c));
		fail(what);
		return -1;
	}
	bool ok = res.outcome == GMEM_COMMITTED && res.changed == row->bytes && res.participants == (uint64_t)n;
	if (!ok) {
		snprintf(what, sizeof(what), "gmem_convert %s to %s: outcome %d, changed %llu (want %llu), "
			 "participants %llu (want %d)", row->guest, row->next == GMEM_PRIVATE ? "private" : "shared",
			 (int)res.outcome, (unsigned long long)res.changed, (unsigned long long)row->bytes,
			 (unsigned long long)res.participants, n);
		fail(what);
	}
	gmem_convert_result_free(&res);
	row->next = row->next == GMEM_PRIVATE ? GMEM_SHARED : GMEM_PRIVATE;
	return ok ? (double)(t1 - t0) / 1000.0 : -1;
}

static bool gmem_run(struct gmem_client *c, struct grow *row, int n, int warm, int count)
{
	for (int i = 0; i < warm; i++)
		if (gmem_one(c, row, n) < 0)
			return false;
	int64_t t0 = now_ns();
	for (int i = 0; i < count; i++) {
		double us = gmem_one(c, row, n);
		if (us < 0)
			return false;
		samples_add(&row->s, us);
	}
	row->s.total_ns += now_ns() - t0;
	return true;
}

/* The map after the run: granules in the row's ranges in the state the last conversion set, everything
 * else of the guest shared (never converted). */
static bool check_map(struct gmem_client *c, const struct grow *row, uint64_t granule)
{
	enum gmem_target last = row->next == GMEM_PRIVATE ? GMEM_SHARED : GMEM_PRIVATE;
	size_t ng = GUEST_SIZE / granule;
	unsigned char *want = calloc(ng, 1), *have = calloc(ng, 1);
	struct gmem_run *runs = NULL;
	size_t nr = 0;
	bool ok = true;
	CHECK(want && have);
	memset(want, GMEM_SHARED, ng);
	memset(have, 0xff, ng);
	for (size_t i = 0; i < row->n_ranges; i++)
		for (uint64_t o = row->ranges[i].offset; o < row->ranges[i].offset + row->ranges[i].length; o += granule)
			want[o / granule] = (unsigned char)last;
	int r = gmem_map(c, row->guest, &runs, &nr, NULL, NULL);
	if (r < 0) {
		printf("FAIL: gmem_map %s: %s\n", row->guest, strerror(-r));
		ok = false;
	}
	for (size_t i = 0; ok && i < nr; i++) {
		if (runs[i].offset % granule || runs[i].length % granule || runs[i].offset + runs[i].length > GUEST_SIZE) {
			printf("FAIL: %s: map run [%llu, +%llu) is off the granule or past the end\n", row->guest,
			       (unsigned long long)runs[i].offset, (unsigned long long)runs[i].length);
			ok = false;
			break;
		}
		for (uint64_t o = runs[i].offset; o < runs[i].offset + runs[i].length; o += granule)
			have[o / granule] = (unsigned char)runs[i].state;
	}
	for (size_t gi = 0; ok && gi < ng; gi++)
		if (have[gi] != want[gi]) {
			printf("FAIL: %s: granule %zu (offset %llu) is %s, want %s\n", row->guest, gi,
			       (unsigned long long)(gi * granule),
			       have[gi] == 0xff ? "missing from the map" : have[gi] == GMEM_PRIVATE ? "private" : "shared",
			       want[gi] == GMEM_PRIVATE ? "private" : "shared");
			ok = false;
		}
	fflush(stdout);
	free(runs);
	free(want);
	free(have);
	return ok;
}

/* ---- the floor ---- */

enum { F_REQ = 1, F_PREPARE, F_VOTE, F_COMMIT, F_ACK, F_DONE, F_REPLY, F_ANSWER };
enum { F_ROLE_VMM, F_ROLE_DEVICE };

/* $BENCH_FLOOR_ANSWERS=1: the floor also answers every vote and ack, and its participants wait for that
 * answer as libgmem's synchronous gmem_vote/gmem_ack do (2N more messages per conversion). Off by default:
 * the floor is then exactly the pattern described at the top. */
static bool floor_answers;

struct fmsg {
	uint32_t type;
	uint32_t wave;
	uint64_t seq;
	uint32_t target; /* 1 = private */
	uint8_t pad[44];
};
_Static_assert(sizeof(struct fmsg) == 64, "floor messages are 64 bytes");

static void fsend(int fd, const struct fmsg *m)
{
	if (send(fd, m, sizeof(*m), MSG_NOSIGNAL) != (ssize_t)sizeof(*m))
		_exit(30);
}

static int wave_of(int role, bool to_private)
{
	if (to_private)
		return role == F_ROLE_DEVICE ? 1 : 3;
	return role == F_ROLE_VMM ? 1 : 3;
}

/* A participant's next message: epoll, then one recv. */
static void frecv(int ep, int fd, struct fmsg *m)
{
	for (;;) {
		struct epoll_event got;
		if (epoll_wait(ep, &got, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(32);
		}
		ssize_t k = recv(fd, m, sizeof(*m), 0);
		if (k == 0)
			_exit(0);
		if (k != (ssize_t)sizeof(*m))
			_exit(33);
		return;
	}
}

static void floor_participant(int fd)
{
	struct fmsg q[4]; /* what arrived while waiting for an answer */
	size_t qh = 0, qt = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = { .events = EPOLLIN, .data.fd = fd };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
		_exit(31);
	for (;;) {
		struct fmsg m;
		if (qh < qt)
			m = q[qh++ % 4];
		else
			frecv(ep, fd, &m);
		if (m.type == F_PREPARE || m.type == F_COMMIT) {
			m.type = m.type == F_PREPARE ? F_VOTE : F_ACK;
			fsend(fd, &m);
			while (floor_answers) {
				struct fmsg a;
				frecv(ep, fd, &a);
				if (a.type == F_ANSWER)
					break;
				if (qt - qh == 4)
					_exit(35);
				q[qt++ % 4] = a;
			}
		} else if (m.type != F_DONE) {
			_exit(34);
		}
	}
}

/* fds[0]: the requester; fds[1..n]: the participants. */
static void floor_coordinator(int *fds, int n)
{
	int role[MAX_N + 1];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		_exit(40);
	for (int i = 0; i <= n; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) < 0)
			_exit(41);
		role[i] = F_ROLE_DEVICE;
	}
	enum { IDLE, PREPARING, WAVE } state = IDLE;
	struct fmsg cur = { 0 };
	int pending = 0, wave = 0;
	bool to_private = false;

	for (;;) {
		struct epoll_event evs[MAX_N + 1];
		int k = epoll_wait(ep, evs, MAX_N + 1, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			_exit(42);
		}
		for (int e = 0; e < k; e++) {
			uint32_t who = evs[e].data.u32;
			struct fmsg m;
			ssize_t got = recv(fds[who], &m, sizeof(m), 0);
			if (got == 0)
				_exit(0);
			if (got != (ssize_t)sizeof(m))
				_exit(43);
			if (who == 0) {
				if (m.type != F_REQ || state != IDLE)
					_exit(44);
				cur = m;
				to_private = m.target == 1;
				struct fmsg p = { .type = F_PREPARE, .seq = m.seq, .target = m.target };
				for (int i = 1; i <= n; i++)
					fsend(fds[i], &p);
				state = PREPARING;
				pending = n;
				continue;
			}
			if (m.seq != cur.seq)
				_exit(45);
			bool step = false;
			if (state == PREPARING && m.type == F_VOTE) {
				if (--pending == 0) {
					state = WAVE;
					wave = 0;
					step = true;
				}
			} else if (state == WAVE && m.type == F_ACK) {
				step = --pending == 0;
			} else {
				_exit(46);
			}
			/* The next non-empty wave (wave 2 is the backend step: nothing here), or done. */
			while (step && pending == 0 && wave < 3) {
				wave = wave == 0 ? 1 : 3;
				struct fmsg cm = { .type = F_COMMIT, .seq = cur.seq, .wave = (uint32_t)wave };
				for (int i = 1; i <= n; i++)
					if (wave_of(role[i], to_private) == wave) {
						fsend(fds[i], &cm);
						pending++;
					}
			}
			if (step && pending == 0) {
				struct fmsg dm = { .type = F_DONE, .seq = cur.seq };
				for (int i = 1; i <= n; i++)
					fsend(fds[i], &dm);
				cur.type = F_REPLY;
				fsend(fds[0], &cur);
				state = IDLE;
			}
			if (floor_answers) { /* gmemd answers the vote or ack after acting on it */
				struct fmsg am = { .type = F_ANSWER, .seq = m.seq };
				fsend(fds[who], &am);
			}
		}
	}
}

struct floor_set {
	pid_t coord;
	pid_t parts[MAX_N];
	int n;
	int req_fd;
	uint64_t seq;
	bool to_private;
};

static pid_t fork_child(void)
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return pid;
}

static void floor_start(struct floor_set *f, int n)
{
	int req[2], pfd[MAX_N][2];
	memset(f, 0, sizeof(*f));
	f->n = n;
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, req) == 0);
	for (int i = 0; i < n; i++)
		CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pfd[i]) == 0);
	for (int i = 0; i < n; i++) {
		f->parts[i] = fork_child();
		if (f->parts[i] == 0) {
			int keep = pfd[i][1];
			close(req[0]);
			close(req[1]);
			for (int j = 0; j < n; j++) {
				close(pfd[j][0]);
				if (j != i)
					close(pfd[j][1]);
			}
			floor_participant(keep);
			_exit(0);
		}
	}
	f->coord = fork_child();
	if (f->coord == 0) {
		int fds[MAX_N + 1];
		close(req[0]);
		fds[0] = req[1];
		for (int i = 0; i < n; i++) {
			close(pfd[i][1]);
			fds[i + 1] = pfd[i][0];
		}
		floor_coordinator(fds, n);
		_exit(0);
	}
	close(req[1]);
	for (int i = 0; i < n; i++) {
		close(pfd[i][0]);
		close(pfd[i][1]);
	}
	f->req_fd = req[0];
}

static void floor_stop(struct floor_set *f)
{
	int st;
	close(f->req_fd); /* the coordinator sees EOF and leaves; then its participants do */
	stop_child(f->coord, -1, &st);
	for (int i = 0; i < f->n; i++)
		stop_child(f->parts[i], -1, &st);
}

static double floor_one(struct floor_set *f)
{
	struct fmsg m = { .type = F_REQ, .seq = ++f->seq, .target = f->to_private ? 1 : 0 };
	struct pollfd p = { .fd = f->req_fd, .events = POLLIN };
	int64_t t0 = now_ns();
	fsend(f->req_fd, &m);
	if (poll(&p, 1, CONVERT_TIMEOUT_MS) != 1 || recv(f->req_fd, &m, sizeof(m), 0) != (ssize_t)sizeof(m) ||
	    m.type != F_REPLY || m.seq != f->seq) {
		fail("floor: no reply from the coordinator");
		return -1;
	}
	int64_t t1 = now_ns();
	f->to_private = !f->to_private;
	return (double)(t1 - t0) / 1000.0;
}

static bool floor_run(struct floor_set *f, struct samples *s, int warm, int count)
{
	for (int i = 0; i < warm; i++)
		if (floor_one(f) < 0)
			return false;
	int64_t t0 = now_ns();
	for (int i = 0; i < count; i++) {
		double us = floor_one(f);
		if (us < 0)
			return false;
		samples_add(s, us);
	}
	s->total_ns += now_ns() - t0;
	return true;
}

/* ---- main ---- */

static void guest_create(struct gmem_client *c, const char *name, uint64_t granule)
{
	int r = gmem_guest_create(c, name, GUEST_SIZE, granule, NULL);
	if (r < 0) {
		fprintf(stderr, "create %s: %s (%s)\n", name, strerror(-r), gmem_last_error(c));
		gmemd_stop(&d);
		exit(1);
	}
}

int main(void)
{
	static const char *const extra[] = { "--pool-size", "64G", "--log-level", "err", NULL };
	static struct grow rows[N_NS][N_KINDS];
	static struct guest_set sets[N_NS];
	static struct samples floor_s[N_NS];
	struct gmem_client *c;
	int64_t t_start = now_ns();

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *fa = getenv("BENCH_FLOOR_ANSWERS");
	floor_answers = fa && strcmp(fa, "1") == 0;
	gmemd_start(&d, extra);
	int r = gmem_connect(d.socket, GMEM_ROLE_VMM, &c);
	if (r < 0) {
		fprintf(stderr, "connect: %s\n", strerror(-r));
		gmemd_stop(&d);
		return 1;
	}
	gmem_set_timeout(c, CONVERT_TIMEOUT_MS);
	printf("bench-convert: %s, backend %s; gmemd ready in %lld ms; %ld CPUs online; nothing pinned "
	       "(gmem run and floor alike); %d chunks, gmem and floor alternating\n",
	       gmem_server_version(c), gmem_backend_name(c), (long long)d.ready_ms, sysconf(_SC_NPROCESSORS_ONLN),
	       CHUNKS);
	if (floor_answers)
		printf("BENCH_FLOOR_ANSWERS=1: the floor also answers every vote and ack, as gmemd does\n");

	for (size_t ni = 0; ni < N_NS; ni++) {
		struct guest_set *gs = &sets[ni];
		snprintf(gs->name[ROW_4K], sizeof(gs->name[0]), "n%d-4k", ns[ni]);
		snprintf(gs->name[ROW_2M], sizeof(gs->name[0]), "n%d-2m", ns[ni]);
		snprintf(gs->name[ROW_BATCH], sizeof(gs->name[0]), "n%d-batch", ns[ni]);
		guest_create(c, gs->name[ROW_4K], GMEM_GRANULE_4K);
		guest_create(c, gs->name[ROW_2M], GMEM_GRANULE_2M);
		guest_create(c, gs->name[ROW_BATCH], GMEM_GRANULE_4K);
		for (int k = 0; k < N_KINDS; k++) {
			struct grow *row = &rows[ni][k];
			row->guest = gs->name[k];
			row->next = GMEM_PRIVATE;
			switch (k) {
			case ROW_4K:
				row->ranges[0] = (struct gmem_range){ 0, 4 * KiB };
				row->n_ranges = 1;
				break;
			case ROW_2M:
				row->ranges[0] = (struct gmem_range){ 0, 2 * MiB };
				row->n_ranges = 1;
				break;
			default:
				for (size_t i = 0; i < BATCH; i++)
					row->ranges[i] = (struct gmem_range){ 2 * i * 4 * KiB, 4 * KiB };
				row->n_ranges = BATCH;
			}
			for (size_t i = 0; i < row->n_ranges; i++)
				row->bytes += row->ranges[i].length;
		}
	}

	bool ok = true;
	for (int chunk = 0; ok && chunk < CHUNKS; chunk++) {
		for (size_t ni = 0; ok && ni < N_NS; ni++) {
			int n = ns[ni], count = k_of_n[ni] / CHUNKS;
			struct gparts gp;
			struct floor_set fs;

			gparts_start(&gp, n, &sets[ni]);
			for (int k = 0; ok && k < N_KINDS; k++)
				ok = k == ROW_BATCH ? gmem_run(c, &rows[ni][k], n, WARMUP_BATCH, k_batch_of_n[ni] / CHUNKS)
						    : gmem_run(c, &rows[ni][k], n, WARMUP, count);
			gparts_stop(&gp);
			if (!ok)
				break;

			floor_start(&fs, n);
			ok = floor_run(&fs, &floor_s[ni], WARMUP, count);
			floor_stop(&fs);
		}
		fprintf(stderr, "chunk %d/%d done (%.1f s)\n", chunk + 1, CHUNKS, (double)(now_ns() - t_start) / 1e9);
	}
	if (!ok) {
		printf("FAIL: a run did not complete; no figures\n");
		gmemd_print_log(&d);
		gmem_disconnect(c);
		gmemd_stop(&d);
		return 1;
	}

	/* The final map: the 512-range batch (and the single ranges) as the last conversion left them. */
	for (size_t ni = 0; ni < N_NS; ni++) {
		if (!check_map(c, &rows[ni][ROW_BATCH], GMEM_GRANULE_4K))
			failed = 1;
		if (!check_map(c, &rows[ni][ROW_4K], GMEM_GRANULE_4K))
			failed = 1;
		if (!check_map(c, &rows[ni][ROW_2M], GMEM_GRANULE_2M))
			failed = 1;
	}

	printf("\n%-16s %11s %9s %9s %11s %9s %9s %9s\n", "row", "gmem conv/s", "gmem p50", "gmem p99",
	       "floor conv/s", "floor p50", "floor p99", "p50 ratio");
	double g50[N_NS][N_KINDS], f50[N_NS];
	for (size_t ni = 0; ni < N_NS; ni++) {
		struct samples *fsm = &floor_s[ni];
		double f99 = pct(fsm, 99);
		f50[ni] = pct(fsm, 50);
		for (int k = 0; k < N_KINDS; k++) {
			struct samples *s = &rows[ni][k].s;
			char label[32];
			double p99 = pct(s, 99);
			g50[ni][k] = pct(s, 50);
			snprintf(label, sizeof(label), "N=%d %s", ns[ni], kind_names[k]);
			printf("%-16s %11.0f %9.1f %9.1f %11.0f %9.1f %9.1f %9.2f\n", label, rate(s), g50[ni][k], p99,
			       rate(fsm), f50[ni], f99, f50[ni] > 0 ? g50[ni][k] / f50[ni] : 0);
		}
	}
	printf("(latencies in us, measured by the requester around gmem_convert; conversions measured per row "
	       "(single range / batch / floor): ");
	for (size_t ni = 0; ni < N_NS; ni++)
		printf("%sN=%d %zu/%zu/%zu", ni ? ", " : "", ns[ni], rows[ni][ROW_4K].s.n, rows[ni][ROW_BATCH].s.n,
		       floor_s[ni].n);
	printf(";\n the floor is one measurement per N (its messages do not depend on the ranges), shown on each "
	       "of its rows)\n\n");

	bool void_run = false;
	for (size_t ni = 0; ni < N_NS; ni++) {
		double lo = perf_lo[ni] * 0.5, hi = perf_hi[ni] * 1.5;
		bool in = f50[ni] >= lo && f50[ni] <= hi;
		char ref[32];
		if (perf_lo[ni] != perf_hi[ni])
			snprintf(ref, sizeof(ref), "%.0f-%.0f", perf_lo[ni], perf_hi[ni]);
		else
			snprintf(ref, sizeof(ref), "%.0f", perf_lo[ni]);
		printf("floor N=%d p50 %.1f us vs PERF.md %s us (+-50%%: %.0f-%.0f us): %s\n", ns[ni], f50[ni], ref,
		       lo, hi, in ? "within" : "OUTSIDE");
		void_run |= !in;
	}
	if (void_run)
		printf("VOID: floor outside +-50%% of PERF.md\n");

	printf("\ntargets:\n");
	bool all2x = true, all4x = true;
	for (size_t ni = 0; ni < N_NS; ni++) {
		bool t1 = g50[ni][ROW_4K] <= 2 * f50[ni];
		bool t2 = g50[ni][ROW_BATCH] < 4 * g50[ni][ROW_4K];
		all2x &= t1;
		all4x &= t2;
		printf("  N=%d: 4 KiB p50 %.1f us <= 2 x floor p50 (%.1f us): %s; 512-range batch p50 %.1f us < "
		       "4 x one 4 KiB (%.1f us): %s\n",
		       ns[ni], g50[ni][ROW_4K], 2 * f50[ni], t1 ? "holds" : "MISSED", g50[ni][ROW_BATCH],
		       4 * g50[ni][ROW_4K], t2 ? "holds" : "MISSED");
	}
	printf("target p50 within 2x of the floor for every N: %s\n", all2x ? "HOLDS" : "MISSED");
	printf("target 512-range batch under 4x one conversion for every N: %s\n", all4x ? "HOLDS" : "MISSED");

	gmem_disconnect(c);
	int st = gmemd_stop(&d);
	if (st != 0) {
		printf("FAIL: gmemd exited with status %d at stop\n", st);
		failed = 1;
	}
	printf("\ncorrectness: %s; total time %.1f s\n", failed ? "FAIL" : "ok", (double)(now_ns() - t_start) / 1e9);
	for (size_t ni = 0; ni < N_NS; ni++) {
		free(floor_s[ni].us);
		for (int k = 0; k < N_KINDS; k++)
			free(rows[ni][k].s.us);
	}
	return failed ? 1 : 0;
}
