/* SPDX-License-Identifier: MIT */
/*
 * Operator controls through gmemctl, as an admin runs them, against a real gmemd and real client
 * processes: holders (who holds a guest: client ids, pids, files, lease, attachments), cancel (an
 * undecided conversion aborts, its requester is told the operator did it; a decided one is refused),
 * evict (the client is cut off and hears why), destroy --force (the holders are evicted too). Only
 * role admin may; each action leaves a line in gmemd's log with GUEST=, CONVERSION_ID=, CLIENT_PID=.
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)

static struct gmemd d;
static struct gmem_client *admin;

static int ctl(char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *err;
	const char *argv[] = { binary("GMEMCTL"), "--socket", d.socket, a1, a2, a3, a4, NULL };
	int st = run_capture(argv, out, &err);
	if (st)
		fprintf(stderr, "gmemctl %s %s: exit %d: %s", a1, a2 ? a2 : "", st, err);
	free(err);
	return st;
}

/* A client process. Commands on its pipe: "lease G", "open G", "attach G OFF LEN KIND", "never" (do not
 * vote), "yes-noack" (vote yes, ack on "go"), "exit". It reports "ok", "prepare SEQ", "destroyed",
 * "evicted: REASON" (gmemd's shutdown event). */
struct pstate {
	struct child_io *io;
	enum { VOTE_NEVER, VOTE_YES_NOACK } how;
	uint64_t epoch, seq;
	bool commit_pending;
};

static void p_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct pstate *s = ud;
	char line[64];
	snprintf(line, sizeof(line), "prepare %llu", (unsigned long long)cv->seq);
	msg_send(s->io->out, line);
	if (s->how == VOTE_YES_NOACK)
		gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void p_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct pstate *s = ud;
	(void)c;
	s->epoch = cv->epoch;
	s->seq = cv->seq;
	s->commit_pending = true;
	msg_send(s->io->out, "commit");
}

static const struct gmem_participant_ops pops = { .prepare = p_prepare, .commit = p_commit };

static void p_event(struct gmem_client *c, const struct gmem_event *ev, void *ud)
{
	struct pstate *s = ud;
	(void)c;
	char line[300];
	if (ev->type == GMEM_EVENT_GUEST_DESTROYED)
		msg_send(s->io->out, "destroyed");
	if (ev->type == GMEM_EVENT_SHUTDOWN) {
		snprintf(line, sizeof(line), "evicted: %s", ev->reason);
		msg_send(s->io->out, line);
		for (;;)
			pause();
	}
}

static int client_proc(struct child_io *io, void *arg)
{
	struct pstate s = { .io = io };
	struct gmem_client *c;
	if (gmem_connect(d.socket, (enum gmem_role)(intptr_t)arg, &c) < 0)
		return 10;
	gmem_set_participant(c, &pops, &s);
	gmem_set_event_handler(c, p_event, &s);
	char line[128];
	snprintf(line, sizeof(line), "id %llu %d", (unsigned long long)gmem_client_id(c), getpid());
	msg_send(io->out, line);
	for (;;) {
		struct pollfd p[2] = { { .fd = gmem_get_fd(c), .events = POLLIN }, { .fd = io->in, .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents) {
			if (gmem_dispatch(c) < 0)
				return 14; /* closed without a word: the shutdown event did not come */
		}
		if (!p[1].revents)
			continue;
		if (!msg_recv(io->in, line, sizeof(line), 1000) || strcmp(line, "exit") == 0)
			break;
		char g[65], kind[8];
		unsigned long long off, len;
		int fd, r = 0;
		uint64_t id;
		if (sscanf(line, "lease %64s", g) == 1) {
			r = gmem_lease(c, g);
		} else if (sscanf(line, "open %64s", g) == 1) {
			r = gmem_guest_open(c, g, &fd, NULL);
		} else if (sscanf(line, "attach %64s %llu %llu %7s", g, &off, &len, kind) == 4) {
			r = gmem_attach(c, g, off, len,
					strcmp(kind, "kvm") == 0 ? GMEM_ATTACH_KVM
					: strcmp(kind, "iommu") == 0 ? GMEM_ATTACH_IOMMU : GMEM_ATTACH_MMAP, &id);
		} else if (strcmp(line, "never") == 0) {
			s.how = VOTE_NEVER;
		} else if (strcmp(line, "yes-noack") == 0) {
			s.how = VOTE_YES_NOACK;
		} else if (strcmp(line, "go") == 0 && s.commit_pending) {
			s.commit_pending = false;
			r = gmem_ack(c, s.epoch, s.seq);
		}
		snprintf(line, sizeof(line), r < 0 ? "err %d" : "ok", -r);
		msg_send(io->out, line);
	}
	gmem_disconnect(c);
	return 0;
}

struct proc {
	struct child ch;
	uint64_t id;
	int pid;
};

static void proc_start(struct proc *p, enum gmem_role role)
{
	char line[64];
	child_start(&p->ch, client_proc, (void *)(intptr_t)role);
	CHECK(msg_recv(p->ch.from_child, line, sizeof(line), 10000));
	CHECK(sscanf(line, "id %lu %d", &p->id, &p->pid) == 2);
}

static void proc_do(struct proc *p, const char *cmd)
{
	msg_send(p->ch.to_child, cmd);
	msg_expect(p->ch.from_child, "ok", 10000);
}

static void expect_prefix(struct proc *p, const char *prefix, char *line, size_t size)
{
	if (!msg_recv(p->ch.from_child, line, size, 10000) || strncmp(line, prefix, strlen(prefix))) {
		fprintf(stderr, "client %d: expected '%s...', got '%s'\n", p->pid, prefix, line);
		exit(1);
	}
}

static bool log_has(const char *needle)
{
	FILE *f = fopen(d.log, "r");
	char line[1024];
	bool found = false;
	CHECK(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static void test_holders(void)
{
	struct proc vmm, dev;
	char *out, cmd[128];

	CHECK_EQ(gmem_guest_create(admin, "h", 64 * MiB, 0, NULL), 0);
	proc_start(&vmm, GMEM_ROLE_VMM);
	proc_do(&vmm, "lease h");
	proc_do(&vmm, "open h");
	proc_do(&vmm, "open h");
	proc_do(&vmm, "attach h 0 67108864 kvm");
	proc_start(&dev, GMEM_ROLE_DEVICE);
	proc_do(&dev, "open h");
	proc_do(&dev, "attach h 0 2097152 mmap");
	proc_do(&dev, "attach h 2097152 2097152 iommu");

	CHECK_EQ(ctl(&out, "--json", "holders", "h", NULL), 0);
	struct json_object *arr = json_tokener_parse(out);
	CHECK(arr && json_object_is_type(arr, json_type_array));
	CHECK_EQ(json_object_array_length(arr), 2);
	struct json_object *v = json_object_array_get_idx(arr, 0), *x = json_object_array_get_idx(arr, 1), *f;
	CHECK(json_object_object_get_ex(v, "client_id", &f) && json_object_get_uint64(f) == vmm.id);
	CHECK(json_object_object_get_ex(v, "pid", &f) && json_object_get_int(f) == vmm.pid);
	CHECK(json_object_object_get_ex(v, "files", &f) && json_object_get_int(f) == 2);
	CHECK(json_object_object_get_ex(v, "leased", &f) && json_object_get_boolean(f));
	CHECK(json_object_object_get_ex(v, "role", &f) && strcmp(json_object_get_string(f), "vmm") == 0);
	CHECK(json_object_object_get_ex(x, "client_id", &f) && json_object_get_uint64(f) == dev.id);
	CHECK(json_object_object_get_ex(x, "leased", &f) && !json_object_get_boolean(f));
	CHECK(json_object_object_get_ex(x, "attachments", &f) && json_object_get_int(f) == 2);
	CHECK(json_object_object_get_ex(x, "ranges", &f) && json_object_array_length(f) == 2);
	struct json_object *r1 = json_object_array_get_idx(f, 1), *k;
	CHECK(json_object_object_get_ex(r1, "kind", &k) && strcmp(json_object_get_string(k), "iommu") == 0);
	CHECK(json_object_object_get_ex(r1, "offset", &k) && json_object_get_uint64(k) == 2 * MiB);
	json_object_put(arr);
	free(out);

	CHECK_EQ(ctl(&out, "holders", "h", NULL, NULL), 0);
	printf("%s", out);
	snprintf(cmd, sizeof(cmd), "%8d", dev.pid);
	CHECK(strstr(out, cmd) && strstr(out, "iommu [2M, +2M)"));
	free(out);

	/* Not for a plain connection, and not for a guest nobody may see. */
	struct gmem_client *plain;
	struct gmem_holder_info *hs;
	size_t n;
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &plain), 0);
	CHECK_EQ(gmem_holders(plain, "h", &hs, &n), -EPERM);
	CHECK_EQ(gmem_evict(plain, dev.id), -EPERM);
	CHECK_EQ(gmem_cancel(plain, 0, 1), -EPERM);
	CHECK_EQ(gmem_guest_destroy_ex(plain, "h", GMEM_DESTROY_FORCE), -EPERM);
	gmem_disconnect(plain);
	CHECK_EQ(gmem_holders(admin, "nope", &hs, &n), -ENOENT);
	/* gmemctl's pid, which the test does not know: the fields are there. */
	CHECK(log_has("holders of guest 'h' listed") && log_has("GUEST=h CLIENT_PID="));

	/* evict: the device is cut off and hears why; it is no longer a holder. */
	char id[32], line[256];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)dev.id);
	CHECK_EQ(ctl(&out, "evict", id, NULL, NULL), 0);
	free(out);
	expect_prefix(&dev, "evicted", line, sizeof(line));
	printf("  the evicted client: %s\n", line);
	CHECK(strstr(line, "evicted by an operator"));
	CHECK_EQ(gmem_holders(admin, "h", &hs, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(hs[0].client_id, vmm.id);
	free(hs);
	snprintf(cmd, sizeof(cmd), "CLIENT_PID=%d", dev.pid);
	CHECK(log_has(cmd));
	CHECK_EQ(ctl(&out, "evict", id, NULL, NULL), 1); /* gone */
	free(out);
	CHECK_EQ(ctl(&out, "evict", "x1", NULL, NULL), 2);
	free(out);
	kill(dev.ch.pid, SIGKILL);
	child_wait(&dev.ch);

	/* destroy --force: the vmm hears of the destroy, then is evicted. */
	CHECK_EQ(ctl(&out, "destroy", "h", "--force", NULL), 0);
	free(out);
	expect_prefix(&vmm, "destroyed", line, sizeof(line));
	expect_prefix(&vmm, "evicted", line, sizeof(line));
	CHECK(strstr(line, "destroyed by force"));
	CHECK(log_has("guest 'h' destroyed by force") && log_has("1 holder connections evicted"));
	kill(vmm.ch.pid, SIGKILL);
	child_wait(&vmm.ch);
	struct gmem_status st;
	CHECK_EQ(gmem_status(admin, &st), 0);
	CHECK_EQ(st.pool_used, 0);
}

struct outcome {
	bool done;
	int err;
	struct gmem_convert_result r;
	struct gmem_refusal ref;
};

static void on_outcome(struct gmem_client *c, int err, const struct gmem_convert_result *r, void *ud)
{
	struct outcome *o = ud;
	(void)c;
	o->done = true;
	o->err = err;
	if (r) {
		o->r = *r;
		if (r->n_refusals)
			o->ref = r->refusals[0];
		o->r.refusals = NULL;
		o->r.unverified = NULL;
	}
}

static bool outcome_in(void *arg)
{
	gmem_dispatch(admin);
	return ((struct outcome *)arg)->done;
}

static void test_cancel(void)
{
	struct proc dev;
	struct outcome o = { 0 };
	char *out, line[64], seq[32];
	unsigned long long s;
	const struct gmem_range r = { 0, 4 * MiB };

	CHECK_EQ(gmem_guest_create(admin, "cx", 64 * MiB, 0, NULL), 0);
	proc_start(&dev, GMEM_ROLE_DEVICE);
	proc_do(&dev, "attach cx 0 4194304 mmap");
	proc_do(&dev, "never");

	/* Undecided: the device never votes; the operator cancels it. */
	CHECK_EQ(gmem_convert_async(admin, "cx", &r, 1, GMEM_PRIVATE, 0, on_outcome, &o), 0);
	expect_prefix(&dev, "prepare", line, sizeof(line));
	CHECK(sscanf(line, "prepare %llu", &s) == 1);
	snprintf(seq, sizeof(seq), "%llu", s);
	CHECK_EQ(ctl(&out, "cancel", seq, NULL, NULL), 0);
	free(out);
	CHECK(wait_until(outcome_in, &o, 10000));
	CHECK_EQ(o.err, 0);
	CHECK_EQ(o.r.outcome, GMEM_ABORTED);
	/* The device had not voted yet and is not to blame: the operator is the one refusal. */
	CHECK_EQ(o.r.n_refusals, 1);
	CHECK_EQ(o.ref.err, ECANCELED);
	CHECK(strcmp(o.ref.client_name, "operator") == 0);
	printf("  cancelled conversion %llu: aborted, refusal by client %llu '%s': %s\n", s,
	       (unsigned long long)o.ref.client_id, o.ref.client_name, o.ref.reason);
	char field[64];
	snprintf(field, sizeof(field), "GUEST=cx CONVERSION_ID=%llu CLIENT_PID=", s);
	CHECK(log_has(field));
	CHECK_EQ(ctl(&out, "cancel", seq, NULL, NULL), 1); /* ended */
	free(out);
	CHECK_EQ(ctl(&out, "cancel", "0", NULL, NULL), 2);
	free(out);
	CHECK_EQ(ctl(&out, "cancel", "12:x", NULL, NULL), 2);
	free(out);
	CHECK_EQ(ctl(&out, "cancel", "12:1", NULL, NULL), 1); /* another epoch: ESTALE */
	free(out);

	/* Decided: the device voted yes and sits on its commit; cancel is refused, the commit stands. */
	proc_do(&dev, "yes-noack");
	memset(&o, 0, sizeof(o));
	CHECK_EQ(gmem_convert_async(admin, "cx", &r, 1, GMEM_PRIVATE, 0, on_outcome, &o), 0);
	expect_prefix(&dev, "prepare", line, sizeof(line));
	CHECK(sscanf(line, "prepare %llu", &s) == 1);
	expect_prefix(&dev, "commit", line, sizeof(line));
	CHECK_EQ(gmem_cancel(admin, 0, s), -EALREADY);
	printf("  cancel of decided conversion %llu: %s\n", s, gmem_last_error(admin));
	proc_do(&dev, "go");
	CHECK(wait_until(outcome_in, &o, 10000));
	CHECK_EQ(o.r.outcome, GMEM_COMMITTED);
	msg_send(dev.ch.to_child, "exit");
	CHECK_EQ(child_wait(&dev.ch), 0);
	CHECK_EQ(gmem_guest_destroy(admin, "cx"), 0);
}

/* Orphans are a kmod thing (the vm suite adopts and destroys real ones): on memfd every orphan op is
 * EOPNOTSUPP for an admin, EPERM before that for anyone else; gmemctl's usage rules hold either way. */
static void test_orphans_memfd(void)
{
	struct gmem_orphan_info *os = NULL;
	struct gmem_client *plain;
	size_t n;
	char *out = NULL;

	CHECK_EQ(gmem_orphan_list(admin, &os, &n), -EOPNOTSUPP);
	CHECK_EQ(gmem_orphan_adopt(admin, 1, "o1", 0, NULL), -EOPNOTSUPP);
	CHECK_EQ(gmem_orphan_destroy(admin, 1), -EOPNOTSUPP);
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &plain), 0);
	CHECK_EQ(gmem_orphan_list(plain, &os, &n), -EPERM);
	CHECK_EQ(gmem_orphan_adopt(plain, 1, "o1", 0, NULL), -EPERM);
	CHECK_EQ(gmem_orphan_destroy(plain, 1), -EPERM);
	gmem_disconnect(plain);
	CHECK_EQ(ctl(&out, "guests", "--orphans", NULL, NULL), 1);
	free(out);
	CHECK_EQ(ctl(&out, "adopt", "7", "--name", "o7"), 1);
	free(out);
	CHECK_EQ(ctl(&out, "adopt", "x", NULL, NULL), 2);
	free(out);
	CHECK_EQ(ctl(&out, "destroy", "--orphan", "7", NULL), 2); /* without --force */
	free(out);
	CHECK_EQ(ctl(&out, "destroy", "--orphan", "--force", "7"), 1);
	free(out);
	CHECK_EQ(ctl(&out, "guests", "--lost", "--orphans", NULL), 2);
	free(out);
	CHECK_EQ(ctl(&out, "guests", "--name", "x", NULL), 2); /* --name is adopt's */
	free(out);
}

int main(void)
{
	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", "--prepare-timeout", "60000", "--ack-timeout", "60000",
					  NULL });
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_ADMIN, &admin), 0);
	test_holders();
	printf("ok holders, evict, destroy --force: admin only, logged with GUEST= and CLIENT_PID=\n");
	test_cancel();
	printf("ok cancel aborts an undecided conversion and names the operator; a decided one is refused\n");
	test_orphans_memfd();
	printf("ok orphan ops: EOPNOTSUPP on memfd for an admin, EPERM for others; gmemctl's usage rules\n");
	gmem_disconnect(admin);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
