/* SPDX-License-Identifier: MIT */
/*
 * Which memory cgroup pays for guest memory on the memfd backend (README, "Which cgroup pays"): gmemd
 * runs in cgroup A, a VMM in B faults 64 MiB of a guest in, a second process in C touches the same
 * pages. The shmem counted in each cgroup's memory.stat must show B charged for all of it, A and C for
 * none; B keeps the charge after the VMM exits, until the guest is destroyed. Works on cgroup v1 (the
 * memory hierarchy) and v2; needs root, like the rest of the integration suite.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)

static struct gmemd d;
static char base[512];

/* Our own memory cgroup's directory: the v1 memory hierarchy, else the v2 unified one. */
static void find_base(void)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[512], v2[512] = "";
	CHECK(f);
	base[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		if (strcmp(c1 + 1, "memory") == 0)
			snprintf(base, sizeof(base), "/sys/fs/cgroup/memory%s", c2 + 1);
		else if (c1[1] == '\0')
			snprintf(v2, sizeof(v2), "/sys/fs/cgroup%s", c2 + 1);
	}
	fclose(f);
	if (!base[0])
		snprintf(base, sizeof(base), "%s", v2);
	printf("  memory cgroup: %s\n", base);
}

static char cg_names[3][600];

static void cg_make(int i, const char *cg)
{
	snprintf(cg_names[i], sizeof(cg_names[i]), "%s/gmem-test-%d-%s", base, (int)getpid(), cg);
	if (mkdir(cg_names[i], 0755) < 0) {
		fprintf(stderr, "mkdir %s: %s\n", cg_names[i], strerror(errno));
		exit(1);
	}
}

static void cg_enter(int i, pid_t pid)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_names[i]);
	FILE *f = fopen(path, "w");
	CHECK(f);
	CHECK(fprintf(f, "%d\n", (int)pid) > 0);
	CHECK(fclose(f) == 0);
}

static uint64_t cg_shmem(int i)
{
	char path[700], line[256];
	uint64_t v = UINT64_MAX;
	snprintf(path, sizeof(path), "%s/memory.stat", cg_names[i]);
	FILE *f = fopen(path, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "shmem %lu", &v) == 1)
			break;
	fclose(f);
	CHECK(v != UINT64_MAX);
	return v;
}

struct toucher {
	int cg;
	const char *guest;
};

static int touch(struct child_io *io, void *arg)
{
	struct toucher *t = arg;
	struct gmem_client *c;
	int fd;
	cg_enter(t->cg, 0); /* 0: this process */
	if (gmem_connect(d.socket, GMEM_ROLE_VMM, &c) < 0 || gmem_guest_open(c, t->guest, &fd, NULL) < 0)
		return 10;
	unsigned char *p = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 11;
	for (uint64_t i = 0; i < 64 * MiB; i += 4096)
		p[i]++;
	munmap(p, 64 * MiB);
	close(fd);
	gmem_disconnect(c);
	msg_send(io->out, "touched");
	return 0;
}

/* Best effort, also when a check failed: the cgroups are empty once their processes are gone. */
static void cg_remove(void)
{
	for (int i = 2; i >= 0; i--)
		if (cg_names[i][0] && rmdir(cg_names[i]) < 0 && errno != ENOENT)
			fprintf(stderr, "rmdir %s: %s\n", cg_names[i], strerror(errno));
}

int main(void)
{
	struct gmem_client *c;
	struct child ch;
	enum { A, B, C };

	find_base();
	atexit(cg_remove);
	cg_make(A, "gmemd");
	cg_make(B, "vmm");
	cg_make(C, "other");
	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", NULL });
	cg_enter(A, d.pid);
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);
	CHECK_EQ(gmem_guest_create(c, "g", 64 * MiB, 0, NULL), 0);
	uint64_t a0 = cg_shmem(A), b0 = cg_shmem(B), c0 = cg_shmem(C);

	struct toucher tb = { B, "g" }, tc = { C, "g" };
	child_start(&ch, touch, &tb);
	msg_expect(ch.from_child, "touched", 20000);
	CHECK_EQ(child_wait(&ch), 0);
	uint64_t a1 = cg_shmem(A), b1 = cg_shmem(B);
	child_start(&ch, touch, &tc);
	msg_expect(ch.from_child, "touched", 20000);
	CHECK_EQ(child_wait(&ch), 0);
	uint64_t c1 = cg_shmem(C), b2 = cg_shmem(B);
	CHECK_EQ(gmem_guest_destroy(c, "g"), 0);
	uint64_t b3 = cg_shmem(B);
	printf("  shmem charged: gmemd's cgroup %+lld KiB, the VMM's %+lld KiB (after it exited: %+lld KiB), a second "
	       "toucher's %+lld KiB; the VMM's after destroy %+lld KiB\n", ((long long)a1 - (long long)a0) / 1024,
	       ((long long)b1 - (long long)b0) / 1024, ((long long)b2 - (long long)b0) / 1024,
	       ((long long)c1 - (long long)c0) / 1024, ((long long)b3 - (long long)b0) / 1024);
	/* Signed: a count may also go down a little (other pages of that cgroup come and go). */
	const long long M = (long long)MiB;
	CHECK((long long)(b1 - b0) >= 64 * M);
	CHECK((long long)(a1 - a0) < M);
	CHECK((long long)(b2 - b0) >= 64 * M);
	CHECK((long long)(c1 - c0) < M);
	CHECK((long long)(b3 - b0) < M);

	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	printf("ok memfd guest memory is charged to the cgroup that faults it in, not gmemd's, until destroy\n");
	return 0;
}
