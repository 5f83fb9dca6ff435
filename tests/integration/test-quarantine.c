/* SPDX-License-Identifier: MIT */
/*
 * Quarantine on the memfd backend (the daemon's logic; the vm suite checks the module's side with a real
 * IOMMU). Device children attach as `iommu` (or `mmap`) and vote yes; one never acks a to-private commit.
 * The test judges by what gmemd does, not by the children's word: the range stays private (a to-shared of
 * it fails with EHWPOISON), it is listed with its holder in status and map (libgmem and gmemctl --json),
 * a late ack releases it, and a guest destroyed while the holder lives keeps its memory allocated — a
 * create that needs it fails with ENOSPC — until the holder's process exits (not merely disconnects).
 * Against gmemd-no-quarantine (the control) the first of those checks fails.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)

enum behaviour { ACKS, NEVER_ACKS };

struct part_arg {
	enum behaviour how;
	enum gmem_attach_kind kind;
	uint64_t offset, length;
};

struct child_state {
	struct child_io *io;
	const struct part_arg *arg;
	uint64_t epoch, seq; /* the commit not acked */
};

static struct gmemd d;
static const char *guest = "g";

static void c_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void c_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct child_state *s = ud;
	if (s->arg->how == ACKS) {
		gmem_ack(c, cv->epoch, cv->seq);
		return;
	}
	s->epoch = cv->epoch;
	s->seq = cv->seq;
}

static const struct gmem_participant_ops child_ops = { .prepare = c_prepare, .commit = c_commit };

/* Commands from the parent: "ack" (the held commit, late), "disconnect" (keeps living), "exit". */
static int participant(struct child_io *io, void *argp)
{
	struct child_state s = { .io = io, .arg = argp };
	struct gmem_client *c;
	char line[64];

	if (gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) < 0)
		return 10;
	gmem_set_participant(c, &child_ops, &s);
	if (gmem_attach(c, guest, s.arg->offset, s.arg->length, s.arg->kind, NULL) < 0)
		return 11;
	snprintf(line, sizeof(line), "ready %llu", (unsigned long long)gmem_client_id(c));
	msg_send(io->out, line);
	for (;;) {
		struct pollfd p[2] = { { .fd = c ? gmem_get_fd(c) : -1, .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			if (!msg_recv(io->in, line, sizeof(line), 1000) || strcmp(line, "exit") == 0)
				break;
			if (strcmp(line, "ack") == 0 && c)
				msg_send(io->out, gmem_ack(c, s.epoch, s.seq) == 0 ? "acked" : "ack failed");
			if (strcmp(line, "disconnect") == 0 && c) {
				gmem_disconnect(c);
				c = NULL;
				msg_send(io->out, "disconnected");
			}
		}
		if (c && p[0].revents && gmem_dispatch(c) < 0)
			return 13;
	}
	gmem_disconnect(c);
	return 0;
}

struct part {
	struct child child;
	struct part_arg arg;
	uint64_t client_id;
};

static void part_start(struct part *p, enum behaviour how, enum gmem_attach_kind kind, uint64_t off, uint64_t len)
{
	char line[64];
	p->arg = (struct part_arg){ how, kind, off, len };
	child_start(&p->child, participant, &p->arg);
	CHECK(msg_recv(p->child.from_child, line, sizeof(line), 5000));
	CHECK(sscanf(line, "ready %llu", (unsigned long long *)&p->client_id) == 1);
}

static enum gmem_outcome convert(struct gmem_client *c, const char *name, uint64_t off, uint64_t len,
				 enum gmem_target t, uint64_t *seq)
{
	struct gmem_range r = { off, len };
	struct gmem_convert_result res;
	CHECK_EQ(gmem_convert(c, name, &r, 1, t, 0, &res), 0);
	enum gmem_outcome o = res.outcome;
	if (seq)
		*seq = res.seq;
	gmem_convert_result_free(&res);
	return o;
}

static uint64_t quarantined(struct gmem_client *c, const char *name, struct gmem_quarantine_info **q, size_t *n)
{
	uint64_t bytes = UINT64_MAX;
	struct gmem_quarantine_info *tmp;
	size_t ntmp;
	CHECK_EQ(gmem_quarantine_list(c, name, q ? q : &tmp, n ? n : &ntmp, &bytes), 0);
	if (!q)
		free(tmp);
	return bytes;
}

struct pool_wait {
	struct gmem_client *c;
	uint64_t want;
};

static bool pool_quarantine_is(void *arg)
{
	struct pool_wait *w = arg;
	return quarantined(w->c, NULL, NULL, NULL) == w->want;
}

/* gmemctl --json OP [NAME]: the parsed output. */
static struct json_object *gmemctl_json(const char *op, const char *name)
{
	char *out, *err;
	const char *argv[] = { binary("GMEMCTL"), "--socket", d.socket, "--json", op, name, NULL };
	int rc = run_capture(argv, &out, &err);
	if (rc != 0)
		fprintf(stderr, "gmemctl --json %s: exit %d: %s\n", op, rc, err ? err : "");
	CHECK_EQ(rc, 0);
	struct json_object *o = json_tokener_parse(out);
	CHECK(o);
	free(out);
	free(err);
	return o;
}

static uint64_t json_u64(struct json_object *o, const char *key)
{
	struct json_object *v;
	CHECK(json_object_object_get_ex(o, key, &v));
	return json_object_get_uint64(v);
}

int main(void)
{
	gmemd_start(&d, (const char *[]){ "--pool-size", "8M", "--ack-timeout", "200", NULL });
	struct gmem_client *c;
	struct gmem_guest_info gi;
	struct gmem_quarantine_info *q;
	size_t n;
	uint64_t seq;

	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);
	CHECK_EQ(gmem_guest_create(c, guest, 4 * MiB, GMEM_GRANULE_4K, &gi), 0);

	struct part holder, acker, mapper;
	part_start(&holder, NEVER_ACKS, GMEM_ATTACH_IOMMU, 0, MiB);
	part_start(&acker, ACKS, GMEM_ATTACH_IOMMU, MiB, MiB);
	part_start(&mapper, NEVER_ACKS, GMEM_ATTACH_MMAP, 2 * MiB, MiB);

	/* The iommu holder that never acks: its range, and only its, is quarantined. An mmap attachment that
	 * does not ack is unverified, not quarantined: the kernel can see CPU mappings. */
	CHECK_EQ(convert(c, guest, 0, 3 * MiB, GMEM_PRIVATE, &seq), GMEM_COMMITTED_UNVERIFIED);
	CHECK_EQ(quarantined(c, guest, &q, &n), MiB);
	CHECK_EQ(n, 1);
	CHECK_EQ(q[0].offset, 0);
	CHECK_EQ(q[0].length, MiB);
	CHECK_EQ(q[0].client_id, holder.client_id);
	CHECK_EQ(q[0].pid, holder.child.pid);
	CHECK_EQ(q[0].seq, seq);
	CHECK(!q[0].destroyed);
	free(q);
	CHECK_EQ(quarantined(c, NULL, NULL, NULL), MiB);

	/* It stays private; its neighbours convert back. */
	struct gmem_range r = { 0, 4096 };
	struct gmem_convert_result res;
	CHECK_EQ(gmem_convert(c, guest, &r, 1, GMEM_SHARED, 0, &res), -EHWPOISON);
	CHECK(strstr(gmem_last_error(c), "quarantined"));
	CHECK_EQ(convert(c, guest, MiB, MiB, GMEM_SHARED, NULL), GMEM_COMMITTED);

	/* gmemctl shows the bytes and who holds them. */
	struct json_object *o = gmemctl_json("status", NULL), *arr, *x;
	CHECK_EQ(json_u64(o, "quarantined"), MiB);
	CHECK(json_object_object_get_ex(o, "quarantine", &arr) && json_object_array_length(arr) == 1);
	x = json_object_array_get_idx(arr, 0);
	CHECK_EQ(json_u64(x, "pid"), holder.child.pid);
	CHECK_EQ(json_u64(x, "client_id"), holder.client_id);
	json_object_put(o);
	o = gmemctl_json("map", guest);
	CHECK_EQ(json_u64(o, "quarantined_bytes"), MiB);
	CHECK(json_object_object_get_ex(o, "quarantine", &arr) && json_object_array_length(arr) == 1);
	json_object_put(o);

	/* A late ack releases it, and the range converts back (unverified: the holder acks no commit in time;
	 * a to-shared it does not ack quarantines nothing, it only has not mapped yet). */
	msg_send(holder.child.to_child, "ack");
	msg_expect(holder.child.from_child, "acked", 5000);
	CHECK_EQ(quarantined(c, guest, NULL, NULL), 0);
	CHECK_EQ(convert(c, guest, 0, MiB, GMEM_SHARED, NULL), GMEM_COMMITTED_UNVERIFIED);
	CHECK_EQ(quarantined(c, guest, NULL, NULL), 0);

	/* Quarantined again, then the guest is destroyed: its memory stays allocated while the holder lives. */
	CHECK_EQ(convert(c, guest, 0, MiB, GMEM_PRIVATE, NULL), GMEM_COMMITTED_UNVERIFIED);
	CHECK_EQ(quarantined(c, guest, NULL, NULL), MiB);
	CHECK_EQ(gmem_guest_create(c, "rest", 4 * MiB, GMEM_GRANULE_4K, &gi), 0);
	CHECK_EQ(gmem_guest_destroy(c, guest), 0);
	CHECK_EQ(quarantined(c, NULL, &q, &n), 4 * MiB);
	/* The holder of the unacked range, and the acker (a live iommu attachment): once each. */
	CHECK_EQ(n, 2);
	for (size_t i = 0; i < n; i++) {
		CHECK(q[i].destroyed);
		CHECK_EQ(q[i].length, 4 * MiB);
		CHECK(q[i].client_id == holder.client_id || q[i].client_id == acker.client_id);
	}
	free(q);
	CHECK_EQ(gmem_guest_create(c, "next", 4 * MiB, GMEM_GRANULE_4K, &gi), -ENOSPC);

	/* A holder that only disconnects may still have its IOMMU mappings: nothing is released. */
	msg_send(acker.child.to_child, "exit");
	CHECK_EQ(child_wait(&acker.child), 0);
	struct pool_wait w = { c, 4 * MiB };
	CHECK(wait_until(pool_quarantine_is, &w, 5000));
	msg_send(holder.child.to_child, "disconnect");
	msg_expect(holder.child.from_child, "disconnected", 5000);
	CHECK_EQ(quarantined(c, NULL, NULL, NULL), 4 * MiB);
	CHECK_EQ(gmem_guest_create(c, "next", 4 * MiB, GMEM_GRANULE_4K, &gi), -ENOSPC);

	/* Its process exits: the memory goes back to the pool. */
	msg_send(holder.child.to_child, "exit");
	CHECK_EQ(child_wait(&holder.child), 0);
	w.want = 0;
	CHECK(wait_until(pool_quarantine_is, &w, 5000));
	CHECK_EQ(gmem_guest_create(c, "next", 4 * MiB, GMEM_GRANULE_4K, &gi), 0);

	msg_send(mapper.child.to_child, "exit");
	CHECK_EQ(child_wait(&mapper.child), 0);
	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	printf("ok - quarantine: unacked iommu range, late ack, destroyed guest held until the holder exits\n");
	return 0;
}
