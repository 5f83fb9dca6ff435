/* SPDX-License-Identifier: MIT */
/*
 * gmemd-vm-test: gmemd on the kmod backend, driven by real libgmem clients inside the test VM
 * (tests/vm/guest/30-gmemd.sh starts gmemd first). Each case prints "ok - NAME" or "not ok - NAME: why";
 * the negative controls expect named cases to fail.
 *   gmemd-vm-test [CASE...]        run the cases (default: all)
 *   gmemd-vm-test launch UID GID PROGRAM [ARG...]
 *                                  exec PROGRAM as UID:GID keeping CAP_NET_ADMIN only (ambient), the
 *                                  way gmemd runs in production (busybox has no capsh)
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
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
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "gmem_pfn.h"

#define MiB (UINT64_C(1) << 20)
#define PAGE UINT64_C(4096)
#define GUEST_SIZE (4 * MiB)

static int failures;

static void result(const char *name, bool ok, const char *fmt, ...)
{
	char why[512] = "";
	if (!ok && fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	/* One write per line: children report too, and lines must not interleave. */
	if (ok)
		dprintf(STDOUT_FILENO, "ok - %s\n", name);
	else
		dprintf(STDOUT_FILENO, "not ok - %s: %s\n", name, why);
	if (!ok)
		failures++;
}

static double scale(void)
{
	const char *s = getenv("GMEM_TEST_TIMEOUT_SCALE");
	double v = s ? atof(s) : 1;
	return v > 0 ? v : 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what, int err)
{
	dprintf(STDOUT_FILENO, "not ok - setup: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static struct gmem_client *connect_as(enum gmem_role role)
{
	struct gmem_client *c;
	int r = gmem_connect(NULL, role, &c);
	if (r < 0)
		die("connect to gmemd", r);
	gmem_set_timeout(c, (int)(20000 * scale()));
	return c;
}

/* ---- touching memory: SIGBUS and SIGSEGV are answers, not crashes ---- */

static sigjmp_buf probe_jmp;
static volatile sig_atomic_t probe_sig;
static void *volatile probe_addr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	probe_sig = sig;
	probe_addr = si->si_addr;
	siglongjmp(probe_jmp, 1);
}

/* 0: read (and, if write, wrote) fine; SIGBUS or SIGSEGV: that signal, at *at. */
static int probe(volatile uint8_t *p, bool write, uint8_t val, uint8_t *got, void **at)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER };
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	probe_sig = 0;
	if (sigsetjmp(probe_jmp, 1) == 0) {
		if (write)
			*p = val;
		uint8_t v = *p;
		if (got)
			*got = v;
	}
	signal(SIGBUS, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	if (at)
		*at = probe_addr;
	return probe_sig;
}

static const char *signame(int s)
{
	return s == 0 ? "no signal" : s == SIGBUS ? "SIGBUS" : s == SIGSEGV ? "SIGSEGV" : "another signal";
}

/* ---- the module, read directly (root may open the node; gmemd's clients may not) ---- */

static int module_fd(void)
{
	static int fd = -1;
	if (fd < 0)
		fd = open("/dev/" GMEM_PFN_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	return fd;
}

/* The module's view of gmemd's guest: gmemd stores its own guest id as the module guest's cookie. */
static int module_query(uint64_t gmemd_id, struct gmem_pfn_query_guest *q, struct gmem_pfn_extent *ext, uint32_t cap)
{
	int fd = module_fd();
	if (fd < 0)
		return -errno;
	/* Module ids are small, never reused: a bounded scan finds it without netlink. */
	for (uint64_t id = 1; id < 4096; id++) {
		*q = (struct gmem_pfn_query_guest){
			.size = sizeof(*q), .guest_id = id, .extents = (uint64_t)(uintptr_t)ext,
			.entry_size = sizeof(*ext), .capacity = ext ? cap : 0,
		};
		if (ioctl(fd, GMEM_PFN_IOC_QUERY_GUEST, q) < 0)
			continue;
		if (q->cookie == gmemd_id)
			return 0;
	}
	return -ENOENT;
}

static uint64_t guest_id(struct gmem_client *c, const char *name)
{
	struct gmem_guest_info *gs;
	size_t n;
	uint64_t id = 0;
	if (gmem_guest_list(c, &gs, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(gs[i].name, name) == 0)
			id = gs[i].id;
	free(gs);
	return id;
}

static uint8_t *map_guest(int fd, uint64_t off, uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (p == MAP_FAILED)
		die("mmap of a guest file", errno);
	return p;
}

static void touch_all(uint8_t *p, uint64_t len, uint8_t val)
{
	for (uint64_t o = 0; o < len; o += PAGE)
		p[o] = val;
}

/* Polls gmemd's log (its stderr, $GMEM_VM_GMEMD_LOG) for a line holding every given string. */
static bool log_has(const char *a, const char *b, const char *c)
{
	const char *path = getenv("GMEM_VM_GMEMD_LOG");
	int64_t deadline = now_ms() + (int64_t)(5000 * scale());
	char line[1024];
	if (!path)
		return false;
	do {
		FILE *f = fopen(path, "re");
		bool found = false;
		while (f && !found && fgets(line, sizeof(line), f))
			found = strstr(line, a) && (!b || strstr(line, b)) && (!c || strstr(line, c));
		if (f)
			fclose(f);
		if (found)
			return true;
		poll(NULL, 0, 20);
	} while (now_ms() < deadline);
	return false;
}

/* ---- participants ---- */

static void vote_yes(struct gmem_client *c, const struct gmem_conversion *cv, void *u);
static void ack_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *u);
static void ignore(struct gmem_client *c, const struct gmem_conversion *cv, void *u)
{
	(void)c, (void)cv, (void)u;
}

struct part {
	bool unmap_on_commit; /* let go of the range in the commit, as a participant must */
	bool leave_after_yes; /* vote yes, then disconnect */
	bool voted, leave, to_private;
	uint8_t *map;
	uint64_t map_len;
	uint64_t att_off, att_len;
};

static const struct gmem_participant_ops part_ops = {
	.prepare = vote_yes, .commit = ack_commit, .abort = ignore, .done = ignore,
};

static void vote_yes(struct gmem_client *c, const struct gmem_conversion *cv, void *u)
{
	struct part *p = u;
	p->to_private = cv->target == GMEM_PRIVATE;
	/* It leaves without being asked again: what it kept of the range could only be caught by the audit,
	 * and this case is about the files of a yes-voter that left, so it lets go of the range first. */
	if (p->leave_after_yes && p->to_private && p->map)
		munmap(p->map + p->att_off, p->att_len);
	gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
	p->voted = true;
	if (p->leave_after_yes)
		p->leave = true;
}

static void ack_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *u)
{
	struct part *p = u;
	/* The commit can be delivered within the same dispatch as its own prepare (it was the last vote):
	 * the leaver must not ack, or it would have let go properly. */
	if (p && p->leave_after_yes)
		return;
	if (p && p->unmap_on_commit && p->to_private && p->map) {
		munmap(p->map + p->att_off, p->att_len);
		p->unmap_on_commit = false;
	}
	gmem_ack(c, cv->epoch, cv->seq);
}

/* Serves gmemd's events until the parent writes a byte to ctl (then returns it). */
static char serve(struct gmem_client **cp, struct part *p, int ctl)
{
	for (;;) {
		struct pollfd pf[2] = { { .fd = ctl, .events = POLLIN }, { .fd = *cp ? gmem_get_fd(*cp) : -1,
									  .events = POLLIN } };
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			die("poll", errno);
		if (pf[1].revents && *cp) {
			if (gmem_dispatch(*cp) < 0)
				die("gmemd closed the connection", ECONNRESET);
			if (p && p->leave) {
				gmem_disconnect(*cp);
				*cp = NULL;
				p->leave = false;
			}
		}
		if (pf[0].revents) {
			char ch = 0;
			if (read(ctl, &ch, 1) != 1)
				return 0;
			return ch;
		}
	}
}

/* What a child tells its parent when it is ready, and what it found after the conversion. */
struct hello {
	uint64_t client_id;
	int32_t pid;
};

struct report {
	int sig_in, sig_out; /* probe of the converted range, of a page outside it */
	int fork_ok;
};

struct child {
	pid_t pid;
	int ctl, res;   /* parent's ends: commands to it, reports from it */
	struct hello hi;
};

static void xwrite(int fd, const void *b, size_t n)
{
	if (write(fd, b, n) != (ssize_t)n)
		die("pipe write", errno);
}

static void xread(int fd, void *b, size_t n)
{
	if (read(fd, b, n) != (ssize_t)n)
		die("pipe read (a child died?)", errno ? errno : EPIPE);
}

static struct child spawn(void (*fn)(int ctl, int res, void *arg), void *arg)
{
	int a[2], b[2];
	struct child ch = { 0 };
	if (pipe2(a, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0)
		die("pipe", errno);
	ch.pid = fork();
	if (ch.pid < 0)
		die("fork", errno);
	if (ch.pid == 0) {
		close(a[1]);
		close(b[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn(a[0], b[1], arg);
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	ch.ctl = a[1];
	ch.res = b[0];
	xread(ch.res, &ch.hi, sizeof(ch.hi));
	return ch;
}

static void reap(struct child *ch)
{
	/* A byte, not EOF: children forked later inherited this pipe's write end. */
	if (write(ch->ctl, "q", 1) < 0)
		(void)0;
	close(ch->ctl);
	close(ch->res);
	waitpid(ch->pid, NULL, 0);
}

/* ---- case: two processes see each other's writes ---- */

static void share_child(int ctl, int res, void *arg)
{
	struct gmem_client *c = connect_as(GMEM_ROLE_DEVICE);
	int fd, r = gmem_guest_open(c, arg, &fd, NULL);
	if (r < 0)
		die("open in the second process", r);
	uint8_t *p = map_guest(fd, 0, GUEST_SIZE);
	struct hello hi = { gmem_client_id(c), getpid() };
	xwrite(res, &hi, sizeof(hi));
	char go;
	xread(ctl, &go, 1);
	uint8_t seen = p[3 * MiB + 17];
	p[MiB + 5] = 0x5b;
	xwrite(res, &seen, 1);
	xread(ctl, &go, 1);
}

static void case_share(struct gmem_client *c)
{
	int fd, r = gmem_guest_create(c, "share", GUEST_SIZE, GMEM_GRANULE_4K, NULL);
	if (r == 0)
		r = gmem_guest_open(c, "share", &fd, NULL);
	if (r < 0) {
		result("gmemd-share", false, "create/open: %s (%s)", strerror(-r), gmem_last_error(c));
		return;
	}
	uint8_t *p = map_guest(fd, 0, GUEST_SIZE);
	struct child ch = spawn(share_child, "share");
	p[3 * MiB + 17] = 0xa7;
	xwrite(ch.ctl, "g", 1);
	uint8_t seen;
	xread(ch.res, &seen, 1);
	result("gmemd-share", seen == 0xa7 && p[MiB + 5] == 0x5b,
	       "the other process read %#x (want 0xa7), we read %#x (want 0x5b)", seen, p[MiB + 5]);
	xwrite(ch.ctl, "q", 1);
	reap(&ch);
	munmap(p, GUEST_SIZE);
	close(fd);
	gmem_guest_destroy(c, "share");
}

/* ---- case: to-private through gmemd gives SIGBUS there and only there; to-shared gives it back ---- */

static void case_sigbus(struct gmem_client *c)
{
	const uint64_t off = MiB, len = 64 * 1024;
	struct gmem_pfn_query_guest q0, q1;
	int fd, r = gmem_guest_create(c, "priv", GUEST_SIZE, GMEM_GRANULE_4K, NULL);
	if (r == 0)
		r = gmem_lease(c, "priv");
	if (r == 0)
		r = gmem_guest_open(c, "priv", &fd, NULL);
	if (r < 0) {
		result("gmemd-sigbus", false, "create/lease/open: %s (%s)", strerror(-r), gmem_last_error(c));
		return;
	}
	uint64_t gid = guest_id(c, "priv");
	uint8_t *p = map_guest(fd, 0, GUEST_SIZE);
	struct part self = { 0 };
	gmem_set_participant(c, &part_ops, &self);
	touch_all(p, GUEST_SIZE, 0x11);

	struct gmem_range rg = { off, len };
	struct gmem_convert_result cr;
	r = gmem_convert(c, "priv", &rg, 1, GMEM_PRIVATE, 0, &cr);
	if (r < 0 || cr.outcome != GMEM_COMMITTED) {
		result("gmemd-sigbus", false, "convert to private: %s, outcome %d (%s)", strerror(-r),
		       r < 0 ? -1 : (int)cr.outcome, gmem_last_error(c));
		goto out;
	}
	result("gmemd-lease-holder-kept", cr.n_revoked == 0, "the lease holder's file was revoked (%zu revoked)",
	       cr.n_revoked);
	gmem_convert_result_free(&cr);

	r = module_query(gid, &q0, NULL, 0);
	void *at = NULL;
	int s1 = probe(p + off, false, 0, NULL, &at);
	void *at2 = NULL;
	int s2 = probe(p + off + len - PAGE, true, 0x22, NULL, &at2);
	result("gmemd-sigbus", s1 == SIGBUS && at == p + off && s2 == SIGBUS && at2 == p + off + len - PAGE,
	       "touching the private range gave %s at %p and %s at %p (want SIGBUS at %p and %p)", signame(s1), at,
	       signame(s2), at2, (void *)(p + off), (void *)(p + off + len - PAGE));

	bool others = true;
	for (uint64_t o = 0; o < GUEST_SIZE; o += PAGE) {
		if (o >= off && o < off + len)
			continue;
		uint8_t v = 0;
		if (probe(p + o, false, 0, &v, NULL) != 0 || v != 0x11)
			others = false;
	}
	int r1 = module_query(gid, &q1, NULL, 0);
	result("gmemd-others-not-refaulted", r == 0 && r1 == 0 && others && q1.nr_pte_maps == q0.nr_pte_maps &&
	       q1.nr_sigbus == q0.nr_sigbus + 2,
	       "query %d/%d, other pages %s, PTEs inserted %llu -> %llu, SIGBUS %llu -> %llu", r, r1,
	       others ? "fine" : "broken", (unsigned long long)q0.nr_pte_maps, (unsigned long long)q1.nr_pte_maps,
	       (unsigned long long)q0.nr_sigbus, (unsigned long long)q1.nr_sigbus);

	char pid[32], offs[32];
	snprintf(pid, sizeof(pid), "pid %d", getpid());
	snprintf(offs, sizeof(offs), "offset %#llx", (unsigned long long)off);
	result("gmemd-fault-event-logged", log_has("private-page fault", "'priv'", pid) &&
	       log_has("private-page fault", "'priv'", offs),
	       "gmemd's log has no private-page fault line for guest 'priv', %s, %s", pid, offs);

	r = gmem_convert(c, "priv", &rg, 1, GMEM_SHARED, 0, &cr);
	if (r == 0) {
		uint8_t v = 0;
		int s = probe(p + off, true, 0x33, &v, NULL);
		result("gmemd-shared-again", cr.outcome == GMEM_COMMITTED && s == 0 && v == 0x33,
		       "outcome %d, touching the range gave %s", (int)cr.outcome, signame(s));
		gmem_convert_result_free(&cr);
	} else {
		result("gmemd-shared-again", false, "convert to shared: %s (%s)", strerror(-r), gmem_last_error(c));
	}
out:
	gmem_set_participant(c, NULL, NULL);
	munmap(p, GUEST_SIZE);
	close(fd);
	gmem_release(c, "priv");
	gmem_guest_destroy(c, "priv");
}

/* ---- case: the audit catches a yes-voter that kept its mapping, and nobody else ---- */

enum kind { KEEPER, UNMAPPER, SENDER, LEAVER };

struct aud_arg {
	enum kind kind;
	int scm; /* SENDER: where to send its file */
};

static bool not_mapped(void *addr)
{
	/* msync fails with ENOMEM on an address no mapping covers. */
	return msync(addr, PAGE, MS_ASYNC) < 0 && errno == ENOMEM;
}

static void send_fd(int sock, int fd)
{
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = { 0 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &mh, 0) < 0)
		die("sendmsg SCM_RIGHTS", errno);
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	if (recvmsg(sock, &mh, 0) <= 0)
		die("recvmsg SCM_RIGHTS", errno);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int fd = -1;
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		die("no fd received", EBADMSG);
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* Reports what touching the converted range and a page outside it (2 MiB) does now. */
static void report_probes(int res, uint8_t *p, int fork_ok)
{
	struct report rp = { .fork_ok = fork_ok };
	rp.sig_in = p ? probe(p, false, 0, NULL, NULL) : -1;
	rp.sig_out = p ? probe(p + 2 * MiB, false, 0, NULL, NULL) : -1;
	xwrite(res, &rp, sizeof(rp));
}

static void aud_child(int ctl, int res, void *arg)
{
	struct aud_arg *a = arg;
	struct gmem_client *c = connect_as(GMEM_ROLE_DEVICE);
	struct part pt = { .att_off = 0, .att_len = MiB, .unmap_on_commit = a->kind == UNMAPPER,
			   .leave_after_yes = a->kind == LEAVER };
	int fd, fork_ok = 1, r = gmem_guest_open(c, "aud", &fd, NULL);
	uint64_t att;
	if (r == 0)
		r = gmem_attach(c, "aud", 0, MiB, GMEM_ATTACH_MMAP, &att);
	if (r < 0)
		die("device open/attach", r);
	if (a->kind == SENDER) {
		send_fd(a->scm, fd);
	} else {
		pt.map = map_guest(fd, 0, GUEST_SIZE);
		pt.map_len = GUEST_SIZE;
		touch_all(pt.map, GUEST_SIZE, 0x44);
	}
	if (a->kind == KEEPER) {
		/* VM_DONTCOPY: a child of a holder has no mapping to keep. */
		pid_t k = fork();
		if (k == 0)
			_exit(not_mapped(pt.map) && not_mapped(pt.map + 2 * MiB) ? 0 : 1);
		int st = 0;
		waitpid(k, &st, 0);
		fork_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	gmem_set_participant(c, &part_ops, &pt);
	struct hello hi = { gmem_client_id(c), getpid() };
	xwrite(res, &hi, sizeof(hi));
	serve(&c, &pt, ctl);
	report_probes(res, a->kind == SENDER ? NULL : pt.map, fork_ok);
	serve(&c, &pt, ctl);
}

/* The receiver of a holder's fd over SCM_RIGHTS: not a gmemd client, it maps and keeps the mapping. */
static void receiver_child(int ctl, int res, void *arg)
{
	int sock = *(int *)arg;
	struct hello hi = { 0, getpid() };
	xwrite(res, &hi, sizeof(hi));
	int fd = recv_fd(sock);
	uint8_t *p = map_guest(fd, 0, GUEST_SIZE);
	touch_all(p, GUEST_SIZE, 0x55);
	xwrite(res, "m", 1);
	char ch;
	xread(ctl, &ch, 1);
	report_probes(res, p, 1);
	xread(ctl, &ch, 1);
}

static const struct gmem_party *find_party(const struct gmem_convert_result *cr, uint64_t id)
{
	for (size_t i = 0; i < cr->n_revoked; i++)
		if (cr->revoked[i].client_id == id)
			return &cr->revoked[i];
	return NULL;
}

static void case_audit(struct gmem_client *c)
{
	int fd, r = gmem_guest_create(c, "aud", GUEST_SIZE, GMEM_GRANULE_4K, NULL);
	if (r == 0)
		r = gmem_lease(c, "aud");
	if (r == 0)
		r = gmem_guest_open(c, "aud", &fd, NULL);
	if (r < 0) {
		result("gmemd-caught", false, "create/lease/open: %s (%s)", strerror(-r), gmem_last_error(c));
		return;
	}
	uint8_t *p = map_guest(fd, 0, GUEST_SIZE);
	touch_all(p, GUEST_SIZE, 0x66);
	struct part self = { 0 };
	gmem_set_participant(c, &part_ops, &self);

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair", errno);
	struct child rcv = spawn(receiver_child, &sp[1]);
	struct aud_arg args[4] = { { KEEPER, -1 }, { UNMAPPER, -1 }, { SENDER, sp[0] }, { LEAVER, -1 } };
	struct child ch[4];
	for (int i = 0; i < 4; i++)
		ch[i] = spawn(aud_child, &args[i]);
	char m;
	xread(rcv.res, &m, 1); /* the receiver maps before the conversion */

	struct gmem_range rg = { 0, MiB };
	struct gmem_convert_result cr;
	r = gmem_convert(c, "aud", &rg, 1, GMEM_PRIVATE, 0, &cr);
	struct report rp[4], rr;
	for (int i = 0; i < 4; i++) {
		xwrite(ch[i].ctl, "r", 1);
		xread(ch[i].res, &rp[i], sizeof(rp[i]));
	}
	xwrite(rcv.ctl, "r", 1);
	xread(rcv.res, &rr, sizeof(rr));
	if (r < 0) {
		result("gmemd-caught", false, "convert: %s (%s)", strerror(-r), gmem_last_error(c));
		goto out;
	}
	const struct gmem_party *keeper = find_party(&cr, ch[KEEPER].hi.client_id);
	char idbuf[48];
	snprintf(idbuf, sizeof(idbuf), "client %llu ", (unsigned long long)ch[KEEPER].hi.client_id);
	result("gmemd-caught", cr.outcome != GMEM_ABORTED && keeper && keeper->pid == (uint32_t)ch[KEEPER].hi.pid &&
	       rp[KEEPER].sig_out == SIGBUS && log_has(idbuf, "revoked for good", NULL),
	       "outcome %d, keeper %s in revoked (pid %u, want %d), its page outside the range gave %s (want SIGBUS)",
	       (int)cr.outcome, keeper ? "named" : "not named", keeper ? keeper->pid : 0, ch[KEEPER].hi.pid,
	       signame(rp[KEEPER].sig_out));
	const struct gmem_party *sender = find_party(&cr, ch[SENDER].hi.client_id);
	result("gmemd-scm-caught", sender && sender->pid == (uint32_t)rcv.hi.pid && rr.sig_out == SIGBUS,
	       "the sender's file %s (pid %u, want the receiver %d); the receiver's page outside gave %s",
	       sender ? "named" : "not named", sender ? sender->pid : 0, rcv.hi.pid, signame(rr.sig_out));
	int self_out = probe(p + 2 * MiB, false, 0, NULL, NULL);
	result("gmemd-not-caught", !find_party(&cr, gmem_client_id(c)) && !find_party(&cr, ch[UNMAPPER].hi.client_id) &&
	       self_out == 0 && rp[UNMAPPER].sig_out == 0,
	       "lease holder %s (its page outside: %s), unmapper %s (its page outside: %s)",
	       find_party(&cr, gmem_client_id(c)) ? "revoked" : "kept", signame(self_out),
	       find_party(&cr, ch[UNMAPPER].hi.client_id) ? "revoked" : "kept", signame(rp[UNMAPPER].sig_out));
	result("gmemd-fork", rp[KEEPER].fork_ok, "a forked child of a holder still had its mapping");
	char gone[48];
	snprintf(gone, sizeof(gone), "client %llu ", (unsigned long long)ch[LEAVER].hi.client_id);
	result("gmemd-gone-revoked", rp[LEAVER].sig_out == SIGBUS && log_has(gone, "voted yes and left", NULL),
	       "the yes-voter that left: its page outside the range gave %s (want SIGBUS)",
	       signame(rp[LEAVER].sig_out));
	gmem_convert_result_free(&cr);
out:
	for (int i = 0; i < 4; i++)
		reap(&ch[i]);
	reap(&rcv);
	close(sp[0]);
	close(sp[1]);
	gmem_set_participant(c, NULL, NULL);
	munmap(p, GUEST_SIZE);
	close(fd);
	gmem_release(c, "aud");
	gmem_guest_destroy(c, "aud");
}

/* ---- case: convert --force asks nobody; the zap alone takes the range away ---- */

/* A device process's start: opens the guest, attaches [0, 1 MiB) as mmap, maps and touches all of it with
 * fill, and says hello. *cp: its connection. Return: the mapping. */
static uint8_t *device_start(const char *guest, uint8_t fill, int res, struct gmem_client **cp)
{
	struct gmem_client *c = connect_as(GMEM_ROLE_DEVICE);
	int fd, r = gmem_guest_open(c, guest, &fd, NULL);
	uint64_t att;
	if (r == 0)
		r = gmem_attach(c, guest, 0, MiB, GMEM_ATTACH_MMAP, &att);
	if (r < 0)
		die("device open/attach", r);
	uint8_t *p = map_guest(fd, 0, GUEST_SIZE);
	touch_all(p, GUEST_SIZE, fill);
	struct hello hi = { gmem_client_id(c), getpid() };
	xwrite(res, &hi, sizeof(hi));
	*cp = c;
	return p;
}

static void force_child(int ctl, int res, void *arg)
{
	(void)arg;
	struct gmem_client *c;
	/* No participant ops: asked to prepare, it would never vote and the conversion would abort. */
	uint8_t *p = device_start("force", 0x77, res, &c);
	serve(&c, NULL, ctl);
	report_probes(res, p, 1);
	serve(&c, NULL, ctl);
}

static unsigned self_prepares;
static void count_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *u)
{
	self_prepares++;
	vote_yes(c, cv, u);
}

static bool named(const struct gmem_party *ps, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ps[i].client_id == id)
			return true;
	return false;
}

static void case_force(struct gmem_client *c)
{
	static const struct gmem_participant_ops counting = {
		.prepare = count_prepare, .commit = ack_commit, .abort = ignore, .done = ignore,
	};
	int r = gmem_guest_create(c, "force", GUEST_SIZE, GMEM_GRANULE_4K, NULL);
	if (r == 0)
		r = gmem_lease(c, "force");
	if (r < 0) {
		result("gmemd-force", false, "create/lease: %s (%s)", strerror(-r), gmem_last_error(c));
		return;
	}
	struct part self = { 0 };
	self_prepares = 0;
	gmem_set_participant(c, &counting, &self);
	struct child ch = spawn(force_child, NULL);
	struct gmem_range rg = { 0, MiB };
	struct gmem_convert_result cr;
	r = gmem_convert(c, "force", &rg, 1, GMEM_PRIVATE, GMEM_CONVERT_FORCE, &cr);
	struct report rp;
	xwrite(ch.ctl, "r", 1);
	xread(ch.res, &rp, sizeof(rp));
	if (r < 0) {
		result("gmemd-force", false, "convert --force: %s (%s)", strerror(-r), gmem_last_error(c));
	} else {
		result("gmemd-force", cr.outcome == GMEM_COMMITTED && cr.participants == 0 && self_prepares == 0 &&
		       named(cr.not_asked, cr.n_not_asked, ch.hi.client_id) &&
		       named(cr.not_asked, cr.n_not_asked, gmem_client_id(c)) && cr.n_revoked == 0 &&
		       rp.sig_in == SIGBUS && rp.sig_out == 0,
		       "outcome %d, %llu participants, %u prepares seen, %zu not asked (device %s, lease holder %s), "
		       "%zu revoked, the device's range gave %s (want SIGBUS), outside %s (want none)", (int)cr.outcome,
		       (unsigned long long)cr.participants, self_prepares, cr.n_not_asked,
		       named(cr.not_asked, cr.n_not_asked, ch.hi.client_id) ? "named" : "missing",
		       named(cr.not_asked, cr.n_not_asked, gmem_client_id(c)) ? "named" : "missing", cr.n_revoked,
		       signame(rp.sig_in), signame(rp.sig_out));
		gmem_convert_result_free(&cr);
	}
	reap(&ch);
	gmem_set_participant(c, NULL, NULL);
	gmem_release(c, "force");
	gmem_guest_destroy(c, "force");
}

/* ---- case: an evicted client's files are revoked (gmemctl evict on kmod) ---- */

static void evict_child(int ctl, int res, void *arg)
{
	(void)arg;
	struct gmem_client *c;
	uint8_t *p = device_start("evict", 0x55, res, &c);
	/* Not served: gmemd's shutdown event and the close that follows the eviction stay unread. What
	 * matters is the mapping, probed before and after. */
	char ch;
	while (read(ctl, &ch, 1) == 1 && ch == 'r')
		report_probes(res, p, 1);
}

static void case_evict(struct gmem_client *c)
{
	int r = gmem_guest_create(c, "evict", GUEST_SIZE, GMEM_GRANULE_4K, NULL);
	if (r < 0) {
		result("gmemd-evict-revokes", false, "create: %s (%s)", strerror(-r), gmem_last_error(c));
		return;
	}
	struct gmem_client *admin = connect_as(GMEM_ROLE_ADMIN);
	struct child ch = spawn(evict_child, NULL);
	struct report before, after;
	xwrite(ch.ctl, "r", 1);
	xread(ch.res, &before, sizeof(before));
	r = gmem_evict(admin, ch.hi.client_id);
	xwrite(ch.ctl, "r", 1);
	xread(ch.res, &after, sizeof(after));
	result("gmemd-evict-revokes", r == 0 && before.sig_in == 0 && before.sig_out == 0 && after.sig_in == SIGBUS &&
	       after.sig_out == SIGBUS,
	       "evict: %s; the evicted device's mapping before: %s/%s (want none), after: %s/%s (want SIGBUS)",
	       r < 0 ? strerror(-r) : "ok", signame(before.sig_in), signame(before.sig_out), signame(after.sig_in),
	       signame(after.sig_out));
	/* The module says why the fault was a SIGBUS: the range is shared, the file is what was revoked. */
	char pid[32];
	snprintf(pid, sizeof(pid), "pid %d", (int)ch.hi.pid);
	result("gmemd-evict-fault-logged", log_has("fault on a revoked file", "'evict'", pid) &&
	       !log_has("private-page fault", "'evict'", pid),
	       "gmemd's log should name the evicted device's fault (%s) as one on a revoked file, not a private page",
	       pid);
	reap(&ch);
	gmem_disconnect(admin);
	gmem_guest_destroy(c, "evict");
}

/* ---- case: a destroyed guest's memory reaches the next guest scrubbed ---- */

static void case_scrub(struct gmem_client *c)
{
	struct gmem_pfn_query_guest q;
	struct gmem_pfn_extent e1[4], e2[4];
	int fd, r = gmem_guest_create(c, "scrub1", 2 * MiB, GMEM_GRANULE_4K, NULL);
	if (r == 0)
		r = gmem_guest_open(c, "scrub1", &fd, NULL);
	if (r == 0)
		r = module_query(guest_id(c, "scrub1"), &q, e1, 4);
	if (r < 0 || q.count < 1) {
		result("gmemd-scrub", false, "first guest: %s", strerror(-r));
		return;
	}
	uint8_t *p = map_guest(fd, 0, 2 * MiB);
	memset(p, 0xa5, 2 * MiB);
	munmap(p, 2 * MiB);
	close(fd);
	gmem_guest_destroy(c, "scrub1");

	r = gmem_guest_create(c, "scrub2", 2 * MiB, GMEM_GRANULE_4K, NULL);
	if (r == 0)
		r = gmem_guest_open(c, "scrub2", &fd, NULL);
	if (r == 0)
		r = module_query(guest_id(c, "scrub2"), &q, e2, 4);
	if (r < 0 || q.count < 1) {
		result("gmemd-scrub", false, "second guest: %s", strerror(-r));
		return;
	}
	p = map_guest(fd, 0, 2 * MiB);
	uint64_t dirty = 0;
	for (uint64_t o = 0; o < 2 * MiB; o++)
		dirty += p[o] != 0;
	result("gmemd-scrub", e1[0].phys == e2[0].phys && dirty == 0,
	       "first guest at %#llx, second at %#llx (the test needs the same PFNs), %llu bytes not zero",
	       (unsigned long long)e1[0].phys, (unsigned long long)e2[0].phys, (unsigned long long)dirty);
	munmap(p, 2 * MiB);
	close(fd);
	gmem_guest_destroy(c, "scrub2");
}

/* ---- case: the clients' group has no access to the module's node ---- */

static void case_eacces(void)
{
	pid_t k = fork();
	if (k == 0) {
		gid_t g = 1001; /* "gmem" in the initramfs' /etc/group; uid 1000 is its member "user" */
		if (setgroups(1, &g) < 0 || setgid(1001) < 0 || setuid(1000) < 0)
			_exit(2);
		int fd = open("/dev/" GMEM_PFN_DEVICE_NAME, O_RDWR | O_CLOEXEC);
		_exit(fd < 0 && errno == EACCES ? 0 : 1);
	}
	int st = 0;
	waitpid(k, &st, 0);
	result("gmemd-node-eacces", WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "a member of the clients' group opened /dev/gmem_pfn or failed otherwise (status %#x)", st);
}

/* ---- case (two-node VM only): NUMA pools ---- */

static bool node_of(unsigned node, const struct gmem_node_info *ns, size_t n, struct gmem_node_info *out)
{
	for (size_t i = 0; i < n; i++)
		if (ns[i].node == node) {
			*out = ns[i];
			return true;
		}
	return false;
}

static void case_numa(struct gmem_client *c)
{
	struct gmem_node_info *b = NULL, *a = NULL, b0, b1, a0, a1;
	size_t nb = 0, na = 0;
	struct gmem_pfn_pool_range rg[8];
	struct gmem_pfn_query_pool qp = { .size = sizeof(qp), .entry_size = sizeof(rg[0]),
					  .ranges = (uint64_t)(uintptr_t)rg, .capacity = 8 };
	struct gmem_pfn_query_guest q;
	struct gmem_pfn_extent ext[8];
	int r = gmem_pool_nodes(c, &b, &nb);
	if (r == 0)
		r = gmem_guest_create_on_node(c, "numa1", 8 * MiB, GMEM_GRANULE_4K, 1, NULL);
	if (r == 0)
		r = gmem_pool_nodes(c, &a, &na);
	if (r < 0 || !node_of(0, b, nb, &b0) || !node_of(1, b, nb, &b1) || !node_of(0, a, na, &a0) ||
	    !node_of(1, a, na, &a1)) {
		result("gmemd-numa-status", false, "%s (%s); %zu nodes listed", strerror(-r), gmem_last_error(c), nb);
		goto out;
	}
	result("gmemd-numa-status", b0.total == 64 * MiB && b1.total == 64 * MiB && a1.free + 8 * MiB == b1.free &&
	       a0.free == b0.free,
	       "node 0: %llu free of %llu -> %llu; node 1: %llu free of %llu -> %llu", (unsigned long long)b0.free,
	       (unsigned long long)b0.total, (unsigned long long)a0.free, (unsigned long long)b1.free,
	       (unsigned long long)b1.total, (unsigned long long)a1.free);
	r = module_query(guest_id(c, "numa1"), &q, ext, 8);
	bool inside = r == 0 && q.count > 0 && ioctl(module_fd(), GMEM_PFN_IOC_QUERY_POOL, &qp) == 0;
	for (uint32_t i = 0; inside && i < q.count && i < 8; i++) {
		bool ok = false;
		for (uint32_t j = 0; j < qp.count && j < 8; j++)
			ok |= rg[j].node == 1 && ext[i].phys >= rg[j].base &&
			      ext[i].phys + ext[i].bytes <= rg[j].base + rg[j].bytes;
		inside = ok;
	}
	result("gmemd-numa-create-on-node", inside && q.node == 1,
	       "the module placed the guest outside node 1's range (node %d, first extent %#llx)", q.node,
	       (unsigned long long)(q.count ? ext[0].phys : 0));
	r = gmem_guest_create_on_node(c, "numa5", 2 * MiB, GMEM_GRANULE_4K, 5, NULL);
	result("gmemd-numa-no-such-node", r == -EINVAL, "create on node 5: %s (want EINVAL)", strerror(-r));
out:
	free(a);
	free(b);
	gmem_guest_destroy(c, "numa1");
}

/* ---- case: gmemd restarts on the kmod backend: journaled guests come back, orphans are adopted ---- */

static int launch(int argc, char **argv);

/* gmemd's state dir and the command line 30-gmemd.sh starts it with (keep the two in step). */
#define STATE_DIR "/run/gmem"
static char *gmemd_argv[] = { "gmemd-vm-test", "launch", "990", "1001", "/bin/gmemd", "--backend", "kmod", "--bus",
			      "none", "--log-level", "info", "--socket-group", "gmem", NULL };
static pid_t gmemd_pid; /* the gmemd running now: 30-gmemd.sh's ($GMEMD_VM_PID), then ours */

/* The process is gone or a zombie: it holds no file any more (its state dir lock, its socket). */
static bool dead(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *st = strrchr(buf, ')');
	return !st || st[1] != ' ' || st[2] == 'Z' || st[2] == 'X';
}

static bool kill_gmemd(void)
{
	int64_t deadline = now_ms() + (int64_t)(10000 * scale());
	if (kill(gmemd_pid, SIGKILL) < 0)
		return false;
	while (!dead(gmemd_pid) && now_ms() < deadline)
		poll(NULL, 0, 10);
	(void)waitpid(gmemd_pid, NULL, WNOHANG); /* ours after the first restart */
	return dead(gmemd_pid);
}

/* Starts gmemd the production way, its output appended to the log; waits until it answers. */
static bool start_gmemd(void)
{
	const char *log = getenv("GMEM_VM_GMEMD_LOG");
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(log ? log : "/dev/null", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(1);
		_exit(launch(13, gmemd_argv));
	}
	gmemd_pid = pid;
	int64_t deadline = now_ms() + (int64_t)(20000 * scale());
	while (now_ms() < deadline && !dead(pid)) {
		struct gmem_client *c;
		if (gmem_connect(NULL, GMEM_ROLE_VMM, &c) == 0) {
			gmem_disconnect(c);
			return true;
		}
		poll(NULL, 0, 20);
	}
	return false;
}

/* A wiped state dir: the journal and snapshot go (the lock and the socket stay). */
static void wipe_state(void)
{
	DIR *d = opendir(STATE_DIR);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strncmp(e->d_name, "journal", 7) == 0 || strncmp(e->d_name, "snapshot", 8) == 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
}

static uint8_t pattern(uint64_t off, uint8_t seed)
{
	return (uint8_t)((off / PAGE) * 7 + seed);
}

static void fill(uint8_t *p, uint64_t from, uint64_t to, uint8_t seed)
{
	for (uint64_t o = from; o < to; o += PAGE)
		p[o] = pattern(o, seed), p[o + PAGE - 1] = (uint8_t)~pattern(o, seed);
}

/* Where [from, to) first differs from the pattern (SIGBUS counts), or UINT64_MAX when it all matches. */
static uint64_t first_mismatch(uint8_t *p, uint64_t from, uint64_t to, uint8_t seed)
{
	for (uint64_t o = from; o < to; o += PAGE) {
		uint8_t a = 0, b = 0, want = pattern(o, seed), want_end = (uint8_t)~want;
		if (probe(p + o, false, 0, &a, NULL) || probe(p + o + PAGE - 1, false, 0, &b, NULL) || a != want ||
		    b != want_end)
			return o;
	}
	return UINT64_MAX;
}

/* Opens, maps and checks the pattern of a guest through a new file of this connection. */
static uint64_t check_guest(struct gmem_client *c, const char *name, uint64_t size, uint64_t from, uint64_t to,
			    uint8_t seed, int *ret_err)
{
	int fd;
	*ret_err = gmem_guest_open(c, name, &fd, NULL);
	if (*ret_err < 0)
		return 0;
	uint8_t *p = map_guest(fd, 0, size);
	uint64_t at = first_mismatch(p, from, to, seed);
	munmap(p, size);
	close(fd);
	return at;
}

static void on_back(struct gmem_client *c, const struct gmem_event *ev, void *u)
{
	(void)c;
	if (ev->type == GMEM_EVENT_RECONNECTED)
		*(bool *)u = true;
}

#define KEEP_SIZE (4 * MiB)
#define SEED_KEEP 0x31
#define SEED_OA 0x77

struct oldvmm_report {
	int32_t outcome, sig_shared, sig_private, revoked_pid;
	uint32_t n_revoked;
	bool back;
};

/*
 * The VMM of guest "keep" across two gmemd's: it holds the lease, maps the whole guest and writes the
 * pattern, converts [3M, 4M) to private, and keeps its file and mapping while gmemd is killed and
 * restarted. Back (libgmem reconnects and takes the lease again), on 'c' it converts [1M, 2M) to
 * private and reports what the audit revoked and what its own old mapping still reaches.
 */
static void oldvmm_child(int ctl, int res, void *arg)
{
	(void)arg;
	struct gmem_client *c = connect_as(GMEM_ROLE_VMM);
	struct oldvmm_report rep = { .outcome = -1 };
	struct gmem_convert_result cr;
	struct part self = { 0 };
	int fd, r;

	gmem_set_reconnect(c, 50);
	gmem_set_event_handler(c, on_back, &rep.back);
	if ((r = gmem_lease(c, "keep")) < 0 || (r = gmem_guest_open(c, "keep", &fd, NULL)) < 0)
		die("the old vmm: lease/open", r);
	uint8_t *p = map_guest(fd, 0, KEEP_SIZE);
	fill(p, 0, KEEP_SIZE, SEED_KEEP);
	gmem_set_participant(c, &part_ops, &self);
	struct gmem_range hi = { 3 * MiB, MiB };
	r = gmem_convert(c, "keep", &hi, 1, GMEM_PRIVATE, 0, &cr);
	if (r < 0 || cr.outcome != GMEM_COMMITTED)
		die("the old vmm: converting [3M, 4M) before the restart", r < 0 ? r : -EPROTO);
	gmem_convert_result_free(&cr);
	struct hello h = { gmem_client_id(c), getpid() };
	xwrite(res, &h, sizeof(h));

	if (serve(&c, NULL, ctl) != 'c')
		return;
	int64_t deadline = now_ms() + (int64_t)(20000 * scale());
	while (!rep.back && now_ms() < deadline) {
		struct pollfd pf = { .fd = gmem_get_fd(c), .events = POLLIN };
		(void)poll(&pf, 1, 50);
		(void)gmem_dispatch(c);
	}
	struct gmem_range mid = { MiB, MiB };
	if (rep.back && gmem_convert(c, "keep", &mid, 1, GMEM_PRIVATE, 0, &cr) == 0) {
		rep.outcome = (int32_t)cr.outcome;
		rep.n_revoked = (uint32_t)cr.n_revoked;
		rep.revoked_pid = cr.n_revoked ? (int32_t)cr.revoked[0].pid : 0;
		gmem_convert_result_free(&cr);
	}
	rep.sig_shared = probe(p, false, 0, NULL, NULL);
	rep.sig_private = probe(p + MiB, false, 0, NULL, NULL);
	xwrite(res, &rep, sizeof(rep));
	serve(&c, NULL, ctl);
}

/* A holder of "keep" from before the restart that never comes back: it keeps its file mapped. */
static void stranger_child(int ctl, int res, void *arg)
{
	(void)arg;
	struct gmem_client *c = connect_as(GMEM_ROLE_DEVICE);
	int fd, r = gmem_guest_open(c, "keep", &fd, NULL);
	if (r < 0)
		die("the stranger: open", r);
	uint8_t *p = map_guest(fd, 0, KEEP_SIZE);
	uint8_t v = 0;
	(void)probe(p, false, 0, &v, NULL);
	(void)probe(p + MiB, false, 0, &v, NULL);
	struct hello h = { gmem_client_id(c), getpid() };
	xwrite(res, &h, sizeof(h));
	gmem_disconnect(c); /* its file and mapping stay: a process that does not speak to gmemd any more */
	char go;
	xread(ctl, &go, 1);
	int32_t sig = probe(p, false, 0, NULL, NULL);
	xwrite(res, &sig, sizeof(sig));
	xread(ctl, &go, 1);
}

static bool listed(struct gmem_guest_info *gs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(gs[i].name, name) == 0)
			return true;
	return false;
}

static const struct gmem_orphan_info *orphan_of(const struct gmem_orphan_info *os, size_t n, uint64_t cookie)
{
	for (size_t i = 0; i < n; i++)
		if (os[i].cookie == cookie)
			return &os[i];
	return NULL;
}

static bool private_runs(struct gmem_client *c, const char *name, const uint64_t (*want)[2], size_t n_want)
{
	struct gmem_run *rs;
	size_t n, k = 0;
	if (gmem_map(c, name, &rs, &n, NULL, NULL) < 0)
		return false;
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		if (rs[i].state != GMEM_PRIVATE)
			continue;
		ok &= k < n_want && rs[i].offset == want[k][0] && rs[i].length == want[k][1];
		k++;
	}
	free(rs);
	return ok && k == n_want;
}

static void case_restart(void)
{
	const char *pid_env = getenv("GMEMD_VM_PID");
	struct gmem_guest_info *gs = NULL;
	struct gmem_orphan_info *os = NULL;
	size_t n = 0;
	int err, r;

	if (!pid_env) {
		result("gmemd-restart", false, "$GMEMD_VM_PID (the running gmemd) is not set");
		return;
	}
	gmemd_pid = (pid_t)atoi(pid_env);

	/* ---- the first gmemd: guests with patterns, a private range, holders that outlive it ---- */
	struct gmem_client *c = connect_as(GMEM_ROLE_ADMIN);
	struct gmem_guest_info keep, gone, oa, ob;
	r = gmem_guest_create(c, "keep", KEEP_SIZE, GMEM_GRANULE_4K, &keep);
	if (r == 0)
		r = gmem_guest_create(c, "gone", 2 * MiB, GMEM_GRANULE_4K, &gone);
	if (r == 0)
		r = gmem_guest_create(c, "oa", 6 * MiB, GMEM_GRANULE_2M, &oa);
	if (r == 0)
		r = gmem_guest_create(c, "ob", 8 * MiB, GMEM_GRANULE_4K, &ob);
	if (r < 0) {
		result("gmemd-restart", false, "create: %s (%s)", strerror(-r), gmem_last_error(c));
		return;
	}
	int fd;
	if ((r = gmem_guest_open(c, "oa", &fd, NULL)) < 0)
		die("open oa", r);
	uint8_t *p = map_guest(fd, 0, 6 * MiB);
	fill(p, 0, 6 * MiB, SEED_OA);
	munmap(p, 6 * MiB);
	close(fd);
	struct child vmm = spawn(oldvmm_child, NULL);
	struct child stranger = spawn(stranger_child, NULL);
	gmem_disconnect(c);

	/* ---- killed; meanwhile the module loses "gone"; the second gmemd replays the journal ---- */
	if (!kill_gmemd()) {
		result("gmemd-restart", false, "gmemd %d did not die of SIGKILL", (int)gmemd_pid);
		goto out_children;
	}
	struct gmem_pfn_query_guest q;
	r = module_query(gone.id, &q, NULL, 0);
	struct gmem_pfn_guest_ref ref = { .size = sizeof(ref), .guest_id = q.guest_id };
	if (r < 0 || ioctl(module_fd(), GMEM_PFN_IOC_DESTROY_GUEST, &ref) < 0)
		die("destroying the module guest of 'gone'", r < 0 ? r : -errno);
	if (!start_gmemd()) {
		result("gmemd-restart", false, "the restarted gmemd did not answer");
		goto out_children;
	}
	c = connect_as(GMEM_ROLE_ADMIN);
	r = gmem_guest_list(c, &gs, &n);
	result("gmemd-restart-listed", r == 0 && listed(gs, n, "keep") && listed(gs, n, "oa") && listed(gs, n, "ob"),
	       "after a SIGKILL and a restart: list %s, keep %s, oa %s, ob %s", strerror(-r),
	       r == 0 && listed(gs, n, "keep") ? "listed" : "missing", r == 0 && listed(gs, n, "oa") ? "listed" : "missing",
	       r == 0 && listed(gs, n, "ob") ? "listed" : "missing");
	/* The control: the module lost "gone", so it is lost — never listed, never recreated empty. */
	bool gone_listed = r == 0 && listed(gs, n, "gone");
	free(gs);
	gs = NULL;
	r = gmem_guest_list_lost(c, &gs, &n);
	result("gmemd-restart-gone-is-lost", r == 0 && !gone_listed && listed(gs, n, "gone"),
	       "the guest the module no longer holds is %s", gone_listed ? "listed as a guest" : "not lost");
	free(gs);
	gs = NULL;
	/* Its memory intact, through a new file: written by the old vmm, read by a new holder. */
	uint64_t at = check_guest(c, "keep", KEEP_SIZE, 0, 3 * MiB, SEED_KEEP, &err);
	result("gmemd-restart-pattern", err == 0 && at == UINT64_MAX, "open: %s; the pattern differs at %#llx",
	       strerror(-err), (unsigned long long)at);
	/* The control: memory recreated empty (a fresh guest of the same size) fails that same check. */
	r = gmem_guest_create(c, "fresh", KEEP_SIZE, GMEM_GRANULE_4K, NULL);
	at = r == 0 ? check_guest(c, "fresh", KEEP_SIZE, 0, 3 * MiB, SEED_KEEP, &err) : 0;
	result("gmemd-restart-pattern-control", r == 0 && err == 0 && at == 0,
	       "a fresh guest passed the pattern check (create %d, first mismatch %#llx)", r, (unsigned long long)at);
	gmem_guest_destroy(c, "fresh");
	const uint64_t hi_only[][2] = { { 3 * MiB, MiB } };
	result("gmemd-restart-map", private_runs(c, "keep", hi_only, 1),
	       "keep's map after the restart is not [3M, 4M) private");

	/* The old vmm, back with its old file, converts: the audit revokes the stranger's old file (it
	 * still maps the range, and no client of this gmemd owns it), not the vmm's own. */
	xwrite(vmm.ctl, "c", 1);
	struct oldvmm_report rep = { 0 };
	xread(vmm.res, &rep, sizeof(rep));
	xwrite(stranger.ctl, "t", 1);
	int32_t sig_stranger = -1;
	xread(stranger.res, &sig_stranger, sizeof(sig_stranger));
	result("gmemd-restart-vmm-back", rep.back && rep.outcome == GMEM_COMMITTED,
	       "the old vmm reconnected %s, conversion outcome %d", rep.back ? "yes" : "no", rep.outcome);
	result("gmemd-restart-old-holder-revoked", rep.n_revoked == 1 && rep.revoked_pid == stranger.hi.pid &&
	       sig_stranger == SIGBUS,
	       "revoked %u (first pid %d, want the stranger %d); the stranger's shared page gave %s (want SIGBUS)",
	       rep.n_revoked, rep.revoked_pid, (int)stranger.hi.pid, signame(sig_stranger));
	result("gmemd-restart-lease-file-kept", rep.sig_shared == 0 && rep.sig_private == SIGBUS,
	       "the old vmm's own old mapping: shared page %s, private page %s", signame(rep.sig_shared),
	       signame(rep.sig_private));
	gmem_disconnect(c);

	/* ---- the state dir wiped: the third gmemd knows nothing; the module's guests are orphans ---- */
	reap(&vmm);
	reap(&stranger);
	if (!kill_gmemd()) {
		result("gmemd-orphans", false, "gmemd did not die of SIGKILL");
		return;
	}
	wipe_state();
	if (!start_gmemd()) {
		result("gmemd-orphans", false, "gmemd did not start on a wiped state dir");
		return;
	}
	c = connect_as(GMEM_ROLE_ADMIN);
	r = gmem_guest_list(c, &gs, &n);
	result("gmemd-orphans-not-guests", r == 0 && n == 0, "%zu guests after the wipe (%s)", n, strerror(-r));
	free(gs);
	gs = NULL;
	r = gmem_orphan_list(c, &os, &n);
	const struct gmem_orphan_info *ok_ = r == 0 ? orphan_of(os, n, keep.id) : NULL;
	const struct gmem_orphan_info *oa_ = r == 0 ? orphan_of(os, n, oa.id) : NULL;
	const struct gmem_orphan_info *ob_ = r == 0 ? orphan_of(os, n, ob.id) : NULL;
	char seen[256] = "";
	for (size_t i = 0, o = 0; r == 0 && i < n && o < sizeof(seen); i++)
		o += (size_t)snprintf(seen + o, sizeof(seen) - o, " [id %llu cookie %llu %llu bytes]",
				      (unsigned long long)os[i].id, (unsigned long long)os[i].cookie,
				      (unsigned long long)os[i].size);
	result("gmemd-orphans-listed", ok_ && oa_ && ob_ && ok_->size == KEEP_SIZE && ok_->private_bytes == 2 * MiB &&
	       oa_->size == 6 * MiB && oa_->granule == GMEM_GRANULE_2M && ob_->size == 8 * MiB && n == 3,
	       "%s; %zu orphans:%s (want keep %llu, oa %llu, ob %llu)", strerror(-r), n, seen,
	       (unsigned long long)keep.id, (unsigned long long)oa.id, (unsigned long long)ob.id);
	struct gmem_client *v = connect_as(GMEM_ROLE_VMM);
	struct gmem_orphan_info *vs = NULL;
	size_t vn;
	int rl = gmem_orphan_list(v, &vs, &vn);
	int ra = oa_ ? gmem_orphan_adopt(v, oa_->id, "stolen", 0, NULL) : 0;
	int rd = ob_ ? gmem_orphan_destroy(v, ob_->id) : 0;
	result("gmemd-orphans-admin-only", rl == -EPERM && ra == -EPERM && rd == -EPERM,
	       "role vmm: list %s, adopt %s, destroy %s (want EPERM each)", strerror(-rl), strerror(-ra), strerror(-rd));
	free(vs);
	gmem_disconnect(v);
	if (!ok_ || !oa_ || !ob_)
		goto out;

	/* Adopted: the pattern back through a new file, the map as the module keeps it. */
	uint64_t oa_id = oa_->id, ob_id = ob_->id, keep_id = ok_->id;
	r = gmem_orphan_adopt(c, oa_id, "oa-back", 0, NULL);
	at = r == 0 ? check_guest(c, "oa-back", 6 * MiB, 0, 6 * MiB, SEED_OA, &err) : 0;
	result("gmemd-orphans-adopt-pattern", r == 0 && err == 0 && at == UINT64_MAX,
	       "adopt %s (%s); open %s; the pattern differs at %#llx", strerror(-r), gmem_last_error(c),
	       strerror(-err), (unsigned long long)at);
	r = gmem_orphan_adopt(c, keep_id, "keep-back", 0, NULL);
	const uint64_t both[][2] = { { MiB, MiB }, { 3 * MiB, MiB } };
	result("gmemd-orphans-adopt-map", r == 0 && private_runs(c, "keep-back", both, 2),
	       "adopt %s; keep-back's map is not [1M, 2M) and [3M, 4M) private", strerror(-r));
	r = gmem_orphan_adopt(c, keep_id, "twice", 0, NULL);
	result("gmemd-orphans-adopt-once", r == -EBUSY, "adopting a guest's module guest again: %s (want EBUSY)",
	       strerror(-r));

	/* Destroyed: its bytes go back to the pool. */
	struct gmem_status st0 = { 0 }, st1 = { 0 };
	int r0 = gmem_status(c, &st0);
	r = gmem_orphan_destroy(c, ob_id);
	int r1 = gmem_status(c, &st1);
	result("gmemd-orphans-destroy", r == 0 && r0 == 0 && r1 == 0 && st0.pool_used == st1.pool_used + 8 * MiB,
	       "destroy %s (%s); pool used %llu -> %llu (want 8 MiB less)", strerror(-r), gmem_last_error(c),
	       (unsigned long long)st0.pool_used, (unsigned long long)st1.pool_used);
	r = gmem_orphan_destroy(c, oa_id);
	result("gmemd-orphans-destroy-guest-refused", r == -EBUSY, "destroy-orphan of adopted oa-back: %s (want EBUSY)",
	       strerror(-r));
	gmem_disconnect(c);

	/* Journaled: one more restart brings the adopted guests back as guests. */
	if (!kill_gmemd() || !start_gmemd()) {
		result("gmemd-orphans-adopt-journaled", false, "gmemd did not restart");
		return;
	}
	c = connect_as(GMEM_ROLE_ADMIN);
	r = gmem_guest_list(c, &gs, &n);
	result("gmemd-orphans-adopt-journaled", r == 0 && listed(gs, n, "oa-back") && listed(gs, n, "keep-back"),
	       "after a restart the adopted guests are not listed (%s)", strerror(-r));
	free(gs);
	gs = NULL;
	at = check_guest(c, "oa-back", 6 * MiB, 0, 6 * MiB, SEED_OA, &err);
	result("gmemd-orphans-adopt-journaled-pattern", err == 0 && at == UINT64_MAX,
	       "open %s; the pattern differs at %#llx", strerror(-err), (unsigned long long)at);
	gmem_guest_destroy(c, "oa-back");
	gmem_guest_destroy(c, "keep-back");
out:
	free(os);
	gmem_disconnect(c);
	/* Ours to stop: 30-gmemd.sh's gmemd was the first one. */
	kill(gmemd_pid, SIGTERM);
	waitpid(gmemd_pid, NULL, 0);
	return;
out_children:
	reap(&vmm);
	reap(&stranger);
}

/* ---- launcher: gmemd as a plain user with CAP_NET_ADMIN as its one capability ---- */

static int launch(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: gmemd-vm-test launch UID GID PROGRAM [ARG...]\n");
		return 2;
	}
	uid_t uid = (uid_t)atoi(argv[2]);
	gid_t gid = (gid_t)atoi(argv[3]);
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };
	const uint32_t bit = 1U << CAP_NET_ADMIN; /* < 32: in d[0] */

	if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		perror("launch: dropping root");
		return 1;
	}
	d[0].permitted = d[0].effective = d[0].inheritable = bit;
	if (syscall(SYS_capset, &h, d) < 0 || prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0) {
		perror("launch: keeping CAP_NET_ADMIN");
		return 1;
	}
	execv(argv[4], argv + 4);
	perror("launch: exec");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "launch") == 0)
		return launch(argc, argv);
	setvbuf(stdout, NULL, _IONBF, 0);
	/* reap() writes a byte a child that already read its last command may never read: a write to a
	 * pipe without a reader must fail, not kill the test silently mid-run (it did, after "share"). */
	signal(SIGPIPE, SIG_IGN);
	struct gmem_client *c = connect_as(GMEM_ROLE_VMM);
	bool all = argc < 2;
	for (int i = 1; all || i < argc; i++) {
		const char *n = all ? NULL : argv[i];
#define RUN(name, call) if (all || strcmp(n, name) == 0) call
		RUN("share", case_share(c));
		RUN("sigbus", case_sigbus(c));
		RUN("audit", case_audit(c));
		RUN("force", case_force(c));
		RUN("evict", case_evict(c));
		RUN("scrub", case_scrub(c));
		RUN("eacces", case_eacces());
		if (!all && strcmp(n, "numa") == 0) /* needs the two-node VM: never part of "all" */
			case_numa(c);
		/* Kills and restarts gmemd (it leaves its own running until it stops it): last, and only by
		 * name (30-gmemd.sh runs it after the others). */
		if (!all && strcmp(n, "restart") == 0)
			case_restart();
		if (all)
			break;
	}
	gmem_disconnect(c);
	return failures ? 1 : 0;
}
