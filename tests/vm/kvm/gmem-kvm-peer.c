/* SPDX-License-Identifier: MIT */
/*
 * gmem-kvm-peer: a second process on a guest's memory, beside the KVM VMM: it opens the guest through
 * gmemd (a file of its own), attaches the one page it touches, maps it and reads or writes 32 bits there.
 *   gmem-kvm-peer GUEST read OFFSET          prints "value 0x..."
 *   gmem-kvm-peer GUEST write OFFSET VALUE   prints "ok"
 * Exit 0, 1 on failure, 2 on usage. Socket from $GMEM_SOCKET.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096u

static int parse(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	*ret = strtoull(s, &end, 0);
	return errno || end == s || *end ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	struct gmem_client *c;
	uint64_t off, value = 0;
	int fd, r;
	bool write_it = argc == 5 && strcmp(argv[2], "write") == 0;

	if (!(write_it || (argc == 4 && strcmp(argv[2], "read") == 0)) || parse(argv[3], &off) < 0 || off % 4 ||
	    (write_it && (parse(argv[4], &value) < 0 || value > UINT32_MAX))) {
		fprintf(stderr, "usage: gmem-kvm-peer GUEST read OFFSET | GUEST write OFFSET VALUE\n");
		return 2;
	}
	uint64_t page = off & ~(uint64_t)(PAGE - 1);
	r = gmem_connect(NULL, GMEM_ROLE_DEVICE, &c);
	if (r < 0) {
		fprintf(stderr, "gmem-kvm-peer: connect: %s\n", strerror(-r));
		return 1;
	}
	if ((r = gmem_guest_open(c, argv[1], &fd, NULL)) < 0 ||
	    (r = gmem_attach(c, argv[1], page, PAGE, GMEM_ATTACH_MMAP, NULL)) < 0) {
		fprintf(stderr, "gmem-kvm-peer: %s: %s (%s)\n", argv[1], strerror(-r), gmem_last_error(c));
		return 1;
	}
	volatile uint32_t *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)page);
	if (p == MAP_FAILED) {
		perror("gmem-kvm-peer: mmap");
		return 1;
	}
	if (write_it) {
		p[(off - page) / 4] = (uint32_t)value;
		printf("ok\n");
	} else {
		printf("value %#x\n", p[(off - page) / 4]);
	}
	/* Unmapped before the attachment goes (with the connection): nothing is left mapped undeclared. */
	munmap((void *)p, PAGE);
	close(fd);
	gmem_disconnect(c);
	return 0;
}
