/* SPDX-License-Identifier: MIT */
/*
 * test-fdstore: the memfd backend's guests across gmemd restarts through the fd store, with this test
 * playing systemd (sdharness). A pattern written before a SIGKILL reads back after the restart while,
 * in between, no process but the harness held the memfds; a destroy takes the fd out of the store; a
 * full stop (the store emptied) brings guests back lost, never empty, until forgotten; and a file that
 * is not the guest's memory (st_dev/st_ino differ from the journal's) is refused: the guest is lost.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sdharness.h"

#define SIZE (4u << 20)

static const char *const extra[] = { "--pool-size", "256M", NULL };

static struct gmem_client *connect_to(struct sdh *h)
{
	struct gmem_client *c;
	CHECK(gmem_connect(h->d.socket, GMEM_ROLE_VMM, &c) == 0);
	return c;
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + 1 + (i >> 12));
}

static void write_pattern(struct gmem_client *c, const char *name)
{
	int fd;
	CHECK(gmem_guest_open(c, name, &fd, NULL) == 0);
	unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	for (size_t i = 0; i < SIZE; i++)
		p[i] = pattern(i);
	munmap(p, SIZE);
	close(fd);
}

static ino_t check_pattern(struct gmem_client *c, const char *name)
{
	int fd;
	struct stat st;
	CHECK(gmem_guest_open(c, name, &fd, NULL) == 0);
	CHECK(fstat(fd, &st) == 0);
	unsigned char *p = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	for (size_t i = 0; i < SIZE; i++)
		if (p[i] != pattern(i)) {
			fprintf(stderr, "byte %zu of '%s' is %u, not %u\n", i, name, p[i], pattern(i));
			exit(1);
		}
	munmap(p, SIZE);
	close(fd);
	return st.st_ino;
}

/* Processes other than us holding an fd (or a mapping) of the file (dev, ino). */
static int other_holders(dev_t dev, ino_t ino)
{
	int n = 0;
	DIR *proc = opendir("/proc");
	CHECK(proc);
	for (struct dirent *e; (e = readdir(proc));) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		DIR *fds = opendir(path);
		if (!fds)
			continue;
		for (struct dirent *f; (f = readdir(fds));) {
			char p2[512];
			struct stat st;
			snprintf(p2, sizeof(p2), "/proc/%ld/fd/%s", pid, f->d_name);
			if (f->d_name[0] != '.' && stat(p2, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
				fprintf(stderr, "pid %ld holds the memfd as fd %s\n", pid, f->d_name);
				n++;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return n;
}

static bool journal_names_ino(const struct sdh *h, ino_t ino)
{
	char path[400], needle[64], line[4096];
	snprintf(path, sizeof(path), "%s/journal.jsonl", h->d.state);
	snprintf(needle, sizeof(needle), "\"ino\":%llu,", (unsigned long long)ino);
	FILE *f = fopen(path, "r");
	bool found = false;
	CHECK(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static bool log_says(const struct sdh *h, const char *what)
{
	char line[2048];
	bool found = false;
	FILE *f = fopen(h->d.log, "r");
	CHECK(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static bool store_dropped(void *arg)
{
	struct sdh *h = arg;
	sdh_pump(h);
	return sdh_stored(h, "guest-2") < 0;
}

static size_t count(struct gmem_client *c, bool lost)
{
	struct gmem_guest_info *gs;
	size_t n;
	CHECK((lost ? gmem_guest_list_lost(c, &gs, &n) : gmem_guest_list(c, &gs, &n)) == 0);
	free(gs);
	return n;
}

int main(void)
{
	struct sdh h;
	struct stat st;

	sdh_init(&h);
	sdh_start(&h, "GMEMD", extra, NULL);
	struct gmem_client *c = connect_to(&h);
	CHECK(gmem_guest_create(c, "vm-a", SIZE, 0, NULL) == 0);
	CHECK(gmem_guest_create(c, "vm-b", SIZE, 0, NULL) == 0);
	write_pattern(c, "vm-a");
	gmem_disconnect(c);
	sdh_pump(&h);
	CHECK(sdh_stored(&h, "guest-1") >= 0);
	CHECK(sdh_stored(&h, "guest-2") >= 0);

	/* gmemd dies; we, playing systemd, are the only holder of the memory, and it is the file the
	 * journal names. */
	sdh_kill(&h);
	CHECK(fstat(sdh_stored(&h, "guest-1"), &st) == 0);
	CHECK_EQ(other_holders(st.st_dev, st.st_ino), 0);
	CHECK(journal_names_ino(&h, st.st_ino));

	sdh_start(&h, "GMEMD", extra, NULL);
	c = connect_to(&h);
	CHECK_EQ(count(c, false), 2);
	CHECK(check_pattern(c, "vm-a") == st.st_ino);
	fprintf(stderr, "fd store round trip: 4 MiB pattern read back after SIGKILL, inode %llu\n",
		(unsigned long long)st.st_ino);

	/* A destroy takes the memory out of the store too. */
	CHECK(gmem_guest_destroy(c, "vm-b") == 0);
	CHECK(wait_until(store_dropped, &h, 5000));
	gmem_disconnect(c);

	/* A full stop: systemd 252 empties the store. The guest comes back lost, not empty. */
	CHECK_EQ(sdh_stop(&h), 0);
	sdh_clear_store(&h);
	sdh_start(&h, "GMEMD", extra, NULL);
	c = connect_to(&h);
	CHECK_EQ(count(c, false), 0);
	CHECK_EQ(count(c, true), 1);
	CHECK(gmem_guest_create(c, "vm-a", SIZE, 0, NULL) == -EEXIST);
	char *out, *err;
	const char *ls[] = { binary("GMEMCTL"), "--socket", h.d.socket, "--json", "guests", "--lost", NULL };
	CHECK_EQ(run_capture(ls, &out, &err), 0);
	CHECK(strstr(out, "\"name\":\"vm-a\"") || strstr(out, "\"name\": \"vm-a\""));
	free(out);
	free(err);
	const char *fg[] = { binary("GMEMCTL"), "--socket", h.d.socket, "forget", "vm-a", NULL };
	CHECK_EQ(run_capture(fg, &out, &err), 0);
	free(out);
	free(err);
	CHECK_EQ(run_capture(fg, &out, &err), 1); /* gone: nothing to forget */
	free(out);
	free(err);
	CHECK_EQ(count(c, true), 0);
	CHECK(gmem_guest_create(c, "vm-a", SIZE, 0, NULL) == 0);
	/* Forgotten for good: it stays gone after another restart. */
	CHECK(gmem_guest_create(c, "vm-c", SIZE, 0, NULL) == 0);
	gmem_disconnect(c);
	sdh_kill(&h);

	/* The control: a file that is not the guest's memory, under the guest's name (same size, same
	 * seals). The identity check must refuse it: the guest is lost, the foreign file never served. */
	char name[32];
	int victim = -1;
	for (size_t i = 0; i < h.n_fds; i++)
		if (strcmp(h.names[i], "guest-1") != 0 && strcmp(h.names[i], "guest-2") != 0)
			victim = (int)i;
	CHECK(victim >= 0);
	snprintf(name, sizeof(name), "%s", h.names[victim]);
	int foreign = memfd_create("foreign", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(foreign >= 0 && ftruncate(foreign, SIZE) == 0);
	CHECK(fcntl(foreign, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
	close(h.fds[victim]);
	h.fds[victim] = foreign;
	sdh_start(&h, "GMEMD", extra, NULL);
	c = connect_to(&h);
	CHECK_EQ(count(c, false), 1);
	CHECK_EQ(count(c, true), 1);
	CHECK(log_says(&h, "st_dev/st_ino differ"));
	gmem_disconnect(c);
	CHECK_EQ(sdh_stop(&h), 0);
	sdh_cleanup(&h);
	fprintf(stderr, "fd store: lost guests listed and forgotten, a foreign file refused\n");
	return 0;
}
