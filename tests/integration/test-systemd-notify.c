/* SPDX-License-Identifier: MIT */
/*
 * gmemd under a service manager, without PID 1: this test plays systemd's part. It binds gmemd's
 * listening socket itself and passes it as fd 3 with $LISTEN_FDS/$LISTEN_PID (socket activation), binds
 * the datagram socket named by $NOTIFY_SOCKET and reads what gmemd says on it, and sets $WATCHDOG_USEC.
 *
 *   - A client that connected (and sent its hello) before gmemd was even started is answered: the socket
 *     was systemd's all along. gmemd binds nothing of its own, and leaves the socket file in place when
 *     it stops (it is the socket unit's).
 *   - READY=1, then STATUS= with the counts of guests, clients and conversions in flight; a conversion
 *     held in flight (its participant has not voted) shows as 1, and 0 again once it ended.
 *   - STATUS= is rate-limited: a storm of conversions sends at most one per second (plus the first),
 *     and the last one says how things ended.
 *   - WATCHDOG=1 pings arrive when $WATCHDOG_USEC is set, never more often than half of it; none when
 *     it is not set. STOPPING=1 at SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gmem/gmem.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)
#define STORM 300
#define NOTIFY_INTERVAL_MS 1000 /* gmemd's NOTIFY_STATUS_INTERVAL_US */
#define WATCHDOG_US 400000 /* gmemd pings every 200 ms */

static char dir[64];

/* ---- the notify socket ---- */

struct notes {
	int fd;
	char path[128];
	size_t n;
	char text[8192][96]; /* each datagram, truncated: STATUS lines are shorter */
	int64_t at_ms[8192];
};

static struct notes notes;

static void notes_open(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(notes.path, sizeof(notes.path), "%s/notify", dir);
	notes.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(notes.fd >= 0);
	memcpy(sa.sun_path, notes.path, strlen(notes.path) + 1);
	CHECK(bind(notes.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
}

/* Reads every datagram that arrives until the deadline, or only what waits when deadline is 0. */
static void notes_read(int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - harness_now_ms();
		struct pollfd p = { .fd = notes.fd, .events = POLLIN };
		if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
			return;
		char buf[512];
		ssize_t k = recv(notes.fd, buf, sizeof(buf) - 1, 0);
		CHECK(k >= 0);
		buf[k] = '\0';
		CHECK(notes.n < sizeof(notes.at_ms) / sizeof(notes.at_ms[0]));
		buf[sizeof(notes.text[0]) - 1] = '\0'; /* truncated on purpose */
		memcpy(notes.text[notes.n], buf, sizeof(notes.text[0]));
		notes.at_ms[notes.n++] = harness_now_ms();
	}
}

/* Waits (deadline-bounded) for a datagram from index `from` on that contains what; returns its index. */
static size_t notes_wait(size_t from, const char *what, int64_t timeout_ms)
{
	int64_t deadline = harness_deadline(timeout_ms);
	for (;;) {
		for (size_t i = from; i < notes.n; i++)
			if (strstr(notes.text[i], what))
				return i;
		from = notes.n;
		if (harness_now_ms() >= deadline) {
			fprintf(stderr, "no '%s' on the notify socket; it said:\n", what);
			for (size_t i = 0; i < notes.n; i++)
				fprintf(stderr, "  %s\n", notes.text[i]);
			exit(1);
		}
		struct pollfd p = { .fd = notes.fd, .events = POLLIN };
		int64_t left = deadline - harness_now_ms();
		if (poll(&p, 1, left > 0 ? (int)left : 0) > 0)
			notes_read(0);
	}
}

static size_t notes_count(size_t from, size_t to, const char *what)
{
	size_t n = 0;
	for (size_t i = from; i < to; i++)
		n += strstr(notes.text[i], what) != NULL;
	return n;
}

/* The last STATUS= said so far. */
static const char *last_status(void)
{
	for (size_t i = notes.n; i-- > 0;)
		if (strncmp(notes.text[i], "STATUS=", 7) == 0)
			return notes.text[i];
	return "";
}

/* ---- gmemd, started as systemd would ---- */

struct daemon {
	pid_t pid;
	char socket[128]; /* what --socket names */
	char log[128];
};

/* listen_fd >= 0: passed as fd 3 (socket activation). watchdog_us 0: no watchdog asked for. */
static void spawn(struct daemon *d, const char *tag, int listen_fd, unsigned watchdog_us)
{
	char state[128];
	snprintf(d->socket, sizeof(d->socket), "%s/%s.sock", dir, tag);
	snprintf(d->log, sizeof(d->log), "%s/%s.log", dir, tag);
	snprintf(state, sizeof(state), "%s/%s-state", dir, tag);
	fflush(NULL);
	d->pid = fork();
	CHECK(d->pid >= 0);
	if (d->pid > 0)
		return;

	char wbuf[1024], num[32];
	const char *argv[40];
	size_t n = 0;
	const char *w = getenv("GMEM_TEST_WRAPPER");
	if (w && *w) {
		snprintf(wbuf, sizeof(wbuf), "%s", w);
		for (char *save = NULL, *tok = strtok_r(wbuf, " ", &save); tok && n < 16; tok = strtok_r(NULL, " ", &save))
			argv[n++] = tok;
	}
	argv[n++] = binary("GMEMD");
	const char *rest[] = { "--backend", "memfd", "--socket", d->socket, "--state-dir", state, "--bus", "none",
			       "--pool-size", "256M", "--log-level", "info",
			       /* a conversion the test holds in flight must outlast a STATUS interval */
			       "--prepare-timeout", "20000", NULL };
	for (size_t i = 0; rest[i]; i++)
		argv[n++] = rest[i];
	argv[n] = NULL;

	int lfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (lfd >= 0)
		dup2(lfd, STDERR_FILENO);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (listen_fd >= 0) {
		/* What systemd does: the sockets from fd 3 on, not close-on-exec, named for this pid. */
		if (listen_fd != 3 && dup2(listen_fd, 3) < 0)
			_exit(126);
		fcntl(3, F_SETFD, 0);
		snprintf(num, sizeof(num), "%d", getpid());
		setenv("LISTEN_PID", num, 1);
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_FDNAMES", "gmemd.socket", 1);
	}
	if (watchdog_us) {
		snprintf(num, sizeof(num), "%u", watchdog_us);
		setenv("WATCHDOG_USEC", num, 1);
		snprintf(num, sizeof(num), "%d", getpid());
		setenv("WATCHDOG_PID", num, 1);
	}
	setenv("NOTIFY_SOCKET", notes.path, 1);
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

static int stop(struct daemon *d)
{
	int st;
	CHECK(kill(d->pid, SIGTERM) == 0);
	CHECK(waitpid(d->pid, &st, 0) == d->pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "gmemd exited with status 0x%x; its log:\n", st);
		char *out, *err;
		run_capture((const char *[]){ "cat", d->log, NULL }, &out, &err);
		fputs(out, stderr);
		free(out);
		free(err);
		return 1;
	}
	return 0;
}

/* ---- a lease holder that votes when told ---- */

static struct {
	bool hold;        /* do not vote at prepare: the test votes later */
	bool prepared;
	uint64_t epoch, seq;
	int ended;        /* async conversions answered */
} vmm;

static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	vmm.prepared = true;
	vmm.epoch = cv->epoch;
	vmm.seq = cv->seq;
	if (!vmm.hold)
		CHECK_EQ(gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL), 0);
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	CHECK_EQ(gmem_ack(c, cv->epoch, cv->seq), 0);
}

static const struct gmem_participant_ops vmm_ops = { .prepare = on_prepare, .commit = on_commit };

static void on_converted(struct gmem_client *c, int err, const struct gmem_convert_result *r, void *ud)
{
	(void)c;
	(void)ud;
	CHECK_EQ(err, 0);
	CHECK_EQ(r->outcome, GMEM_COMMITTED);
	vmm.ended++;
}

/* Delivers c's events until *flag (deadline-bounded). */
static void pump(struct gmem_client *c, const bool *flag, const int *count, int want)
{
	int64_t deadline = harness_deadline(10000);
	while (flag ? !*flag : *count < want) {
		CHECK(harness_now_ms() < deadline);
		struct pollfd p = { .fd = gmem_get_fd(c), .events = POLLIN };
		if (poll(&p, 1, 50) > 0)
			CHECK(gmem_dispatch(c) >= 0);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void test_activated(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct daemon d;
	char path[128], own[160];
	size_t from;

	/* systemd's socket: bound and listening before gmemd exists. */
	snprintf(path, sizeof(path), "%s/from-systemd.sock", dir);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(lfd >= 0);
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(lfd, 16) == 0);

	/* A client early: it connects into the backlog and says hello before gmemd runs. */
	int early = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(early >= 0);
	CHECK(connect(early, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	static const char hello[] = "{\"id\":7,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"vmm\"}}";
	CHECK(send(early, hello, strlen(hello), 0) == (ssize_t)strlen(hello));

	spawn(&d, "activated", lfd, 0);
	close(lfd);
	size_t ready = notes_wait(0, "READY=1", 10000);
	notes_wait(ready, "STATUS=0 guests, 0 clients, 0 conversions in flight", 10000);

	struct pollfd p = { .fd = early, .events = POLLIN };
	CHECK(poll(&p, 1, (int)(10000 * harness_scale())) == 1);
	char buf[4096];
	ssize_t k = recv(early, buf, sizeof(buf) - 1, 0);
	CHECK(k > 0);
	buf[k] = '\0';
	CHECK(strstr(buf, "\"id\":7") && strstr(buf, "\"result\""));
	printf("ok socket activation: a client that connected before gmemd started is answered\n");

	struct stat st;
	snprintf(own, sizeof(own), "%s", d.socket);
	CHECK(stat(own, &st) < 0 && errno == ENOENT);
	printf("ok gmemd bound no socket of its own\n");

	/* Counts: guests, clients (the early one and this one). */
	struct gmem_client *c;
	CHECK_EQ(gmem_connect(path, GMEM_ROLE_VMM, &c), 0);
	CHECK_EQ(gmem_guest_create(c, "notify-a", 4 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_create(c, "notify-b", 4 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_create(c, "notify-c", 4 * MiB, 0, NULL), 0);
	from = notes_wait(ready, "STATUS=3 guests, 2 clients, 0 conversions in flight", 10000);
	printf("ok STATUS= counts guests and clients: %s\n", notes.text[from]);

	/* A conversion held in flight: its only participant (this client, the lease holder) has not voted. */
	gmem_set_participant(c, &vmm_ops, NULL);
	CHECK_EQ(gmem_lease(c, "notify-a"), 0);
	vmm.hold = true;
	struct gmem_range r = { 0, MiB };
	CHECK_EQ(gmem_convert_async(c, "notify-a", &r, 1, GMEM_PRIVATE, 0, on_converted, NULL), 0);
	pump(c, &vmm.prepared, NULL, 0);
	from = notes_wait(from, "STATUS=3 guests, 2 clients, 1 conversions in flight", 10000);
	CHECK_EQ(gmem_vote(c, vmm.epoch, vmm.seq, true, 0, NULL), 0);
	pump(c, NULL, &vmm.ended, 1);
	from = notes_wait(from, "STATUS=3 guests, 2 clients, 0 conversions in flight", 10000);
	printf("ok a conversion in flight shows in STATUS=, and goes when it ends\n");

	/* The storm: every conversion is in flight for a round trip; STATUS= keeps to one a second. */
	vmm.hold = false;
	notes_read(0);
	size_t storm_from = notes.n;
	int64_t t0 = harness_now_ms();
	int i;
	/* At least STORM, and for at least two STATUS intervals, so the limit has something to limit. */
	for (i = 0; i < STORM || harness_now_ms() - t0 < 2 * NOTIFY_INTERVAL_MS; i++) {
		struct gmem_convert_result res;
		CHECK_EQ(gmem_convert(c, "notify-a", &r, 1, i % 2 ? GMEM_PRIVATE : GMEM_SHARED, 0, &res), 0);
		CHECK_EQ(res.outcome, GMEM_COMMITTED);
		gmem_convert_result_free(&res);
	}
	double secs = (double)(harness_now_ms() - t0) / 1000.0;
	/* Settled: whatever was held back goes out at most a second after the storm. */
	notes_read(harness_deadline(1500));
	size_t sent = notes_count(storm_from, notes.n, "STATUS=");
	/* One at the start, one per whole interval, one at the end. */
	unsigned max = (unsigned)(secs * 1000 / NOTIFY_INTERVAL_MS) + 3;
	printf("# %d conversions in %.3f s: %zu STATUS= messages (at most %u)\n", i, secs, sent, max);
	CHECK(sent <= max);
	CHECK(strcmp(last_status(), "STATUS=3 guests, 2 clients, 0 conversions in flight") == 0);
	printf("ok STATUS= is rate-limited through a storm of %d conversions and ends right\n", i);

	gmem_disconnect(c);
	close(early);
	notes_wait(from, "STATUS=3 guests, 0 clients, 0 conversions in flight", 10000);
	size_t before_stop = notes.n;
	CHECK_EQ(stop(&d), 0);
	notes_wait(before_stop, "STOPPING=1", 5000);
	CHECK(notes_count(0, notes.n, "WATCHDOG=1") == 0);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	printf("ok STOPPING=1 at SIGTERM; no WATCHDOG=1 without $WATCHDOG_USEC; the unit's socket file stays\n");
	CHECK(unlink(path) == 0);
}

static void test_watchdog(void)
{
	struct daemon d;
	notes_read(0);
	size_t from = notes.n;
	int64_t t0 = harness_now_ms();
	spawn(&d, "watchdog", -1, WATCHDOG_US);
	size_t i = notes_wait(from, "READY=1", 10000);
	for (int k = 0; k < 4; k++)
		i = notes_wait(i + 1, "WATCHDOG=1", 10000);
	CHECK_EQ(stop(&d), 0);
	notes_read(0);
	double secs = (double)(harness_now_ms() - t0) / 1000.0;
	size_t pings = notes_count(from, notes.n, "WATCHDOG=1");
	/* Never faster than one per half of WATCHDOG_USEC. */
	size_t max = (size_t)(secs * 1e6 / (WATCHDOG_US / 2)) + 1;
	printf("# %zu WATCHDOG=1 pings in %.3f s with WATCHDOG_USEC=%u (at most %zu)\n", pings, secs, WATCHDOG_US, max);
	CHECK(pings >= 4 && pings <= max);
	printf("ok WATCHDOG=1 every half of $WATCHDOG_USEC\n");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/gmem-notify-XXXXXX");
	CHECK(mkdtemp(dir));
	notes_open();
	test_activated();
	test_watchdog();
	close(notes.fd);
	CHECK(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
	return 0;
}
