/* SPDX-License-Identifier: MIT */
/*
 * test-reconnect: libgmem coming back after gmemd restarts (gmem_set_reconnect), behind the same
 * pollable fd. A device participant votes yes, then gmemd (gmemd-hooks) dies right after writing the
 * commit decision. The participant hears "disconnected" and nothing else until a new gmemd is up: it
 * never moves on its own. Back, it has its attachment again (same id for the application), learns the
 * outcome (in-doubt: committed), hears the commit and done gmemd could not send, and takes part in the
 * next conversion. Then the same with the state dir wiped: gmemd knows nothing, so the participant
 * hears "in doubt, unknown" and no abort or done: it stays in doubt rather than guess.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "sdharness.h"

#define SIZE (8u << 20)

static struct sdh h;

struct pstate {
	struct child_io *io;
	uint64_t attach_id;
};

static void say(struct pstate *s, const char *what, long long v)
{
	char line[96];
	if (v < 0)
		snprintf(line, sizeof(line), "%s", what);
	else
		snprintf(line, sizeof(line), "%s %lld", what, v);
	msg_send(s->io->out, line);
}

static void on_event(struct gmem_client *c, const struct gmem_event *ev, void *userdata)
{
	struct pstate *s = userdata;
	(void)c;
	if (ev->type == GMEM_EVENT_DISCONNECTED)
		say(s, "disconnected", -1);
	else if (ev->type == GMEM_EVENT_RECONNECTED)
		say(s, ev->reason ? "reconnected-partly" : "reconnected", -1);
	else if (ev->type == GMEM_EVENT_IN_DOUBT)
		say(s, ev->in_doubt->known ? "in-doubt" : "in-doubt-unknown",
		    ev->in_doubt->known ? (long long)ev->in_doubt->outcome : -1);
}

static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	say(userdata, "prepare", -1);
	(void)gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	say(userdata, "commit", cv->wave);
	CHECK(gmem_ack(c, cv->epoch, cv->seq) == 0);
}

static void on_abort(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	(void)c;
	(void)cv;
	say(userdata, "abort", -1);
}

static void on_done(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata)
{
	(void)c;
	say(userdata, "done", cv->outcome);
}

static const struct gmem_participant_ops ops = {
	.prepare = on_prepare, .commit = on_commit, .abort = on_abort, .done = on_done,
};

static int participant(struct child_io *io, void *arg)
{
	struct pstate s = { .io = io };
	struct gmem_client *c;
	(void)arg;
	sdh_close_inherited(&h);
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_DEVICE, &c) == 0);
	gmem_set_reconnect(c, 100);
	gmem_set_event_handler(c, on_event, &s);
	gmem_set_participant(c, &ops, &s);
	CHECK(gmem_attach(c, "g", 0, SIZE / 2, GMEM_ATTACH_IOMMU, &s.attach_id) == 0);
	int fd = gmem_get_fd(c);
	msg_send(io->out, "ready");
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		CHECK(poll(p, 2, (int)(30000 * harness_scale())) > 0);
		/* The pollable fd never changes, whatever happened to the connection under it. */
		CHECK(gmem_get_fd(c) == fd);
		if (p[1].revents) {
			char cmd[64];
			if (!msg_recv(io->in, cmd, sizeof(cmd), 1000) || strcmp(cmd, "quit") == 0)
				break;
			if (strcmp(cmd, "detach") == 0)
				say(&s, "detached", -gmem_detach(c, s.attach_id));
		}
		if (p[0].revents)
			CHECK(gmem_dispatch(c) >= 0);
	}
	gmem_disconnect(c);
	return 0;
}

static void expect(struct child *p, const char *line)
{
	msg_expect(p->from_child, line, 20000);
}

static uint64_t attachments_of_g(void)
{
	struct gmem_client *c;
	struct gmem_guest_info *gs;
	size_t n;
	uint64_t a = 0;
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_ADMIN, &c) == 0);
	CHECK(gmem_guest_list(c, &gs, &n) == 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(gs[i].name, "g") == 0)
			a = gs[i].attachments;
	free(gs);
	gmem_disconnect(c);
	return a;
}

static bool attached_again(void *arg)
{
	(void)arg;
	return attachments_of_g() == 1;
}

static void crash_and_come_back(bool wipe)
{
	const char *envs[] = { "GMEM_TEST_CRASH_AT=decided", NULL };
	const char *extra[] = { "--pool-size", "256M", NULL };
	struct gmem_range all = { 0, SIZE };
	struct gmem_convert_result res;
	struct child p;
	struct gmem_client *c;

	fprintf(stderr, "== %s\n", wipe ? "state wiped" : "journal kept");
	sdh_init(&h);
	sdh_start(&h, "GMEMD_HOOKS", extra, envs);
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	CHECK(gmem_guest_create(c, "g", SIZE, 0, NULL) == 0);
	child_start(&p, participant, NULL);
	expect(&p, "ready");
	CHECK(gmem_convert(c, "g", &all, 1, GMEM_PRIVATE, 0, &res) == -ECONNRESET);
	gmem_disconnect(c);
	CHECK_EQ(sdh_wait_exit(&h, 10000), 128 + 9);
	expect(&p, "prepare");
	expect(&p, "disconnected");

	if (wipe) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -f %s/journal.jsonl %s/snapshot.jsonl", h.d.state, h.d.state);
		CHECK(system(cmd) == 0);
	}
	sdh_start(&h, "GMEMD", extra, NULL);
	if (wipe) {
		/* Its guest is gone with the state: the attachment cannot be announced again. And the
		 * conversion is unknown: no outcome is made up, no abort and no done follow. */
		expect(&p, "reconnected-partly");
		expect(&p, "in-doubt-unknown");
		msg_send(p.to_child, "quit");
		CHECK_EQ(child_wait(&p), 0);
		char line[64];
		CHECK(!msg_recv(p.from_child, line, sizeof(line), 100) || strcmp(line, "abort") != 0);
		CHECK_EQ(sdh_stop(&h), 0);
		sdh_cleanup(&h);
		return;
	}
	/* The first thing after "disconnected" is the restart: in doubt, it did nothing by itself. */
	expect(&p, "reconnected");
	expect(&p, "in-doubt 0");
	expect(&p, "commit 1");
	expect(&p, "done 0");
	CHECK(wait_until(attached_again, NULL, 5000));

	/* It takes part in the next conversion through the attachment it announced again. */
	CHECK(gmem_connect(h.d.socket, GMEM_ROLE_VMM, &c) == 0);
	CHECK(gmem_convert(c, "g", &all, 1, GMEM_SHARED, 0, &res) == 0);
	CHECK_EQ(res.outcome, GMEM_COMMITTED);
	CHECK_EQ(res.participants, 1);
	gmem_convert_result_free(&res);
	expect(&p, "prepare");
	expect(&p, "commit 3");
	expect(&p, "done 0");
	/* The id the application got before the restart still names its attachment. */
	msg_send(p.to_child, "detach");
	expect(&p, "detached 0");
	CHECK_EQ(attachments_of_g(), 0);
	gmem_disconnect(c);
	msg_send(p.to_child, "quit");
	CHECK_EQ(child_wait(&p), 0);
	CHECK_EQ(sdh_stop(&h), 0);
	sdh_cleanup(&h);
}

int main(void)
{
	crash_and_come_back(false);
	crash_and_come_back(true);
	fprintf(stderr, "reconnect: in doubt until told; attachments and ids back; unknown stays unknown\n");
	return 0;
}
