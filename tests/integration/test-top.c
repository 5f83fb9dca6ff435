/* SPDX-License-Identifier: MIT */
/*
 * gmemctl top in a real terminal: tmux runs it in a detached session while a VMM and a device process
 * keep converting a guest; the test reads the screen with capture-pane until the busy guest shows a
 * rate above zero, latencies and its slowest participant, prints the screen, then ends top with q (and
 * a second one with Ctrl-C) and checks it exited 0. Without a terminal, top prints one snapshot (text
 * and --json) with the same figures.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)

static struct gmemd d;
static char tmux_sock[64];

static int tmux(char **out, const char *a1, const char *a2, const char *a3, const char *a4, const char *a5,
		const char *a6, const char *a7)
{
	char *err;
	const char *argv[] = { "tmux", "-L", tmux_sock, "-f", "/dev/null", a1, a2, a3, a4, a5, a6, a7, NULL };
	int st = run_capture(argv, out, &err);
	free(err);
	return st;
}

/* The device: attached to the busy range, votes yes and acks everything. */
static void d_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void d_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_ack(c, cv->epoch, cv->seq);
}

static const struct gmem_participant_ops ops = { .prepare = d_prepare, .commit = d_commit };

static int device(struct child_io *io, void *arg)
{
	struct gmem_client *c;
	(void)arg;
	if (gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) < 0 ||
	    gmem_attach(c, "busy", 0, 2 * MiB, GMEM_ATTACH_MMAP, NULL) < 0)
		return 10;
	gmem_set_participant(c, &ops, NULL);
	msg_send(io->out, "ready");
	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents)
			break;
		if (gmem_dispatch(c) < 0)
			return 11;
	}
	gmem_disconnect(c);
	return 0;
}

/* The VMM: leases busy and converts [0, 2M) back and forth until told to stop. */
static int converter(struct child_io *io, void *arg)
{
	struct gmem_client *c;
	const struct gmem_range r = { 0, 2 * MiB };
	(void)arg;
	if (gmem_connect(d.socket, GMEM_ROLE_VMM, &c) < 0 || gmem_lease(c, "busy") < 0)
		return 10;
	gmem_set_participant(c, &ops, NULL);
	msg_send(io->out, "ready");
	for (unsigned i = 0;; i++) {
		struct pollfd p = { .fd = io->in, .events = POLLIN };
		if (poll(&p, 1, 0) > 0)
			break;
		struct gmem_convert_result res;
		if (gmem_convert(c, "busy", &r, 1, i % 2 ? GMEM_SHARED : GMEM_PRIVATE, 0, &res) < 0)
			return 11;
		gmem_convert_result_free(&res);
	}
	gmem_disconnect(c);
	return 0;
}

/* The first line of the screen that starts with name; NULL if none. */
static const char *row_of(const char *screen, const char *name)
{
	size_t n = strlen(name);
	for (const char *l = screen; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, name, n) == 0 && l[n] == ' ')
			return l;
	return NULL;
}

static bool busy_shown(const char *screen)
{
	const char *row = row_of(screen, "busy");
	double rate = 0;
	return row && sscanf(row, "busy %lf", &rate) == 1 && rate > 0 && strstr(row, "pid ") &&
	       row_of(screen, "idle") && strstr(screen, "quarantined: 0\n");
}

static char *screen;

static bool screen_ready(void *arg)
{
	free(screen);
	screen = NULL;
	if (tmux(&screen, "capture-pane", "-p", "-t", arg, NULL, NULL, NULL) != 0)
		return false;
	return busy_shown(screen);
}

/* The shell around top records its exit status and the terminal's settings before and after, so the
 * test judges by top's own status (not tmux's bookkeeping) and sees the terminal given back. The shell
 * ignores SIGINT; top installs its own handler, so Ctrl-C reaches only top. */
static char status_path[400], before_path[400], after_path[400];

static bool file_has_line(void *path)
{
	FILE *f = fopen(path, "r");
	char line[256];
	bool ok = f && fgets(line, sizeof(line), f) && strchr(line, '\n');
	if (f)
		fclose(f);
	return ok;
}

static char *read_line(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = calloc(1, 4096);
	CHECK(f && line && fgets(line, 4096, f));
	fclose(f);
	return line;
}

static void run_top_in_tmux(const char *session, const char *key)
{
	char cmd[2048], *out, *err;
	snprintf(status_path, sizeof(status_path), "%s/%s.status", d.dir, session);
	snprintf(before_path, sizeof(before_path), "%s/%s.stty-before", d.dir, session);
	snprintf(after_path, sizeof(after_path), "%s/%s.stty-after", d.dir, session);
	snprintf(cmd, sizeof(cmd), "stty -g > %s; trap '' INT; %s --socket %s top; echo $? > %s; stty -g > %s",
		 before_path, binary("GMEMCTL"), d.socket, status_path, after_path);
	const char *argv[] = { "tmux", "-L", tmux_sock, "-f", "/dev/null", "new-session", "-d", "-x", "150", "-y", "20",
			       "-s", session, "/bin/sh", "-c", cmd, NULL };
	int st = run_capture(argv, &out, &err);
	if (st)
		fprintf(stderr, "tmux: %s", err);
	CHECK_EQ(st, 0);
	free(out);
	free(err);
	CHECK(wait_until(screen_ready, (void *)session, 15000));
	printf("---- the screen of gmemctl top (tmux capture-pane, session %s) ----\n%s----\n", session, screen);
	CHECK_EQ(tmux(&out, "send-keys", "-t", session, key, NULL, NULL, NULL), 0);
	free(out);
	CHECK(wait_until(file_has_line, status_path, 10000));
	CHECK(wait_until(file_has_line, after_path, 10000));
	char *status = read_line(status_path), *before = read_line(before_path), *after = read_line(after_path);
	printf("  after %s: top exited %s", key, status);
	CHECK(strcmp(status, "0\n") == 0);
	CHECK(strcmp(before, after) == 0); /* echo and canonical mode are back */
	free(status);
	free(before);
	free(after);
}

static void test_snapshot(void)
{
	char *out, *err;
	const char *text[] = { binary("GMEMCTL"), "--socket", d.socket, "top", NULL };
	CHECK_EQ(run_capture(text, &out, &err), 0);
	CHECK(busy_shown(out));
	CHECK(!strchr(out, '\033'));
	free(out);
	free(err);

	const char *json[] = { binary("GMEMCTL"), "--socket", d.socket, "--json", "top", NULL };
	CHECK_EQ(run_capture(json, &out, &err), 0);
	struct json_object *o = json_tokener_parse(out), *gs, *q;
	CHECK(o && json_object_object_get_ex(o, "guests", &gs) && json_object_array_length(gs) == 2);
	CHECK(json_object_object_get_ex(o, "quarantined_bytes", &q) && json_object_get_uint64(q) == 0);
	bool found = false;
	for (size_t i = 0; i < json_object_array_length(gs); i++) {
		struct json_object *g = json_object_array_get_idx(gs, i), *f;
		if (!json_object_object_get_ex(g, "guest", &f) || strcmp(json_object_get_string(f), "busy"))
			continue;
		found = true;
		CHECK(json_object_object_get_ex(g, "conversions_per_s", &f) && json_object_get_double(f) > 0);
		CHECK(json_object_object_get_ex(g, "p99_us", &f) && json_object_get_uint64(f) > 0);
		CHECK(json_object_object_get_ex(g, "slowest", &f));
	}
	CHECK(found);
	json_object_put(o);
	free(out);
	free(err);
}

int main(void)
{
	struct gmem_client *c;
	struct child dev, conv;
	char *out;

	snprintf(tmux_sock, sizeof(tmux_sock), "gmem-test-%d", getpid());
	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", NULL });
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_ADMIN, &c), 0);
	CHECK_EQ(gmem_guest_create(c, "busy", 64 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_create(c, "idle", 64 * MiB, 0, NULL), 0);
	child_start(&dev, device, NULL);
	msg_expect(dev.from_child, "ready", 10000);
	child_start(&conv, converter, NULL);
	msg_expect(conv.from_child, "ready", 10000);

	test_snapshot();
	printf("ok without a terminal: one snapshot, text and --json\n");
	/* One tmux server for both sessions: it stays when the first one ends. */
	CHECK_EQ(tmux(&out, "start-server", ";", "set-option", "-g", "exit-empty", "off", NULL), 0);
	free(out);
	run_top_in_tmux("top-q", "q");
	printf("ok in tmux: the busy guest's rate, latency and slowest participant; q ends it with status 0\n");
	run_top_in_tmux("top-int", "C-c");
	printf("ok Ctrl-C (SIGINT) ends it with status 0\n");

	tmux(&out, "kill-server", NULL, NULL, NULL, NULL, NULL, NULL);
	free(out);
	msg_send(conv.to_child, "stop");
	CHECK_EQ(child_wait(&conv), 0);
	msg_send(dev.to_child, "stop");
	CHECK_EQ(child_wait(&dev), 0);
	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	free(screen);
	return 0;
}
