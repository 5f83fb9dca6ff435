/* SPDX-License-Identifier: MIT */
/*
 * gmemctl as an operator runs it: create, list as JSON (the size in bytes), destroy; every error is
 * one line on stderr with a non-zero exit status (1 refused or unreachable, 2 usage).
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct gmemd d;

/* Runs gmemctl --socket S ARGS...; returns the exit status. */
static int ctl(char **out, char **err, const char *a1, const char *a2, const char *a3, const char *a4)
{
	const char *argv[] = { binary("GMEMCTL"), "--socket", d.socket, a1, a2, a3, a4, NULL };
	return run_capture(argv, out, err);
}

static int lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void expect_fail(int want, const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *out, *err;
	int st = ctl(&out, &err, a1, a2, a3, a4);
	if (st != want || lines(err) != 1 || strncmp(err, "gmemctl: ", 9) != 0 || *out) {
		fprintf(stderr, "gmemctl %s %s: status %d (want %d), stdout '%s', stderr '%s'\n", a1, a2 ? a2 : "", st,
			want, out, err);
		exit(1);
	}
	free(out);
	free(err);
}

static struct json_object *find(struct json_object *arr, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *g = json_object_array_get_idx(arr, i), *n;
		if (json_object_object_get_ex(g, "name", &n) && strcmp(json_object_get_string(n), name) == 0)
			return g;
	}
	return NULL;
}

/* A participant that refuses with a reason full of terminal escapes. */
static void refuse(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_vote(c, cv->epoch, cv->seq, false, EBUSY, "no\x1b[2J\x1b]0;pwned\x07 way");
}

static int refuser(struct child_io *io, void *arg)
{
	static const struct gmem_participant_ops ops = { .prepare = refuse };
	struct gmem_client *c;
	(void)arg;
	if (gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) < 0 ||
	    gmem_attach(c, "vm2", 0, 2 << 20, GMEM_ATTACH_MMAP, NULL) < 0)
		return 1;
	gmem_set_participant(c, &ops, NULL);
	msg_send(io->out, "attached");
	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		poll(p, 2, -1);
		if (p[1].revents)
			break;
		if (gmem_dispatch(c) < 0)
			return 2;
	}
	gmem_disconnect(c);
	return 0;
}

static void test_convert_map_watch(void)
{
	char *out, *err;
	struct child ref;

	/* watch --json runs in the background and must show the conversions below. */
	int pipefd[2];
	CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
	pid_t w = fork();
	CHECK(w >= 0);
	if (w == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		execl(binary("GMEMCTL"), "gmemctl", "--socket", d.socket, "watch", "--json", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);

	CHECK_EQ(ctl(&out, &err, "create", "vm2", "8M", NULL), 0);
	free(out);
	free(err);

	/* Wait until the watcher is registered: convert nothing (shared to shared still makes events) until
	 * it reports something, then sync on a marker conversion's number. */
	char line[1024]; /* read unbuffered (msg_recv): stdio would swallow lines that poll then misses */
	const char *noop[] = { binary("GMEMCTL"), "--socket", d.socket, "--json", "convert", "vm2", "0", "4K", "shared",
			       NULL };
	int64_t deadline = harness_deadline(10000);
	for (;;) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		CHECK_EQ(run_capture(noop, &out, &err), 0);
		free(out);
		free(err);
		if (poll(&p, 1, 100) == 1)
			break;
		CHECK(harness_now_ms() < deadline);
	}
	CHECK_EQ(run_capture(noop, &out, &err), 0);
	struct json_object *mk = json_tokener_parse(out), *mv;
	CHECK(mk && json_object_object_get_ex(mk, "conversion", &mv));
	int64_t marker = json_object_get_int64(mv);
	json_object_put(mk);
	free(out);
	free(err);
	for (;;) {
		CHECK(msg_recv(pipefd[0], line, sizeof(line), 10000));
		struct json_object *o = json_tokener_parse(line), *seq, *st;
		CHECK(o && json_object_object_get_ex(o, "conversion", &seq) && json_object_object_get_ex(o, "state", &st));
		bool last = json_object_get_int64(seq) == marker && strcmp(json_object_get_string(st), "committed") == 0;
		json_object_put(o);
		if (last)
			break;
	}

	CHECK_EQ(ctl(&out, &err, "convert", "vm2", "0", "4M"), 2); /* no target */
	free(out);
	free(err);
	const char *argv1[] = { binary("GMEMCTL"), "--socket", d.socket, "convert", "vm2", "2M", "2M", "private", NULL };
	CHECK_EQ(run_capture(argv1, &out, &err), 0);
	CHECK(strstr(out, "committed"));
	free(out);
	free(err);

	child_start(&ref, refuser, NULL);
	msg_expect(ref.from_child, "attached", 10000);
	const char *argv2[] = { binary("GMEMCTL"), "--socket", d.socket, "convert", "vm2", "0", "4M", "private", NULL };
	CHECK_EQ(run_capture(argv2, &out, &err), 3); /* aborted */
	char pid[32];
	snprintf(pid, sizeof(pid), "refused by pid %d", ref.pid);
	CHECK(strstr(out, pid) && strstr(out, "way"));
	CHECK(!strchr(out, '\x1b') && !strchr(out, '\x07')); /* the escapes never reach the terminal */
	free(out);
	free(err);
	msg_send(ref.to_child, "exit");
	CHECK_EQ(child_wait(&ref), 0);

	CHECK_EQ(ctl(&out, &err, "map", "vm2", "--json", NULL), 0);
	struct json_object *m = json_tokener_parse(out), *runs, *v;
	CHECK(m && json_object_object_get_ex(m, "runs", &runs) && json_object_array_length(runs) == 3);
	CHECK(json_object_object_get_ex(json_object_array_get_idx(runs, 1), "state", &v));
	CHECK(strcmp(json_object_get_string(v), "private") == 0);
	CHECK(json_object_object_get_ex(m, "private_bytes", &v) && json_object_get_int64(v) == 2 << 20);
	json_object_put(m);
	free(out);
	free(err);
	const char *argv3[] = { binary("GMEMCTL"), "--socket", d.socket, "map", "vm2", NULL };
	CHECK_EQ(run_capture(argv3, &out, &err), 0);
	CHECK(strstr(out, "[") && strstr(out, "#") && strstr(out, "private"));
	free(out);
	free(err);

	/* The watcher saw: queued, preparing, committed (first); queued, preparing, aborted (second). */
	const char *want[] = { "queued", "preparing", "committed", "queued", "preparing", "aborted" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!msg_recv(pipefd[0], line, sizeof(line), 10000)) {
			fprintf(stderr, "watch: no line %zu (want state %s)\n", i, want[i]);
			exit(1);
		}
		struct json_object *o = json_tokener_parse(line), *st;
		CHECK(o && json_object_object_get_ex(o, "state", &st));
		if (strcmp(json_object_get_string(st), want[i]) != 0) {
			fprintf(stderr, "watch line %zu: want state %s, got %s", i, want[i], line);
			exit(1);
		}
		json_object_put(o);
	}
	kill(w, SIGINT);
	int st;
	CHECK(waitpid(w, &st, 0) == w && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(pipefd[0]);
}

int main(void)
{
	char *out, *err;
	struct json_object *arr, *size;

	signal(SIGPIPE, SIG_IGN); /* a write to a child that died must fail a CHECK, not kill the test */

	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", NULL });

	CHECK_EQ(ctl(&out, &err, "create", "vm1", "64M", NULL), 0);
	CHECK(*err == '\0');
	free(out);
	free(err);

	CHECK_EQ(ctl(&out, &err, "guests", "--json", NULL, NULL), 0);
	arr = json_tokener_parse(out);
	CHECK(arr && json_object_is_type(arr, json_type_array));
	struct json_object *g = find(arr, "vm1");
	CHECK(g && json_object_object_get_ex(g, "size", &size));
	CHECK_EQ(json_object_get_int64(size), 64LL << 20);
	json_object_put(arr);
	free(out);
	free(err);

	CHECK_EQ(ctl(&out, &err, "status", "--json", NULL, NULL), 0);
	arr = json_tokener_parse(out);
	CHECK(arr && json_object_object_get_ex(arr, "pool_used", &size));
	CHECK_EQ(json_object_get_int64(size), 64LL << 20);
	json_object_put(arr);
	free(out);
	free(err);

	expect_fail(1, "create", "vm1", "64M", NULL);        /* exists */
	expect_fail(1, "create", "huge", "2G", NULL);        /* pool is 1G */
	expect_fail(1, "create", "x", "5000", NULL);         /* not a granule multiple */
	expect_fail(2, "create", "x", "lots", NULL);         /* not a size */
	expect_fail(2, "create", "x", "4M", "--granule=3K"); /* bad granule */
	expect_fail(2, "create", "x", NULL, NULL);           /* missing argument */
	expect_fail(2, "frobnicate", NULL, NULL, NULL);      /* unknown command */
	expect_fail(2, "--bogus", "status", NULL, NULL);     /* unknown option */

	CHECK_EQ(ctl(&out, &err, "destroy", "vm1", NULL, NULL), 0);
	free(out);
	free(err);
	expect_fail(1, "destroy", "vm1", NULL, NULL);
	CHECK_EQ(ctl(&out, &err, "guests", "--json", NULL, NULL), 0);
	arr = json_tokener_parse(out);
	CHECK(arr && !find(arr, "vm1"));
	json_object_put(arr);
	free(out);
	free(err);

	test_convert_map_watch();

	const char *help[] = { binary("GMEMCTL"), "--help", NULL };
	CHECK_EQ(run_capture(help, &out, &err), 0);
	CHECK(strstr(out, "create GUEST SIZE") && strstr(out, "--json"));
	free(out);
	free(err);

	CHECK_EQ(gmemd_stop(&d), 0);

	/* A backend that is named and unavailable fails the start: never a fallback to memfd. */
	char dir[] = "/tmp/gmem-test-kmod-XXXXXX", sock[64], state[64], nodev[64];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(nodev, sizeof(nodev), "%s/no-such-node", dir);
	CHECK_EQ(mkdir(state, 0700), 0);
	const char *kmod[] = { binary("GMEMD"), "--backend", "kmod", "--kmod-device", nodev, "--socket", sock,
			       "--state-dir", state, "--bus", "none", NULL };
	CHECK_EQ(run_capture(kmod, &out, &err), 1);
	CHECK(strstr(err, "cannot open") && strstr(err, "not falling back") && strstr(err, "start-up failed"));
	CHECK(access(sock, F_OK) < 0); /* it never listened */
	free(out);
	free(err);
	/* A node that is not gmem_pfn (it does not answer the capability query) is refused, not guessed at. */
	const char *notmod[] = { binary("GMEMD"), "--backend", "kmod", "--kmod-device", "/dev/null", "--socket", sock,
				 "--state-dir", state, "--bus", "none", NULL };
	CHECK_EQ(run_capture(notmod, &out, &err), 1);
	CHECK(strstr(err, "does not answer the capability query") && strstr(err, "not falling back"));
	CHECK(access(sock, F_OK) < 0);
	free(out);
	free(err);
	rmdir(state);
	rmdir(dir);

	/* No gmemd: one line, status 1. */
	expect_fail(1, "status", NULL, NULL, NULL);
	printf("ok gmemctl create/guests --json/destroy/convert/map/watch and their errors\n");
	return 0;
}
