/* SPDX-License-Identifier: MIT */
/*
 * The conversions op, through libgmem and `gmemctl conversions`: a conversion held in flight (its only
 * participant, the lease holder, has not voted) is listed as preparing with its participants and a
 * latency that grows, one behind it as queued; once they end they are in the recent ring, newest first,
 * with their outcome (an aborted one too) and a latency covering the time it was held. The ring keeps the
 * last 64 whatever ran before. Another uid sees only the conversions of guests granted to it, and none of
 * a granted guest once it is destroyed (its grants went with it).
 */
#include <errno.h>
#include <grp.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)
#define UID_B 10201
#define RING 64

static struct gmemd d;

static struct {
	bool hold, prepared;
	uint64_t epoch, seq;
	int ended;
	enum gmem_outcome last;
} vmm;

static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	vmm.prepared = true;
	vmm.epoch = cv->epoch;
	vmm.seq = cv->seq;
	if (!vmm.hold)
		CHECK_EQ(gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL), 0);
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	CHECK_EQ(gmem_ack(c, cv->epoch, cv->seq), 0);
}

static const struct gmem_participant_ops ops = { .prepare = on_prepare, .commit = on_commit };

static void on_converted(struct gmem_client *c, int err, const struct gmem_convert_result *r, void *ud)
{
	(void)c;
	(void)ud;
	CHECK_EQ(err, 0);
	vmm.last = r->outcome;
	vmm.ended++;
}

static void pump(struct gmem_client *c, const bool *flag, int want)
{
	int64_t deadline = harness_deadline(10000);
	while (flag ? !*flag : vmm.ended < want) {
		CHECK(harness_now_ms() < deadline);
		struct pollfd p = { .fd = gmem_get_fd(c), .events = POLLIN };
		if (poll(&p, 1, 50) > 0)
			CHECK(gmem_dispatch(c) >= 0);
	}
}

static void list(struct gmem_client *c, struct gmem_conversion_info **fl, size_t *n_fl, struct gmem_conversion_info **rc,
		 size_t *n_rc)
{
	uint64_t omitted;
	CHECK_EQ(gmem_conversion_list(c, fl, n_fl, &omitted, rc, n_rc), 0);
	CHECK_EQ(omitted, 0);
}

static void convert(struct gmem_client *c, const char *guest, enum gmem_target t)
{
	struct gmem_range r = { 0, MiB };
	struct gmem_convert_result res;
	CHECK_EQ(gmem_convert(c, guest, &r, 1, t, 0, &res), 0);
	CHECK_EQ(res.outcome, GMEM_COMMITTED);
	gmem_convert_result_free(&res);
}

/* uid B: only the conversions of the guest granted to it; expect_b: whether any of those remain. */
static int other_uid(struct child_io *io, void *arg)
{
	bool expect_b = *(bool *)arg;
	struct gmem_client *c;
	struct gmem_conversion_info *fl, *rc;
	size_t n_fl, n_rc;
	(void)io;
	if (setgroups(0, NULL) < 0 || setgid(UID_B) < 0 || setuid(UID_B) < 0)
		return 90;
	if (gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) < 0)
		return 91;
	list(c, &fl, &n_fl, &rc, &n_rc);
	if (n_fl != 0)
		return 92;
	for (size_t i = 0; i < n_rc; i++)
		if (strcmp(rc[i].guest, "conv-b") != 0)
			return 93;
	if (expect_b ? n_rc != 2 : n_rc != 0)
		return 94;
	free(fl);
	free(rc);
	gmem_disconnect(c);
	return 0;
}

int main(void)
{
	struct gmem_client *c;
	struct gmem_conversion_info *fl, *rc;
	size_t n_fl, n_rc;
	struct gmem_range r = { 0, MiB };

	if (getuid() != 0) {
		printf("1..0 # SKIP needs root to act as another uid\n");
		return 77;
	}
	gmemd_start(&d, (const char *[]){ "--socket-mode", "0666", "--pool-size", "256M", "--prepare-timeout", "20000",
					  NULL });
	CHECK(chmod(d.dir, 0755) == 0);
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);
	CHECK_EQ(gmem_guest_create(c, "conv-a", 4 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_create(c, "conv-b", 4 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_grant(c, "conv-b", "uid:10201", GMEM_ROLE_DEVICE), 0);
	gmem_set_participant(c, &ops, NULL);
	CHECK_EQ(gmem_lease(c, "conv-a"), 0);

	/* Held in flight, and one queued behind it. */
	vmm.hold = true;
	CHECK_EQ(gmem_convert_async(c, "conv-a", &r, 1, GMEM_PRIVATE, 0, on_converted, NULL), 0);
	pump(c, &vmm.prepared, 0);
	int64_t held_from = harness_now_ms();
	uint64_t held_seq = vmm.seq;
	struct gmem_range r2 = { MiB, 2 * MiB };
	CHECK_EQ(gmem_convert_async(c, "conv-a", &r2, 1, GMEM_PRIVATE, 0, on_converted, NULL), 0);
	list(c, &fl, &n_fl, &rc, &n_rc);
	CHECK_EQ(n_fl, 2);
	CHECK_EQ(n_rc, 0);
	CHECK_EQ(fl[0].seq, held_seq);
	CHECK(strcmp(fl[0].guest, "conv-a") == 0 && strcmp(fl[0].state, "preparing") == 0);
	CHECK(fl[0].target == GMEM_PRIVATE && fl[0].bytes == MiB && fl[0].participants == 1 && fl[0].ranges == 1);
	CHECK_EQ(fl[0].requester_pid, getpid());
	CHECK(strcmp(fl[1].state, "queued") == 0 && fl[1].bytes == 0 && fl[1].seq == held_seq + 1);
	uint64_t age = fl[0].latency_us;
	free(fl);
	free(rc);

	/* gmemctl sees the same, and later: the held one has aged. */
	char *out, *err;
	const char *argv[] = { binary("GMEMCTL"), "--socket", d.socket, "--json", "conversions", NULL };
	CHECK_EQ(run_capture(argv, &out, &err), 0);
	struct json_object *o = json_tokener_parse(out), *a, *x, *v;
	CHECK(o && json_object_object_get_ex(o, "in_flight", &a) && json_object_array_length(a) == 2);
	x = json_object_array_get_idx(a, 0);
	CHECK(json_object_object_get_ex(x, "state", &v) && strcmp(json_object_get_string(v), "preparing") == 0);
	CHECK(json_object_object_get_ex(x, "latency_us", &v) && (uint64_t)json_object_get_int64(v) >= age);
	json_object_put(o);
	free(out);
	free(err);
	printf("ok in flight: the held conversion is preparing with its participant, the next is queued\n");

	/* Vote: both end; the recent ring has them newest first, the held one's latency covers the hold. */
	int64_t held_ms = harness_now_ms() - held_from;
	vmm.hold = false;
	CHECK_EQ(gmem_vote(c, vmm.epoch, held_seq, true, 0, NULL), 0);
	pump(c, NULL, 2);
	list(c, &fl, &n_fl, &rc, &n_rc);
	CHECK_EQ(n_fl, 0);
	CHECK_EQ(n_rc, 2);
	CHECK(rc[0].seq == held_seq + 1 && rc[1].seq == held_seq);
	CHECK(strcmp(rc[0].state, "committed") == 0 && strcmp(rc[1].state, "committed") == 0);
	CHECK(rc[0].bytes == 2 * MiB && rc[1].bytes == MiB);
	/* held_ms comes from two whole-millisecond clock readings: it may exceed the true hold by 1 ms. */
	CHECK(held_ms >= 1 && rc[1].latency_us >= (uint64_t)(held_ms - 1) * 1000);
	printf("# held %lld ms: latency %llu us\n", (long long)held_ms, (unsigned long long)rc[1].latency_us);
	free(fl);
	free(rc);

	/* An abort shows as aborted. */
	vmm.hold = true;
	vmm.prepared = false;
	CHECK_EQ(gmem_convert_async(c, "conv-a", &r, 1, GMEM_SHARED, 0, on_converted, NULL), 0);
	pump(c, &vmm.prepared, 0);
	CHECK_EQ(gmem_vote(c, vmm.epoch, vmm.seq, false, EBUSY, "not now"), 0);
	pump(c, NULL, 3);
	CHECK_EQ(vmm.last, GMEM_ABORTED);
	list(c, &fl, &n_fl, &rc, &n_rc);
	CHECK(n_rc == 3 && rc[0].seq == vmm.seq && strcmp(rc[0].state, "aborted") == 0);
	free(fl);
	free(rc);
	printf("ok ended: newest first, with outcome (committed, aborted), bytes and latency\n");

	/* Another uid: only conv-b's, and none once conv-b is gone. */
	vmm.hold = false;
	convert(c, "conv-b", GMEM_PRIVATE);
	convert(c, "conv-b", GMEM_SHARED);
	bool expect_b = true;
	struct child ch;
	child_start(&ch, other_uid, &expect_b);
	CHECK_EQ(child_wait(&ch), 0);

	/* conv-b's two stay in the ring (its owner still sees them); the grantee no longer does. */
	CHECK_EQ(gmem_guest_destroy(c, "conv-b"), 0);
	list(c, &fl, &n_fl, &rc, &n_rc);
	CHECK(n_rc == 5 && strcmp(rc[0].guest, "conv-b") == 0 && strcmp(rc[1].guest, "conv-b") == 0);
	free(fl);
	free(rc);
	expect_b = false;
	child_start(&ch, other_uid, &expect_b);
	CHECK_EQ(child_wait(&ch), 0);
	printf("ok another uid sees only the conversions of the guest granted to it, none once it is gone\n");

	/* The ring: only the last 64, whatever ran before. */
	for (int i = 0; i < 2 * RING; i++)
		convert(c, "conv-a", i % 2 ? GMEM_PRIVATE : GMEM_SHARED);
	list(c, &fl, &n_fl, &rc, &n_rc);
	CHECK_EQ(n_rc, RING);
	for (size_t i = 1; i < n_rc; i++)
		CHECK_EQ(rc[i].seq + 1, rc[i - 1].seq);
	free(fl);
	free(rc);
	printf("ok the ring keeps the last %d\n", RING);

	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
