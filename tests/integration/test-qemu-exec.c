/* SPDX-License-Identifier: MIT */
/*
 * gmemctl exec without QEMU: what the attachment held for a program promises, with this test binary
 * itself as the program ("holder" mode: it maps $GMEM_FD, says "ready", and exits when told).
 *   - the program inherits the guest's fd and size, and is a declared holder while it runs;
 *   - a to-private conversion of memory it holds is refused (it cannot vote), to-shared goes ahead,
 *     and --force is refused on memfd;
 *   - gmemctl SIGKILLed: the attachment stays while the program runs, and ends when it exits;
 *   - gmemctl's exit status is the program's;
 *   - gmemd attaches only a live child of the requester: not itself, its parent, a grandchild, a
 *     zombie or a gone pid. That part alone runs as "refusals" against gmemd-any-pid, a test-only
 *     gmemd that skips the parent check: that run must fail (suite pid-control).
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "qemu/spawn.h"

#define MiB (UINT64_C(1) << 20)

static struct gmemd d;
static struct gmem_client *c;
static char self[4096];

static int holder(void)
{
	const char *fds = getenv("GMEM_FD"), *sizes = getenv("GMEM_SIZE");
	char line[64];
	if (!fds || !sizes)
		return 90;
	int fd = atoi(fds);
	size_t size = strtoull(sizes, NULL, 10);
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 91;
	p[0] = 0x5a; /* a holder uses its memory */
	printf("ready %d %s %zu\n", (int)getpid(), fds, size);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 92;
	return strncmp(line, "exit ", 5) == 0 ? atoi(line + 5) : 93;
}

static uint64_t attachments(const char *name)
{
	struct gmem_guest_info *gs;
	size_t n;
	uint64_t a = UINT64_MAX;
	CHECK(gmem_guest_list(c, &gs, &n) == 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(gs[i].name, name) == 0)
			a = gs[i].attachments;
	free(gs);
	return a;
}

static bool no_attachments(void *name)
{
	return attachments(name) == 0;
}

static bool only_us(void *arg)
{
	struct gmem_status s;
	(void)arg;
	CHECK(gmem_status(c, &s) == 0);
	return s.clients == 1;
}

static int convert(const char *name, uint64_t off, uint64_t len, enum gmem_target t, struct gmem_convert_result *res)
{
	struct gmem_range r = { off, len };
	return gmem_convert(c, name, &r, 1, t, 0, res);
}

/* Reads the holder's "ready PID FD SIZE"; returns its pid. */
static pid_t expect_ready(struct spawned *s, uint64_t size)
{
	char line[128];
	int pid, fd;
	unsigned long long sz;
	CHECK(msg_recv(s->from, line, sizeof(line), 10000));
	CHECK(sscanf(line, "ready %d %d %llu", &pid, &fd, &sz) == 3);
	CHECK(fd > 2);
	CHECK_EQ(sz, size);
	return pid;
}

static void test_holder_lifetime(void)
{
	struct gmem_convert_result res;
	struct spawned s;
	char *out, *err;

	CHECK(gmem_guest_create(c, "g", 8 * MiB, 0, NULL) == 0);
	CHECK(convert("g", 4 * MiB, MiB, GMEM_PRIVATE, &res) == 0 && res.outcome == GMEM_COMMITTED);
	gmem_convert_result_free(&res);

	spawn_exec(&s, d.socket, "g", (const char *const[]){ self, "holder", NULL }, false);
	pid_t h = expect_ready(&s, 8 * MiB);
	CHECK_EQ(attachments("g"), 1);

	/* It cannot vote: to-private of what it holds is refused, naming it. */
	CHECK_EQ(convert("g", 0, 4096, GMEM_PRIVATE, &res), -EBUSY);
	char want[64];
	snprintf(want, sizeof(want), "process %d", (int)h);
	CHECK(strstr(gmem_last_error(c), want));
	const char *conv[] = { binary("GMEMCTL"), "--socket", d.socket, "convert", "g", "0", "4K", "private", NULL };
	CHECK_EQ(run_capture(conv, &out, &err), 1);
	CHECK(strstr(err, "cannot vote") && strstr(err, want));
	free(out);
	free(err);
	const char *force[] = { binary("GMEMCTL"), "--socket", d.socket, "convert", "g", "0", "4K", "private",
				"--force", NULL };
	CHECK_EQ(run_capture(force, &out, &err), 1);
	CHECK(strstr(err, "kmod"));
	free(out);
	free(err);
	/* To-shared goes ahead without it: it is no participant. */
	CHECK(convert("g", 4 * MiB, MiB, GMEM_SHARED, &res) == 0);
	CHECK(res.outcome == GMEM_COMMITTED);
	CHECK_EQ(res.changed, MiB);
	CHECK_EQ(res.participants, 0);
	gmem_convert_result_free(&res);

	/* gmemctl killed: the program runs on, and so does its attachment. */
	CHECK(kill(s.pid, SIGKILL) == 0);
	CHECK_EQ(spawn_wait(&s), 128 + SIGKILL);
	CHECK(wait_until(only_us, NULL, 10000));
	CHECK(kill(h, 0) == 0);
	CHECK_EQ(attachments("g"), 1);
	CHECK_EQ(convert("g", 0, 4096, GMEM_PRIVATE, &res), -EBUSY);

	/* The program exits: gmemd ends the attachment by itself (we are its subreaper, so we reap it). */
	msg_send(s.to, "exit 0");
	int st;
	CHECK(waitpid(h, &st, 0) == h && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(wait_until(no_attachments, "g", 10000));
	CHECK(convert("g", 0, 4096, GMEM_PRIVATE, &res) == 0 && res.outcome == GMEM_COMMITTED);
	gmem_convert_result_free(&res);
	close(s.to);
	close(s.from);

	/* The normal way: gmemctl waits and exits with the program's status; the attachment ends with it. */
	spawn_exec(&s, d.socket, "g", (const char *const[]){ self, "holder", NULL }, false);
	expect_ready(&s, 8 * MiB);
	msg_send(s.to, "exit 7");
	CHECK_EQ(spawn_wait(&s), 7);
	CHECK(wait_until(no_attachments, "g", 10000));
	close(s.to);
	close(s.from);

	/* The guest destroyed under a running holder: its attachment goes with the guest. */
	CHECK(gmem_guest_create(c, "h", 4 * MiB, 0, NULL) == 0);
	spawn_exec(&s, d.socket, "h", (const char *const[]){ self, "holder", NULL }, false);
	expect_ready(&s, 4 * MiB);
	CHECK(gmem_guest_destroy(c, "h") == 0);
	msg_send(s.to, "exit 0");
	CHECK_EQ(spawn_wait(&s), 0);
	close(s.to);
	close(s.from);
	CHECK(gmem_guest_destroy(c, "g") == 0);
}

static pid_t fork_waiting(int *release)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char b;
		close(p[1]);
		_exit(read(p[0], &b, 1) < 0);
	}
	close(p[0]);
	*release = p[1];
	return pid;
}

static void reap(pid_t pid, int release)
{
	close(release);
	CHECK(waitpid(pid, NULL, 0) == pid);
}

static void expect_refused(pid_t pid, int err)
{
	uint64_t id;
	int r = gmem_attach_pid(c, "r", 0, MiB, pid, &id);
	if (r != err) {
		fprintf(stderr, "attach for pid %d: %d (%s), want %d\n", (int)pid, r, gmem_last_error(c), err);
		exit(1);
	}
}

static void test_refusals(void)
{
	int rel, rel2;
	uint64_t id;

	CHECK(gmem_guest_create(c, "r", MiB, 0, NULL) == 0);
	/* Our own child is the one process we may name. */
	pid_t kid = fork_waiting(&rel);
	if (gmem_attach_pid(c, "r", 0, MiB, kid, &id) != 0) {
		fprintf(stderr, "attach for our child %d: %s\n", (int)kid, gmem_last_error(c));
		exit(1);
	}
	CHECK_EQ(attachments("r"), 1);
	reap(kid, rel);
	CHECK(wait_until(no_attachments, "r", 10000));

	expect_refused(getpid(), -EPERM);
	expect_refused(getppid(), -EPERM);
	expect_refused(1, -EPERM);

	/* A grandchild is not ours. */
	int p[2];
	CHECK(pipe(p) == 0);
	kid = fork_waiting(&rel);
	pid_t outer = fork();
	CHECK(outer >= 0);
	if (outer == 0) {
		pid_t g = fork_waiting(&rel2);
		(void)!write(p[1], &g, sizeof(g));
		waitpid(g, NULL, 0);
		_exit(0);
	}
	pid_t grandchild;
	CHECK(read(p[0], &grandchild, sizeof(grandchild)) == sizeof(grandchild));
	expect_refused(grandchild, -EPERM);
	kill(grandchild, SIGKILL);
	CHECK(waitpid(outer, NULL, 0) == outer);
	reap(kid, rel);

	/* A zombie child has exited: nothing to hold. */
	kid = fork_waiting(&rel);
	close(rel);
	siginfo_t si;
	CHECK(waitid(P_PID, (id_t)kid, &si, WEXITED | WNOWAIT) == 0);
	expect_refused(kid, -ESRCH);
	CHECK(waitpid(kid, NULL, 0) == kid);
	/* And once reaped, the pid names nothing (or, reused by now, no child of ours). */
	int r = gmem_attach_pid(c, "r", 0, MiB, kid, &id);
	CHECK(r == -ESRCH || r == -EPERM);
	CHECK_EQ(attachments("r"), 0);
	CHECK(gmem_guest_destroy(c, "r") == 0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "holder") == 0)
		return holder();
	bool refusals_only = argc > 1 && strcmp(argv[1], "refusals") == 0;

	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0);
	self[n] = 0;
	/* Orphaned holders come to us, so the test can reap them and nothing outlives it. */
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	signal(SIGPIPE, SIG_IGN);

	gmemd_start(&d, NULL);
	CHECK(gmem_connect(d.socket, GMEM_ROLE_ADMIN, &c) == 0);
	test_refusals();
	if (!refusals_only)
		test_holder_lifetime();
	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
