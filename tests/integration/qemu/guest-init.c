/* SPDX-License-Identifier: MIT */
/*
 * guest-init: the program test-qemu boots in its guest (static, run by the initramfs's /init as root).
 * It proves both directions of sharing through the gmem fd that backs the guest's RAM:
 *   - it keeps 16 random bytes in memory and prints them in hex ("GMEM-TOKEN"): the host must find
 *     them by scanning the guest's memory (it looks for the raw bytes, which the console never
 *     carries, so the serial driver's buffers cannot satisfy it);
 *   - it prints the guest-physical address of a locked page ("GMEM-MAILBOX"), found in
 *     /proc/self/pagemap, and polls that page until the host writes a magic and 16 bytes of its own
 *     there; it prints those ("GMEM-MAILBOX-TOKEN") and ends with "GMEM-GUEST-OK".
 * Anything else ends with a "GMEM-GUEST-FAIL" line. The host judges by these lines alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define MAGIC "GMEMMBX1" /* the host writes it after its token, so a guest that sees it sees the token */
#define POLL_SECONDS 60  /* guest time; the host gives up far sooner on a loaded machine */

static int fail(const char *what)
{
	printf("GMEM-GUEST-FAIL %s: %s\n", what, strerror(errno));
	fflush(stdout);
	return 1;
}

static void print_hex(const char *tag, const volatile uint8_t *b, size_t n)
{
	printf("%s ", tag);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	putchar('\n');
	fflush(stdout);
}

static int phys_addr(const void *p, uint64_t *ret)
{
	uint64_t e;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, &e, sizeof(e), (off_t)((uintptr_t)p / PAGE * sizeof(e)));
	close(fd);
	if (n != (ssize_t)sizeof(e) || !(e & (UINT64_C(1) << 63)) || !(e & ((UINT64_C(1) << 55) - 1))) {
		errno = n < 0 ? errno : ENXIO; /* not present, or a PFN hidden from a non-root reader */
		return -1;
	}
	*ret = (e & ((UINT64_C(1) << 55) - 1)) * PAGE;
	return 0;
}

int main(void)
{
	/* Both pages locked: the token must stay where it was written, the mailbox where it was announced. */
	uint8_t *token = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	volatile uint8_t *box = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
				     -1, 0);
	uint64_t phys;

	if (token == MAP_FAILED || box == MAP_FAILED)
		return fail("mmap");
	memset(token, 0, PAGE);
	memset((void *)box, 0, PAGE);
	if (getrandom(token, 16, 0) != 16)
		return fail("getrandom");
	if (phys_addr((const void *)box, &phys) < 0)
		return fail("pagemap");
	print_hex("GMEM-TOKEN", token, 16);
	printf("GMEM-MAILBOX 0x%llx\n", (unsigned long long)phys);
	fflush(stdout);

	struct timespec t0, now, tick = { 0, 1000000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (memcmp((const void *)box, MAGIC, 8) != 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > POLL_SECONDS) {
			printf("GMEM-GUEST-FAIL the host wrote nothing into the mailbox in %d s\n", POLL_SECONDS);
			return 1;
		}
		nanosleep(&tick, NULL);
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	print_hex("GMEM-MAILBOX-TOKEN", box + 16, 16);
	puts("GMEM-GUEST-OK");
	fflush(stdout);
	return 0;
}
