/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus interface against private dbus-daemons started here (session-type buses whose policy lets
 * every uid connect). busctl reads the properties and calls the methods, as an operator would; the
 * test's own sd-bus connection receives the signals (deterministic: no monitor to parse) and checks
 * the error name for a missing guest. A child dropped to another uid sees only what it may. A
 * participant that votes no makes ConversionFailed go out; 1,000 conversions of one guest give at most
 * one ConversionSummary per second. gmemd starts and serves without a bus, connects when the bus
 * appears, survives the bus going away, and --bus none stays off the bus. Last, a system-type bus with
 * the default system policy plus contrib/dbus shows the policy file lets root own the name and anyone
 * read and call.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)
#define UID_A 65534 /* nobody: dbus-daemon refuses a uid with no passwd entry */
#define GID_X 20000
#define NAME "org.gmem.Manager1"
#define PATH "/org/gmem/Manager1"
#define IFACE "org.gmem.Manager1"

#define G_ROOT "dbus-root"       /* root's, seen by nobody else */
#define G_UID "dbus-shared-uid"  /* granted to uid UID_A */
#define G_GID "dbus-shared-gid"  /* granted to gid GID_X */
#define G_STORM "dbus-storm"
#define STORM 1000

struct bus_daemon {
	pid_t pid;
	char sock[300];
	char address[400];
};

static char dir[64];
static struct gmemd d;
/* Globals, not locals: a forked child inherits them, and memcheck in the child must find them reachable. */
static struct gmem_client *root;
static sd_bus *watch;

/* ---- the private bus ---- */

/* A session-type bus every uid may use; or, with policy_dir, a system-type bus with the default system
 * policy (as /usr/share/dbus-1/system.conf has it) plus the project's policy files. */
static void write_config(const char *path, const char *sock, const char *policy_dir)
{
	FILE *f = fopen(path, "w");
	CHECK(f);
	fprintf(f,
		"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig>\n"
		"  <type>%s</type>\n"
		"  <listen>unix:path=%s</listen>\n"
		"  <auth>EXTERNAL</auth>\n",
		policy_dir ? "system" : "session", sock);
	if (!policy_dir)
		fprintf(f, "  <policy context=\"default\">\n"
			   "    <allow user=\"*\"/>\n"
			   "    <allow own=\"*\"/>\n"
			   "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
			   "    <allow eavesdrop=\"true\"/>\n"
			   "  </policy>\n");
	else
		fprintf(f, "  <policy context=\"default\">\n"
			   "    <allow user=\"*\"/>\n"
			   "    <deny own=\"*\"/>\n"
			   "    <deny send_type=\"method_call\"/>\n"
			   "    <allow send_type=\"signal\"/>\n"
			   "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
			   "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
			   "    <allow receive_type=\"method_call\"/>\n"
			   "    <allow receive_type=\"method_return\"/>\n"
			   "    <allow receive_type=\"error\"/>\n"
			   "    <allow receive_type=\"signal\"/>\n"
			   "    <allow send_destination=\"org.freedesktop.DBus\"\n"
			   "           send_interface=\"org.freedesktop.DBus\"/>\n"
			   "  </policy>\n"
			   "  <includedir>%s</includedir>\n",
			policy_dir);
	fprintf(f, "</busconfig>\n");
	CHECK(fclose(f) == 0);
}

static void bus_start(struct bus_daemon *b, const char *tag, const char *policy_dir)
{
	char conf[300];
	int p[2];

	snprintf(b->sock, sizeof(b->sock), "%s/%s.sock", dir, tag);
	snprintf(b->address, sizeof(b->address), "unix:path=%s", b->sock);
	snprintf(conf, sizeof(conf), "%s/%s.conf", dir, tag);
	write_config(conf, b->sock, policy_dir);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	fflush(NULL);
	b->pid = fork();
	CHECK(b->pid >= 0);
	if (b->pid == 0) {
		char cfg_arg[320], fd_arg[32], log[320];
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(log, sizeof(log), "%s/%s.log", dir, tag);
		int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (lfd >= 0)
			dup2(lfd, STDERR_FILENO); /* its complaints (an fd limit it may not raise) stay out of ours */
		fcntl(p[1], F_SETFD, 0); /* the one fd dbus-daemon must inherit */
		snprintf(cfg_arg, sizeof(cfg_arg), "--config-file=%s", conf);
		snprintf(fd_arg, sizeof(fd_arg), "--print-address=%d", p[1]);
		execlp("dbus-daemon", "dbus-daemon", cfg_arg, "--nofork", "--nopidfile", fd_arg, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char line[400];
	/* It prints its address once it listens. */
	if (!msg_recv(p[0], line, sizeof(line), 10000)) {
		fprintf(stderr, "dbus-daemon did not start\n");
		exit(1);
	}
	close(p[0]);
	CHECK(strncmp(line, "unix:path=", 10) == 0);
	chmod(b->sock, 0777); /* the child of another uid connects too */
}

static void bus_stop(struct bus_daemon *b)
{
	int st;
	CHECK(kill(b->pid, SIGTERM) == 0);
	CHECK(waitpid(b->pid, &st, 0) == b->pid);
	b->pid = 0;
}

static sd_bus *bus_connect(const char *address)
{
	sd_bus *bus;
	CHECK(sd_bus_new(&bus) >= 0);
	CHECK(sd_bus_set_address(bus, address) >= 0);
	CHECK(sd_bus_set_bus_client(bus, 1) >= 0);
	CHECK(sd_bus_start(bus) >= 0);
	return bus;
}

static bool name_owned(sd_bus *bus)
{
	sd_bus_message *reply = NULL;
	int has = 0;
	int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
				   "NameHasOwner", NULL, &reply, "s", NAME);
	CHECK(r >= 0);
	CHECK(sd_bus_message_read(reply, "b", &has) >= 0);
	sd_bus_message_unref(reply);
	return has;
}

static bool cond_owned(void *arg)
{
	return name_owned(arg);
}

/* busctl --address=... ARGS: its exit status; its stdout in *out (caller frees). */
static int busctl(const struct bus_daemon *b, char **out, const char *const *args)
{
	char addr_arg[420];
	const char *argv[16] = { "busctl" };
	size_t n = 1;
	char *err;
	snprintf(addr_arg, sizeof(addr_arg), "--address=%s", b->address);
	argv[n++] = addr_arg;
	for (size_t i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int st = run_capture(argv, out, &err);
	if (st != 0)
		fprintf(stderr, "busctl %s: exit %d: %s", args[0], st, err);
	free(err);
	return st;
}

static void expect_busctl(const struct bus_daemon *b, const char *const *args, const char *want)
{
	char *out;
	CHECK_EQ(busctl(b, &out, args), 0);
	if (!strstr(out, want)) {
		fprintf(stderr, "busctl %s %s: expected '%s' in: %s\n", args[0], args[1] ? args[1] : "", want, out);
		exit(1);
	}
	free(out);
}

static void expect_property(const struct bus_daemon *b, const char *prop, const char *want)
{
	expect_busctl(b, (const char *[]){ "get-property", NAME, PATH, IFACE, prop, NULL }, want);
}

static bool log_has(const struct gmemd *g, const char *what)
{
	FILE *f = fopen(g->log, "r");
	char line[1024];
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

struct log_wait {
	const struct gmemd *g;
	const char *what;
};

static bool cond_log(void *arg)
{
	struct log_wait *w = arg;
	return log_has(w->g, w->what);
}

/* The socket works: a connection says hello and gets a status. */
static void serves(const struct gmemd *g)
{
	struct gmem_client *c;
	struct gmem_status st;
	CHECK_EQ(gmem_connect(g->socket, GMEM_ROLE_VMM, &c), 0);
	CHECK_EQ(gmem_status(c, &st), 0);
	gmem_disconnect(c);
}

/* ---- signals, received by the test's own connection ---- */

static struct {
	unsigned failed;
	char failed_guest[80], failed_outcome[32], failed_reason[300];
	uint64_t failed_seq;
	unsigned summaries;      /* of G_STORM */
	uint64_t storm_committed; /* summed over its summaries */
	uint64_t storm_bytes;
} sig;

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	(void)userdata;
	(void)ret_error;
	if (sd_bus_message_is_signal(m, IFACE, "ConversionFailed")) {
		const char *g, *o, *r;
		uint64_t seq;
		CHECK(sd_bus_message_read(m, "stss", &g, &seq, &o, &r) >= 0);
		sig.failed++;
		snprintf(sig.failed_guest, sizeof(sig.failed_guest), "%s", g);
		snprintf(sig.failed_outcome, sizeof(sig.failed_outcome), "%s", o);
		snprintf(sig.failed_reason, sizeof(sig.failed_reason), "%s", r);
		sig.failed_seq = seq;
	} else if (sd_bus_message_is_signal(m, IFACE, "ConversionSummary")) {
		const char *g;
		uint32_t committed, aborted;
		uint64_t bytes;
		CHECK(sd_bus_message_read(m, "suut", &g, &committed, &aborted, &bytes) >= 0);
		if (strcmp(g, G_STORM) == 0) {
			sig.summaries++;
			sig.storm_committed += committed;
			sig.storm_bytes += bytes;
			CHECK_EQ(aborted, 0);
		}
	}
	return 0;
}

/* Processes the watch connection until cond() or the (scaled) timeout. */
static bool pump_until(bool (*cond)(void), int64_t timeout_ms)
{
	int64_t deadline = harness_deadline(timeout_ms);
	for (;;) {
		int r;
		while ((r = sd_bus_process(watch, NULL)) > 0)
			;
		CHECK(r == 0);
		if (cond())
			return true;
		int64_t left = deadline - harness_now_ms();
		if (left <= 0)
			return false;
		CHECK(sd_bus_wait(watch, (uint64_t)left * 1000) >= 0);
	}
}

static bool got_failed(void)
{
	return sig.failed > 0;
}

static bool storm_summed(void)
{
	return sig.storm_committed >= STORM;
}

/* ---- a participant that refuses ---- */

static void no_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	gmem_vote(c, cv->epoch, cv->seq, false, EBUSY, "test refuses");
}

static const struct gmem_participant_ops no_ops = { .prepare = no_prepare };

static int refuser(struct child_io *io, void *arg)
{
	struct gmem_client *c;
	int fd;
	(void)arg;
	if (gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) < 0)
		return 10;
	gmem_set_participant(c, &no_ops, NULL);
	if (gmem_guest_open(c, G_ROOT, &fd, NULL) < 0 || gmem_attach(c, G_ROOT, 0, MiB, GMEM_ATTACH_MMAP, NULL) < 0)
		return 11;
	close(fd);
	msg_send(io->out, "ready");
	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents)
			break; /* "exit" or EOF */
		if (p[0].revents && gmem_dispatch(c) < 0)
			return 12;
	}
	gmem_disconnect(c);
	return 0;
}

/* ---- a caller of another uid ---- */

#define EXPECT(x)                                                                                        \
	do {                                                                                             \
		if (!(x)) {                                                                              \
			fprintf(stderr, "%s:%d: as uid %u: %s (%s)\n", __FILE__, __LINE__, getuid(), #x, \
				error.message ? error.message : "-");                                    \
			return 1;                                                                        \
		}                                                                                        \
	} while (0)

static const char *bus_address;

static int other_uid(struct child_io *io, void *arg)
{
	const gid_t groups[1] = { GID_X };
	struct gmem_client *c;
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	const char *name;
	uint64_t id;
	uint32_t pid, uid;
	const char *role;
	(void)io;
	(void)arg;

	if (setgroups(1, groups) < 0 || setgid(UID_A) < 0 || setuid(UID_A) < 0)
		return 90;
	EXPECT(gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c) == 0);
	EXPECT(sd_bus_new(&bus) >= 0 && sd_bus_set_address(bus, bus_address) >= 0 &&
	       sd_bus_set_bus_client(bus, 1) >= 0 && sd_bus_start(bus) >= 0);

	/* Only the guests granted to its uid or its group, in creation order. */
	EXPECT(sd_bus_call_method(bus, NAME, PATH, IFACE, "ListGuests", &error, &reply, "") >= 0);
	EXPECT(sd_bus_message_enter_container(reply, 'a', "(stttub)") > 0);
	const char *seen[4];
	size_t n = 0;
	while (n < 4 && sd_bus_message_read(reply, "(stttub)", &name, NULL, NULL, NULL, NULL, NULL) > 0)
		seen[n++] = name;
	EXPECT(n == 2);
	EXPECT(strcmp(seen[0], G_UID) == 0);
	EXPECT(strcmp(seen[1], G_GID) == 0);
	reply = sd_bus_message_unref(reply);

	/* root's guest is as missing as one that does not exist. */
	EXPECT(sd_bus_call_method(bus, NAME, PATH, IFACE, "DescribeGuest", &error, &reply, "s", G_ROOT) < 0);
	EXPECT(sd_bus_error_has_name(&error, "org.gmem.Error.NoSuchGuest"));
	sd_bus_error_free(&error);
	EXPECT(sd_bus_call_method(bus, NAME, PATH, IFACE, "DescribeGuest", &error, &reply, "s", G_UID) >= 0);
	reply = sd_bus_message_unref(reply);

	/* Only its own connection. */
	EXPECT(sd_bus_call_method(bus, NAME, PATH, IFACE, "ListClients", &error, &reply, "") >= 0);
	EXPECT(sd_bus_message_enter_container(reply, 'a', "(tuus)") > 0);
	EXPECT(sd_bus_message_read(reply, "(tuus)", &id, &pid, &uid, &role) > 0);
	EXPECT(id == gmem_client_id(c));
	EXPECT(pid == (uint32_t)getpid());
	EXPECT(uid == UID_A);
	EXPECT(strcmp(role, "device") == 0);
	EXPECT(sd_bus_message_read(reply, "(tuus)", &id, &pid, &uid, &role) == 0);
	reply = sd_bus_message_unref(reply);

	sd_bus_flush_close_unref(bus);
	gmem_disconnect(c);
	return 0;
}

/* On the system bus, under the project's policy: anyone reads and calls; only root owns the name. */
static int system_caller(struct child_io *io, void *arg)
{
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	char *backend = NULL;
	(void)io;
	(void)arg;

	if (setgroups(0, NULL) < 0 || setgid(UID_A) < 0 || setuid(UID_A) < 0)
		return 90;
	EXPECT(sd_bus_new(&bus) >= 0 && sd_bus_set_address(bus, bus_address) >= 0 &&
	       sd_bus_set_bus_client(bus, 1) >= 0 && sd_bus_start(bus) >= 0);
	EXPECT(sd_bus_get_property_string(bus, NAME, PATH, IFACE, "Backend", &error, &backend) >= 0);
	EXPECT(strcmp(backend, "memfd") == 0);
	free(backend);
	EXPECT(sd_bus_call_method(bus, NAME, PATH, IFACE, "ListGuests", &error, &reply, "") >= 0);
	reply = sd_bus_message_unref(reply);
	EXPECT(sd_bus_call_method(bus, NAME, PATH, IFACE, "ListClients", &error, &reply, "") >= 0);
	reply = sd_bus_message_unref(reply);
	EXPECT(sd_bus_call_method(bus, NAME, PATH, IFACE, "DescribeGuest", &error, &reply, "s", "nope") < 0);
	EXPECT(sd_bus_error_has_name(&error, "org.gmem.Error.NoSuchGuest"));
	sd_bus_error_free(&error);
	/* Read-only: no property can be set, and the name is root's. */
	EXPECT(sd_bus_set_property(bus, NAME, PATH, IFACE, "Backend", &error, "s", "kmod") < 0);
	sd_bus_error_free(&error);
	EXPECT(sd_bus_request_name(bus, NAME, 0) == -EACCES);
	sd_bus_flush_close_unref(bus);
	return 0;
}

/* ---- the test ---- */

static void convert1(struct gmem_client *c, const char *guest, uint64_t off, uint64_t len, enum gmem_target t,
		     enum gmem_outcome want, uint64_t *ret_seq)
{
	struct gmem_range r = { off, len };
	struct gmem_convert_result res;
	CHECK_EQ(gmem_convert(c, guest, &r, 1, t, 0, &res), 0);
	CHECK_EQ(res.outcome, want);
	if (ret_seq)
		*ret_seq = res.seq;
	gmem_convert_result_free(&res);
}

static void test_properties_and_methods(const struct bus_daemon *b)
{
	expect_property(b, "Backend", "s \"memfd\"");
	expect_property(b, "Version", "s \"" GMEM_VERSION "\"");
	expect_property(b, "Enforcing", "b false");
	expect_property(b, "PoolSize", "t 1073741824");
	expect_property(b, "PoolUsed", "t 0");
	expect_property(b, "PoolFree", "t 1073741824");
	expect_property(b, "Guests", "u 0");
	expect_property(b, "ConversionsInFlight", "u 0");

	CHECK_EQ(gmem_guest_create(root, G_ROOT, 64 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_create(root, G_UID, 4 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_create(root, G_GID, 4 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_grant(root, G_UID, "uid:65534", GMEM_ROLE_DEVICE), 0);
	CHECK_EQ(gmem_grant(root, G_GID, "gid:20000", GMEM_ROLE_DEVICE), 0);
	expect_property(b, "Guests", "u 3");
	expect_property(b, "PoolUsed", "t 75497472");
	expect_property(b, "PoolFree", "t 998244352");

	/* name, size, granule, touched, owner, leased; root sees all three. */
	expect_busctl(b, (const char *[]){ "call", NAME, PATH, IFACE, "ListGuests", NULL },
		      "a(stttub) 3 \"" G_ROOT "\" 67108864 4096 0 0 false \"" G_UID "\"");
	convert1(root, G_ROOT, 0, 4096, GMEM_PRIVATE, GMEM_COMMITTED, NULL);
	expect_busctl(b, (const char *[]){ "call", NAME, PATH, IFACE, "DescribeGuest", "s", G_ROOT, NULL },
		      "stta(tts) \"" G_ROOT "\" 67108864 4096 2 0 4096 \"private\" 4096 67104768 \"shared\"");
	/* The requester's connection, as root sees it: role vmm, uid 0, this pid. */
	char want[96];
	snprintf(want, sizeof(want), "%llu %d 0 \"vmm\"", (unsigned long long)gmem_client_id(root), getpid());
	expect_busctl(b, (const char *[]){ "call", NAME, PATH, IFACE, "ListClients", NULL }, want);

	/* A missing guest: the error has its own name. */
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	CHECK(sd_bus_call_method(watch, NAME, PATH, IFACE, "DescribeGuest", &error, &reply, "s", "nope") < 0);
	CHECK(sd_bus_error_has_name(&error, "org.gmem.Error.NoSuchGuest"));
	sd_bus_error_free(&error);
}

static void test_failed_signal(void)
{
	struct child ch;
	uint64_t seq;
	child_start(&ch, refuser, NULL);
	msg_expect(ch.from_child, "ready", 10000);
	convert1(root, G_ROOT, 0, 2 * MiB, GMEM_PRIVATE, GMEM_ABORTED, &seq);
	CHECK(pump_until(got_failed, 5000));
	CHECK_EQ(sig.failed, 1);
	CHECK(strcmp(sig.failed_guest, G_ROOT) == 0);
	CHECK_EQ(sig.failed_seq, seq);
	CHECK(strcmp(sig.failed_outcome, "aborted") == 0);
	CHECK(strcmp(sig.failed_reason, "EBUSY: test refuses") == 0);
	msg_send(ch.to_child, "exit");
	CHECK_EQ(child_wait(&ch), 0);
}

static void test_storm(void)
{
	CHECK_EQ(gmem_guest_create(root, G_STORM, 4 * MiB, 0, NULL), 0);
	int64_t t0 = harness_now_ms();
	for (int i = 0; i < STORM; i++)
		convert1(root, G_STORM, 0, 4096, i % 2 ? GMEM_SHARED : GMEM_PRIVATE, GMEM_COMMITTED, NULL);
	double secs = (double)(harness_now_ms() - t0) / 1000.0;
	/* Every conversion is in some summary: the last window closes at most a second after the last one. */
	CHECK(pump_until(storm_summed, 2000 + (int64_t)(secs * 1000)));
	CHECK_EQ(sig.storm_committed, STORM);
	CHECK_EQ(sig.storm_bytes, STORM * 4096ULL);
	/* At most one per second: in a second, at most 2 (a window can close inside it and another open). */
	unsigned whole = (unsigned)secs;
	unsigned max = secs <= 1.0 ? 2 : whole + (secs > (double)whole) + 1; /* ceil(secs) + 1 */
	printf("# %d conversions of one guest in %.3f s: %u summary signals (at most %u)\n", STORM, secs,
	       sig.summaries, max);
	CHECK(sig.summaries >= 1);
	CHECK(sig.summaries <= max);
	CHECK_EQ(sig.failed, 1); /* none of them failed */
}

static bool have(const char *prog)
{
	char *out, *err;
	int st = run_capture((const char *[]){ prog, "--version", NULL }, &out, &err);
	free(out);
	free(err);
	return st == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	struct bus_daemon bus1, bus2;
	struct gmemd late, off;

	if (!have("dbus-daemon") || !have("busctl")) {
		printf("1..0 # SKIP dbus-daemon or busctl is not installed\n");
		return 77;
	}
	snprintf(dir, sizeof(dir), "/tmp/gmem-dbus-XXXXXX");
	CHECK(mkdtemp(dir));
	CHECK(chmod(dir, 0755) == 0);
	bus_start(&bus1, "bus1", NULL);
	bus_address = bus1.address;
	CHECK(setenv("DBUS_SESSION_BUS_ADDRESS", bus1.address, 1) == 0);
	gmemd_start(&d, (const char *[]){ "--bus", "session", "--pool-size", "1G", "--socket-mode", "0666",
					  "--prepare-timeout", "300", NULL });
	CHECK(chmod(d.dir, 0755) == 0); /* the other uid must reach the socket */
	watch = bus_connect(bus1.address);
	CHECK(wait_until(cond_owned, watch, 10000));
	CHECK(sd_bus_match_signal(watch, NULL, NULL, PATH, IFACE, NULL, on_signal, NULL) >= 0);
	struct log_wait owned = { &d, "notice: D-Bus: " NAME " on the session bus" };
	CHECK(wait_until(cond_log, &owned, 10000));
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &root), 0);
	printf("ok gmemd owns %s on the bus\n", NAME);

	test_properties_and_methods(&bus1);
	printf("ok busctl reads the properties and calls ListGuests, DescribeGuest, ListClients\n");

	if (getuid() == 0) {
		struct child ch;
		child_start(&ch, other_uid, NULL);
		CHECK_EQ(child_wait(&ch), 0);
		printf("ok another uid sees only the guests granted to its uid or group, and its own connection\n");
	} else {
		printf("ok # SKIP another uid: the test is not root\n");
	}

	test_failed_signal();
	printf("ok a participant's no: ConversionFailed with the guest, seq and reason\n");
	test_storm();
	printf("ok %d conversions of one guest: every one summed, at most one summary per second\n", STORM);

	/* No bus at start: a notice, the socket serves; the bus appears and gmemd takes the name. */
	char later[300];
	snprintf(later, sizeof(later), "unix:path=%s/bus2.sock", dir);
	CHECK(setenv("DBUS_SESSION_BUS_ADDRESS", later, 1) == 0);
	gmemd_start(&late, (const char *[]){ "--bus", "session", NULL });
	serves(&late);
	CHECK(log_has(&late, "notice: D-Bus: no session bus"));
	bus_start(&bus2, "bus2", NULL);
	sd_bus *b2 = bus_connect(bus2.address);
	CHECK(wait_until(cond_owned, b2, 35000)); /* the backoff is 1 s, doubling to 30 s */
	serves(&late);
	CHECK_EQ(gmemd_stop(&late), 0);
	printf("ok no bus at start: gmemd serves, says so, and takes the name once the bus is there\n");

	/* The bus goes away: gmemd says so and goes on serving. */
	bus_stop(&bus1);
	watch = sd_bus_flush_close_unref(watch);
	struct log_wait lw = { &d, "D-Bus: lost the session bus" };
	CHECK(wait_until(cond_log, &lw, 10000));
	serves(&d);
	printf("ok the bus goes away: gmemd goes on serving\n");

	/* --bus none: never on the bus, even with one at hand. */
	gmemd_start(&off, (const char *[]){ "--bus", "none", NULL });
	serves(&off);
	CHECK(!name_owned(b2));
	CHECK(!log_has(&off, "D-Bus"));
	CHECK_EQ(gmemd_stop(&off), 0);
	printf("ok --bus none stays off the bus\n");

	/* The system bus with the default system policy and contrib/dbus: the policy file does its job. */
	const char *policy_dir = getenv("GMEM_DBUS_POLICY_DIR");
	if (policy_dir && getuid() == 0) {
		struct bus_daemon bus3;
		struct gmemd sys;
		struct child ch;
		bus_start(&bus3, "bus3", policy_dir);
		CHECK(unsetenv("DBUS_SESSION_BUS_ADDRESS") == 0);
		CHECK(setenv("DBUS_SYSTEM_BUS_ADDRESS", bus3.address, 1) == 0);
		gmemd_start(&sys, (const char *[]){ "--bus", "system", NULL }); /* the harness defaults to none */
		sd_bus *b3 = bus_connect(bus3.address);
		CHECK(wait_until(cond_owned, b3, 10000));
		struct log_wait lw3 = { &sys, "notice: D-Bus: " NAME " on the system bus" };
		CHECK(wait_until(cond_log, &lw3, 10000));
		bus_address = bus3.address;
		child_start(&ch, system_caller, NULL);
		CHECK_EQ(child_wait(&ch), 0);
		CHECK_EQ(gmemd_stop(&sys), 0);
		sd_bus_flush_close_unref(b3);
		bus_stop(&bus3);
		printf("ok system bus, contrib/dbus policy: root owns the name, another uid reads and calls\n");
	} else {
		printf("ok # SKIP system bus policy: not root, or $GMEM_DBUS_POLICY_DIR unset\n");
	}

	gmem_disconnect(root);
	CHECK_EQ(gmemd_stop(&d), 0);
	sd_bus_flush_close_unref(b2);
	bus_stop(&bus2);
	CHECK(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
	return 0;
}
