/* SPDX-License-Identifier: MIT */
/*
 * Debian's QEMU on gmem memory (issue 7): qemu-system-x86_64 (software emulation) runs under
 * `gmemctl exec`, its guest RAM the guest's memfd opened by path (memory-backend-file,
 * mem-path=/proc/self/fd/$GMEM_FD, share=on). It boots Debian's cloud kernel with a tiny initramfs
 * (busybox and qemu/guest-init.c), and the two sides prove they share memory through the gmem fd:
 *   - the guest keeps 16 random bytes in memory and prints them; the test, holding its own file of the
 *     guest, finds those bytes (raw, not the printed hex) by scanning the guest's memory;
 *   - the guest announces the guest-physical address of a page it polls; the test writes 16 random
 *     bytes and a magic there through its file, and the guest prints them back.
 * While QEMU runs, its attachment stands and a to-private conversion of its memory is refused; when
 * QEMU exits, the attachment ends. Judged by console lines only, never by QEMU's exit code.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "qemu/spawn.h"

#define GUEST_SIZE (UINT64_C(256) << 20) /* all of it below 4 GiB: guest-physical = offset in the file */
#define PAGE 4096

static struct gmemd d;
static struct gmem_client *c;
static struct spawned vm = { .pid = -1 };
static char console[64][160]; /* the last lines, for a failure's report */
static unsigned n_console;

static void report_console(void)
{
	unsigned first = n_console > 64 ? n_console - 64 : 0;
	fprintf(stderr, "---- guest console (last lines) ----\n");
	for (unsigned i = first; i < n_console; i++)
		fprintf(stderr, "%s\n", console[i % 64]);
	fprintf(stderr, "------------------------------------\n");
}

/* On any failure (CHECK exits): show the console and stop QEMU (gmemctl passes SIGTERM on). */
static void on_exit_cleanup(void)
{
	if (vm.pid > 0) {
		report_console();
		kill(vm.pid, SIGTERM);
	}
}

static bool on_path(const char *prog)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", prog);
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	char *out, *err;
	int st = run_capture(argv, &out, &err);
	free(out);
	free(err);
	return st == 0;
}

/* The kernel the linux-image-cloud-amd64 metapackage points at (its ABI number changes: never
 * hard-coded), or $GMEM_TEST_KERNEL. */
static bool find_kernel(char *path, size_t size)
{
	const char *env = getenv("GMEM_TEST_KERNEL");
	if (env && *env) {
		snprintf(path, size, "%s", env);
		return access(path, R_OK) == 0;
	}
	const char *argv[] = { "dpkg-query", "-W", "-f", "${Depends}", "linux-image-cloud-amd64", NULL };
	char *out, *err, ver[128];
	int st = run_capture(argv, &out, &err);
	bool ok = st == 0 && sscanf(out, "linux-image-%127[^ ,(]", ver) == 1;
	free(out);
	free(err);
	if (ok)
		snprintf(path, size, "/boot/vmlinuz-%s", ver);
	return ok && access(path, R_OK) == 0;
}

static void need(bool have, const char *what)
{
	if (have)
		return;
	const char *ci = getenv("CI");
	fprintf(stderr, "test-qemu: %s is missing (contrib/dev/install-deps test installs it)\n", what);
	exit(ci && strcmp(ci, "true") == 0 ? 1 : 77);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	CHECK(in >= 0 && out >= 0);
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK(write(out, buf, (size_t)n) == n);
	CHECK(n == 0);
	close(in);
	close(out);
}

/* busybox runs /init; /init mounts what guest-init needs, runs it, and powers off whatever happens. */
static const char init_script[] = "#!/bin/busybox sh\n"
				  "/bin/busybox mount -t devtmpfs dev /dev\n"
				  "exec </dev/console >/dev/console 2>&1\n"
				  "/bin/busybox mount -t proc proc /proc\n"
				  "/guest-init\n"
				  "echo \"GMEM-INIT-EXIT $?\"\n"
				  "/bin/busybox poweroff -f\n";

static void make_initramfs(const char *dir, char *initrd, size_t size)
{
	char root[512], p[600], cmd[1400];
	snprintf(root, sizeof(root), "%s/initramfs", dir);
	const char *sub[] = { "", "/bin", "/dev", "/proc" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", root, sub[i]);
		CHECK(mkdir(p, 0755) == 0);
	}
	snprintf(p, sizeof(p), "%s/bin/busybox", root);
	copy_file("/bin/busybox", p);
	snprintf(p, sizeof(p), "%s/guest-init", root);
	copy_file(binary("GMEM_GUEST_INIT"), p);
	snprintf(p, sizeof(p), "%s/init", root);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	CHECK(fd >= 0 && write(fd, init_script, strlen(init_script)) == (ssize_t)strlen(init_script));
	close(fd);
	snprintf(initrd, size, "%s/initrd.cpio", dir);
	snprintf(cmd, sizeof(cmd), "cd '%s' && find . | cpio -o -H newc --quiet > '%s'", root, initrd);
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	char *out, *err;
	if (run_capture(argv, &out, &err) != 0) {
		fprintf(stderr, "cpio: %s\n", err);
		exit(1);
	}
	free(out);
	free(err);
}

static void gmem_line_keep(const char *line)
{
	char *slot = console[n_console++ % 64];
	size_t n = strnlen(line, sizeof(console[0]) - 1);
	memcpy(slot, line, n);
	slot[n] = 0;
}

/* The next console line that starts with prefix (CR stripped); fails on a guest failure line, EOF or
 * the deadline. */
static void expect_line(const char *prefix, char *rest, size_t size, int64_t deadline)
{
	char line[512];
	for (;;) {
		int64_t left = deadline - harness_now_ms();
		/* msg_recv scales its timeout: hand it the unscaled remainder. */
		if (left <= 0 || !msg_recv(vm.from, line, sizeof(line), (int64_t)(left / harness_scale()) + 1)) {
			fprintf(stderr, "test-qemu: no '%s' line from the guest (EOF or deadline)\n", prefix);
			exit(1);
		}
		line[strcspn(line, "\r")] = 0;
		gmem_line_keep(line);
		if (strncmp(line, "GMEM-GUEST-FAIL", 15) == 0) {
			fprintf(stderr, "test-qemu: the guest failed: %s\n", line);
			exit(1);
		}
		if (strncmp(line, prefix, strlen(prefix)) == 0 && line[strlen(prefix)] == ' ') {
			snprintf(rest, size, "%s", line + strlen(prefix) + 1);
			return;
		}
	}
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static bool from_hex(const char *s, uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return false;
		b[i] = (uint8_t)v;
	}
	return strlen(s) == 2 * n;
}

/* Where the bytes are in the guest's memory, scanning only the pages that hold any (mincore), or -1. */
static int64_t scan(const uint8_t *mem, const uint8_t *needle, size_t n)
{
	static unsigned char resident[GUEST_SIZE / PAGE];
	CHECK(mincore((void *)mem, GUEST_SIZE, resident) == 0);
	for (size_t i = 0; i < GUEST_SIZE / PAGE;) {
		if (!(resident[i] & 1)) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < GUEST_SIZE / PAGE && (resident[j] & 1))
			j++;
		const uint8_t *hit = memmem(mem + i * PAGE, (j - i) * PAGE, needle, n);
		if (hit)
			return hit - mem;
		i = j;
	}
	return -1;
}

static uint64_t attachments(void)
{
	struct gmem_guest_info *gs;
	size_t n;
	uint64_t a = UINT64_MAX;
	CHECK(gmem_guest_list(c, &gs, &n) == 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(gs[i].name, "vm") == 0)
			a = gs[i].attachments;
	free(gs);
	return a;
}

static bool detached(void *arg)
{
	(void)arg;
	return attachments() == 0;
}

int main(void)
{
	char kernel[512], initrd[600], qemu[2048], rest[512], want[40], got_hex[40];
	uint8_t token[16], mine[16];
	struct gmem_guest_info info;
	struct gmem_convert_result res;
	int fd;

	need(on_path("qemu-system-x86_64"), "qemu-system-x86_64 (package qemu-system-x86)");
	need(access("/bin/busybox", X_OK) == 0, "/bin/busybox (package busybox-static)");
	need(on_path("cpio"), "cpio");
	need(find_kernel(kernel, sizeof(kernel)), "the kernel of linux-image-cloud-amd64");
	signal(SIGPIPE, SIG_IGN);

	int64_t t0 = harness_now_ms();
	gmemd_start(&d, NULL);
	make_initramfs(d.dir, initrd, sizeof(initrd));
	CHECK(gmem_connect(d.socket, GMEM_ROLE_ADMIN, &c) == 0);
	CHECK(gmem_guest_create(c, "vm", GUEST_SIZE, 0, NULL) == 0);

	/* sh expands $GMEM_FD and becomes QEMU, so QEMU is the process gmemd watches. */
	snprintf(qemu, sizeof(qemu),
		 "exec qemu-system-x86_64 -nodefaults -no-user-config -display none -serial stdio -monitor none "
		 "-accel tcg -smp 1 -m %lluM -no-reboot -kernel '%s' -initrd '%s' "
		 "-append 'console=ttyS0 panic=-1 oops=panic quiet' "
		 "-object memory-backend-file,id=m,size=%llu,mem-path=/proc/self/fd/$GMEM_FD,share=on "
		 "-machine memory-backend=m </dev/null",
		 (unsigned long long)(GUEST_SIZE >> 20), kernel, initrd, (unsigned long long)GUEST_SIZE);
	atexit(on_exit_cleanup);
	spawn_exec(&vm, d.socket, "vm", (const char *const[]){ "/bin/sh", "-c", qemu, NULL }, true);
	close(vm.to);
	int64_t deadline = harness_deadline(60000);

	expect_line("GMEM-TOKEN", rest, sizeof(rest), deadline);
	int64_t t_token = harness_now_ms();
	CHECK(from_hex(rest, token, sizeof(token)));
	expect_line("GMEM-MAILBOX", rest, sizeof(rest), deadline);
	unsigned long long box = strtoull(rest, NULL, 16);
	CHECK(box % PAGE == 0 && box + PAGE <= GUEST_SIZE);

	/* Our own file of the guest: QEMU's memory, seen from outside. */
	CHECK(gmem_guest_open(c, "vm", &fd, &info) == 0);
	uint8_t *mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(mem != MAP_FAILED);
	int64_t at = scan(mem, token, sizeof(token));
	if (at < 0) {
		fprintf(stderr, "test-qemu: the guest's token is nowhere in its memory\n");
		exit(1);
	}
	printf("token found at guest-physical 0x%llx; mailbox at 0x%llx\n", (unsigned long long)at, box);

	/* QEMU is a holder that cannot vote. */
	CHECK_EQ(attachments(), 1);
	struct gmem_range r = { box, PAGE };
	CHECK_EQ(gmem_convert(c, "vm", &r, 1, GMEM_PRIVATE, 0, &res), -EBUSY);
	CHECK(strstr(gmem_last_error(c), "qemu"));

	/* Into the mailbox: the bytes first, the magic after them, so the guest never sees half. */
	CHECK(getrandom(mine, sizeof(mine), 0) == sizeof(mine));
	memcpy(mem + box + 16, mine, sizeof(mine));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(mem + box, "GMEMMBX1", 8);
	expect_line("GMEM-MAILBOX-TOKEN", got_hex, sizeof(got_hex), deadline);
	to_hex(mine, sizeof(mine), want);
	if (strcmp(got_hex, want) != 0) {
		fprintf(stderr, "test-qemu: the guest read %s from its mailbox, the host wrote %s\n", got_hex, want);
		exit(1);
	}
	expect_line("GMEM-INIT-EXIT", rest, sizeof(rest), deadline);
	CHECK(strcmp(rest, "0") == 0);
	int64_t t_done = harness_now_ms();

	/* QEMU powers off; its attachment ends with it (QEMU's exit status says nothing: not judged). */
	spawn_wait(&vm);
	vm.pid = -1;
	CHECK(wait_until(detached, NULL, 10000));
	printf("wall time: %lld ms to the token (gmemd start, initramfs, boot), %lld ms to the guest's last "
	       "line, %lld ms in all\n",
	       (long long)(t_token - t0), (long long)(t_done - t0), (long long)(harness_now_ms() - t0));

	munmap(mem, GUEST_SIZE);
	close(fd);
	close(vm.from);
	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
