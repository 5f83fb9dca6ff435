/* SPDX-License-Identifier: MIT */
/*
 * Access policy with real identities: children drop to other uids and groups (the test runs as root)
 * and act through libgmem. Owners, grants by uid and gid, revokes taking effect at the next request,
 * the admin group, quotas per uid, connection limits per uid, and listings and watch showing only the
 * guests a client may see.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <grp.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)
#define UID_A 10001
#define UID_B 10002
#define GID_X 20000

static struct gmemd d;

/* Runs fn(client) as uid with the given supplementary groups, in a child; returns its exit status. */
struct as_arg {
	uid_t uid;
	gid_t groups[4];
	size_t n_groups;
	enum gmem_role role;
	int (*fn)(struct gmem_client *c);
};

static int as_child(struct child_io *io, void *argp)
{
	struct as_arg *a = argp;
	struct gmem_client *c;
	(void)io;
	if (setgroups(a->n_groups, a->groups) < 0 || setgid(a->uid) < 0 || setuid(a->uid) < 0)
		return 90;
	int r = gmem_connect(d.socket, a->role, &c);
	if (r < 0)
		return r == -EPERM ? 91 : 92;
	r = a->fn(c);
	gmem_disconnect(c);
	return r;
}

static int run_as(uid_t uid, const gid_t *groups, size_t n, enum gmem_role role, int (*fn)(struct gmem_client *c))
{
	struct as_arg a = { .uid = uid, .n_groups = n, .role = role, .fn = fn };
	struct child ch;
	memcpy(a.groups, groups, n * sizeof(gid_t));
	child_start(&ch, as_child, &a);
	return child_wait(&ch);
}

#define EXPECT(x)                                                                                        \
	do {                                                                                             \
		if (!(x)) {                                                                              \
			fprintf(stderr, "%s:%d: as uid %u: %s\n", __FILE__, __LINE__, getuid(), #x);     \
			return 1;                                                                        \
		}                                                                                        \
	} while (0)

static size_t count_guests(struct gmem_client *c)
{
	struct gmem_guest_info *gs;
	size_t n;
	if (gmem_guest_list(c, &gs, &n) < 0)
		return (size_t)-1;
	free(gs);
	return n;
}

static int a_creates(struct gmem_client *c)
{
	EXPECT(gmem_guest_create(c, "a1", 8 * MiB, 0, NULL) == 0);
	EXPECT(count_guests(c) == 1); /* its own, not root's */
	return 0;
}

static int b_sees_nothing(struct gmem_client *c)
{
	int fd;
	EXPECT(count_guests(c) == 0);
	EXPECT(gmem_guest_open(c, "a1", &fd, NULL) == -ENOENT); /* invisible looks missing */
	EXPECT(gmem_guest_destroy(c, "a1") == -ENOENT);
	EXPECT(gmem_grant(c, "a1", "uid:10002", GMEM_ROLE_VMM) == -ENOENT);
	struct gmem_status s;
	EXPECT(gmem_status(c, &s) == 0 && s.guests == 0);
	return 0;
}

static int b_as_device(struct gmem_client *c)
{
	int fd;
	struct gmem_range r = { 0, 4096 };
	struct gmem_convert_result res;
	EXPECT(count_guests(c) == 1);
	EXPECT(gmem_guest_open(c, "a1", &fd, NULL) == 0);
	close(fd);
	EXPECT(gmem_attach(c, "a1", 0, 4096, GMEM_ATTACH_IOMMU, NULL) == 0);
	EXPECT(gmem_convert(c, "a1", &r, 1, GMEM_PRIVATE, 0, &res) == -EPERM);
	EXPECT(strstr(gmem_last_error(c), "vmm grant"));
	EXPECT(gmem_guest_destroy(c, "a1") == -EPERM);
	EXPECT(strstr(gmem_last_error(c), "ownership"));
	EXPECT(gmem_grant(c, "a1", "uid:10002", GMEM_ROLE_VMM) == -EPERM);
	return 0;
}

static int b_as_vmm(struct gmem_client *c)
{
	struct gmem_range r = { 0, 4096 };
	struct gmem_convert_result res;
	EXPECT(gmem_lease(c, "a1") == 0);
	EXPECT(gmem_attach(c, "a1", 0, 8 * MiB, GMEM_ATTACH_KVM, NULL) == 0);
	EXPECT(gmem_release(c, "a1") == 0);
	EXPECT(gmem_convert(c, "a1", &r, 1, GMEM_SHARED, 0, &res) == 0);
	gmem_convert_result_free(&res);
	return 0;
}

static int b_revoked_vmm(struct gmem_client *c)
{
	EXPECT(count_guests(c) == 1); /* the device grant remains */
	EXPECT(gmem_lease(c, "a1") == -EPERM);
	return 0;
}

static int a_grants_and_revokes(struct gmem_client *c, const char *who, enum gmem_role role, bool grant)
{
	return grant ? gmem_grant(c, "a1", who, role) : gmem_revoke(c, "a1", who, role);
}

static int a_grant_dev(struct gmem_client *c) { return a_grants_and_revokes(c, "uid:10002", GMEM_ROLE_DEVICE, true) ? 1 : 0; }
static int a_grant_vmm(struct gmem_client *c) { return a_grants_and_revokes(c, "uid:10002", GMEM_ROLE_VMM, true) ? 1 : 0; }
static int a_revoke_vmm(struct gmem_client *c) { return a_grants_and_revokes(c, "uid:10002", GMEM_ROLE_VMM, false) ? 1 : 0; }
static int a_revoke_dev(struct gmem_client *c) { return a_grants_and_revokes(c, "uid:10002", GMEM_ROLE_DEVICE, false) ? 1 : 0; }
static int a_grant_gid(struct gmem_client *c) { return a_grants_and_revokes(c, "gid:20000", GMEM_ROLE_DEVICE, true) ? 1 : 0; }
static int a_revoke_gid(struct gmem_client *c) { return a_grants_and_revokes(c, "gid:20000", GMEM_ROLE_DEVICE, false) ? 1 : 0; }

static int a_bad_grants(struct gmem_client *c)
{
	EXPECT(gmem_grant(c, "a1", "user:1", GMEM_ROLE_DEVICE) == -EINVAL);
	EXPECT(gmem_grant(c, "a1", "uid:-1", GMEM_ROLE_DEVICE) == -EINVAL);
	EXPECT(gmem_grant(c, "a1", "uid:4294967295", GMEM_ROLE_DEVICE) == -EINVAL);
	EXPECT(gmem_grant(c, "a1", "uid:1", GMEM_ROLE_ADMIN) == -EINVAL);
	EXPECT(gmem_revoke(c, "a1", "uid:1", GMEM_ROLE_DEVICE) == -ENOENT);
	return 0;
}

static int a_destroys(struct gmem_client *c)
{
	EXPECT(gmem_guest_destroy(c, "a1") == 0);
	return 0;
}

static int b_sees_one(struct gmem_client *c)
{
	EXPECT(count_guests(c) == 1);
	return 0;
}

static int b_quota(struct gmem_client *c)
{
	EXPECT(gmem_guest_create(c, "b1", 32 * MiB, 0, NULL) == 0);
	EXPECT(gmem_guest_create(c, "b2", 32 * MiB, 0, NULL) == 0);
	EXPECT(gmem_guest_create(c, "b3", 4096, 0, NULL) == -EDQUOT); /* 64M of bytes */
	EXPECT(gmem_guest_destroy(c, "b2") == 0);
	EXPECT(gmem_guest_create(c, "b2", 4096, 0, NULL) == 0);
	EXPECT(gmem_guest_create(c, "b3", 4096, 0, NULL) == 0);
	EXPECT(gmem_guest_create(c, "b4", 4096, 0, NULL) == -EDQUOT); /* 3 guests */
	EXPECT(strstr(gmem_last_error(c), "quota"));
	EXPECT(gmem_guest_destroy(c, "b1") == 0 && gmem_guest_destroy(c, "b2") == 0 && gmem_guest_destroy(c, "b3") == 0);
	return 0;
}

static int b_connections(struct gmem_client *c)
{
	struct gmem_client *more[4];
	/* The limit is 5 per uid: this one and 4 more fit, the next is refused. */
	for (int i = 0; i < 4; i++)
		EXPECT(gmem_connect(d.socket, GMEM_ROLE_DEVICE, &more[i]) == 0);
	struct gmem_client *x;
	EXPECT(gmem_connect(d.socket, GMEM_ROLE_DEVICE, &x) == -EUSERS);
	for (int i = 0; i < 4; i++)
		gmem_disconnect(more[i]);
	(void)c;
	return 0;
}

static int noop(struct gmem_client *c)
{
	(void)c;
	return 0;
}

static void on_ev(struct gmem_client *c, const struct gmem_event *ev, void *ud)
{
	(void)c;
	if (ev->type == GMEM_EVENT_CONVERSION) {
		char *seen = ud;
		if (!strstr(seen, ev->guest) && strlen(seen) + strlen(ev->guest) + 2 < 256) {
			strcat(seen, ev->guest);
			strcat(seen, " ");
		}
	}
}

/* B watches. The parent converts A's guest (invisible to B), then B converts its own: B must see its own
 * and never A's; events come in order on one connection, so A's would have arrived first. */
static int b_watcher(struct child_io *io, void *arg)
{
	char seen[256] = "";
	struct gmem_client *c;
	(void)arg;
	if (setgroups(0, NULL) < 0 || setgid(UID_B) < 0 || setuid(UID_B) < 0)
		return 90;
	EXPECT(gmem_connect(d.socket, GMEM_ROLE_VMM, &c) == 0);
	gmem_set_event_handler(c, on_ev, seen);
	EXPECT(gmem_watch(c) == 0);
	msg_send(io->out, "watching");
	msg_expect(io->in, "go", 10000);
	struct gmem_convert_result res;
	struct gmem_range r = { 0, 4096 };
	EXPECT(gmem_guest_create(c, "bw", 4096, 0, NULL) == 0);
	EXPECT(gmem_convert(c, "bw", &r, 1, GMEM_PRIVATE, 0, &res) == 0);
	gmem_convert_result_free(&res);
	int64_t deadline = harness_deadline(5000);
	while (!strstr(seen, "bw ")) {
		struct pollfd p = { .fd = gmem_get_fd(c), .events = POLLIN };
		EXPECT(harness_now_ms() < deadline);
		poll(&p, 1, 100);
		gmem_dispatch(c);
	}
	EXPECT(strcmp(seen, "bw ") == 0);
	EXPECT(gmem_guest_destroy(c, "bw") == 0);
	gmem_disconnect(c);
	return 0;
}

static void test_watch_visibility(struct gmem_client *root)
{
	struct child w;
	struct gmem_convert_result res;
	struct gmem_range r = { 0, 4096 };
	child_start(&w, b_watcher, NULL);
	msg_expect(w.from_child, "watching", 10000);
	CHECK_EQ(gmem_convert(root, "a1", &r, 1, GMEM_PRIVATE, 0, &res), 0);
	CHECK_EQ(res.changed, 4096);
	gmem_convert_result_free(&res);
	msg_send(w.to_child, "go");
	CHECK_EQ(child_wait(&w), 0);
}

int main(void)
{
	const gid_t none[1] = { 0 };
	const gid_t x[1] = { GID_X };
	struct gmem_client *root;

	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", "--socket-mode", "0666", "--quota-bytes", "64M",
					  "--quota-guests", "3", "--max-connections-per-uid", "5", "--admin-group",
					  "users", NULL });
	CHECK(chmod(d.dir, 0755) == 0); /* other uids must reach the socket */
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_ADMIN, &root), 0);
	struct group *users = getgrnam("users");
	CHECK(users);

	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_creates), 0);
	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_VMM, b_sees_nothing), 0);
	CHECK_EQ(count_guests(root), 1); /* root sees everything */
	printf("ok another uid cannot see, open, destroy or grant a guest\n");

	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_bad_grants), 0);
	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_grant_dev), 0);
	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_DEVICE, b_as_device), 0);
	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_grant_vmm), 0);
	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_VMM, b_as_vmm), 0);
	/* One grant per identity: granting device again downgrades it; a revoke names the role it takes. */
	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_grant_dev), 0);
	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_VMM, b_revoked_vmm), 0);
	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_revoke_vmm), 1); /* it is a device grant now */
	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_revoke_dev), 0);
	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_VMM, b_sees_nothing), 0);
	printf("ok device and vmm grants by uid, each revoke effective at the next request\n");

	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_grant_gid), 0);
	CHECK_EQ(run_as(UID_B, x, 1, GMEM_ROLE_VMM, b_sees_one), 0);      /* member of gid 20000 */
	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_VMM, b_sees_nothing), 0); /* not a member */
	printf("ok a gid grant matches supplementary groups captured at connect\n");

	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_ADMIN, noop), 91); /* EPERM at hello */
	CHECK_EQ(run_as(UID_B, &users->gr_gid, 1, GMEM_ROLE_ADMIN, b_sees_one), 0);
	printf("ok role admin only for root and the admin group\n");

	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_VMM, b_quota), 0);
	printf("ok quotas per uid: bytes and guests\n");
	CHECK_EQ(run_as(UID_B, none, 0, GMEM_ROLE_VMM, b_connections), 0);
	printf("ok connections per uid are limited\n");
	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_revoke_gid), 0);
	test_watch_visibility(root);
	CHECK_EQ(run_as(UID_A, none, 0, GMEM_ROLE_VMM, a_destroys), 0);
	CHECK_EQ(count_guests(root), 0);
	printf("ok watch and listings show only visible guests\n");

	gmem_disconnect(root);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
