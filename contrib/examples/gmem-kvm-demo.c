/* SPDX-License-Identifier: MIT */
/*
 * gmem-kvm-demo: a minimal KVM VMM on gmem memory. It takes the guest's vmm lease, maps the whole guest,
 * prefaults it, gives it to KVM as memory slot 0 (guest-physical address = guest offset), and runs one vCPU
 * in real mode with a tiny program that reads and writes its memory on request and reports through port
 * I/O. It is the guest's VMM in every conversion:
 *   prepare            nothing new to stop here (the vCPU runs only on request): vote yes
 *   commit, to-private wave 3 (after the backend zapped every mapping, KVM's included): record the ranges
 *                      private, so that an EFAULT from KVM_RUN there is expected, then ack
 *   commit, to-shared  wave 1: record the ranges usable again, then ack
 *   done               after a committed to-shared: prefault the ranges again
 * On today's kernels KVM cannot be told a range is private (client/VMM-GUIDE.md): the zap is what takes it
 * away, and a vCPU touching it makes KVM_RUN fail with EFAULT. The VMM itself never gets SIGBUS for that.
 *
 * Usage: gmem-kvm-demo GUEST   (socket from $GMEM_SOCKET); one command a line on stdin, one reply line each
 * on stdout (events are logged on stderr):
 *   write GPA VALUE   the guest stores the 32-bit VALUE at GPA      -> "ok" | "efault private|unexpected"
 *   read GPA          the guest loads 32 bits from GPA              -> "value 0x..." | "efault ..."
 *   retry             runs the access that faulted again            -> as the access
 *   status            -> "status private_bytes=N prepares=N commits=N aborts=N stuck=0|1"
 *   quit
 * GPA: 4-byte aligned, below the guest's size and below 1 MiB (real mode). A command given while an access
 * is stuck on EFAULT abandons that access (the vCPU goes back to its loop).
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <gmem_pfn.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define REAL_MODE_LIMIT (UINT64_C(1) << 20)
#define MAX_RANGES 64

/*
 * The guest, 16-bit real mode, loaded at guest-physical 0 (tests must leave page 0 shared):
 *   top: in $0x10,%ax; mov %ax,%cx        op: 1 read, 2 write
 *        in $0x11,%ax; mov %ax,%es        segment = gpa >> 4
 *        in $0x12,%ax; mov %ax,%di        offset = gpa & 15
 *        in $0x13,%eax                    value to write
 *        cmp $1,%cx; je rd; cmp $2,%cx; je wr; hlt; jmp top
 *   rd:  mov %es:(%di),%eax; out %eax,$0x14; jmp top
 *   wr:  mov %eax,%es:(%di); out %eax,$0x15; jmp top
 */
static const unsigned char guest_code[] = {
	0xe5, 0x10, 0x89, 0xc1, 0xe5, 0x11, 0x8e, 0xc0, 0xe5, 0x12, 0x89, 0xc7,
	0x66, 0xe5, 0x13, 0x83, 0xf9, 0x01, 0x74, 0x08, 0x83, 0xf9, 0x02, 0x74,
	0x0c, 0xf4, 0xeb, 0xe4, 0x26, 0x66, 0x8b, 0x05, 0x66, 0xe7, 0x14, 0xeb,
	0xdb, 0x26, 0x66, 0x89, 0x05, 0x66, 0xe7, 0x15, 0xeb, 0xd2,
};

enum { PORT_OP = 0x10, PORT_SEG = 0x11, PORT_OFF = 0x12, PORT_VAL = 0x13, PORT_READ = 0x14, PORT_WROTE = 0x15 };
enum { OP_READ = 1, OP_WRITE = 2 };

struct vmm {
	const char *guest;
	int gmem_fd, kvm, vm, vcpu;
	bool kmod;
	unsigned char *ram;
	uint64_t size, granule;
	struct kvm_run *run;
	size_t run_size;
	unsigned char *private_map; /* one bit per granule: what the VMM recorded private (wave 3) */
	/* The access in progress: set by a command, kept while it is stuck on EFAULT. */
	unsigned op;
	uint64_t gpa;
	uint32_t value;
	bool stuck;
	/* The conversion in flight: its target and ranges come with prepare only (commit and done name the
	 * conversion by its id). */
	uint64_t cv_seq;
	enum gmem_target cv_target;
	struct gmem_range cv_ranges[MAX_RANGES];
	size_t cv_n;
	unsigned long prepares, commits, aborts;
};

static void on_sigbus(int sig)
{
	static const char msg[] = "gmem-kvm-demo: SIGBUS: the VMM itself touched memory it had no right to\n";
	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(70);
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

static void mark(struct vmm *v, const struct gmem_range *r, bool private)
{
	for (uint64_t g = r->offset / v->granule; g < (r->offset + r->length) / v->granule; g++) {
		if (private)
			v->private_map[g / 8] |= (unsigned char)(1u << (g % 8));
		else
			v->private_map[g / 8] &= (unsigned char)~(1u << (g % 8));
	}
}

static bool recorded_private(const struct vmm *v, uint64_t gpa)
{
	uint64_t g = gpa / v->granule;
	return v->private_map[g / 8] & (1u << (g % 8));
}

static uint64_t private_bytes(const struct vmm *v)
{
	uint64_t n = 0;
	for (uint64_t g = 0; g < v->size / v->granule; g++)
		n += (v->private_map[g / 8] >> (g % 8)) & 1;
	return n * v->granule;
}

/* Maps the range into the VMM's page tables now, so KVM's first touch does not fault into the module. */
static int prefault(struct vmm *v, uint64_t offset, uint64_t length)
{
	if (v->kmod) {
		struct gmem_pfn_prefault p = {
			.size = sizeof(p), .addr = (uint64_t)(uintptr_t)(v->ram + offset), .length = length,
		};
		if (ioctl(v->gmem_fd, GMEM_PFN_IOC_PREFAULT, &p) < 0)
			return -errno;
		fprintf(stderr, "vmm: prefaulted [%#llx, +%#llx): %llu bytes mapped, %llu private skipped\n",
			(unsigned long long)offset, (unsigned long long)length, (unsigned long long)p.mapped_bytes,
			(unsigned long long)p.skipped_bytes);
		return 0;
	}
#ifdef MADV_POPULATE_WRITE
	if (madvise(v->ram + offset, length, MADV_POPULATE_WRITE) < 0)
		return -errno;
#endif
	return 0;
}

static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct vmm *v = ud;
	v->prepares++;
	v->cv_seq = cv->seq;
	v->cv_n = cv->n_ranges < MAX_RANGES ? cv->n_ranges : MAX_RANGES;
	memcpy(v->cv_ranges, cv->ranges, v->cv_n * sizeof(*cv->ranges));
	v->cv_target = cv->target;
	fprintf(stderr, "vmm: prepare %llu: %zu ranges to %s: voting yes\n", (unsigned long long)cv->seq,
		cv->n_ranges, cv->target == GMEM_PRIVATE ? "private" : "shared");
	/* More ranges than this demo records: say no rather than keep a wrong view of KVM's memory. */
	if (cv->n_ranges > MAX_RANGES)
		gmem_vote(c, cv->epoch, cv->seq, false, E2BIG, "gmem-kvm-demo records 64 ranges at most");
	else
		gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct vmm *v = ud;
	v->commits++;
	/* Wave 3 of to-private comes after the zap: KVM has already dropped the range through the mmu notifier
	 * of our mapping. Wave 1 of to-shared comes before the backend makes it shared again. */
	for (size_t i = 0; i < v->cv_n && cv->seq == v->cv_seq; i++)
		mark(v, &v->cv_ranges[i], v->cv_target == GMEM_PRIVATE);
	fprintf(stderr, "vmm: commit %llu wave %d: KVM's view of %zu ranges is now %s\n", (unsigned long long)cv->seq,
		cv->wave, v->cv_n, v->cv_target == GMEM_PRIVATE ? "private" : "shared");
	gmem_ack(c, cv->epoch, cv->seq);
}

static void on_abort(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct vmm *v = ud;
	(void)c;
	v->aborts++;
	v->cv_n = 0;
	fprintf(stderr, "vmm: abort %llu: nothing changed, the guest runs on\n", (unsigned long long)cv->seq);
}

static void on_done(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct vmm *v = ud;
	(void)c;
	fprintf(stderr, "vmm: done %llu: %s\n", (unsigned long long)cv->seq,
		cv->outcome == GMEM_ABORTED ? "aborted" : "committed");
	if (v->cv_target == GMEM_SHARED && cv->outcome != GMEM_ABORTED && cv->seq == v->cv_seq)
		for (size_t i = 0; i < v->cv_n; i++)
			if (prefault(v, v->cv_ranges[i].offset, v->cv_ranges[i].length) < 0)
				fprintf(stderr, "vmm: prefault after to-shared: %s\n", strerror(errno));
	v->cv_n = 0;
}

static const struct gmem_participant_ops participant = {
	.prepare = on_prepare, .commit = on_commit, .abort = on_abort, .done = on_done,
};

static int kvm_setup(struct vmm *v)
{
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = v->size, .userspace_addr = (uint64_t)(uintptr_t)v->ram,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0, .rflags = 2 };
	int n;

	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0)
		return -errno;
	if (ioctl(v->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return -EPROTONOSUPPORT;
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0)
		return -errno;
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return -errno;
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0)
		return -errno;
	n = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (n < 0)
		return -errno;
	v->run_size = (size_t)n;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED)
		return -errno;
	/* Real mode with CS at 0: the program at guest-physical 0. */
	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/* Runs the vCPU until the current access reports (0, *val = what it read or wrote) or faults (-EFAULT). */
static int vcpu_access(struct vmm *v, uint32_t *val)
{
	for (;;) {
		if (ioctl(v->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		struct kvm_run *run = v->run;
		if (run->exit_reason != KVM_EXIT_IO || run->io.size != (run->io.port == PORT_VAL ||
		    run->io.port == PORT_READ || run->io.port == PORT_WROTE ? 4 : 2) || run->io.count != 1) {
			fprintf(stderr, "vmm: unexpected exit %u (port %#x)\n", run->exit_reason,
				run->exit_reason == KVM_EXIT_IO ? run->io.port : 0);
			return -EPROTO;
		}
		unsigned char *data = (unsigned char *)run + run->io.data_offset;
		uint32_t in;
		switch (run->io.port) {
		case PORT_OP: in = v->op; break;
		case PORT_SEG: in = (uint32_t)(v->gpa >> 4); break;
		case PORT_OFF: in = (uint32_t)(v->gpa & 15); break;
		case PORT_VAL: in = v->value; break;
		case PORT_READ:
		case PORT_WROTE:
			memcpy(val, data, 4);
			return 0;
		default:
			fprintf(stderr, "vmm: I/O on unknown port %#x\n", run->io.port);
			return -EPROTO;
		}
		memcpy(data, &in, run->io.size);
	}
}

/* Sends the vCPU back to the top of its loop: the stuck access is abandoned. */
static int vcpu_reset(struct vmm *v)
{
	struct kvm_regs regs = { .rip = 0, .rflags = 2 };
	return ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}

static void report_access(struct vmm *v, int r, uint32_t val)
{
	if (r == -EFAULT) {
		v->stuck = true;
		printf("efault %s\n", recorded_private(v, v->gpa) ? "private" : "unexpected");
	} else if (r < 0) {
		printf("error %s\n", strerror(-r));
	} else if (v->op == OP_READ) {
		v->stuck = false;
		printf("value %#x\n", val);
	} else {
		v->stuck = false;
		printf("ok\n");
	}
}

/* One command line; returns false on quit. */
static bool command(struct vmm *v, char *line)
{
	char *argv[4] = { NULL };
	int argc = 0;
	uint64_t gpa, value = 0;
	uint32_t val = 0;

	for (char *tok = strtok(line, " \t"); tok && argc < 4; tok = strtok(NULL, " \t"))
		argv[argc++] = tok;
	if (argc == 0)
		return true;
	if (strcmp(argv[0], "quit") == 0)
		return false;
	if (strcmp(argv[0], "status") == 0) {
		printf("status private_bytes=%llu prepares=%lu commits=%lu aborts=%lu stuck=%d\n",
		       (unsigned long long)private_bytes(v), v->prepares, v->commits, v->aborts, v->stuck);
	} else if (strcmp(argv[0], "retry") == 0) {
		if (!v->stuck) {
			printf("error nothing to retry\n");
		} else {
			int r = vcpu_access(v, &val);
			report_access(v, r, val);
		}
	} else if ((strcmp(argv[0], "read") == 0 && argc == 2) || (strcmp(argv[0], "write") == 0 && argc == 3)) {
		if (parse_u64(argv[1], &gpa) < 0 || gpa % 4 || gpa >= v->size || gpa >= REAL_MODE_LIMIT ||
		    (argc == 3 && (parse_u64(argv[2], &value) < 0 || value > UINT32_MAX))) {
			printf("error bad address or value\n");
		} else {
			int r = v->stuck ? vcpu_reset(v) : 0;
			v->stuck = false;
			v->op = argc == 2 ? OP_READ : OP_WRITE;
			v->gpa = gpa;
			v->value = (uint32_t)value;
			if (r == 0)
				r = vcpu_access(v, &val);
			report_access(v, r, val);
		}
	} else {
		printf("error unknown command\n");
	}
	fflush(stdout);
	return true;
}

static int serve(struct vmm *v, struct gmem_client *c)
{
	char buf[4096];
	size_t used = 0;

	for (;;) {
		struct pollfd p[2] = { { .fd = STDIN_FILENO, .events = POLLIN }, { .fd = gmem_get_fd(c), .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents && gmem_dispatch(c) < 0) {
			fprintf(stderr, "gmem-kvm-demo: gmemd closed the connection\n");
			return -ECONNRESET;
		}
		if (!p[0].revents)
			continue;
		ssize_t n = read(STDIN_FILENO, buf + used, sizeof(buf) - 1 - used);
		if (n <= 0)
			return n < 0 ? -errno : 0;
		used += (size_t)n;
		char *nl;
		while ((nl = memchr(buf, '\n', used))) {
			*nl = '\0';
			bool more = command(v, buf);
			used -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, used);
			if (!more)
				return 0;
		}
		if (used == sizeof(buf) - 1) {
			fprintf(stderr, "gmem-kvm-demo: command line too long\n");
			return -E2BIG;
		}
	}
}

int main(int argc, char **argv)
{
	struct vmm v = { .gmem_fd = -1 };
	struct gmem_client *c;
	struct gmem_guest_info info;
	struct sigaction sa = { .sa_handler = on_sigbus };
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: gmem-kvm-demo GUEST   (commands on stdin; see the source)\n");
		return 2;
	}
	v.guest = argv[1];
	sigaction(SIGBUS, &sa, NULL);
	r = gmem_connect(NULL, GMEM_ROLE_VMM, &c);
	if (r < 0) {
		fprintf(stderr, "gmem-kvm-demo: connect: %s\n", strerror(-r));
		return 1;
	}
	gmem_set_participant(c, &participant, &v);
	if ((r = gmem_lease(c, v.guest)) < 0 || (r = gmem_guest_open(c, v.guest, &v.gmem_fd, &info)) < 0)
		goto fail;
	v.size = info.size;
	v.granule = info.granule;
	v.kmod = strcmp(gmem_backend_name(c), "kmod") == 0;
	v.private_map = calloc(v.size / v.granule / 8 + 1, 1);
	if (!v.private_map) {
		r = -ENOMEM;
		goto fail;
	}
	v.ram = mmap(NULL, v.size, PROT_READ | PROT_WRITE, MAP_SHARED, v.gmem_fd, 0);
	if (v.ram == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	/* KVM's use is declared before KVM can touch anything: from here on we are a participant for all of it. */
	if ((r = gmem_attach(c, v.guest, 0, v.size, GMEM_ATTACH_KVM, NULL)) < 0)
		goto fail;
	if ((r = prefault(&v, 0, v.size)) < 0) {
		fprintf(stderr, "gmem-kvm-demo: prefault: %s\n", strerror(-r));
		return 1;
	}
	memcpy(v.ram, guest_code, sizeof(guest_code));
	if ((r = kvm_setup(&v)) < 0) {
		fprintf(stderr, "gmem-kvm-demo: KVM: %s\n", strerror(-r));
		return 1;
	}
	fprintf(stderr, "vmm: %s: %llu bytes on %s, lease held, KVM memory slot 0, vCPU ready\n", v.guest,
		(unsigned long long)v.size, gmem_backend_name(c));
	printf("ready\n");
	fflush(stdout);
	r = serve(&v, c);
	gmem_disconnect(c);
	free(v.private_map);
	return r < 0 ? 1 : 0;
fail:
	fprintf(stderr, "gmem-kvm-demo: %s: %s (%s)\n", v.guest, strerror(-r), gmem_last_error(c));
	return 1;
}
