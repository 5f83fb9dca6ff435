/* SPDX-License-Identifier: MIT */
/*
 * gmem-vfio-demo: a device manager that gives a real DMA engine (QEMU's edu device, bound to vfio-pci)
 * access to a range of a guest through the IOMMU, with VFIO type1 (the container API), and takes part in
 * conversions of that range as DESIGN.md asks of an IOMMU holder:
 *   prepare  stop submitting DMA and wait for the one in flight; to-shared: reserve the IOVA budget the
 *            map will need before voting yes (a yes is a promise that the map cannot fail)
 *   commit   to-private (wave 1): VFIO_IOMMU_UNMAP_DMA, drop the CPU mapping, then ack; to-shared
 *            (wave 3, after the backend made the range shared): map the file again, VFIO_IOMMU_MAP_DMA,
 *            then ack
 *   abort    nothing was unmapped: DMA goes on
 * It attaches as `iommu`, maps the guest's file MAP_SHARED and hands that mapping to MAP_DMA at IOVA
 * 1 MiB (edu reaches 28 address bits); a small anonymous buffer at IOVA 0 stages what the device reads
 * or writes. Commands on stdin, one per line, answered on stdout:
 *   write OFF TOKEN   the device writes TOKEN (a string) at OFF of the range   -> "written" or "error ..."
 *   read OFF LEN      the device reads LEN bytes at OFF (LEN < 4096)            -> "data HEX" or "error ..."
 *   cpu-write OFF TOKEN / cpu-read OFF LEN   the same through this process's CPU mapping of the file
 *   state             -> "mapped" or "unmapped"
 *   vote yes|no       how it votes from now on (as --vote)                     -> "vote yes|no"
 *   budget BYTES|max  the IOVA space it may map from now on (as --iova-budget)  -> "budget BYTES|max"
 *   quit
 * With GROUP_DEV "-" there is no device: it attaches as `mmap` and only the cpu- commands work (another
 * process's view of the same memory); it unmaps its CPU mapping on a to-private commit and maps it again
 * on a to-shared one.
 * Options: --vote yes|no, --ack yes|never|no-unmap (no-unmap is a control: it acks a to-private commit
 * without unmapping, leaving a stale IOMMU entry), --iova-budget BYTES (to-shared votes no beyond it).
 * Usage: gmem-vfio-demo [options] GROUP_DEV BDF GUEST OFFSET LENGTH   (socket from $GMEM_SOCKET)
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_CMD_START 0x1
#define EDU_CMD_TO_RAM 0x2
#define EDU_BUF 0x40000     /* the device's own 4 KiB buffer, in its address space */
#define EDU_XFER_MAX 4095   /* QEMU 7.2's edu brings the VM down on a full 4096-byte transfer */
#define IOVA_STAGE 0x0
#define IOVA_GUEST 0x100000 /* below 256 MiB: edu drives 28 address bits */

static const char *vote_mode = "yes", *ack_mode = "yes";
static uint64_t iova_budget = UINT64_MAX;
static const char *guest;
static uint64_t offset, length;
static int container = -1, group = -1, device = -1;
static uint64_t bar0_off, cfg_off;
static unsigned char *map, *stage;
static bool mapped, dma_stopped, cpu_only;
static int guest_fd = -1;
/* What the commits cost this process (unmap or map, IOMMU and CPU), reported on stderr at exit. */
static uint64_t commit_us[2], commits[2];

static uint64_t parse(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	switch (*end) {
	case 'K': v <<= 10; break;
	case 'M': v <<= 20; break;
	case 'G': v <<= 30; break;
	}
	return v;
}

static int bar_read64(uint64_t reg, uint64_t *v)
{
	return pread(device, v, 8, (off_t)(bar0_off + reg)) == 8 ? 0 : -errno;
}

static int bar_write64(uint64_t reg, uint64_t v)
{
	return pwrite(device, &v, 8, (off_t)(bar0_off + reg)) == 8 ? 0 : -errno;
}

/* Waits for the device's DMA engine to go idle: edu starts a transfer ~100 ms after the command. */
static int dma_drain(void)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint64_t cmd;
		int r = bar_read64(EDU_DMA_CMD, &cmd);
		if (r < 0)
			return r;
		if (!(cmd & EDU_CMD_START))
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 10)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

static int dma(uint64_t src, uint64_t dst, uint64_t len, bool to_ram)
{
	int r;
	if ((r = bar_write64(EDU_DMA_SRC, src)) < 0 || (r = bar_write64(EDU_DMA_DST, dst)) < 0 ||
	    (r = bar_write64(EDU_DMA_CNT, len)) < 0 ||
	    (r = bar_write64(EDU_DMA_CMD, EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0))) < 0)
		return r;
	return dma_drain();
}

static int iommu_map(void)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)map, .iova = IOVA_GUEST, .size = length,
	};
	if (ioctl(container, VFIO_IOMMU_MAP_DMA, &m) < 0)
		return -errno;
	mapped = true;
	return 0;
}

static int iommu_unmap(void)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = IOVA_GUEST, .size = length };
	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
		return -errno;
	mapped = false;
	return 0;
}

static int vfio_setup(const char *group_dev, const char *bdf)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	group = open(group_dev, O_RDWR | O_CLOEXEC);
	if (container < 0 || group < 0)
		return -errno;
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &st) < 0 || !(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -ENODEV;
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0 ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
		return -errno;
	device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (device < 0)
		return -errno;
	struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &bar) < 0 || ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &cfg) < 0)
		return -errno;
	bar0_off = bar.offset;
	cfg_off = cfg.offset;
	/* Bus mastering is ours to switch on: vfio-pci leaves the command register as it found it. */
	uint16_t cmd;
	if (pread(device, &cmd, 2, (off_t)(cfg_off + 4)) != 2)
		return -errno;
	cmd |= 0x4;
	if (pwrite(device, &cmd, 2, (off_t)(cfg_off + 4)) != 2)
		return -errno;
	stage = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stage == MAP_FAILED)
		return -errno;
	memset(stage, 0, 4096);
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)stage, .iova = IOVA_STAGE, .size = 4096,
	};
	return ioctl(container, VFIO_IOMMU_MAP_DMA, &m) < 0 ? -errno : 0;
}

/* ---- the participant ---- */

static void vote(struct gmem_client *c, uint64_t epoch, uint64_t seq, bool to_shared)
{
	if (strcmp(vote_mode, "no") == 0) {
		gmem_vote(c, epoch, seq, false, EBUSY, "gmem-vfio-demo told to refuse");
		return;
	}
	/* to-shared: the map must not fail after a yes, so the IOVA space is checked before it. */
	if (to_shared && length > iova_budget) {
		gmem_vote(c, epoch, seq, false, ENOSPC, "IOVA budget too small for the map");
		return;
	}
	gmem_vote(c, epoch, seq, true, 0, NULL);
}

static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	/* Stop submitting, and wait for what is in flight (commands are not read while stopped). */
	dma_stopped = true;
	int r = cpu_only ? 0 : dma_drain();
	if (r < 0) {
		gmem_vote(c, cv->epoch, cv->seq, false, -r, "DMA did not drain");
		return;
	}
	vote(c, cv->epoch, cv->seq, cv->target == GMEM_SHARED);
}

static uint64_t now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	int r = 0;
	uint64_t t0 = now_us();
	(void)ud;
	/*
	 * The CPU mapping (the one MAP_DMA was given) goes at a to-private commit, in both modes: the
	 * module's audit finds a mapping left over a private range and revokes its file for good, and a
	 * later MAP_DMA, which faults the PFNs in through it, would then fail. The IOMMU entry goes first
	 * (unless the no-unmap control says otherwise). At a to-shared commit (after the backend) both
	 * come back, CPU mapping first.
	 */
	if (cv->target == GMEM_PRIVATE) {
		if (!cpu_only && mapped && strcmp(ack_mode, "no-unmap") != 0)
			r = iommu_unmap();
		if (map) {
			munmap(map, length);
			map = NULL;
		}
	} else {
		if (!map) {
			map = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, guest_fd, (off_t)offset);
			if (map == MAP_FAILED) {
				r = -errno;
				map = NULL;
			}
		}
		if (r == 0 && !cpu_only && !mapped)
			r = iommu_map();
	}
	commit_us[cv->target == GMEM_SHARED] += now_us() - t0;
	commits[cv->target == GMEM_SHARED]++;
	if (r < 0)
		fprintf(stderr, "gmem-vfio-demo: %s at commit: %s\n", cv->target == GMEM_PRIVATE ? "unmap" : "map",
			strerror(-r));
	if (cpu_only || strcmp(ack_mode, "never") != 0)
		gmem_ack(c, cv->epoch, cv->seq);
}

static void on_end(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)c;
	(void)cv;
	(void)ud;
	dma_stopped = false;
}

static const struct gmem_participant_ops ops = {
	.prepare = on_prepare, .commit = on_commit, .abort = on_end, .done = on_end,
};

/* ---- commands ---- */

static void command(char *line)
{
	unsigned long long off, len;
	char token[256];
	int r;

	line[strcspn(line, "\n")] = 0;
	if (sscanf(line, "cpu-write %llu %255s", &off, token) == 2) {
		if (!map || off + strlen(token) > length) {
			printf("error %s\n", map ? "range" : "unmapped");
			return;
		}
		memcpy(map + off, token, strlen(token));
		printf("written\n");
		return;
	}
	if (sscanf(line, "cpu-read %llu %llu", &off, &len) == 2) {
		if (!map || len == 0 || len > EDU_XFER_MAX || off + len > length) {
			printf("error %s\n", map ? "range" : "unmapped");
			return;
		}
		printf("data ");
		for (unsigned long long i = 0; i < len; i++)
			printf("%02x", map[off + i]);
		printf("\n");
		return;
	}
	if (strcmp(line, "vote yes") == 0 || strcmp(line, "vote no") == 0) {
		vote_mode = strcmp(line, "vote yes") == 0 ? "yes" : "no";
		printf("vote %s\n", vote_mode);
		return;
	}
	if (strcmp(line, "budget max") == 0 || sscanf(line, "budget %llu", &len) == 1) {
		iova_budget = strcmp(line, "budget max") == 0 ? UINT64_MAX : len;
		if (iova_budget == UINT64_MAX)
			printf("budget max\n");
		else
			printf("budget %llu\n", (unsigned long long)iova_budget);
		return;
	}
	if (cpu_only) {
		printf("error no device\n");
		return;
	}
	if (sscanf(line, "write %llu %255s", &off, token) == 2) {
		size_t n = strlen(token);
		if (off + n > length) {
			printf("error range\n");
			return;
		}
		memcpy(stage, token, n);
		/* RAM (stage) -> device buffer -> the guest's range. */
		r = dma(IOVA_STAGE, EDU_BUF, n, false);
		if (r == 0)
			r = dma(EDU_BUF, IOVA_GUEST + off, n, true);
		printf(r == 0 ? "written\n" : "error %s\n", strerror(-r));
	} else if (sscanf(line, "read %llu %llu", &off, &len) == 2) {
		if (len == 0 || len > EDU_XFER_MAX || off + len > length) {
			printf("error range\n");
			return;
		}
		memset(stage, 0, len);
		r = dma(IOVA_GUEST + off, EDU_BUF, len, false);
		if (r == 0)
			r = dma(EDU_BUF, IOVA_STAGE, len, true);
		if (r < 0) {
			printf("error %s\n", strerror(-r));
			return;
		}
		printf("data ");
		for (unsigned long long i = 0; i < len; i++)
			printf("%02x", stage[i]);
		printf("\n");
	} else if (strcmp(line, "state") == 0) {
		printf("%s\n", mapped ? "mapped" : "unmapped");
	} else {
		printf("error unknown command\n");
	}
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--vote") == 0)
			vote_mode = argv[i + 1];
		else if (strcmp(argv[i], "--ack") == 0)
			ack_mode = argv[i + 1];
		else if (strcmp(argv[i], "--iova-budget") == 0)
			iova_budget = parse(argv[i + 1]);
		else
			break;
	}
	if (argc - i != 5) {
		fprintf(stderr, "usage: gmem-vfio-demo [--vote yes|no] [--ack yes|never|no-unmap] [--iova-budget BYTES] "
				"GROUP_DEV BDF GUEST OFFSET LENGTH\n");
		return 2;
	}
	const char *group_dev = argv[i], *bdf = argv[i + 1];
	guest = argv[i + 2];
	offset = parse(argv[i + 3]);
	length = parse(argv[i + 4]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* poll() watches fd 0: a line stdio had already buffered would wait unseen for the next one. */
	setvbuf(stdin, NULL, _IONBF, 0);

	struct gmem_client *c;
	int fd, r = gmem_connect(NULL, GMEM_ROLE_DEVICE, &c);
	if (r < 0) {
		fprintf(stderr, "gmem-vfio-demo: connect: %s\n", strerror(-r));
		return 1;
	}
	gmem_set_participant(c, &ops, NULL);
	cpu_only = strcmp(group_dev, "-") == 0;
	if ((r = gmem_guest_open(c, guest, &fd, NULL)) < 0 ||
	    (r = gmem_attach(c, guest, offset, length, cpu_only ? GMEM_ATTACH_MMAP : GMEM_ATTACH_IOMMU, NULL)) < 0) {
		fprintf(stderr, "gmem-vfio-demo: open/attach: %s (%s)\n", strerror(-r), gmem_last_error(c));
		return 1;
	}
	map = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (map == MAP_FAILED) {
		perror("gmem-vfio-demo: mmap");
		return 1;
	}
	guest_fd = fd;
	if (!cpu_only && ((r = vfio_setup(group_dev, bdf)) < 0 || (r = iommu_map()) < 0)) {
		fprintf(stderr, "gmem-vfio-demo: vfio: %s\n", strerror(-r));
		return 1;
	}
	printf("ready\n");

	char line[512];
	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN },
				       { .fd = dma_stopped ? -1 : 0, .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents && gmem_dispatch(c) < 0) {
			fprintf(stderr, "gmem-vfio-demo: gmemd closed the connection\n");
			break;
		}
		if (p[1].revents) {
			if (!fgets(line, sizeof(line), stdin) || strncmp(line, "quit", 4) == 0)
				break;
			command(line);
		}
	}
	gmem_disconnect(c);
	for (int d = 0; d < 2; d++)
		if (commits[d])
			fprintf(stderr, "gmem-vfio-demo: %llu to-%s commits, %llu us each for the %s on average\n",
				(unsigned long long)commits[d], d ? "shared" : "private",
				(unsigned long long)(commit_us[d] / commits[d]), d ? "maps" : "unmaps");
	return 0;
}
