/* SPDX-License-Identifier: MIT */
/*
 * Delegation with real identities: the guest's owner (this process, root) opens its guest and delegates a
 * range to uid 10002, a child process that redeems the token over its own connection, maps its own file
 * and sees the owner's data, and takes part in conversions through its own attachment (it can make one
 * abort). Withdrawing the delegation ends that attachment alone. A token is single-use, expires, dies
 * with the connection that made it, and only the named grantee (with its grant still in place) redeems
 * it: uid 10003, which holds a grant of its own, cannot.
 *
 * "test-delegate control" runs the non-grantee check against gmemd-anyredeemer (built with
 * -DGMEM_TEST_ANY_REDEEMER, which skips the grantee check) and passes only if the check catches it.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <grp.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define KiB 1024ULL
#define SIZE (1024 * KiB)
#define RANGE (64 * KiB)
#define UID_B 10002
#define UID_C 10003

static struct gmemd d;

static int drop_to(uid_t uid)
{
	return setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0 ? -1 : 0;
}

/* ---- the grantee: commands on its pipe, one answer line each ---- */

struct grantee {
	struct child_io *io;
	bool refuse;
};

static void b_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct grantee *b = ud;
	gmem_vote(c, cv->epoch, cv->seq, !b->refuse, b->refuse ? EBUSY : 0, b->refuse ? "the back end is busy" : NULL);
}

static void b_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_ack(c, cv->epoch, cv->seq);
}

static const struct gmem_participant_ops b_ops = { .prepare = b_prepare, .commit = b_commit };

static void b_event(struct gmem_client *c, const struct gmem_event *ev, void *ud)
{
	struct grantee *b = ud;
	char line[96];
	(void)c;
	if (ev->type == GMEM_EVENT_REVOKED) {
		snprintf(line, sizeof(line), "revoked %llu %s", (unsigned long long)ev->attachment, ev->guest);
		msg_send(b->io->out, line);
	}
}

static int grantee_main(struct child_io *io, void *arg)
{
	struct grantee b = { .io = io };
	struct gmem_client *c;
	char line[256];
	(void)arg;

	if (drop_to(UID_B) < 0 || gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) < 0)
		return 10;
	gmem_set_participant(c, &b_ops, &b);
	gmem_set_event_handler(c, b_event, &b);
	msg_send(io->out, "ready");
	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			return 11;
		if (p[0].revents && gmem_dispatch(c) < 0)
			return 12;
		if (!p[1].revents)
			continue;
		if (!msg_recv(io->in, line, sizeof(line), 1000))
			return 13;
		if (strncmp(line, "redeem ", 7) == 0) {
			int fd;
			uint64_t at;
			struct gmem_guest_info gi;
			int r = gmem_redeem(c, line + 7, &fd, &at, &gi);
			if (r < 0) {
				snprintf(line, sizeof(line), "err %d", -r);
				msg_send(io->out, line);
				continue;
			}
			/* Its own file of the same memory: it sees what the owner wrote. */
			unsigned char *mem = mmap(NULL, RANGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (mem == MAP_FAILED)
				return 14;
			for (uint64_t i = 0; i < RANGE; i++)
				if (mem[i] != (unsigned char)(i * 13 + 1))
					return 15;
			mem[0] = 0xee; /* and the owner will see this */
			munmap(mem, RANGE);
			close(fd);
			snprintf(line, sizeof(line), "redeemed %llu %s", (unsigned long long)at, gi.name);
			msg_send(io->out, line);
		} else if (strcmp(line, "no") == 0 || strcmp(line, "yes") == 0) {
			b.refuse = line[0] == 'n';
			msg_send(io->out, "ok");
		} else if (strcmp(line, "exit") == 0) {
			gmem_disconnect(c);
			return 0;
		}
	}
}

/* The owner holds the vmm lease: it takes part in its own conversions, always yes. */
static void own_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static const struct gmem_participant_ops own_ops = { .prepare = own_prepare, .commit = b_commit };

static void ask(struct child *b, const char *cmd, char *answer, size_t size)
{
	msg_send(b->to_child, cmd);
	CHECK(msg_recv(b->from_child, answer, size, 30000));
}

/* ---- someone else with a grant of its own tries the token ---- */

static int other_redeems(struct child_io *io, void *arg)
{
	struct gmem_client *c;
	int fd;
	(void)io;
	if (drop_to(UID_C) < 0 || gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) < 0)
		return 10;
	int r = gmem_redeem(c, arg, &fd, NULL, NULL);
	gmem_disconnect(c);
	if (r == 0) {
		close(fd);
		return 3; /* a non-grantee got the memory */
	}
	return r == -EPERM ? 0 : 4;
}

static int run_other(const char *token)
{
	struct child ch;
	child_start(&ch, other_redeems, (void *)token);
	return child_wait(&ch);
}

static uint64_t delegations_of(struct gmem_client *c)
{
	struct gmem_guest_info *gs;
	size_t n;
	uint64_t v = UINT64_MAX;
	CHECK_EQ(gmem_guest_list(c, &gs, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(gs[i].name, "vm") == 0)
			v = gs[i].delegations;
	free(gs);
	return v;
}

static bool no_delegations(void *arg)
{
	return delegations_of(arg) == 0;
}

static void convert(struct gmem_client *c, uint64_t len, enum gmem_target t, enum gmem_outcome want,
		    uint64_t parts, struct gmem_convert_result *res)
{
	struct gmem_range r = { 0, len };
	CHECK_EQ(gmem_convert(c, "vm", &r, 1, t, 0, res), 0);
	if (res->outcome != want || res->participants != parts) {
		fprintf(stderr, "delegate: conversion ended %d with %llu participants, expected %d with %llu\n",
			res->outcome, (unsigned long long)res->participants, want, (unsigned long long)parts);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	bool control = argc > 1 && strcmp(argv[1], "control") == 0;
	struct gmem_client *own;
	struct gmem_delegation dl;
	struct gmem_convert_result res;
	char line[256], cmd[96];
	int fd;

	gmemd_start(&d, (const char *[]){ "--socket-mode", "0666", "--token-timeout", "300", "--log-level", "info",
					  NULL });
	CHECK(chmod(d.dir, 0755) == 0); /* other uids must reach the socket */
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &own), 0);
	CHECK_EQ(gmem_guest_create(own, "vm", SIZE, 0, NULL), 0);
	CHECK_EQ(gmem_guest_open(own, "vm", &fd, NULL), 0);
	unsigned char *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(mem != MAP_FAILED);
	for (uint64_t i = 0; i < RANGE; i++)
		mem[i] = (unsigned char)(i * 13 + 1);
	CHECK_EQ(gmem_grant(own, "vm", "uid:10002", GMEM_ROLE_DEVICE), 0);
	CHECK_EQ(gmem_grant(own, "vm", "uid:10003", GMEM_ROLE_DEVICE), 0);
	CHECK_EQ(gmem_delegate(own, "vm", "uid:10002", 0, RANGE, GMEM_ATTACH_IOMMU, &dl), 0);
	CHECK_EQ(strlen(dl.token), GMEM_TOKEN_LEN);

	int st = run_other(dl.token);
	if (control) {
		printf("control: a non-grantee's redeem %s\n", st == 3 ? "succeeded, and the check caught it" : "failed");
		gmem_disconnect(own);
		CHECK_EQ(gmemd_stop(&d), 0);
		return st == 3 ? 0 : 1;
	}
	CHECK_EQ(st, 0);
	printf("ok uid 10003, with a grant of its own, cannot redeem uid 10002's token: EPERM\n");

	struct child b;
	child_start(&b, grantee_main, NULL);
	msg_expect(b.from_child, "ready", 30000);
	snprintf(cmd, sizeof(cmd), "redeem %s", dl.token);
	ask(&b, cmd, line, sizeof(line));
	unsigned long long b_at;
	CHECK(sscanf(line, "redeemed %llu vm", &b_at) == 1);
	CHECK_EQ(mem[0], 0xee); /* the grantee's write, through its own file */
	ask(&b, cmd, line, sizeof(line));
	CHECK(strcmp(line, "err 2") == 0); /* ENOENT: single use */
	printf("ok the grantee redeemed the token once (attachment %llu, its own file, the same memory)\n", b_at);

	/* The grantee's attachment takes part: with its yes the conversion commits, with its no it aborts. */
	CHECK_EQ(gmem_lease(own, "vm"), 0);
	gmem_set_participant(own, &own_ops, NULL);
	convert(own, RANGE, GMEM_PRIVATE, GMEM_COMMITTED, 2, &res);
	gmem_convert_result_free(&res);
	ask(&b, "no", line, sizeof(line));
	convert(own, 4 * KiB, GMEM_SHARED, GMEM_ABORTED, 2, &res);
	CHECK(res.n_refusals == 1 && res.refusals[0].pid == (uint32_t)b.pid && res.refusals[0].err == EBUSY);
	gmem_convert_result_free(&res);
	ask(&b, "yes", line, sizeof(line));
	printf("ok the grantee's attachment takes part in conversions (its no aborts one)\n");

	/* Withdrawn: the grantee's attachment ends, nothing else does. */
	uint64_t own_at;
	CHECK_EQ(gmem_attach(own, "vm", 0, SIZE, GMEM_ATTACH_MMAP, &own_at), 0);
	CHECK_EQ(gmem_undelegate(own, dl.id), 0);
	CHECK(msg_recv(b.from_child, line, sizeof(line), 30000));
	snprintf(cmd, sizeof(cmd), "revoked %llu vm", b_at);
	CHECK(strcmp(line, cmd) == 0);
	CHECK_EQ(gmem_undelegate(own, dl.id), -ENOENT);
	struct gmem_guest_info *gs;
	size_t n;
	CHECK_EQ(gmem_guest_list(own, &gs, &n), 0);
	CHECK(n == 1 && gs[0].attachments == 1 && gs[0].delegations == 0);
	free(gs);
	convert(own, RANGE, GMEM_SHARED, GMEM_COMMITTED, 1, &res); /* the grantee is not asked any more */
	CHECK_EQ(res.changed, RANGE);
	gmem_convert_result_free(&res);
	CHECK_EQ(gmem_detach(own, own_at), 0);
	printf("ok undelegate ends the grantee's attachment alone\n");

	/* A token expires. */
	CHECK_EQ(gmem_delegate(own, "vm", "uid:10002", 0, RANGE, GMEM_ATTACH_MMAP, &dl), 0);
	CHECK_EQ(delegations_of(own), 1);
	CHECK(wait_until(no_delegations, own, 10000));
	snprintf(cmd, sizeof(cmd), "redeem %s", dl.token);
	ask(&b, cmd, line, sizeof(line));
	CHECK(strcmp(line, "err 2") == 0);
	printf("ok an expired token: ENOENT\n");

	/* A token dies with the connection that made it. */
	struct gmem_client *other;
	int ofd;
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &other), 0);
	CHECK_EQ(gmem_delegate(other, "vm", "uid:10002", 0, RANGE, GMEM_ATTACH_MMAP, &dl), -EPERM); /* no file */
	CHECK(strstr(gmem_last_error(other), "open it first"));
	CHECK_EQ(gmem_guest_open(other, "vm", &ofd, NULL), 0);
	close(ofd);
	CHECK_EQ(gmem_delegate(other, "vm", "uid:10002", 0, RANGE, GMEM_ATTACH_MMAP, &dl), 0);
	gmem_disconnect(other);
	CHECK(wait_until(no_delegations, own, 10000));
	snprintf(cmd, sizeof(cmd), "redeem %s", dl.token);
	ask(&b, cmd, line, sizeof(line));
	CHECK(strcmp(line, "err 2") == 0);
	printf("ok a token dies with the connection that made it; delegating needs a file of the guest\n");

	/* Bad delegations, and a grant revoked between delegate and redeem. */
	CHECK_EQ(gmem_delegate(own, "vm", "uid:10004", 0, RANGE, GMEM_ATTACH_MMAP, &dl), -ENOENT); /* no grant */
	CHECK_EQ(gmem_delegate(own, "vm", "uid:10002", 4096, SIZE, GMEM_ATTACH_MMAP, &dl), -ERANGE);
	CHECK_EQ(gmem_delegate(own, "vm", "uid:10002", 100, RANGE, GMEM_ATTACH_MMAP, &dl), -EINVAL);
	CHECK_EQ(gmem_redeem(own, "0123456789abcdef0123456789abcdef", &ofd, NULL, NULL), -ENOENT);
	CHECK_EQ(gmem_delegate(own, "vm", "uid:10002", 0, RANGE, GMEM_ATTACH_MMAP, &dl), 0);
	CHECK_EQ(gmem_revoke(own, "vm", "uid:10002", GMEM_ROLE_DEVICE), 0);
	snprintf(cmd, sizeof(cmd), "redeem %s", dl.token);
	ask(&b, cmd, line, sizeof(line));
	CHECK(strcmp(line, "err 1") == 0); /* EPERM */
	printf("ok a grant revoked before the redeem: EPERM\n");

	msg_send(b.to_child, "exit");
	CHECK_EQ(child_wait(&b), 0);
	munmap(mem, SIZE);
	close(fd);
	gmem_disconnect(own);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
