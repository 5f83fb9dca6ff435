/* SPDX-License-Identifier: MIT */
/*
 * Guest lifetimes: an ephemeral guest goes when the process of its vmm lease holder exits — SIGKILL, no
 * goodbye — and its memory returns to the pool; a persistent one stays. The binding moves with the
 * lease; an ephemeral guest nobody leased yet (gmemctl created it and exited) stays.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)

static struct gmemd d;
static struct gmem_client *admin;

static bool exists(const char *name)
{
	struct gmem_guest_info *gs;
	size_t n;
	bool found = false;
	CHECK_EQ(gmem_guest_list(admin, &gs, &n), 0);
	for (size_t i = 0; i < n; i++)
		found |= strcmp(gs[i].name, name) == 0;
	free(gs);
	return found;
}

static uint64_t pool_used(void)
{
	struct gmem_status s;
	CHECK_EQ(gmem_status(admin, &s), 0);
	return s.pool_used;
}

static bool gone(void *name)
{
	return !exists(name);
}

/* A VMM: leases each guest named in arg (space-separated), maps and writes the first, then waits. */
static int vmm(struct child_io *io, void *arg)
{
	char names[128], *save = NULL;
	struct gmem_client *c;
	int fd;
	snprintf(names, sizeof(names), "%s", (const char *)arg);
	if (gmem_connect(d.socket, GMEM_ROLE_VMM, &c) < 0)
		return 10;
	for (char *n = strtok_r(names, " ", &save); n; n = strtok_r(NULL, " ", &save))
		if (gmem_lease(c, n) < 0)
			return 11;
	if (gmem_guest_open(c, strtok(names, " "), &fd, NULL) < 0)
		return 12;
	unsigned char *p = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 13;
	memset(p, 0xa5, 1 * MiB);
	msg_send(io->out, "ready");
	for (;;)
		pause();
}

static void vmm_start(struct child *ch, const char *names)
{
	child_start(ch, vmm, (void *)names);
	msg_expect(ch->from_child, "ready", 10000);
}

static void kill_child(struct child *ch)
{
	kill(ch->pid, SIGKILL);
	CHECK_EQ(child_wait(ch), 128 + SIGKILL);
}

static int destroyed_events;

static void on_event(struct gmem_client *c, const struct gmem_event *ev, void *ud)
{
	(void)c;
	(void)ud;
	if (ev->type == GMEM_EVENT_GUEST_DESTROYED && strcmp(ev->guest, "eph") == 0)
		destroyed_events++;
}

static bool heard_destroy(void *arg)
{
	gmem_dispatch(arg);
	return destroyed_events > 0;
}

static void test_sigkill(void)
{
	char *out, *err;
	struct gmem_client *holder;
	int fd;
	const char *create[] = { binary("GMEMCTL"), "--socket", d.socket, "create", "eph", "64M", "--ephemeral", NULL };

	CHECK_EQ(run_capture(create, &out, &err), 0);
	free(out);
	free(err);
	CHECK_EQ(gmem_guest_create(admin, "keep", 64 * MiB, 0, NULL), 0);
	/* gmemctl, its creator, has exited: nobody leased it yet, so it stays. */
	CHECK(exists("eph"));
	CHECK_EQ(pool_used(), 128 * MiB);

	/* Another process holds a file of it: it must hear of the destroy. */
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_DEVICE, &holder), 0);
	gmem_set_event_handler(holder, on_event, NULL);
	CHECK_EQ(gmem_guest_open(holder, "eph", &fd, NULL), 0);

	struct child ch;
	vmm_start(&ch, "eph keep");
	kill_child(&ch);
	CHECK(wait_until(gone, "eph", 10000));
	CHECK(wait_until(heard_destroy, holder, 10000));
	CHECK(exists("keep"));
	CHECK_EQ(pool_used(), 64 * MiB);
	printf("  after SIGKILL of the vmm: 'eph' gone, pool used %llu MiB ('keep' only)\n",
	       (unsigned long long)(pool_used() / MiB));
	/* The file the holder kept reads zeroes: the memory went back to the pool, punched. */
	unsigned char *p = mmap(NULL, 1 * MiB, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	CHECK_EQ(p[0], 0);
	CHECK_EQ(p[1 * MiB - 1], 0);
	munmap(p, 1 * MiB);
	close(fd);
	gmem_disconnect(holder);
	CHECK_EQ(gmem_guest_destroy(admin, "keep"), 0);
}

static void test_lease_moves(void)
{
	struct child a, b;
	CHECK_EQ(gmem_guest_create_ex(admin, "mv", 16 * MiB, 0, GMEM_CREATE_EPHEMERAL, NULL), 0);
	CHECK_EQ(gmem_guest_create_ex(admin, "probe", 16 * MiB, 0, GMEM_CREATE_EPHEMERAL, NULL), 0);
	vmm_start(&a, "mv");
	kill_child(&a); /* bound to a: goes */
	CHECK(wait_until(gone, "mv", 10000));

	CHECK_EQ(gmem_guest_create_ex(admin, "mv", 16 * MiB, 0, GMEM_CREATE_EPHEMERAL, NULL), 0);
	struct gmem_client *first;
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &first), 0);
	CHECK_EQ(gmem_lease(first, "mv"), 0); /* bound to this process: the test itself */
	gmem_disconnect(first);               /* the connection closes, the process lives on */
	vmm_start(&b, "probe");
	kill_child(&b);
	/* probe's holder exited after our disconnect: once probe is gone, gmemd has seen both. */
	CHECK(wait_until(gone, "probe", 10000));
	CHECK(exists("mv"));
	vmm_start(&a, "mv"); /* the binding moves to a */
	kill_child(&a);
	CHECK(wait_until(gone, "mv", 10000));
	CHECK_EQ(pool_used(), 0);
}

int main(void)
{
	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", NULL });
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_ADMIN, &admin), 0);
	test_sigkill();
	printf("ok SIGKILL of the vmm: the ephemeral guest goes, its memory returns to the pool, a persistent one "
	       "stays\n");
	test_lease_moves();
	printf("ok the binding follows the lease; a closed connection is not an exit\n");
	gmem_disconnect(admin);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
