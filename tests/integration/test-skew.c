/* SPDX-License-Identifier: MIT */
/*
 * Version skew: this libgmem with a gmemd that lacks features, and a libgmem that lacks them with this
 * gmemd. A test-only switch on each side makes it act as a build without the named features:
 * $GMEMD_TEST_FEATURES_OFF for gmemd (it neither offers them at hello nor knows their ops and fields),
 * $GMEM_TEST_FEATURES_OFF for libgmem (it does not announce them, and does not use them).
 *   old gmemd, new libgmem: what needs a missing feature fails locally with EOPNOTSUPP and a message
 *     naming it, before any request (the raw requests show this gmemd would have refused them: ENOSYS
 *     for an op, EINVAL for a field); gmemctl says so and exits 1; everything else works;
 *   new gmemd, old libgmem: everything the old library does works; guests made with new features by
 *     others (ephemeral) serve it too, and gmemd's newer reply fields do not disturb it.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "envelope.h"
#include "harness.h"
#include "wire.h"

#define MiB (1ULL << 20)

static const char *const all_new = "publish-map,ephemeral,operator,stats";

/* One raw request on a fresh connection after hello; returns the positive errno of the error (0: ok). */
static int raw(const struct gmemd *d, enum gmem_op op, const void *args)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(strlen(d->socket) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, d->socket, strlen(d->socket) + 1);
	CHECK(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	struct gmem_hello_args h = { .version = 1, .role = GMEM_ROLE_ADMIN };
	int err = 0;
	for (int step = 0; step < 2; step++) {
		char *buf, in[GMEM_MSG_MAX];
		size_t len;
		struct gmem_wire_in wi;
		struct json_object *root;
		struct gmem_envelope env;
		int fd = -1;
		CHECK_EQ(gmem_build_request((uint64_t)step + 1, step ? op : GMEM_OP_HELLO, step ? args : &h, &buf, &len), 0);
		CHECK_EQ(gmem_wire_send(s, buf, len, NULL, 0, 0), 0);
		free(buf);
		CHECK(gmem_wire_recv(s, in, sizeof(in), &fd, 1, 0, &wi) > 0);
		if (wi.nfds)
			close(fd);
		CHECK_EQ(gmem_json_parse(in, wi.len, &root, NULL), 0);
		CHECK_EQ(gmem_envelope_parse_incoming(root, &env, NULL), 0);
		err = env.kind == GMEM_MSG_ERROR ? env.err : 0;
		if (err)
			printf("  raw %s: %s (%s)\n", gmem_ops[op].name, env.err_name, env.message);
		json_object_put(root);
		CHECK(step == 1 || err == 0);
	}
	close(s);
	return err;
}

static int ctl(const struct gmemd *d, char **err, const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *out;
	const char *argv[] = { binary("GMEMCTL"), "--socket", d->socket, a1, a2, a3, a4, NULL };
	int st = run_capture(argv, &out, err);
	free(out);
	return st;
}

static void yes(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void ack(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_ack(c, cv->epoch, cv->seq);
}

static const struct gmem_participant_ops ops = { .prepare = yes, .commit = ack };

/* What every version of the two does: create, lease, open, convert both ways, map, list, destroy. */
static void basics(const struct gmemd *d, const char *name)
{
	struct gmem_client *c;
	struct gmem_convert_result res;
	struct gmem_run *runs;
	struct gmem_guest_info *gs;
	size_t n;
	int fd;
	const struct gmem_range r = { 0, 2 * MiB };

	CHECK_EQ(gmem_connect(d->socket, GMEM_ROLE_VMM, &c), 0);
	gmem_set_participant(c, &ops, NULL);
	CHECK_EQ(gmem_guest_create(c, name, 16 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_lease(c, name), 0);
	CHECK_EQ(gmem_guest_open(c, name, &fd, NULL), 0);
	close(fd);
	CHECK_EQ(gmem_convert(c, name, &r, 1, GMEM_PRIVATE, 0, &res), 0);
	CHECK_EQ(res.outcome, GMEM_COMMITTED);
	gmem_convert_result_free(&res);
	CHECK_EQ(gmem_map(c, name, &runs, &n, NULL, NULL), 0);
	CHECK_EQ(n, 2);
	free(runs);
	CHECK_EQ(gmem_convert(c, name, &r, 1, GMEM_SHARED, 0, &res), 0);
	gmem_convert_result_free(&res);
	CHECK_EQ(gmem_guest_list(c, &gs, &n), 0);
	free(gs);
	CHECK_EQ(gmem_guest_destroy(c, name), 0);
	gmem_disconnect(c);
}

static void old_gmemd(void)
{
	struct gmemd d;
	struct gmem_client *c;
	struct gmem_shared_map *m;
	struct gmem_holder_info *hs;
	struct gmem_guest_stats *st;
	size_t n;
	char *err;

	setenv("GMEMD_TEST_FEATURES_OFF", all_new, 1);
	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", NULL });
	unsetenv("GMEMD_TEST_FEATURES_OFF");

	/* What this gmemd would answer, had the library asked anyway. */
	struct gmem_guest_args ga = { .name = "x" };
	struct gmem_create_args ca = { .name = "x", .size = 1 * MiB, .ephemeral = true };
	struct gmem_list_args la = { 0 };
	CHECK_EQ(raw(&d, GMEM_OP_PUBLISH_MAP, &ga), ENOSYS);
	CHECK_EQ(raw(&d, GMEM_OP_STATS, &la), ENOSYS);
	CHECK_EQ(raw(&d, GMEM_OP_HOLDERS, &(struct gmem_holders_args){ .name = "x" }), ENOSYS);
	CHECK_EQ(raw(&d, GMEM_OP_CREATE, &ca), EINVAL);

	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);
	CHECK_EQ(gmem_guest_create(c, "g", 16 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_lease(c, "g"), 0);
	CHECK_EQ(gmem_shared_map_open(c, "g", &m), -EOPNOTSUPP);
	printf("  gmem_shared_map_open: %s\n", gmem_last_error(c));
	CHECK(strstr(gmem_last_error(c), "does not publish maps"));
	CHECK_EQ(gmem_guest_create_ex(c, "e", 16 * MiB, 0, GMEM_CREATE_EPHEMERAL, NULL), -EOPNOTSUPP);
	CHECK_EQ(gmem_holders(c, "g", &hs, &n), -EOPNOTSUPP);
	CHECK_EQ(gmem_cancel(c, 0, 1), -EOPNOTSUPP);
	CHECK_EQ(gmem_evict(c, 1), -EOPNOTSUPP);
	CHECK_EQ(gmem_guest_destroy_ex(c, "g", GMEM_DESTROY_FORCE), -EOPNOTSUPP);
	CHECK_EQ(gmem_stats(c, &st, &n, NULL), -EOPNOTSUPP);
	CHECK_EQ(gmem_guest_destroy(c, "g"), 0);
	gmem_disconnect(c);

	CHECK_EQ(ctl(&d, &err, "top", NULL, NULL, NULL), 1);
	printf("  gmemctl top: %s", err);
	CHECK(strstr(err, "keeps no statistics"));
	free(err);
	CHECK_EQ(ctl(&d, &err, "create", "e", "1M", "--ephemeral"), 1);
	CHECK(strstr(err, "no ephemeral guests"));
	free(err);
	basics(&d, "b");
	CHECK_EQ(gmemd_stop(&d), 0);
}

static void old_libgmem(void)
{
	struct gmemd d;
	struct gmem_client *c, *fresh;
	struct gmem_shared_map *m;
	struct gmem_guest_info *gs;
	size_t n;

	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", NULL });
	/* A client of this library made the guest ephemeral: the old one still uses it. */
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &fresh), 0);
	CHECK_EQ(gmem_guest_create_ex(fresh, "eph", 16 * MiB, 0, GMEM_CREATE_EPHEMERAL, NULL), 0);

	setenv("GMEM_TEST_FEATURES_OFF", all_new, 1);
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);
	CHECK_EQ(gmem_shared_map_open(c, "eph", &m), -EOPNOTSUPP); /* it does not know the feature */
	CHECK_EQ(gmem_guest_list(c, &gs, &n), 0);  /* replies carry "ephemeral": skipped */
	CHECK_EQ(n, 1);
	CHECK(strcmp(gs[0].name, "eph") == 0);
	free(gs);
	int fd;
	CHECK_EQ(gmem_guest_open(c, "eph", &fd, NULL), 0);
	close(fd);
	gmem_disconnect(c);
	basics(&d, "b");
	unsetenv("GMEM_TEST_FEATURES_OFF");

	gmem_disconnect(fresh);
	CHECK_EQ(gmemd_stop(&d), 0);
}

int main(void)
{
	old_gmemd();
	printf("ok a gmemd without publish-map, ephemeral, operator, stats: libgmem and gmemctl say so, the rest "
	       "works\n");
	old_libgmem();
	printf("ok a libgmem without them: it works with this gmemd, newer reply fields and all\n");
	return 0;
}
