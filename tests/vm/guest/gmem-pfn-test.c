/* SPDX-License-Identifier: MIT */
/*
 * gmem-pfn-test: runs inside the test VM (static, as root, gmem_pfn loaded on a 64 MiB pool) and
 * checks the module's promises from userspace: sharing between processes, SIGBUS on private
 * pages, the audit, fork and SCM_RIGHTS, scrub, PMD/PTE mappings, prefault, hostile ioctls and
 * netlink messages, permissions, events, and unload. Usage: gmem-pfn-test [TEST...] (default: all).
 * Prints "ok - NAME" or "not ok - NAME: why" per test and a summary line; exits 1 on any failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "gmem_pfn.h"

#define PG 4096UL
#define MB (1024UL * 1024)
#define POOL_BYTES (64 * MB)
#define UNPRIV_UID 1000
#define GMEM_GID 1001

static char fail_msg[512];
static int ctl = -1;

#define CHECK(cond, ...)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			snprintf(fail_msg, sizeof(fail_msg), "line %d: %s", __LINE__, #cond); \
			__VA_OPT__(note(__VA_ARGS__);)                                    \
			return -1;                                                        \
		}                                                                         \
	} while (0)

/* Appends detail to fail_msg, printf-style. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	size_t n = strlen(fail_msg);
	va_list ap;

	if (n + 3 >= sizeof(fail_msg))
		return;
	strcat(fail_msg, " (");
	va_start(ap, fmt);
	vsnprintf(fail_msg + n + 2, sizeof(fail_msg) - n - 3, fmt, ap);
	va_end(ap);
	strcat(fail_msg, ")");
}

static double scale(void)
{
	const char *s = getenv("GMEM_TEST_TIMEOUT_SCALE");

	return s && atof(s) > 0 ? atof(s) : 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ---------- ioctl helpers ---------- */

#define MAX_TRACKED 64
static uint64_t tracked[MAX_TRACKED]; /* guests to destroy after each test */

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static int create_guest(uint64_t bytes, unsigned int shift, uint32_t flags, uint64_t cookie, uint64_t *id)
{
	struct gmem_pfn_create_guest c = { .size = sizeof(c), .flags = flags, .bytes = bytes,
					    .granule_shift = shift, .node = -1, .cookie = cookie };
	int r = xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c);

	if (r)
		return r;
	*id = c.guest_id;
	for (int i = 0; i < MAX_TRACKED; i++)
		if (!tracked[i]) {
			tracked[i] = c.guest_id;
			break;
		}
	return 0;
}

static int destroy_guest(uint64_t id)
{
	struct gmem_pfn_guest_ref c = { .size = sizeof(c), .guest_id = id };
	int r = xioctl(ctl, GMEM_PFN_IOC_DESTROY_GUEST, &c);

	for (int i = 0; i < MAX_TRACKED; i++)
		if (tracked[i] == id)
			tracked[i] = 0;
	return r;
}

static void destroy_tracked(void)
{
	for (int i = 0; i < MAX_TRACKED; i++)
		if (tracked[i])
			destroy_guest(tracked[i]);
}

/* Returns the fd or -errno. */
static int new_holder(uint64_t guest, uint64_t tag, int owner_pid, uint32_t flags, uint64_t *holder_id)
{
	struct gmem_pfn_new_holder c = { .size = sizeof(c), .flags = flags, .guest_id = guest, .tag = tag,
					  .owner_pid = owner_pid };
	int r = xioctl(ctl, GMEM_PFN_IOC_NEW_HOLDER, &c);

	if (r)
		return r;
	if (holder_id)
		*holder_id = c.holder_id;
	return c.fd;
}

static int revoke_holder(uint64_t guest, uint64_t holder)
{
	struct gmem_pfn_holder_ref c = { .size = sizeof(c), .guest_id = guest, .holder_id = holder };

	return xioctl(ctl, GMEM_PFN_IOC_REVOKE_HOLDER, &c);
}

static int set_range(uint64_t guest, uint64_t off, uint64_t len, uint32_t state, uint32_t flags,
		     struct gmem_pfn_audit_entry *ents, uint32_t cap, uint32_t *count)
{
	struct gmem_pfn_set_range c = { .size = sizeof(c), .flags = flags, .guest_id = guest, .offset = off,
					.length = len, .state = state };
	int r;

	c.audit.entries = (uintptr_t)ents;
	c.audit.entry_size = sizeof(*ents);
	c.audit.capacity = ents ? cap : 0;
	r = xioctl(ctl, GMEM_PFN_IOC_SET_RANGE, &c);
	if (!r && count)
		*count = c.audit.count;
	return r;
}

static int audit(uint64_t guest, uint64_t off, uint64_t len, struct gmem_pfn_audit_entry *ents,
		 uint32_t cap, uint32_t *count, uint32_t *nr_holders)
{
	struct gmem_pfn_audit c = { .size = sizeof(c), .guest_id = guest, .offset = off, .length = len };
	int r;

	c.audit.entries = (uintptr_t)ents;
	c.audit.entry_size = sizeof(*ents);
	c.audit.capacity = ents ? cap : 0;
	r = xioctl(ctl, GMEM_PFN_IOC_AUDIT, &c);
	if (!r) {
		*count = c.audit.count;
		if (nr_holders)
			*nr_holders = c.audit.nr_holders;
	}
	return r;
}

static int query_guest(uint64_t guest, struct gmem_pfn_query_guest *q, struct gmem_pfn_extent *ext,
		       uint32_t cap)
{
	memset(q, 0, sizeof(*q));
	q->size = sizeof(*q);
	q->guest_id = guest;
	q->extents = (uintptr_t)ext;
	q->entry_size = sizeof(*ext);
	q->capacity = ext ? cap : 0;
	return xioctl(ctl, GMEM_PFN_IOC_QUERY_GUEST, q);
}

static uint64_t faults_of(uint64_t guest)
{
	struct gmem_pfn_query_guest q;

	return query_guest(guest, &q, NULL, 0) ? UINT64_MAX : q.nr_faults;
}

static void *map(int fd, size_t len, off_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);

	return p == MAP_FAILED ? NULL : p;
}

/* A child that dies with us: a failed check must not leave it blocked on a pipe forever. */
static pid_t fork_child(void)
{
	pid_t ppid = getpid(), pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != ppid)
			_exit(99);
	}
	return pid;
}

/* ---------- touching memory that may fault ---------- */

/* Per thread: SIGBUS and SIGSEGV from a touch go to the thread that touched. */
static __thread sigjmp_buf probe_jmp;
static __thread volatile sig_atomic_t probe_sig;
static __thread void *volatile probe_addr;

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	probe_sig = sig;
	probe_addr = si->si_addr;
	siglongjmp(probe_jmp, 1);
}

static void probe_install(void)
{
	struct sigaction sa = { .sa_sigaction = probe_handler, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

/* Reads (or writes val to) *p. Returns 0, or the signal it raised (fault address in probe_addr). */
static int probe(volatile unsigned char *p, bool write, unsigned char val, unsigned char *out)
{
	probe_sig = 0;
	probe_addr = NULL;
	if (sigsetjmp(probe_jmp, 1))
		return probe_sig;
	if (write)
		*p = val;
	else if (out)
		*out = *p;
	else
		(void)*p;
	return 0;
}

/* ---------- generic netlink helpers (libnl) ---------- */

struct nlctx {
	int err;
	bool done;
	int nmsgs;
	void (*on_msg)(struct nlattr **tb, int cmd, void *arg);
	void *arg;
};

static int nl_on_valid(struct nl_msg *msg, void *arg)
{
	struct nlctx *c = arg;
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *tb[GMEM_PFN_A_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, GMEM_PFN_A_MAX, NULL) < 0)
		return NL_SKIP;
	c->nmsgs++;
	if (c->on_msg)
		c->on_msg(tb, gh->cmd, c->arg);
	return NL_OK;
}

/* The end of a dump (NLMSG_DONE, which carries a dump's error) or the ack of a request. */
static int nl_on_finish(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlctx *c = arg;
	int e;

	if (h->nlmsg_type == NLMSG_DONE && h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
		memcpy(&e, nlmsg_data(h), sizeof(e));
		if (e < 0)
			c->err = e;
	}
	c->done = true;
	return NL_STOP;
}

static int nl_on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct nlctx *c = arg;

	(void)nla;
	c->err = e->error;
	c->done = true;
	return NL_STOP;
}

static int family_id = -1, events_grp = -1;

static struct nl_sock *nl_open(void)
{
	struct nl_sock *sk = nl_socket_alloc();

	if (!sk)
		return NULL;
	if (genl_connect(sk)) {
		nl_socket_free(sk);
		return NULL;
	}
	if (family_id < 0) {
		family_id = genl_ctrl_resolve(sk, GMEM_PFN_GENL_NAME);
		events_grp = genl_ctrl_resolve_grp(sk, GMEM_PFN_GENL_NAME, GMEM_PFN_GENL_MCGRP_EVENTS);
	}
	return sk;
}

/*
 * Sends cmd with flags and the attributes built by `fill` (may be NULL), collects the replies.
 * Returns 0 or the kernel's -errno; a libnl failure is -EPROTO.
 */
static int nl_call(struct nl_sock *sk, int cmd, int flags, void (*fill)(struct nl_msg *, void *),
		   void *fill_arg, struct nlctx *c)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r = -EPROTO;

	if (!msg || !cb)
		goto out;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family_id, 0, flags, cmd, GMEM_PFN_GENL_VERSION))
		goto out;
	if (fill)
		fill(msg, fill_arg);
	c->err = 0;
	c->done = false;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, nl_on_valid, c);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, nl_on_finish, c);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, nl_on_finish, c);
	nl_cb_err(cb, NL_CB_CUSTOM, nl_on_error, c);
	if (nl_send_auto(sk, msg) < 0)
		goto out;
	while (!c->done)
		if (nl_recvmsgs(sk, cb) < 0 && !c->done)
			goto out;
	r = c->err;
out:
	nlmsg_free(msg);
	nl_cb_put(cb);
	return r;
}

static void fill_guest_u64(struct nl_msg *m, void *a)
{
	nla_put_u64(m, GMEM_PFN_A_GUEST_ID, *(uint64_t *)a);
}

static void fill_guest_u32(struct nl_msg *m, void *a)
{
	nla_put_u32(m, GMEM_PFN_A_GUEST_ID, (uint32_t) * (uint64_t *)a);
}

static void fill_unknown_attr(struct nl_msg *m, void *a)
{
	(void)a;
	nla_put_u32(m, GMEM_PFN_A_MAX + 5, 1);
}

/* ---------- the tests ---------- */

static int t_caps(void)
{
	struct gmem_pfn_caps c = { .size = sizeof(c) };
	struct gmem_pfn_pool_range rg[4];
	struct gmem_pfn_query_pool q = { .size = sizeof(q), .entry_size = sizeof(rg[0]), .capacity = 4 };
	struct stat st;

	CHECK(xioctl(ctl, GMEM_PFN_IOC_QUERY_CAPS, &c) == 0);
	CHECK(c.abi_version == GMEM_PFN_ABI_VERSION, "%u", c.abi_version);
	CHECK(!(c.features & GMEM_PFN_FEAT_TEST_BUILD), "a test build was loaded");
	CHECK(c.granule_shifts == ((1ULL << 12) | (1ULL << 21)));
	CHECK(c.nr_ranges == 1, "%u", c.nr_ranges);
	q.ranges = (uintptr_t)rg;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_QUERY_POOL, &q) == 0);
	CHECK(q.total_bytes == POOL_BYTES && q.free_bytes == POOL_BYTES && q.count == 1);
	CHECK(rg[0].base == 0x20000000 && rg[0].bytes == POOL_BYTES, "%llx", (unsigned long long)rg[0].base);
	CHECK(stat("/dev/gmem_pfn", &st) == 0 && (st.st_mode & 0777) == 0600, "%o", st.st_mode);
	return 0;
}

/* The load script wrote a pattern at the pool's start before the load: the module scrubbed it. */
static int t_scrub_on_claim(void)
{
	struct gmem_pfn_query_guest q;
	struct gmem_pfn_extent e;
	uint32_t *p;
	uint64_t g;
	int fd;

	CHECK(create_guest(PG, 12, 0, 14, &g) == 0);
	CHECK(query_guest(g, &q, &e, 1) == 0 && q.count == 1 && e.phys == 0x20000000, "%#llx",
	      (unsigned long long)e.phys);
	fd = new_holder(g, 1, 0, 0, NULL);
	p = map(fd, PG, 0);
	CHECK(p);
	CHECK(p[0] == 0, "the pool's first word is %#x after the load", p[0]);
	munmap(p, PG);
	close(fd);
	return destroy_guest(g);
}

/* Two processes map one guest through two holder files and see each other's writes. */
static int t_share(void)
{
	int to_child[2], to_parent[2], fa, fb, status;
	uint64_t g;
	unsigned char *p;
	char b;
	pid_t pid;

	CHECK(create_guest(16 * PG, 12, 0, 1, &g) == 0);
	fa = new_holder(g, 1, 0, 0, NULL);
	fb = new_holder(g, 2, 0, 0, NULL);
	CHECK(fa >= 0 && fb >= 0);
	CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
	pid = fork_child();
	if (pid == 0) {
		unsigned char *q = map(fb, 16 * PG, 0);

		if (!q)
			_exit(2);
		memcpy(q + 3 * PG + 100, "from child", 11);
		if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &b, 1) != 1)
			_exit(3);
		_exit(memcmp(q + 7 * PG + 5, "from parent", 12) ? 4 : 0);
	}
	p = map(fa, 16 * PG, 0);
	CHECK(p);
	CHECK(read(to_parent[0], &b, 1) == 1);
	CHECK(memcmp(p + 3 * PG + 100, "from child", 11) == 0);
	memcpy(p + 7 * PG + 5, "from parent", 12);
	CHECK(write(to_child[1], "x", 1) == 1);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child status %#x", status);
	munmap(p, 16 * PG);
	close(fa);
	close(fb);
	close(to_child[0]), close(to_child[1]), close(to_parent[0]), close(to_parent[1]);
	return destroy_guest(g);
}

/* To private: SIGBUS at exactly the touched address, other pages work without a new fault. */
static int t_sigbus(void)
{
	struct gmem_pfn_query_guest q;
	uint64_t g, f0, f1;
	unsigned char *p, v;
	int fd, i;

	CHECK(create_guest(16 * PG, 12, 0, 2, &g) == 0);
	fd = new_holder(g, 1, 0, 0, NULL);
	CHECK(fd >= 0);
	p = map(fd, 16 * PG, 0);
	CHECK(p);
	for (i = 0; i < 16; i++)
		p[i * PG + 123] = (unsigned char)(0x40 + i);
	f0 = faults_of(g);
	CHECK(set_range(g, 5 * PG, PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
	CHECK(probe(p + 5 * PG + 123, false, 0, NULL) == SIGBUS, "read of a private page: signal %d",
	      probe_sig);
	CHECK(probe_addr == p + 5 * PG + 123, "SIGBUS at %p, touched %p", probe_addr, p + 5 * PG + 123);
	CHECK(probe(p + 5 * PG + 7, true, 1, NULL) == SIGBUS && probe_addr == p + 5 * PG + 7, "write");
	for (i = 0; i < 16; i++) {
		if (i == 5)
			continue;
		CHECK(probe(p + i * PG + 123, false, 0, &v) == 0 && v == 0x40 + i, "page %d", i);
		CHECK(probe(p + i * PG + 124, true, 9, NULL) == 0, "page %d", i);
	}
	f1 = faults_of(g);
	/* Exactly the two SIGBUS faults: the zap hit page 5 and nothing else. */
	CHECK(f1 - f0 == 2, "faults went from %" PRIu64 " to %" PRIu64, f0, f1);
	CHECK(query_guest(g, &q, NULL, 0) == 0 && q.private_bytes == PG && q.nr_sigbus == 2);

	/* Back to shared: the mapping works again, contents kept. */
	CHECK(set_range(g, 5 * PG, PG, GMEM_PFN_STATE_SHARED, 0, NULL, 0, NULL) == 0);
	CHECK(probe(p + 5 * PG + 123, false, 0, &v) == 0 && v == 0x45, "after shared: %#x", v);
	/* A conversion asking for zero scrubs the range. */
	CHECK(set_range(g, 5 * PG, PG, GMEM_PFN_STATE_PRIVATE, GMEM_PFN_SET_RANGE_ZERO, NULL, 0, NULL) == 0);
	CHECK(set_range(g, 5 * PG, PG, GMEM_PFN_STATE_SHARED, 0, NULL, 0, NULL) == 0);
	CHECK(probe(p + 5 * PG + 123, false, 0, &v) == 0 && v == 0, "after zero: %#x", v);
	munmap(p, 16 * PG);
	close(fd);
	return destroy_guest(g);
}

/*
 * The audit names every holder file that still maps the range after the zap: the vmm's
 * whole-guest mapping too (exemption is the daemon's decision), not one that unmapped, not one
 * mapping elsewhere. Then a revoked holder faults, the others do not.
 */
static int t_audit(void)
{
	struct gmem_pfn_audit_entry e[8];
	uint64_t g, hv, hp, hq, hr;
	uint32_t n = 0, nh = 0;
	unsigned char *v, *pp, *qq, *rr;
	int fv, fp, fq, fr;

	CHECK(create_guest(16 * PG, 12, 0, 3, &g) == 0);
	fv = new_holder(g, 101, 0, 0, &hv);
	fp = new_holder(g, 102, 4242, 0, &hp);
	fq = new_holder(g, 103, 0, 0, &hq);
	fr = new_holder(g, 104, 0, 0, &hr);
	CHECK(fv >= 0 && fp >= 0 && fq >= 0 && fr >= 0);
	v = map(fv, 16 * PG, 0);
	pp = map(fp, 4 * PG, 4 * PG);
	qq = map(fq, 16 * PG, 0);
	rr = map(fr, 2 * PG, 10 * PG);
	CHECK(v && pp && qq && rr);
	v[4 * PG] = pp[0] = qq[4 * PG] = rr[0] = 1;
	CHECK(munmap(qq, 16 * PG) == 0);

	memset(e, 0xff, sizeof(e));
	CHECK(set_range(g, 4 * PG, 2 * PG, GMEM_PFN_STATE_PRIVATE, 0, e, 8, &n) == 0);
	CHECK(n == 2, "audit found %u mappings, want 2 (vmm + kept)", n);
	CHECK(e[0].holder_id == hv && e[0].holder_tag == 101 && e[0].offset == 4 * PG && e[0].length == 2 * PG &&
	      e[0].mapper_pid == getpid() && e[0].owner_pid == getpid() &&
	      e[0].vm_start == (uintptr_t)(v + 4 * PG), "vmm entry");
	CHECK(e[1].holder_id == hp && e[1].holder_tag == 102 && e[1].owner_pid == 4242 &&
	      e[1].offset == 4 * PG && e[1].length == 2 * PG && e[1].vm_start == (uintptr_t)pp, "kept entry");
	/* Count only; a short array is filled up to its capacity and the count says how many exist. */
	CHECK(audit(g, 4 * PG, 2 * PG, NULL, 0, &n, &nh) == 0 && n == 2 && nh == 2, "%u %u", n, nh);
	CHECK(audit(g, 4 * PG, 2 * PG, e, 1, &n, NULL) == 0 && n == 2 && e[0].holder_id == hv);
	CHECK(audit(g, 0, 16 * PG, e, 8, &n, &nh) == 0 && n == 3 && nh == 3, "whole guest %u %u", n, nh);

	/* Revoke the holder that kept its mapping: its other pages fault, the vmm's do not. */
	CHECK(revoke_holder(g, hp) == 0);
	CHECK(probe(pp + 3 * PG, false, 0, NULL) == SIGBUS, "revoked holder still reads");
	CHECK(probe(v + 7 * PG, false, 0, NULL) == 0 && probe(rr, false, 0, NULL) == 0);
	CHECK(revoke_holder(g, 999999) == -ENOENT);
	CHECK(mmap(NULL, PG, PROT_READ, MAP_SHARED, fp, 0) == MAP_FAILED && errno == ENODEV, "mmap after revoke");
	munmap(v, 16 * PG), munmap(pp, 4 * PG), munmap(rr, 2 * PG);
	close(fv), close(fp), close(fq), close(fr);
	return destroy_guest(g);
}

/* A holder's fd passed over SCM_RIGHTS and mapped by the receiver is caught, named, revoked. */
static int t_audit_scm(void)
{
	struct gmem_pfn_audit_entry e[4];
	int sv[2], fd, status;
	uint64_t g, hd;
	uint32_t n = 0;
	char b = 0;
	pid_t pid;

	CHECK(create_guest(8 * PG, 12, 0, 4, &g) == 0);
	fd = new_holder(g, 7, 0, 0, &hd);
	CHECK(fd >= 0);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	pid = fork_child();
	if (pid == 0) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &b, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		unsigned char *p;
		int rfd;

		close(fd);
		if (recvmsg(sv[1], &mh, 0) != 1 || !CMSG_FIRSTHDR(&mh))
			_exit(2);
		memcpy(&rfd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
		p = map(rfd, 8 * PG, 0);
		if (!p)
			_exit(3);
		close(rfd); /* the mapping keeps the file */
		p[PG] = 1;
		if (write(sv[1], "m", 1) != 1 || read(sv[1], &b, 1) != 1)
			_exit(4);
		probe_install();
		_exit(probe(p + 6 * PG, false, 0, NULL) == SIGBUS ? 0 : 5);
	}
	{
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { &b, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		CHECK(sendmsg(sv[0], &mh, 0) == 1);
	}
	close(fd);
	CHECK(read(sv[0], &b, 1) == 1);
	CHECK(set_range(g, 0, 2 * PG, GMEM_PFN_STATE_PRIVATE, 0, e, 4, &n) == 0);
	CHECK(n == 1 && e[0].holder_id == hd && e[0].mapper_pid == pid && e[0].owner_pid == getpid(),
	      "n=%u mapper=%d child=%d", n, n ? e[0].mapper_pid : 0, pid);
	CHECK(revoke_holder(g, hd) == 0);
	CHECK(write(sv[0], "r", 1) == 1);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "receiver status %#x", status);
	close(sv[0]), close(sv[1]);
	return destroy_guest(g);
}

/* VM_DONTCOPY: a forked child has no mapping, and the audit sees only the parent's. */
static int t_fork(void)
{
	struct gmem_pfn_audit_entry e[4];
	int fd, go[2], ready[2], status;
	unsigned char *p;
	uint64_t g;
	uint32_t n = 0;
	pid_t pid;
	char b;

	CHECK(create_guest(4 * PG, 12, 0, 5, &g) == 0);
	fd = new_holder(g, 1, 0, 0, NULL);
	CHECK(fd >= 0);
	p = map(fd, 4 * PG, 0);
	CHECK(p);
	p[0] = 1;
	CHECK(pipe(go) == 0 && pipe(ready) == 0);
	pid = fork_child();
	if (pid == 0) {
		int sig;

		probe_install();
		sig = probe(p, false, 0, NULL);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
			_exit(3);
		_exit(sig == SIGSEGV ? 0 : 2);
	}
	CHECK(read(ready[0], &b, 1) == 1);
	CHECK(audit(g, 0, 4 * PG, e, 4, &n, NULL) == 0 && n == 1 && e[0].mapper_pid == getpid(), "n=%u", n);
	CHECK(write(go[1], "g", 1) == 1);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child saw the mapping: status %#x", status);
	close(go[0]), close(go[1]), close(ready[0]), close(ready[1]);
	munmap(p, 4 * PG);
	close(fd);
	return destroy_guest(g);
}

/* Write a pattern, destroy, a new guest on the same PFNs reads zeroes. */
static int t_scrub(void)
{
	struct gmem_pfn_extent ea[8], eb[8];
	struct gmem_pfn_query_guest qa, qb;
	const size_t len = 4 * MB;
	unsigned char *p;
	uint64_t ga, gb;
	size_t i;
	int fd;

	CHECK(create_guest(len, 12, 0, 6, &ga) == 0);
	CHECK(query_guest(ga, &qa, ea, 8) == 0 && qa.count >= 1 && qa.count <= 8);
	fd = new_holder(ga, 1, 0, 0, NULL);
	p = map(fd, len, 0);
	CHECK(p);
	memset(p, 0xa5, len);
	munmap(p, len);
	close(fd);
	CHECK(destroy_guest(ga) == 0);
	CHECK(query_guest(ga, &qb, NULL, 0) == -ENOENT);

	CHECK(create_guest(len, 12, 0, 7, &gb) == 0);
	CHECK(query_guest(gb, &qb, eb, 8) == 0 && qb.count == qa.count);
	CHECK(memcmp(ea, eb, qa.count * sizeof(ea[0])) == 0, "not on the same PFNs: %#llx vs %#llx",
	      (unsigned long long)ea[0].phys, (unsigned long long)eb[0].phys);
	fd = new_holder(gb, 1, 0, 0, NULL);
	p = map(fd, len, 0);
	CHECK(p);
	for (i = 0; i < len; i++)
		CHECK(p[i] == 0, "byte %zu of the new guest is %#x", i, p[i]);
	munmap(p, len);
	close(fd);
	return destroy_guest(gb);
}

static bool kernel_has_pmd(void)
{
	struct utsname u;
	int maj = 0, min = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &maj, &min);
	return maj > 6 || (maj == 6 && min >= 12);
}

/* 2 MiB granules: PMDs on 6.12, PTEs on 6.1; splits inside a granule refused. */
static int t_pmd(void)
{
	struct gmem_pfn_caps c = { .size = sizeof(c) };
	struct gmem_pfn_query_guest q;
	unsigned char *p;
	uint64_t g, f0, hid = 0;
	int fd;

	CHECK(xioctl(ctl, GMEM_PFN_IOC_QUERY_CAPS, &c) == 0);
	CHECK(!!(c.features & GMEM_PFN_FEAT_PMD_MAPPINGS) == kernel_has_pmd(), "caps and kernel disagree");
	CHECK(create_guest(4 * MB, 21, 0, 8, &g) == 0);
	fd = new_holder(g, 1, 0, 0, &hid);
	p = map(fd, 4 * MB, 0);
	CHECK(p);
	if (kernel_has_pmd())
		CHECK(((uintptr_t)p & (2 * MB - 1)) == 0, "mapping %p not 2 MiB-aligned", (void *)p);
	p[100] = 1;
	p[2 * MB + 100] = 2;
	p[2 * MB + 5 * PG] = 3;
	CHECK(query_guest(g, &q, NULL, 0) == 0);
	printf("# %s: %" PRIu64 " PMDs, %" PRIu64 " PTEs for two 2 MiB granules\n",
	       kernel_has_pmd() ? "PMD kernel" : "PTE kernel", (uint64_t)q.nr_pmd_maps, (uint64_t)q.nr_pte_maps);
	if (kernel_has_pmd())
		CHECK(q.nr_pmd_maps == 2 && q.nr_pte_maps == 0, "pmd %llu pte %llu",
		      (unsigned long long)q.nr_pmd_maps, (unsigned long long)q.nr_pte_maps);
	else
		CHECK(q.nr_pmd_maps == 0 && q.nr_pte_maps == 3, "pmd %llu pte %llu",
		      (unsigned long long)q.nr_pmd_maps, (unsigned long long)q.nr_pte_maps);
	CHECK(munmap(p + MB, PG) < 0 && errno == EINVAL, "split inside a granule allowed");
	CHECK(mprotect(p + PG, PG, PROT_READ) < 0 && errno == EINVAL, "mprotect split inside a granule");
	CHECK(set_range(g, PG, PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == -EINVAL, "4K in a 2M granule");
	f0 = faults_of(g);
	CHECK(set_range(g, 2 * MB, 2 * MB, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
	CHECK(probe(p + 3 * MB + 17, false, 0, NULL) == SIGBUS && probe_addr == p + 3 * MB + 17);
	CHECK(probe(p + 100, false, 0, NULL) == 0 && faults_of(g) == f0 + 1, "first granule refaulted");
	CHECK(munmap(p + 2 * MB, 2 * MB) == 0, "split at a granule boundary");
	/* Revoking zaps a PMD as well as PTEs. */
	CHECK(revoke_holder(g, hid) == 0);
	CHECK(probe(p + 100, false, 0, NULL) == SIGBUS, "revoked holder still maps its PMD/PTE");
	munmap(p, 2 * MB);
	close(fd);
	return destroy_guest(g);
}

/* Prefault maps a range of the caller's own mapping, skipping private granules. */
static int t_prefault(void)
{
	struct gmem_pfn_prefault pf = { .size = sizeof(pf) };
	unsigned char *p, *other;
	int fd, fd2, i;
	uint64_t g, f0;

	CHECK(create_guest(16 * PG, 12, 0, 9, &g) == 0);
	fd = new_holder(g, 1, 0, 0, NULL);
	fd2 = new_holder(g, 2, 0, 0, NULL);
	p = map(fd, 16 * PG, 0);
	other = map(fd2, 16 * PG, 0);
	CHECK(p && other);
	CHECK(set_range(g, 3 * PG, PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
	pf.addr = (uintptr_t)p;
	pf.length = 16 * PG;
	CHECK(xioctl(fd, GMEM_PFN_IOC_PREFAULT, &pf) == 0);
	CHECK(pf.mapped_bytes == 15 * PG && pf.skipped_bytes == PG, "mapped %llu skipped %llu",
	      (unsigned long long)pf.mapped_bytes, (unsigned long long)pf.skipped_bytes);
	f0 = faults_of(g);
	for (i = 0; i < 16; i++)
		if (i != 3)
			p[i * PG] = (unsigned char)i;
	CHECK(faults_of(g) == f0, "touching prefaulted pages faulted");
	pf.addr = (uintptr_t)p + 1;
	CHECK(xioctl(fd, GMEM_PFN_IOC_PREFAULT, &pf) == -EINVAL, "misaligned");
	pf.addr = (uintptr_t)other;
	CHECK(xioctl(fd, GMEM_PFN_IOC_PREFAULT, &pf) == -EFAULT, "another file's mapping");
	pf.addr = (uintptr_t)p;
	pf.length = 17 * PG;
	CHECK(xioctl(fd, GMEM_PFN_IOC_PREFAULT, &pf) == -EFAULT, "past the mapping");
	pf.length = 0;
	CHECK(xioctl(fd, GMEM_PFN_IOC_PREFAULT, &pf) == -EINVAL, "zero length");
	pf.length = PG;
	pf.flags = 1;
	CHECK(xioctl(fd, GMEM_PFN_IOC_PREFAULT, &pf) == -EINVAL, "flags");
	pf.flags = 0;
	pf.addr = UINT64_MAX & ~(PG - 1);
	CHECK(xioctl(fd, GMEM_PFN_IOC_PREFAULT, &pf) == -ERANGE, "wrapping range");
	CHECK(xioctl(fd, GMEM_PFN_IOC_QUERY_CAPS, &pf) == -ENOTTY, "control ioctl on a holder");
	munmap(p, 16 * PG), munmap(other, 16 * PG);
	close(fd), close(fd2);
	return destroy_guest(g);
}

/* The VmFlags line of the mapping that starts at addr in /proc/self/smaps ("" if none). */
static void vmflags_of(void *addr, char *out, size_t len)
{
	char line[512], start[32];
	bool here = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	out[0] = 0;
	snprintf(start, sizeof(start), "%lx-", (unsigned long)(uintptr_t)addr);
	while (f && fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' '))
			here = !strncmp(line, start, strlen(start));
		else if (here && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line + 8);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* Wrong sizes, overflowing ranges, unknown commands, bad flags: errors, never a WARN or oops. */
static int t_hostile_ioctl(void)
{
	struct {
		struct gmem_pfn_create_guest c;
		char tail[64];
	} big;
	struct gmem_pfn_create_guest c;
	struct gmem_pfn_set_range s;
	struct gmem_pfn_audit_entry e[2];
	char path[64], buf[16];
	unsigned char *p;
	uint64_t g;
	int fd, fd2, memfd;

	memset(&c, 0, sizeof(c));
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "size 0");
	c.size = GMEM_PFN_CREATE_GUEST_SIZE_VER1 - 8;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "short size");
	c.size = 1 << 20;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "huge size");
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, NULL) == -EFAULT, "NULL");
	CHECK(xioctl(ctl, _IOWR(GMEM_PFN_IOC_MAGIC, 0x3f, struct gmem_pfn_caps), &c) == -ENOTTY, "unknown nr");
	CHECK(xioctl(ctl, _IO('x', 1), &c) == -ENOTTY, "unknown type");
	CHECK(xioctl(ctl, _IO(GMEM_PFN_IOC_MAGIC, 0x01), &c) == -ENOTTY, "wrong direction");

	memset(&big, 0, sizeof(big));
	big.c = (struct gmem_pfn_create_guest){ .size = sizeof(big), .bytes = 4 * PG, .granule_shift = 12,
						 .node = -1 };
	big.tail[10] = 1;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &big) == -E2BIG, "non-zero tail");
	big.tail[10] = 0;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &big) == 0 && big.c.guest_id, "zero tail (newer header)");
	CHECK(destroy_guest(big.c.guest_id) == 0);

	c = (struct gmem_pfn_create_guest){ .size = sizeof(c), .bytes = 4 * PG, .granule_shift = 13, .node = -1 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "granule 8K");
	c.granule_shift = 21;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "size not a granule multiple");
	c.granule_shift = 12;
	c.flags = 0x80;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "unknown flag");
	c.flags = 0;
	c.node = 5;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "node without ranges");
	c.node = -2;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "node -2");
	c.node = -1;
	c.bytes = 0;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -EINVAL, "zero bytes");
	c.bytes = POOL_BYTES + PG;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -ENOSPC, "bigger than the pool");
	c.bytes = UINT64_MAX & ~(PG - 1);
	CHECK(xioctl(ctl, GMEM_PFN_IOC_CREATE_GUEST, &c) == -ENOSPC, "2^64");

	CHECK(create_guest(16 * PG, 12, 0, 10, &g) == 0);
	CHECK(set_range(g, PG + 1, PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == -EINVAL, "misaligned");
	CHECK(set_range(g, PG, 0, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == -EINVAL, "empty");
	CHECK(set_range(g, 15 * PG, 2 * PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == -ERANGE, "past end");
	CHECK(set_range(g, UINT64_MAX & ~(PG - 1), 2 * PG, 1, 0, NULL, 0, NULL) == -ERANGE, "wraps");
	CHECK(set_range(g, 0, PG, 2, 0, NULL, 0, NULL) == -EINVAL, "state 2");
	CHECK(set_range(g, 0, PG, 1, 0x10, NULL, 0, NULL) == -EINVAL, "flags");
	CHECK(set_range(g + 1000, 0, PG, 1, 0, NULL, 0, NULL) == -ENOENT, "unknown guest");
	s = (struct gmem_pfn_set_range){ .size = sizeof(s), .guest_id = g, .length = PG, .state = 1 };
	s.audit.entries = (uintptr_t)e;
	s.audit.entry_size = sizeof(e[0]);
	s.audit.capacity = GMEM_PFN_MAX_ENTRIES + 1;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_SET_RANGE, &s) == -ERANGE, "capacity");
	s.audit.capacity = 2;
	s.audit.entry_size = 8;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_SET_RANGE, &s) == -EINVAL, "entry size");
	s.audit.entry_size = sizeof(e[0]);
	s.audit.entries = 0;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_SET_RANGE, &s) == -EINVAL, "capacity without array");
	s.reserved = 1;
	s.audit.entries = (uintptr_t)e;
	CHECK(xioctl(ctl, GMEM_PFN_IOC_SET_RANGE, &s) == -EINVAL, "reserved");
	CHECK(set_range(g, 0, 16 * PG, GMEM_PFN_STATE_SHARED, 0, NULL, 0, NULL) == 0);

	CHECK(new_holder(g, 1, -5, 0, NULL) == -EINVAL, "negative pid");
	CHECK(new_holder(g, 1, 0, 0x10, NULL) == -EINVAL, "holder flags");
	CHECK(new_holder(g + 1000, 1, 0, 0, NULL) == -ENOENT, "holder of unknown guest");

	fd = new_holder(g, 1, 0, 0, NULL);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "O_CLOEXEC");
	CHECK(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) == MAP_FAILED && errno == EINVAL,
	      "MAP_PRIVATE");
	CHECK(mmap(NULL, 17 * PG, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == ERANGE, "past end");
	CHECK(mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 16 * PG) == MAP_FAILED && errno == ERANGE, "offset");
	p = map(fd, 4 * PG, 0);
	CHECK(p);
	p[0] = 0x5a;
	{
		char fl[512];
		const char *want[] = { " pf", " io", " de", " dd", " dc", " sh" };

		vmflags_of(p, fl, sizeof(fl));
		for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
			CHECK(strstr(fl, want[k]), "VmFlags lack%s: %s", want[k], fl);
	}
	CHECK(mremap(p, 4 * PG, 8 * PG, 0) == MAP_FAILED, "mremap grew a mapping");
	{
		void *dst = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(mremap(p, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == MAP_FAILED,
		      "mremap moved a mapping");
		munmap(dst, 4 * PG);
	}
	CHECK(p[0] == 0x5a, "mapping lost after a refused mremap");
	CHECK(read(fd, buf, 1) < 0 && write(fd, buf, 1) < 0, "read/write on a holder");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDWR);
	CHECK(fd2 < 0 && errno == ENXIO, "reopened through /proc: fd %d errno %d", fd2, errno);
	memfd = open("/proc/self/mem", O_RDONLY);
	CHECK(memfd >= 0);
	CHECK(pread(memfd, buf, 1, (off_t)(uintptr_t)p) < 0, "/proc/self/mem reads the mapping");
	close(memfd);
	CHECK(xioctl(fd, _IO(GMEM_PFN_IOC_MAGIC, 0x41), NULL) == -ENOTTY, "unknown holder ioctl");
	munmap(p, 4 * PG);
	close(fd);

	fd = new_holder(g, 1, 0, GMEM_PFN_HOLDER_READONLY, NULL);
	CHECK(fd >= 0);
	CHECK(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EACCES,
	      "writable map of a read-only holder");
	p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED && p[0] == 0x5a, "read-only map");
	CHECK(mprotect(p, PG, PROT_READ | PROT_WRITE) < 0, "mprotect to writable");
	munmap(p, PG);
	close(fd);

	/* Destroy with a live mapping: it faults afterwards, nothing else happens. */
	fd = new_holder(g, 1, 0, 0, NULL);
	p = map(fd, 16 * PG, 0);
	CHECK(p);
	p[PG] = 1;
	CHECK(destroy_guest(g) == 0);
	CHECK(probe(p + PG, false, 0, NULL) == SIGBUS, "destroyed guest still mapped");
	CHECK(destroy_guest(g) == -ENOENT, "destroyed twice");
	CHECK(new_holder(g, 1, 0, 0, NULL) == -ENOENT, "holder of a destroyed guest");
	munmap(p, 16 * PG);
	close(fd);
	return 0;
}

struct seen {
	uint64_t guest, cookie, holder;
	int n, owner, opener, revoked, mappings;
	uint64_t total;
};

static void on_guest(struct nlattr **tb, int cmd, void *arg)
{
	struct seen *s = arg;

	(void)cmd;
	if (tb[GMEM_PFN_A_GUEST_ID] && nla_get_u64(tb[GMEM_PFN_A_GUEST_ID]) == s->guest) {
		s->n++;
		s->cookie = tb[GMEM_PFN_A_GUEST_COOKIE] ? nla_get_u64(tb[GMEM_PFN_A_GUEST_COOKIE]) : 0;
	}
	if (tb[GMEM_PFN_A_POOL_TOTAL])
		s->total = nla_get_u64(tb[GMEM_PFN_A_POOL_TOTAL]);
	if (tb[GMEM_PFN_A_HOLDER_ID] && nla_get_u64(tb[GMEM_PFN_A_HOLDER_ID]) == s->holder) {
		s->owner = (int)nla_get_u32(tb[GMEM_PFN_A_HOLDER_OWNER_PID]);
		s->opener = (int)nla_get_u32(tb[GMEM_PFN_A_HOLDER_OPENER_PID]);
		s->revoked = !!tb[GMEM_PFN_A_HOLDER_REVOKED];
		s->mappings = (int)nla_get_u32(tb[GMEM_PFN_A_HOLDER_NR_MAPPINGS]);
	}
}

/*
 * Sends raw bytes after a netlink header addressed to the family (for malformed messages libnl would
 * not build) and returns the error of the kernel's ack.
 */
static int raw_genl(const void *payload, size_t len)
{
	struct {
		struct nlmsghdr nh;
		char body[64];
	} req = { 0 };
	char buf[512];
	struct sockaddr_nl kern = { .nl_family = AF_NETLINK };
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC), r = -EPROTO;
	ssize_t n;

	if (fd < 0 || len > sizeof(req.body))
		goto out;
	req.nh.nlmsg_len = NLMSG_LENGTH(len);
	req.nh.nlmsg_type = (uint16_t)family_id;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nh.nlmsg_seq = 1;
	memcpy(req.body, payload, len);
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kern, sizeof(kern)) < 0)
		goto out;
	/* A request that succeeds gets its reply first, then the ack. */
	for (int i = 0; i < 4; i++) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && h->nlmsg_type == NLMSG_ERROR) {
			r = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			break;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static int t_genl_raw(void)
{
	struct genlmsghdr gh = { .cmd = GMEM_PFN_CMD_POOL_GET, .version = GMEM_PFN_GENL_VERSION };
	struct {
		struct genlmsghdr gh;
		struct nlattr na;
		uint64_t v;
	} m = { .gh = gh, .na = { .nla_len = 200, .nla_type = GMEM_PFN_A_GUEST_ID } };
	int r;

	CHECK(nl_open() && family_id > 0);
	CHECK((r = raw_genl(&gh, sizeof(gh))) == 0, "a well-formed request: %d", r);
	CHECK((r = raw_genl(&gh, 2)) == -EINVAL, "truncated genl header: %d", r);
	gh.reserved = 7;
	CHECK((r = raw_genl(&gh, sizeof(gh))) == -EINVAL, "reserved header bytes: %d", r);
	m.gh.cmd = GMEM_PFN_CMD_GUEST_GET;
	CHECK((r = raw_genl(&m, sizeof(m))) == -EINVAL, "attribute longer than the message: %d", r);
	m.na.nla_len = 3;
	CHECK((r = raw_genl(&m, sizeof(m))) == -EINVAL, "attribute shorter than its header: %d", r);
	return 0;
}

/* The family's queries as root, and hostile messages: unknown commands and attributes, bad types. */
static int t_genl(void)
{
	struct nl_sock *sk = nl_open();
	struct seen s = { 0 };
	struct nlctx c = { .on_msg = on_guest, .arg = &s };
	uint64_t g, h, zero = 0;
	unsigned char *p;
	int fd, r;

	CHECK(sk && family_id > 0 && events_grp > 0, "family %d group %d", family_id, events_grp);
	CHECK(create_guest(8 * PG, 12, 0, 0xc00c1e, &g) == 0);
	fd = new_holder(g, 55, 777, 0, &h);
	p = map(fd, 8 * PG, 0);
	CHECK(p);
	s.guest = g;
	s.holder = h;
	CHECK(nl_call(sk, GMEM_PFN_CMD_POOL_GET, 0, NULL, NULL, &c) == 0 && s.total == POOL_BYTES);
	CHECK(nl_call(sk, GMEM_PFN_CMD_GUEST_GET, 0, fill_guest_u64, &g, &c) == 0 && s.n == 1 &&
	      s.cookie == 0xc00c1e, "doit");
	CHECK(nl_call(sk, GMEM_PFN_CMD_GUEST_GET, NLM_F_DUMP, NULL, NULL, &c) == 0 && s.n == 2, "dump");
	CHECK(nl_call(sk, GMEM_PFN_CMD_HOLDER_GET, NLM_F_DUMP, fill_guest_u64, &g, &c) == 0);
	CHECK(s.owner == 777 && s.opener == getpid() && !s.revoked && s.mappings == 1, "holder %d %d %d %d",
	      s.owner, s.opener, s.revoked, s.mappings);
	CHECK(revoke_holder(g, h) == 0);
	CHECK(nl_call(sk, GMEM_PFN_CMD_HOLDER_GET, NLM_F_DUMP, fill_guest_u64, &g, &c) == 0 && s.revoked);

	CHECK(nl_call(sk, 99, 0, NULL, NULL, &c) == -EOPNOTSUPP, "unknown command");
	CHECK(nl_call(sk, GMEM_PFN_CMD_EVENT_PRIVATE_FAULT, 0, NULL, NULL, &c) == -EOPNOTSUPP, "event as request");
	CHECK(nl_call(sk, GMEM_PFN_CMD_GUEST_GET, 0, NULL, NULL, &c) == -EINVAL, "doit without id");
	CHECK(nl_call(sk, GMEM_PFN_CMD_GUEST_GET, 0, fill_guest_u32, &g, &c) == -EINVAL, "u32 id");
	r = nl_call(sk, GMEM_PFN_CMD_GUEST_GET, 0, fill_guest_u64, &zero, &c);
	CHECK(r == -ERANGE, "id 0: %d", r); /* below the policy's minimum */
	CHECK(nl_call(sk, GMEM_PFN_CMD_GUEST_GET, 0, fill_unknown_attr, NULL, &c) == -EINVAL, "unknown attr");
	CHECK(nl_call(sk, GMEM_PFN_CMD_POOL_GET, 0, fill_unknown_attr, NULL, &c) == -EINVAL, "unknown attr");
	{
		uint64_t nope = g + 1000;

		CHECK(nl_call(sk, GMEM_PFN_CMD_GUEST_GET, 0, fill_guest_u64, &nope, &c) == -ENOENT, "unknown id");
		CHECK(nl_call(sk, GMEM_PFN_CMD_HOLDER_GET, NLM_F_DUMP, fill_guest_u64, &nope, &c) == -ENOENT);
	}
	CHECK(nl_call(sk, GMEM_PFN_CMD_HOLDER_GET, NLM_F_DUMP, NULL, NULL, &c) == -EINVAL, "holders without id");
	CHECK(nl_call(sk, GMEM_PFN_CMD_HOLDER_GET, 0, fill_guest_u64, &g, &c) == -EOPNOTSUPP, "holder doit");
	nl_socket_free(sk);
	munmap(p, 8 * PG);
	close(fd);
	return destroy_guest(g);
}

/* A member of the clients' group, not root: EACCES on the node, EPERM on every op and on the group. */
static int t_unpriv(void)
{
	uint64_t g;
	int status;
	pid_t pid;

	CHECK(nl_open() && family_id > 0); /* resolves the family as root */
	CHECK(create_guest(4 * PG, 12, 0, 11, &g) == 0);
	pid = fork_child();
	if (pid == 0) {
		gid_t grp = GMEM_GID;
		struct nl_sock *sk;
		struct nlctx c = { 0 };
		int fd, rc = 0;

		if (setgroups(1, &grp) || setgid(GMEM_GID) || setuid(UNPRIV_UID))
			_exit(10);
		fd = open("/dev/gmem_pfn", O_RDWR);
		if (!(fd < 0 && errno == EACCES))
			rc |= 1;
		sk = nl_open();
		if (!sk)
			_exit(11);
		if (nl_call(sk, GMEM_PFN_CMD_POOL_GET, 0, NULL, NULL, &c) != -EPERM)
			rc |= 2;
		if (nl_call(sk, GMEM_PFN_CMD_GUEST_GET, 0, fill_guest_u64, &g, &c) != -EPERM)
			rc |= 4;
		if (nl_call(sk, GMEM_PFN_CMD_GUEST_GET, NLM_F_DUMP, NULL, NULL, &c) != -EPERM)
			rc |= 8;
		if (nl_call(sk, GMEM_PFN_CMD_HOLDER_GET, NLM_F_DUMP, fill_guest_u64, &g, &c) != -EPERM)
			rc |= 16;
		if (!(setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &events_grp,
				 sizeof(events_grp)) < 0 && errno == EPERM))
			rc |= 32;
		_exit(rc);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
	CHECK(WEXITSTATUS(status) == 0, "unprivileged checks failed: mask %#x (1 node, 2-16 ops, 32 group)",
	      WEXITSTATUS(status));
	return destroy_guest(g);
}

struct evlog {
	int faults, released;
	long dropped;
	int last_pid;
	uint64_t last_offset, guest, last_holder;
};

static void on_event(struct nlattr **tb, int cmd, void *arg)
{
	struct evlog *l = arg;

	if (!tb[GMEM_PFN_A_GUEST_ID] || nla_get_u64(tb[GMEM_PFN_A_GUEST_ID]) != l->guest)
		return;
	if (tb[GMEM_PFN_A_EVENT_DROPPED])
		l->dropped += nla_get_u32(tb[GMEM_PFN_A_EVENT_DROPPED]);
	if (cmd == GMEM_PFN_CMD_EVENT_PRIVATE_FAULT) {
		l->faults++;
		l->last_pid = (int)nla_get_u32(tb[GMEM_PFN_A_EVENT_PID]);
		l->last_offset = nla_get_u64(tb[GMEM_PFN_A_EVENT_OFFSET]);
		l->last_holder = nla_get_u64(tb[GMEM_PFN_A_HOLDER_ID]);
	} else if (cmd == GMEM_PFN_CMD_EVENT_GUEST_RELEASED) {
		l->released++;
	}
}

/* Receives events for up to ms milliseconds or until cond holds. */
static void drain_events(struct nl_sock *sk, struct nl_cb *cb, int ms, bool (*cond)(struct evlog *),
			 struct evlog *l)
{
	int64_t end = now_ms() + ms;
	struct pollfd pfd = { .fd = nl_socket_get_fd(sk), .events = POLLIN };

	while (!(cond && cond(l))) {
		int64_t left = end - now_ms();

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		nl_recvmsgs(sk, cb);
	}
}

static int nl_no_seq_check(struct nl_msg *msg, void *arg)
{
	(void)msg, (void)arg;
	return NL_OK;
}

static bool got_fault(struct evlog *l) { return l->faults >= 1; }
static bool got_released(struct evlog *l) { return l->released >= 1; }
static bool got_dropped(struct evlog *l) { return l->dropped > 0; }

/* Events: a private fault names pid and offset; release; the rate limit counts what it drops. */
static int t_events(void)
{
	struct nl_sock *sk = nl_open();
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	struct evlog l = { 0 };
	struct nlctx c = { .on_msg = on_event, .arg = &l };
	int fd, status, i, total = 0;
	unsigned char *p;
	uint64_t g, h;
	pid_t pid;

	CHECK(sk && cb);
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, nl_no_seq_check, NULL); /* events have no sequence */
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, nl_on_valid, &c);
	nl_socket_set_nonblocking(sk);
	CHECK(nl_socket_add_membership(sk, events_grp) == 0, "root cannot join the events group");
	CHECK(create_guest(8 * PG, 12, 0, 12, &g) == 0);
	l.guest = g;
	fd = new_holder(g, 1, 0, 0, &h);
	p = map(fd, 8 * PG, 0);
	CHECK(p);
	CHECK(set_range(g, 2 * PG, 2 * PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
	pid = fork_child();
	if (pid == 0) {
		unsigned char *q = map(fd, 8 * PG, 0); /* VM_DONTCOPY: the child maps for itself */

		_exit(q && probe(q + 3 * PG + 8, false, 0, NULL) == SIGBUS ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	total++;
	drain_events(sk, cb, (int)(5000 * scale()), got_fault, &l);
	CHECK(l.faults == 1 && l.last_pid == pid && l.last_offset == 3 * PG && l.last_holder == h,
	      "faults %d pid %d (child %d) offset %llu", l.faults, l.last_pid, pid,
	      (unsigned long long)l.last_offset);

	/* A flood: at most GMEM_PFN_EVENT_BURST a second get through; the rest are counted. */
	for (i = 0; i < 200; i++, total++)
		probe(p + 2 * PG, false, 0, NULL);
	drain_events(sk, cb, 200, NULL, &l);
	CHECK(l.faults < total, "no event was dropped: %d of %d", l.faults, total);
	/* The count of dropped events rides on the next event sent, once the window has passed. */
	{
		int64_t end = now_ms() + (int64_t)(10000 * scale());

		while (!got_dropped(&l) && now_ms() < end) {
			probe(p + 2 * PG, false, 0, NULL);
			total++;
			drain_events(sk, cb, 100, got_dropped, &l);
		}
	}
	drain_events(sk, cb, 100, NULL, &l);
	CHECK(l.dropped > 0, "no dropped count reported");
	/* Every fault is either an event or in a dropped count (unless the last ones are still pending). */
	CHECK(l.faults + l.dropped <= total && l.faults + l.dropped >= total - GMEM_PFN_EVENT_BURST,
	      "events %d + dropped %ld vs faults %d", l.faults, l.dropped, total);
	munmap(p, 8 * PG);
	close(fd);
	CHECK(destroy_guest(g) == 0);
	drain_events(sk, cb, (int)(5000 * scale()), got_released, &l);
	CHECK(l.released == 1, "no GUEST_RELEASED event");
	nl_cb_put(cb);
	nl_socket_free(sk);
	return 0;
}

struct racer {
	unsigned char *p;
	volatile bool stop;
	volatile unsigned long ok, bus;
};

static void *race_touch(void *arg)
{
	struct racer *r = arg;
	unsigned int i = 0;

	while (!r->stop) {
		if (probe(r->p + (i++ % 16) * PG, false, 0, NULL) == 0)
			r->ok++;
		else
			r->bus++;
		if (!(i % 16))
			sched_yield(); /* on one vCPU, give the converting thread its turn */
	}
	return NULL;
}

/*
 * Faults against zaps (run with two vCPUs): another thread faults pages in all the time while this
 * one flips the guest private and shared. Each time SET_RANGE(private) returns, no page may be
 * reachable any more: a fault that raced with the zap either went in before it (and was zapped) or
 * waited on the invalidate lock and saw the range private.
 */
static int t_race(void)
{
	struct racer r = { 0 };
	pthread_t th;
	uint64_t g;
	int fd, i, j;

	CHECK(create_guest(16 * PG, 12, 0, 15, &g) == 0);
	fd = new_holder(g, 1, 0, 0, NULL);
	r.p = map(fd, 16 * PG, 0);
	CHECK(r.p);
	CHECK(pthread_create(&th, NULL, race_touch, &r) == 0);
	for (i = 0; i < 200; i++) {
		CHECK(set_range(g, 0, 16 * PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
		for (j = 0; j < 16; j += 5)
			if (probe(r.p + j * PG, false, 0, NULL) != SIGBUS) {
				r.stop = true;
				pthread_join(th, NULL);
				CHECK(!"page reachable after the zap", "round %d page %d", i, j);
			}
		CHECK(set_range(g, 0, 16 * PG, GMEM_PFN_STATE_SHARED, 0, NULL, 0, NULL) == 0);
		/* Let the other thread map something before the next zap, so the zap has work racing it. */
		{
			unsigned long ok0 = r.ok;
			int64_t end = now_ms() + (int64_t)(2000 * scale());

			while (r.ok == ok0 && now_ms() < end)
				sched_yield();
		}
	}
	r.stop = true;
	pthread_join(th, NULL);
	printf("# race: %lu touches mapped, %lu SIGBUS in 200 rounds\n", r.ok, r.bus);
	/* On one vCPU the threads may never interleave inside a conversion; on two they must. */
	CHECK(r.ok > 0 && (r.bus > 0 || sysconf(_SC_NPROCESSORS_ONLN) < 2),
	      "the other thread never raced: %lu ok %lu SIGBUS", r.ok, r.bus);
	munmap(r.p, 16 * PG);
	close(fd);
	return destroy_guest(g);
}

/* Unloading is refused while a guest lives, and works once it is gone. */
static int t_unload(void)
{
	char ranges[256] = "";
	uint64_t g;
	int fd, r;
	FILE *f;

	f = fopen("/sys/module/gmem_pfn/parameters/ranges", "r");
	CHECK(f && fgets(ranges, sizeof(ranges), f));
	fclose(f);
	ranges[strcspn(ranges, "\n")] = 0;
	CHECK(create_guest(4 * PG, 12, 0, 13, &g) == 0);
	close(ctl);
	ctl = -1;
	r = (int)syscall(SYS_delete_module, "gmem_pfn", O_NONBLOCK);
	CHECK(r < 0 && (errno == EBUSY || errno == EWOULDBLOCK), "unloaded with a guest alive: %d %d", r, errno);
	ctl = open("/dev/gmem_pfn", O_RDWR | O_CLOEXEC);
	CHECK(ctl >= 0);
	CHECK(destroy_guest(g) == 0);
	close(ctl);
	ctl = -1;
	CHECK(syscall(SYS_delete_module, "gmem_pfn", O_NONBLOCK) == 0, "unload: %d", errno);
	fd = open("/lib/modules/gmem_pfn.ko", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	{
		char params[300];

		snprintf(params, sizeof(params), "ranges=%s", ranges);
		CHECK(syscall(SYS_finit_module, fd, params, 0) == 0, "reload: %d", errno);
	}
	close(fd);
	ctl = open("/dev/gmem_pfn", O_RDWR | O_CLOEXEC);
	CHECK(ctl >= 0);
	return 0;
}

/* LIST_GUESTS (after, count, capacity, entry_size) from the first guest with id > after. */
static int list_guests(uint64_t after, struct gmem_pfn_guest_info *out, uint32_t cap, uint32_t *count)
{
	struct gmem_pfn_list_guests l = { .size = sizeof(l), .after = after, .guests = (uintptr_t)out,
					   .entry_size = sizeof(*out), .capacity = out ? cap : 0 };
	int r = xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l);

	if (!r)
		*count = l.count;
	return r;
}

static const struct gmem_pfn_guest_info *find_info(const struct gmem_pfn_guest_info *v, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i].guest_id == id)
			return &v[i];
	return NULL;
}

/*
 * LIST_GUESTS: what a daemon that lost its state uses to find the guests the module still holds
 * (their cookie, size, granule, PFN base, private bytes and holders), in id order, paged by `after`.
 */
static int t_list(void)
{
	struct gmem_pfn_caps caps = { .size = sizeof(caps) };
	struct gmem_pfn_guest_info v[8];
	struct {
		struct gmem_pfn_guest_info i;
		uint64_t tail;
	} wide[8];
	struct gmem_pfn_list_guests l;
	struct gmem_pfn_query_guest q;
	struct gmem_pfn_extent e;
	const struct gmem_pfn_guest_info *ia, *ib;
	uint32_t n, n1, total;
	uint64_t a, b;
	int fd;

	CHECK(xioctl(ctl, GMEM_PFN_IOC_QUERY_CAPS, &caps) == 0);
	CHECK(caps.features & GMEM_PFN_FEAT_LIST_GUESTS, "features %#llx", (unsigned long long)caps.features);
	CHECK(create_guest(8 * PG, 12, 0, 101, &a) == 0);
	CHECK(create_guest(2 * MB, 21, GMEM_PFN_CREATE_PRIVATE, 102, &b) == 0);
	CHECK(set_range(a, PG, 2 * PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
	fd = new_holder(a, 7, 0, 0, NULL);
	CHECK(fd >= 0);

	CHECK(list_guests(0, NULL, 0, &total) == 0 && total >= 2, "count only: %u", total);
	CHECK(list_guests(0, v, 8, &n) == 0 && n == total, "%u listed of %u", n, total);
	for (uint32_t i = 1; i < n && i < 8; i++)
		CHECK(v[i - 1].guest_id < v[i].guest_id, "not in id order at %u", i);
	ia = find_info(v, n < 8 ? n : 8, a);
	ib = find_info(v, n < 8 ? n : 8, b);
	CHECK(ia && ib, "a guest is missing from the listing");
	CHECK(query_guest(a, &q, &e, 1) == 0);
	CHECK(ia->cookie == 101 && ia->bytes == 8 * PG && ia->granule_shift == 12 && ia->node == -1 &&
	      ia->private_bytes == 2 * PG && ia->nr_holders == 1 && ia->base == e.phys && !ia->reserved,
	      "a: cookie %llu bytes %llu shift %u private %llu holders %u base %#llx (extent %#llx)",
	      (unsigned long long)ia->cookie, (unsigned long long)ia->bytes, ia->granule_shift,
	      (unsigned long long)ia->private_bytes, ia->nr_holders, (unsigned long long)ia->base,
	      (unsigned long long)e.phys);
	CHECK(query_guest(b, &q, &e, 1) == 0);
	CHECK(ib->cookie == 102 && ib->bytes == 2 * MB && ib->granule_shift == 21 && ib->private_bytes == 2 * MB &&
	      ib->nr_holders == 0 && ib->base == e.phys && (ib->base & (2 * MB - 1)) == 0);

	/* Paging: capacity 1 writes one entry and still counts them all; after skips what was seen. */
	memset(v, 0xff, sizeof(v));
	CHECK(list_guests(0, v, 1, &n1) == 0 && n1 == total && v[1].guest_id == UINT64_MAX, "capacity 1: %u", n1);
	CHECK(list_guests(v[0].guest_id, v, 8, &n) == 0 && n == total - 1, "after %llu: %u",
	      (unsigned long long)v[0].guest_id, n);
	CHECK(list_guests(b, v, 8, &n) == 0 && !find_info(v, n < 8 ? n : 8, a) && !find_info(v, n < 8 ? n : 8, b));
	/* A newer caller's bigger entries: the tail is zeroed. */
	memset(wide, 0xff, sizeof(wide));
	l = (struct gmem_pfn_list_guests){ .size = sizeof(l), .guests = (uintptr_t)wide, .entry_size = sizeof(wide[0]),
					   .capacity = 8 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l) == 0 && l.count == total);
	CHECK(wide[0].tail == 0 && wide[0].i.guest_id != UINT64_MAX);

	/* Hostile: flags, reserved, capacity without a buffer, small entries, too many, bad pointer. */
	l = (struct gmem_pfn_list_guests){ .size = sizeof(l), .flags = 1 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l) == -EINVAL, "flags");
	l = (struct gmem_pfn_list_guests){ .size = sizeof(l), .reserved = 1 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l) == -EINVAL, "reserved");
	l = (struct gmem_pfn_list_guests){ .size = sizeof(l), .capacity = 4 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l) == -EINVAL, "capacity without a buffer");
	l = (struct gmem_pfn_list_guests){ .size = sizeof(l), .guests = (uintptr_t)v, .entry_size = 8, .capacity = 1 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l) == -EINVAL, "entry_size 8");
	l = (struct gmem_pfn_list_guests){ .size = sizeof(l), .guests = (uintptr_t)v, .entry_size = sizeof(v[0]),
					   .capacity = GMEM_PFN_MAX_ENTRIES + 1 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l) == -ERANGE, "capacity too big");
	l = (struct gmem_pfn_list_guests){ .size = sizeof(l), .guests = 8, .entry_size = sizeof(v[0]), .capacity = 1 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l) == -EFAULT, "bad pointer");
	l = (struct gmem_pfn_list_guests){ .size = GMEM_PFN_LIST_GUESTS_SIZE_VER1 - 8 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_LIST_GUESTS, &l) == -EINVAL, "short size");

	close(fd);
	CHECK(destroy_guest(a) == 0);
	CHECK(list_guests(0, v, 8, &n) == 0 && n == total - 1 && !find_info(v, n < 8 ? n : 8, a),
	      "a destroyed guest is still listed");
	return destroy_guest(b);
}

static int query_state(uint64_t g, uint64_t off, uint64_t len, struct gmem_pfn_range *runs, uint32_t cap,
		       uint32_t *count)
{
	struct gmem_pfn_query_state s = { .size = sizeof(s), .guest_id = g, .offset = off, .length = len,
					   .runs = (uintptr_t)runs, .entry_size = sizeof(*runs),
					   .capacity = runs ? cap : 0 };
	int r = xioctl(ctl, GMEM_PFN_IOC_QUERY_STATE, &s);

	if (!r)
		*count = s.count;
	return r;
}

/* QUERY_STATE: the private runs of a guest, which a restarted daemon takes over as its map. */
static int t_query_state(void)
{
	struct gmem_pfn_range r[4];
	struct gmem_pfn_query_state s;
	uint32_t n;
	uint64_t g, h;

	CHECK(create_guest(8 * PG, 12, 0, 103, &g) == 0);
	CHECK(query_state(g, 0, 8 * PG, r, 4, &n) == 0 && n == 0, "a new guest has %u private runs", n);
	CHECK(set_range(g, PG, 2 * PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
	CHECK(set_range(g, 5 * PG, PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
	CHECK(set_range(g, 7 * PG, PG, GMEM_PFN_STATE_PRIVATE, 0, NULL, 0, NULL) == 0);
	memset(r, 0, sizeof(r));
	CHECK(query_state(g, 0, 8 * PG, r, 4, &n) == 0 && n == 3, "%u runs", n);
	CHECK(r[0].offset == PG && r[0].length == 2 * PG && r[1].offset == 5 * PG && r[1].length == PG &&
	      r[2].offset == 7 * PG && r[2].length == PG, "runs %#llx+%#llx %#llx+%#llx %#llx+%#llx",
	      (unsigned long long)r[0].offset, (unsigned long long)r[0].length, (unsigned long long)r[1].offset,
	      (unsigned long long)r[1].length, (unsigned long long)r[2].offset, (unsigned long long)r[2].length);
	/* Clipped to the query; capacity 1 still counts them all. */
	CHECK(query_state(g, 2 * PG, 4 * PG, r, 4, &n) == 0 && n == 2 && r[0].offset == 2 * PG &&
	      r[0].length == PG && r[1].offset == 5 * PG && r[1].length == PG);
	memset(r, 0xff, sizeof(r));
	CHECK(query_state(g, 0, 8 * PG, r, 1, &n) == 0 && n == 3 && r[0].offset == PG && r[1].offset == UINT64_MAX);
	CHECK(query_state(g, 0, 8 * PG, NULL, 0, &n) == 0 && n == 3);
	/* Back to shared joins the map again. */
	CHECK(set_range(g, 0, 8 * PG, GMEM_PFN_STATE_SHARED, 0, NULL, 0, NULL) == 0);
	CHECK(query_state(g, 0, 8 * PG, r, 4, &n) == 0 && n == 0);
	CHECK(create_guest(2 * MB, 21, GMEM_PFN_CREATE_PRIVATE, 104, &h) == 0);
	CHECK(query_state(h, 0, 2 * MB, r, 4, &n) == 0 && n == 1 && r[0].offset == 0 && r[0].length == 2 * MB);

	/* Hostile: misaligned, past the end, wrapping, empty, unknown guest, flags, reserved. */
	CHECK(query_state(g, 100, PG, r, 4, &n) == -EINVAL, "misaligned");
	CHECK(query_state(g, 0, 0, r, 4, &n) == -EINVAL, "empty");
	CHECK(query_state(g, 4 * PG, 8 * PG, r, 4, &n) == -ERANGE, "past the end");
	CHECK(query_state(g, -PG, 2 * PG, r, 4, &n) == -ERANGE, "wraps");
	CHECK(query_state(h, 0, PG, r, 4, &n) == -EINVAL, "4 KiB on a 2 MiB guest");
	CHECK(query_state(UINT64_MAX, 0, PG, r, 4, &n) == -ENOENT, "unknown guest");
	s = (struct gmem_pfn_query_state){ .size = sizeof(s), .flags = 2, .guest_id = g, .length = PG };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_QUERY_STATE, &s) == -EINVAL, "flags");
	s = (struct gmem_pfn_query_state){ .size = sizeof(s), .reserved = 2, .guest_id = g, .length = PG };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_QUERY_STATE, &s) == -EINVAL, "reserved");
	s = (struct gmem_pfn_query_state){ .size = sizeof(s), .guest_id = g, .length = PG, .runs = (uintptr_t)r,
					   .entry_size = 8, .capacity = 1 };
	CHECK(xioctl(ctl, GMEM_PFN_IOC_QUERY_STATE, &s) == -EINVAL, "entry_size 8");
	CHECK(destroy_guest(h) == 0);
	return destroy_guest(g);
}

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "caps", t_caps },
	{ "scrub-on-claim", t_scrub_on_claim },
	{ "share", t_share },
	{ "sigbus", t_sigbus },
	{ "audit", t_audit },
	{ "audit-scm", t_audit_scm },
	{ "fork", t_fork },
	{ "scrub", t_scrub },
	{ "pmd", t_pmd },
	{ "prefault", t_prefault },
	{ "hostile-ioctl", t_hostile_ioctl },
	{ "list", t_list },
	{ "query-state", t_query_state },
	{ "genl", t_genl },
	{ "genl-raw", t_genl_raw },
	{ "unpriv", t_unpriv },
	{ "events", t_events },
	{ "race", t_race },
	{ "unload", t_unload },
};

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	probe_install();
	for (int a = 1; a < argc; a++) {
		bool known = false;

		for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			known |= !strcmp(argv[a], tests[i].name);
		if (!known) {
			fprintf(stderr, "gmem-pfn-test: no test '%s'\n", argv[a]);
			return 2;
		}
	}
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		bool want = argc == 1;
		int r;

		for (int a = 1; a < argc; a++)
			want |= !strcmp(argv[a], tests[i].name);
		if (!want)
			continue;
		if (ctl < 0)
			ctl = open("/dev/gmem_pfn", O_RDWR | O_CLOEXEC);
		fail_msg[0] = 0;
		r = ctl < 0 ? (snprintf(fail_msg, sizeof(fail_msg), "open /dev/gmem_pfn: %m"), -1) : tests[i].fn();
		destroy_tracked();
		if (r == 0) {
			printf("ok - %s\n", tests[i].name);
			passed++;
		} else {
			printf("not ok - %s: %s\n", tests[i].name, fail_msg[0] ? fail_msg : strerror(-r));
			failed++;
		}
	}
	printf("gmem-pfn-test: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
