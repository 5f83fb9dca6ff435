/* SPDX-License-Identifier: MIT */
/*
 * Guests with a real gmemd and real client processes: sharing memory between processes, destroy while
 * a holder still maps the guest, duplicate names, pool exhaustion, attachments and the vmm lease, and
 * listing past one reply page.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)

static struct gmemd d;

static struct gmem_client *connect_as(enum gmem_role role)
{
	struct gmem_client *c;
	int r = gmem_connect(d.socket, role, &c);
	if (r < 0) {
		fprintf(stderr, "connect: %s\n", strerror(-r));
		exit(1);
	}
	return c;
}

static uint8_t *map_guest(struct gmem_client *c, const char *name, size_t *ret_size, int *ret_fd)
{
	struct gmem_guest_info info;
	int fd;
	CHECK_EQ(gmem_guest_open(c, name, &fd, &info), 0);
	void *p = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	*ret_size = info.size;
	if (ret_fd)
		*ret_fd = fd;
	else
		close(fd);
	return p;
}

static uint8_t pattern(unsigned who, size_t i)
{
	return (uint8_t)(who * 131 + i * 7 + (i >> 12));
}

static uint64_t checksum(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* Child: map the guest, write its own MiB, then on "check" verify the other child's MiB. */
static int sharer(struct child_io *io, void *arg)
{
	unsigned who = (unsigned)(uintptr_t)arg, other = 1 - who;
	struct gmem_client *c = connect_as(GMEM_ROLE_DEVICE);
	size_t size;
	uint8_t *p = map_guest(c, "shared", &size, NULL);

	for (size_t i = 0; i < MiB; i++)
		p[who * MiB + i] = pattern(who, i);
	msg_send(io->out, "written");
	msg_expect(io->in, "check", 10000);
	for (size_t i = 0; i < MiB; i++)
		if (p[other * MiB + i] != pattern(other, i))
			return 3;
	msg_send(io->out, "ok");
	gmem_disconnect(c);
	return 0;
}

static void test_two_processes_share(void)
{
	struct gmem_client *c = connect_as(GMEM_ROLE_VMM);
	struct child a, b;
	uint8_t expect[MiB];
	size_t size;

	CHECK_EQ(gmem_guest_create(c, "shared", 64 * MiB, 0, NULL), 0);
	child_start(&a, sharer, (void *)0);
	child_start(&b, sharer, (void *)1);
	msg_expect(a.from_child, "written", 10000);
	msg_expect(b.from_child, "written", 10000);

	/* The test's own mapping, not the children's word, is the judge of what they wrote. */
	uint8_t *p = map_guest(c, "shared", &size, NULL);
	CHECK_EQ(size, 64 * MiB);
	for (unsigned who = 0; who < 2; who++) {
		for (size_t i = 0; i < MiB; i++)
			expect[i] = pattern(who, i);
		CHECK_EQ(checksum(p + who * MiB, MiB), checksum(expect, MiB));
	}
	msg_send(a.to_child, "check");
	msg_send(b.to_child, "check");
	msg_expect(a.from_child, "ok", 10000);
	msg_expect(b.from_child, "ok", 10000);
	CHECK_EQ(child_wait(&a), 0);
	CHECK_EQ(child_wait(&b), 0);

	struct gmem_status s;
	CHECK_EQ(gmem_status(c, &s), 0);
	CHECK(s.touched >= 2 * MiB);
	munmap(p, size);
	CHECK_EQ(gmem_guest_destroy(c, "shared"), 0);
	gmem_disconnect(c);
}

static void on_event(struct gmem_client *c, const struct gmem_event *ev, void *userdata)
{
	(void)c;
	if (ev->type == GMEM_EVENT_GUEST_DESTROYED && strcmp(ev->guest, "doomed") == 0)
		*(int *)userdata = 1;
}

/* Child: holds a mapping with data; after the destroy it must get the event and read zeroes. */
static int holder(struct child_io *io, void *arg)
{
	(void)arg;
	struct gmem_client *c = connect_as(GMEM_ROLE_DEVICE);
	int destroyed = 0;
	size_t size;
	uint8_t *p = map_guest(c, "doomed", &size, NULL);

	gmem_set_event_handler(c, on_event, &destroyed);
	memset(p, 0x5a, size);
	msg_send(io->out, "filled");
	int64_t deadline = harness_deadline(10000);
	while (!destroyed) {
		struct pollfd pf = { .fd = gmem_get_fd(c), .events = POLLIN };
		if (harness_now_ms() > deadline)
			return 4;
		if (poll(&pf, 1, 100) > 0 && gmem_dispatch(c) < 0)
			return 5;
	}
	/* The memory went back to the pool: this holder reads zeroes, never another guest's data. */
	for (size_t i = 0; i < size; i += 4096)
		if (p[i] != 0)
			return 6;
	/* Its guest is gone for the daemon too. */
	if (gmem_attach(c, "doomed", 0, 4096, GMEM_ATTACH_MMAP, NULL) != -ENOENT)
		return 7;
	msg_send(io->out, "zeroes");
	gmem_disconnect(c);
	return 0;
}

static void test_destroy_while_open(void)
{
	struct gmem_client *c = connect_as(GMEM_ROLE_VMM);
	struct gmem_status before, during, after;
	struct child h;

	CHECK_EQ(gmem_status(c, &before), 0);
	CHECK_EQ(gmem_guest_create(c, "doomed", 8 * MiB, 0, NULL), 0);
	child_start(&h, holder, NULL);
	msg_expect(h.from_child, "filled", 10000);
	CHECK_EQ(gmem_status(c, &during), 0);
	CHECK_EQ(during.pool_used, before.pool_used + 8 * MiB);
	CHECK(during.touched >= before.touched + 8 * MiB);

	CHECK_EQ(gmem_guest_destroy(c, "doomed"), 0);
	char line[64];
	bool got = msg_recv(h.from_child, line, sizeof(line), 10000);
	CHECK_EQ(child_wait(&h), 0);
	CHECK(got && strcmp(line, "zeroes") == 0);
	CHECK_EQ(gmem_status(c, &after), 0);
	CHECK_EQ(after.pool_used, before.pool_used);
	CHECK_EQ(after.touched, before.touched);

	/* The name is free again and a new guest under it starts zeroed. */
	size_t size;
	CHECK_EQ(gmem_guest_create(c, "doomed", 8 * MiB, 0, NULL), 0);
	uint8_t *p = map_guest(c, "doomed", &size, NULL);
	for (size_t i = 0; i < size; i += 4096)
		CHECK_EQ(p[i], 0);
	munmap(p, size);
	CHECK_EQ(gmem_guest_destroy(c, "doomed"), 0);
	gmem_disconnect(c);
}

static void test_names_and_exhaustion(void)
{
	struct gmem_client *c = connect_as(GMEM_ROLE_VMM);
	struct gmem_status s;

	CHECK_EQ(gmem_guest_create(c, "a", 128 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_create(c, "a", 4096, 0, NULL), -EEXIST);
	CHECK(strstr(gmem_last_error(c), "exists"));
	CHECK_EQ(gmem_guest_create(c, "bad/name", 4096, 0, NULL), -EINVAL);
	CHECK_EQ(gmem_guest_create(c, "odd", 4097, 0, NULL), -EINVAL);
	CHECK_EQ(gmem_guest_create(c, "odd", 3 * MiB, GMEM_GRANULE_2M, NULL), -EINVAL);
	CHECK_EQ(gmem_guest_destroy(c, "nope"), -ENOENT);

	/* The pool is 256M: a second 128M fits exactly, then nothing does. */
	CHECK_EQ(gmem_guest_create(c, "b", 128 * MiB, GMEM_GRANULE_2M, NULL), 0);
	CHECK_EQ(gmem_guest_create(c, "c", 4096, 0, NULL), -ENOSPC);
	CHECK(strstr(gmem_last_error(c), "no room"));
	/* ... and the daemon keeps serving. */
	CHECK_EQ(gmem_status(c, &s), 0);
	CHECK_EQ(s.pool_used, s.pool_size);
	CHECK_EQ(gmem_guest_destroy(c, "a"), 0);
	CHECK_EQ(gmem_guest_create(c, "c", 64 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_destroy(c, "b"), 0);
	CHECK_EQ(gmem_guest_destroy(c, "c"), 0);
	CHECK_EQ(gmem_status(c, &s), 0);
	CHECK_EQ(s.pool_used, 0);
	gmem_disconnect(c);
}

static bool lease_taken(void *arg)
{
	return gmem_lease(arg, "g") == 0;
}

static void test_attach_and_lease(void)
{
	struct gmem_client *vmm = connect_as(GMEM_ROLE_VMM), *vmm2 = connect_as(GMEM_ROLE_VMM);
	struct gmem_client *dev = connect_as(GMEM_ROLE_DEVICE);
	struct gmem_guest_info *gs;
	size_t n;
	uint64_t id, kid;

	CHECK_EQ(gmem_guest_create(vmm, "g", 16 * MiB, GMEM_GRANULE_2M, NULL), 0);
	CHECK_EQ(gmem_attach(dev, "g", 0, 2 * MiB, GMEM_ATTACH_IOMMU, &id), 0);
	CHECK_EQ(gmem_attach(dev, "g", MiB, 2 * MiB, GMEM_ATTACH_MMAP, NULL), -EINVAL); /* unaligned */
	CHECK_EQ(gmem_attach(dev, "g", 14 * MiB, 4 * MiB, GMEM_ATTACH_MMAP, NULL), -ERANGE);
	CHECK_EQ(gmem_attach(dev, "g", 0, 2 * MiB, GMEM_ATTACH_KVM, NULL), -EPERM);
	CHECK_EQ(gmem_lease(dev, "g"), -EPERM); /* role device */
	CHECK_EQ(gmem_lease(vmm, "g"), 0);
	CHECK_EQ(gmem_lease(vmm2, "g"), -EBUSY);
	CHECK_EQ(gmem_attach(vmm, "g", 0, 16 * MiB, GMEM_ATTACH_KVM, &kid), 0);
	CHECK_EQ(gmem_guest_list(vmm, &gs, &n), 0);
	CHECK_EQ(n, 1);
	CHECK(gs[0].leased);
	CHECK_EQ(gs[0].attachments, 2);
	free(gs);

	CHECK_EQ(gmem_detach(vmm2, id), -ENOENT); /* not its attachment */
	CHECK_EQ(gmem_detach(dev, id), 0);
	CHECK_EQ(gmem_detach(dev, id), -ENOENT);

	/* A lease dies with its connection, and the kvm attachments under it. The daemon learns of the
	 * disconnect asynchronously, so the other vmm polls for the lease. */
	gmem_disconnect(vmm);
	CHECK(wait_until(lease_taken, vmm2, 5000));
	CHECK_EQ(gmem_guest_list(vmm2, &gs, &n), 0);
	CHECK_EQ(gs[0].attachments, 0);
	free(gs);
	CHECK_EQ(gmem_release(vmm2, "g"), 0);
	CHECK_EQ(gmem_release(vmm2, "g"), -ENOENT);
	CHECK_EQ(gmem_guest_destroy(vmm2, "g"), 0);
	gmem_disconnect(vmm2);
	gmem_disconnect(dev);
}

static void test_list_pages(void)
{
	struct gmem_client *c = connect_as(GMEM_ROLE_ADMIN);
	struct gmem_guest_info *gs;
	char name[32];
	size_t n;

	/* More than two reply pages. */
	for (int i = 0; i < 450; i++) {
		snprintf(name, sizeof(name), "page-%03d", i);
		CHECK_EQ(gmem_guest_create(c, name, 4096, 0, NULL), 0);
	}
	CHECK_EQ(gmem_guest_list(c, &gs, &n), 0);
	CHECK_EQ(n, 450);
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "page-%03zu", i);
		CHECK(strcmp(gs[i].name, name) == 0);
		CHECK(i == 0 || gs[i].id > gs[i - 1].id);
	}
	free(gs);
	for (int i = 0; i < 450; i++) {
		snprintf(name, sizeof(name), "page-%03d", i);
		CHECK_EQ(gmem_guest_destroy(c, name), 0);
	}
	gmem_disconnect(c);
}

int main(void)
{
	const char *extra[] = { "--pool-size", "256M", NULL };
	gmemd_start(&d, extra);
	test_two_processes_share();
	printf("ok two processes share a guest\n");
	test_destroy_while_open();
	printf("ok destroy while a holder maps it\n");
	test_names_and_exhaustion();
	printf("ok names and pool exhaustion\n");
	test_attach_and_lease();
	printf("ok attachments and the vmm lease\n");
	test_list_pages();
	printf("ok listing across pages\n");
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
