/* SPDX-License-Identifier: MIT */
/*
 * fuzz-requests: gmemd's request handling, in process, fed arbitrary sequences of messages.
 *
 * The daemon is a struct manager from manager_new() (memfd backend, a 64 MiB pool, small quotas and
 * connection limits, its socket and state dir in a private temporary directory). Each input starts with
 * clients 0..3 made by client_new() from socketpair(AF_UNIX, SOCK_SEQPACKET) ends, the fuzzer keeping the
 * other ends (slots 4 and 5 start empty), and ends by bringing the daemon back to its baseline through
 * its own code: every client disconnects (gmemd notices, reaps them and their conversions), every guest
 * is destroyed with manager_guest_destroy(), and the id counters and the epoch are reset. So inputs are
 * independent and replay the same way alone or in a corpus, without the ~1 ms a manager_new() per input
 * would cost ('R' below still runs manager_free/manager_new, with live state, inside an input).
 * Two deterministic choices make seeds meaningful: the manager's epoch is FUZZ_EPOCH (1), so a seed can
 * vote on conversion 1 literally, and the prepare/ack timeouts are an hour, so a timer fires only when
 * the input says so ('t' below), never because the machine was slow.
 *
 * An input is a sequence of records separated by '\n'; the first byte of a record says what it does,
 * i is a client slot '0'..'5':
 *   iJSON     send JSON as a datagram from client i through its socket (on_read, then
 *             client_handle_datagram)
 *   diJSON    call client_handle_datagram() directly with an exact-size copy (ASan sees over-reads)
 *   FiJSON    send it with two file descriptors attached (SCM_RIGHTS: must be closed and refused)
 *   OiJSON    send it padded with spaces past GMEM_MSG_MAX (must be refused as EMSGSIZE)
 *   Zi        send a zero-length datagram (the daemon takes it for a disconnect)
 *   xi        close client i's end (a disconnect)            ri  reconnect client i (a new socketpair)
 *   ci        close client i's end and connect it again through the listening socket instead (on_accept,
 *             connection limits)
 *   pi        pause / resume reading client i's replies (its output queue fills up)
 *   viy, vin  client i votes yes / no on every prepare it has received and not answered
 *   ki        client i acks every commit it has received and not acked
 *   t         fire every pending timer now (prepare and ack timeouts)
 *   S         shut down: manager_run() with a loopexit pending, which sends everyone 'shutdown'
 *   R         restart: manager_free() with everything live, manager_new(), clients 0..3 connect again
 *   In every JSON above, "@T" stands for the token of the last delegate reply any client received
 *             (tokens are random: a seed cannot spell one out), or stays "@T" before there is one.
 *   *nREC     run record REC 2^n times (n '0'..'8'), each '$' in it replaced by the repetition's index
 *             (the loop runs after every 16th and the bookkeeping is checked once at the end)
 * Anything else is skipped. FUZZ_TRACE=1 prints every datagram both ways; FUZZ_LOG_LEVEL=debug shows
 * gmemd's log. Clients 0, 1, 4 and 5 connect as the fuzzer's own uid; 2 and 3 as uids 60002
 * and 60003 (3 is in the admin group, 61000), who see only their own guests and what they were granted.
 *
 * After every record the loop runs until nothing is left to do, and the fuzzer reads what each client
 * was sent. Oracles (each abort() is a daemon bug):
 *   - every datagram gmemd sends parses with gmem_json_parse and the client's envelope parser, at most
 *     GMEM_MSG_MAX bytes; an event is known and its data decodes with its table; a reply answers an id
 *     the client sent and decodes with that op's reply table; descriptors come only with replies;
 *   - the daemon's bookkeeping stays consistent (counts match lists, no record points at a dead client,
 *     the pool's used bytes are the sum of the guests' sizes);
 *   - disconnecting every client leaves no client, conversion or attachment behind;
 *   - no file descriptor survives an input (the fd table is back to its size at the input's start);
 *   - no memory survives an input (LeakSanitizer, libFuzzer -detect_leaks=1).
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "client.h"
#include "codec.h"
#include "delegation.h"
#include "envelope.h"
#include "fuzz.h"
#include "gmem-proto.h"
#include "guest.h"
#include "log.h"
#include "manager.h"
#include "pid-attach.h"
#include "quarantine.h"
#include "mutate.h"
#include "wire.h"

/* No D-Bus: the bus is an observer of gmemd, not part of the request path, and a fuzzer must not reach
 * for the machine's system bus (DBUS_KIND_SYSTEM is the config's zero value). The test keeps this
 * building before and after daemon/dbus.h exists. */
#if __has_include("dbus.h")
#include "dbus.h"
#define NO_BUS .bus = DBUS_KIND_NONE,
#else
#define NO_BUS
#endif

#define K 6                   /* client slots; 0..3 connected at the start */
#define K_START 4
#define ADMIN_GID 61000
#define FUZZ_EPOCH 1          /* the manager's epoch in every run */
#define POOL_SIZE (64u << 20) /* bytes */
#define TIMEOUT_MS 3600000    /* prepare and ack: only 't' fires them */
#define RECORDS_MAX 256       /* records run per input, repetitions included: bounds an input's time */
#define SENT_MAX 512          /* requests remembered per client, to match replies */
#define PENDING_MAX 64        /* prepares / commits remembered per client */
#define SETTLE_ROUNDS 200
#define STRUCT_MAX 1024

struct conv_id {
	uint64_t epoch, seq;
};

struct peer {
	int fd;       /* our end; -1 when closed */
	uint64_t cid; /* the daemon's client id; 0 when none */
	bool paused, eof;
	uint64_t auto_id; /* ids for the votes and acks the fuzzer sends by itself */
	struct {
		uint64_t id;
		int op;
	} sent[SENT_MAX];
	size_t n_sent;
	bool sent_overflow;
	struct conv_id prepares[PENDING_MAX], commits[PENDING_MAX];
	size_t n_prepares, n_commits;
};

static char dir_path[128], sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)], state_path[160], lock_path[192];
static int devnull = -1;
static struct manager *m;
static struct peer peers[K];
static unsigned records_left;
static char rbuf[GMEM_MSG_MAX + 1];
static char last_token[GMEM_TOKEN_LEN + 1]; /* from the last delegate reply, for "@T" */
static bool trace; /* $FUZZ_TRACE: print every datagram each way, for writing seeds and reading crashes */

/* What the seed checks look at (fuzz_seed_check). */
static struct {
	uint64_t results; /* bit per op answered with a result */
	uint64_t events;  /* bit per event received by any client */
	uint64_t unsupported; /* bit per backend-bound op answered EOPNOTSUPP (below) */
	unsigned errors;
	char first_error[300];
} seen;

_Static_assert(_GMEM_OP_MAX <= 64 && _GMEM_WIRE_EVENT_MAX <= 64, "more ops or events than seen has bits");

/* Ops only a backend whose memory outlives gmemd serves (kmod: orphans). This harness runs memfd, where
 * gmemd answers them EOPNOTSUPP: that answer is what their seeds must get (the vm suite runs them for
 * real). */
static bool kmod_only(int op)
{
	return op == GMEM_OP_LIST_ORPHANS || op == GMEM_OP_ADOPT || op == GMEM_OP_DESTROY_ORPHAN;
}

/* The op of the request id a client sent, or -1. */
static int sent_op(const struct peer *p, uint64_t id)
{
	for (size_t k = 0; k < p->n_sent; k++)
		if (p->sent[k].id == id)
			return p->sent[k].op;
	return -1;
}

static _Noreturn void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz-requests: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

static void dump(const char *label, const char *buf, size_t len)
{
	fprintf(stderr, "fuzz-requests: %s (%zu bytes): ", label, len);
	for (size_t i = 0; i < len && i < 600; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c >= 0x20 && c < 0x7f)
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fputc('\n', stderr);
}

/* Entries of /proc/self/fd, read through one directory fd kept open (it counts itself every time):
 * no allocation, two system calls. */
static int count_fds(void)
{
	static int dir = -1;
	char buf[8192];
	int n = 0;

	if (dir < 0) {
		dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dir < 0)
			die("cannot open /proc/self/fd", strerror(errno));
	}
	if (lseek(dir, 0, SEEK_SET) < 0)
		die("cannot rewind /proc/self/fd", strerror(errno));
	for (;;) {
		ssize_t r = getdents64(dir, buf, sizeof(buf));
		if (r < 0)
			die("cannot read /proc/self/fd", strerror(errno));
		if (r == 0)
			return n;
		for (ssize_t off = 0; off < r;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);
			n += d->d_name[0] != '.';
			off += d->d_reclen;
		}
	}
}

static void cleanup_dir(void)
{
	if (!dir_path[0])
		return;
	(void)unlink(lock_path);
	(void)rmdir(state_path);
	(void)unlink(sock_path);
	(void)rmdir(dir_path);
}

static void init_once(void)
{
	const char *lvl = getenv("FUZZ_LOG_LEVEL");
	const char *tmp = getenv("TMPDIR");
	struct rlimit rl;

	trace = getenv("FUZZ_TRACE") != NULL;
	log_init("gmemd-fuzz");
	log_set_level(lvl && log_parse_level(lvl) >= 0 ? log_parse_level(lvl) : LOG_CRIT);
	signal(SIGPIPE, SIG_IGN);
	/* As gmemd's main(): every guest costs an fd. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(dir_path, sizeof(dir_path), "%s/gmem-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir_path))
		die("mkdtemp", strerror(errno));
	if (strlen(dir_path) + 3 > sizeof(sock_path))
		die("$TMPDIR is too long for a socket path", dir_path);
	strcpy(sock_path, dir_path);
	strcat(sock_path, "/s");
	snprintf(state_path, sizeof(state_path), "%s/state", dir_path);
	snprintf(lock_path, sizeof(lock_path), "%s/gmemd.lock", state_path);
	atexit(cleanup_dir);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0)
		die("/dev/null", strerror(errno));
}

/* ---- clients ---- */

static struct client *peer_client(int i)
{
	if (!m || !peers[i].cid)
		return NULL;
	list_for_each(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		if (c->id == peers[i].cid)
			return c;
	}
	return NULL;
}

static void peer_reset(int i)
{
	memset(&peers[i], 0, sizeof(peers[i]));
	peers[i].fd = -1;
	peers[i].auto_id = UINT64_C(1) << 40;
}

static void peer_connect(int i)
{
	int sv[2];
	struct client *c;

	peer_reset(i);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return; /* EMFILE after very many guests: this client stays disconnected */
	/* A small send buffer on the daemon's side (still above one full datagram, which the kernel
	 * refuses to queue otherwise), so a client that does not read fills it within a few replies and
	 * the output queue comes into play. */
	int sndbuf = (GMEM_MSG_MAX + 4096) / 2; /* the kernel doubles it */
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	int r = client_new(m, sv[1], &c);
	if (r < 0) {
		close(sv[0]);
		if (r == -EMFILE || r == -ENFILE)
			return;
		die("client_new failed", strerror(-r));
	}
	if (i == 2 || i == 3) {
		/* Another identity, as SO_PEERCRED/SO_PEERGROUPS would have reported it. */
		c->uid = 60000 + (uid_t)i;
		c->gid = 60000 + (gid_t)i;
		free(c->groups);
		c->groups = NULL;
		c->n_groups = 0;
		if (i == 3) {
			c->groups = malloc(sizeof(gid_t));
			if (!c->groups)
				die("out of memory", NULL);
			c->groups[0] = ADMIN_GID;
			c->n_groups = 1;
		}
	}
	peers[i].fd = sv[0];
	peers[i].cid = c->id;
}

static void peer_close(int i)
{
	if (peers[i].fd >= 0)
		close(peers[i].fd);
	peer_reset(i);
}

static void settle(bool check);

/* Connects slot i through the listening socket, as a real client does; gmemd accepts it (or refuses it
 * for a connection limit) in the loop. */
static void peer_connect_listener(int i)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	peer_reset(i);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return;
	}
	uint64_t before = m->next_client_id;
	peers[i].fd = fd;
	settle(false);
	/* Only this connection was pending: if gmemd made a client, it is the newest. */
	if (m->next_client_id > before)
		peers[i].cid = m->next_client_id;
}

/* Remembers the (id, op) of a request a client sends, so its reply can be checked against the op. */
static void note_sent(int i, const char *buf, size_t len)
{
	struct json_object *root;
	struct gmem_envelope env;

	if (gmem_json_parse(buf, len, &root, NULL) < 0)
		return;
	if (gmem_envelope_parse_request(root, &env, NULL) == 0) {
		enum gmem_op op = gmem_op_from_name(env.name);
		if (op != GMEM_OP_INVALID) {
			struct peer *p = &peers[i];
			if (p->n_sent < SENT_MAX) {
				p->sent[p->n_sent].id = env.id;
				p->sent[p->n_sent].op = op;
				p->n_sent++;
			} else {
				p->sent_overflow = true;
			}
		}
	}
	json_object_put(root);
}

static void send_dgram(int i, const char *buf, size_t len, size_t nfds)
{
	int fds[2] = { devnull, devnull };

	if (peers[i].fd < 0)
		return;
	if (trace) {
		char label[32];
		snprintf(label, sizeof(label), "client %d sends", i);
		dump(label, buf, len);
	}
	note_sent(i, buf, len);
	/* Errors are the daemon's business (it may have dropped this client): nothing to check here. */
	(void)gmem_wire_send(peers[i].fd, buf, len, nfds ? fds : NULL, nfds, MSG_DONTWAIT);
}

/* ---- what the daemon sends ---- */

static void check_event(int i, const struct gmem_envelope *env, const char *buf, size_t len)
{
	alignas(max_align_t) char data[STRUCT_MAX];
	struct gmem_codec_error e = { 0 };
	enum gmem_wire_event ev = gmem_wire_event_from_name(env->name);

	if (ev == GMEM_WIRE_EVENT_INVALID) {
		dump("gmemd sent", buf, len);
		die("gmemd sent an event that is not in gmem_events[]", env->name);
	}
	memset(data, 0, sizeof(data));
	if (gmem_decode(gmem_events[ev].fields, env->body, data, 0, &e) < 0) {
		dump("gmemd sent", buf, len);
		die("gmemd sent an event whose data does not decode", e.msg);
	}
	seen.events |= UINT64_C(1) << ev;
	struct peer *p = &peers[i];
	if (ev == GMEM_WIRE_EVENT_PREPARE && p->n_prepares < PENDING_MAX) {
		const struct gmem_prepare_event *pe = (const void *)data;
		p->prepares[p->n_prepares++] = (struct conv_id){ pe->epoch, pe->seq };
	} else if (ev == GMEM_WIRE_EVENT_COMMIT && p->n_commits < PENDING_MAX) {
		const struct gmem_commit_event *ce = (const void *)data;
		p->commits[p->n_commits++] = (struct conv_id){ ce->epoch, ce->seq };
	}
	gmem_fields_release(gmem_events[ev].fields, data);
}

static void check_reply(int i, const struct gmem_envelope *env, size_t nfds, const char *buf, size_t len)
{
	alignas(max_align_t) char reply[STRUCT_MAX];
	struct peer *p = &peers[i];
	bool candidate = false, decoded = false;
	char msg[200] = "";

	for (size_t k = 0; k < p->n_sent && !decoded; k++) {
		if (p->sent[k].id != env->id)
			continue;
		int op = p->sent[k].op;
		struct gmem_codec_error e = { 0 };
		if (nfds > 0 && !(gmem_ops[op].flags & GMEM_OP_FD_REPLY))
			continue;
		candidate = true;
		memset(reply, 0, sizeof(reply));
		if (gmem_decode(gmem_ops[op].reply, env->body, reply, 0, &e) == 0) {
			decoded = true;
			if (op == GMEM_OP_DELEGATE)
				memcpy(last_token, ((const struct gmem_delegate_reply *)(const void *)reply)->token,
				       sizeof(last_token));
			seen.results |= UINT64_C(1) << op;
			gmem_fields_release(gmem_ops[op].reply, reply);
		} else {
			snprintf(msg, sizeof(msg), "as the reply of '%s': %s", gmem_ops[op].name, e.msg);
		}
	}
	if (decoded || p->sent_overflow)
		return;
	dump("gmemd sent", buf, len);
	if (!candidate)
		die(nfds ? "gmemd sent a descriptor with a reply to no op that carries one"
			 : "gmemd replied to an id this client never sent",
		    NULL);
	die("gmemd sent a reply that does not decode", msg);
}

static void check_output(int i, const char *buf, const struct gmem_wire_in *in)
{
	struct gmem_codec_error e = { 0 };
	struct json_object *root;
	struct gmem_envelope env;

	if (in->truncated || in->len > GMEM_MSG_MAX)
		die("gmemd sent a datagram larger than GMEM_MSG_MAX", NULL);
	if (in->ctrunc || in->nfds > 1)
		die("gmemd sent more than one descriptor in a datagram", NULL);
	if (gmem_json_parse(buf, in->len, &root, &e) < 0) {
		dump("gmemd sent", buf, in->len);
		die("gmemd sent a datagram its clients cannot parse", e.msg);
	}
	if (gmem_envelope_parse_incoming(root, &env, &e) < 0) {
		dump("gmemd sent", buf, in->len);
		die("gmemd sent a datagram whose envelope clients cannot parse", e.msg);
	}
	if (in->nfds && env.kind != GMEM_MSG_REPLY) {
		dump("gmemd sent", buf, in->len);
		die("gmemd sent a descriptor with something other than a reply", NULL);
	}
	switch (env.kind) {
	case GMEM_MSG_EVENT:
		check_event(i, &env, buf, in->len);
		break;
	case GMEM_MSG_REPLY:
		check_reply(i, &env, in->nfds, buf, in->len);
		break;
	case GMEM_MSG_ERROR:
		if (env.has_id && env.err == EOPNOTSUPP) {
			int op = sent_op(&peers[i], env.id);
			if (op >= 0 && kmod_only(op)) {
				seen.unsupported |= UINT64_C(1) << op;
				break;
			}
		}
		if (seen.errors++ == 0)
			snprintf(seen.first_error, sizeof(seen.first_error), "client %d got %s: %.200s", i,
				 env.err_name, env.message);
		break;
	case GMEM_MSG_REQUEST:
		die("parse_incoming returned a request", NULL);
	}
	json_object_put(root);
}

/* Reads everything waiting for client i. */
static void drain(int i)
{
	struct peer *p = &peers[i];
	bool reset = false;

	while (p->fd >= 0 && !p->paused && !p->eof) {
		struct gmem_wire_in in;
		int fds[4];
		int r = gmem_wire_recv(p->fd, rbuf, sizeof(rbuf), fds, 4, MSG_DONTWAIT, &in);
		if (r == -EAGAIN)
			break;
		if (r == -ECONNRESET && !reset) {
			/* gmemd closed with our datagrams unread: the kernel reports that ahead of what it had
			 * queued for us (its last word, e.g. why it refused us). Read on once. */
			reset = true;
			continue;
		}
		if (r <= 0) {
			p->eof = true; /* the daemon closed it (0) or it broke */
			break;
		}
		for (size_t k = 0; k < in.nfds && k < 4; k++)
			close(fds[k]);
		if (trace) {
			char label[48];
			snprintf(label, sizeof(label), "client %d receives%s", i, in.nfds ? " (with an fd)" : "");
			dump(label, rbuf, in.len);
		}
		check_output(i, rbuf, &in);
	}
}

/* One poll over our ends and the daemon's: reads what our clients were sent, and says whether gmemd
 * has anything left to do (input waiting on a client's socket, or output queued for one). */
static bool poll_all(void)
{
	struct pollfd pfd[2 * K + 8];
	int who[2 * K + 8];
	nfds_t n = 0;
	bool busy = false;

	for (int i = 0; i < K; i++)
		if (peers[i].fd >= 0 && !peers[i].paused && !peers[i].eof) {
			who[n] = i;
			pfd[n++] = (struct pollfd){ .fd = peers[i].fd, .events = POLLIN };
		}
	list_for_each(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		busy |= !list_empty(&c->outq);
		if (n < ARRAY_SIZE(pfd)) {
			who[n] = -1;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
		}
	}
	if (n == 0 || poll(pfd, n, 0) <= 0)
		return busy;
	for (nfds_t k = 0; k < n; k++) {
		if (!pfd[k].revents)
			continue;
		if (who[k] >= 0)
			drain(who[k]);
		else
			busy = true;
	}
	return busy;
}

static void check_invariants(void);

/* Runs the loop until gmemd has nothing left to do, reading what each client is sent as it goes; then
 * checks the daemon's bookkeeping if asked. */
static void settle(bool check)
{
	for (int round = 0; round < SETTLE_ROUNDS; round++) {
		if (event_base_loop(m->base, EVLOOP_NONBLOCK) < 0)
			die("event_base_loop failed", NULL);
		if (!poll_all() && event_base_get_num_events(m->base, EVENT_BASE_COUNT_ACTIVE) == 0)
			break;
	}
	if (check)
		check_invariants();
}

/* ---- the daemon's bookkeeping ---- */

static bool client_live(const struct client *x)
{
	list_for_each(pos, &m->clients)
		if (list_entry(pos, struct client, node) == x)
			return true;
	return false;
}

static void check_invariants(void)
{
	size_t n = 0, n_guests = 0;
	uint64_t used = 0;

	list_for_each(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		size_t na = 0;
		n++;
		if (c->dead)
			die("a dead client is on the live list", NULL);
		list_for_each(p2, &c->attachments) {
			struct attachment *a = list_entry(p2, struct attachment, client_node);
			if (a->client != c)
				die("an attachment on a client's list belongs to another client", NULL);
			if (guest_table_find(&m->guests, a->guest->name) != a->guest)
				die("an attachment points at a guest that is not in the table", NULL);
			na++;
		}
		if (na != c->n_attachments)
			die("a client's n_attachments does not match its list", NULL);
		list_for_each(p2, &c->holders) {
			struct holder *h = list_entry(p2, struct holder, client_node);
			if (h->client != c || guest_table_find(&m->guests, h->guest->name) != h->guest)
				die("a holder record of a client is inconsistent", NULL);
		}
	}
	if (n != m->n_clients)
		die("n_clients does not match the live list", NULL);
	list_for_each(pos, &m->dead) {
		struct client *c = list_entry(pos, struct client, node);
		if (!c->dead || !list_empty(&c->attachments) || !list_empty(&c->holders) || c->n_attachments)
			die("a client on the dead list still holds attachments or files", NULL);
	}
	list_for_each(pos, &m->guests.order) {
		struct guest *g = list_entry(pos, struct guest, order);
		uint64_t na = 0, files = 0;
		n_guests++;
		used += g->size;
		if (guest_table_find(&m->guests, g->name) != g)
			die("a guest in the order list is not found by name", g->name);
		if (g->lease && !client_live(g->lease))
			die("a guest is leased by a client that is not live", g->name);
		list_for_each(p2, &g->attachments) {
			struct attachment *a = list_entry(p2, struct attachment, guest_node);
			if (a->guest != g || !client_live(a->client))
				die("an attachment of a guest is inconsistent or held by a dead client", g->name);
			if (a->offset % g->granule || a->length % g->granule || a->offset + a->length > g->size)
				die("an attachment lies outside its guest", g->name);
			na++;
		}
		list_for_each(p2, &g->pid_attachments) {
			struct pid_attachment *a = list_entry(p2, struct pid_attachment, guest_node);
			if (a->guest != g || a->pidfd < 0)
				die("an attachment held for a process is inconsistent", g->name);
			na++;
		}
		if (na != g->n_attachments)
			die("a guest's n_attachments does not match its lists", g->name);
		list_for_each(p2, &g->holders) {
			struct holder *h = list_entry(p2, struct holder, guest_node);
			if (h->guest != g || !client_live(h->client))
				die("a holder of a guest is inconsistent or a dead client", g->name);
			files += h->files;
		}
		if (files != g->n_files)
			die("a guest's n_files is not the sum of its holders' files", g->name);
	}
	if (n_guests != m->guests.count)
		die("the guest table's count does not match its list", NULL);
	list_for_each(pos, &m->delegations) {
		struct delegation *dl = list_entry(pos, struct delegation, node);
		if (guest_table_find(&m->guests, dl->g->name) != dl->g)
			die("a delegation points at a guest that is not in the table", NULL);
		if (dl->token[0] ? dl->at != NULL || !dl->from || !client_live(dl->from) || !dl->expire
				 : !dl->at || dl->at->delegation != dl || dl->at->guest != dl->g || !client_live(dl->at->client))
			die("a delegation is inconsistent with its token, attachment or maker", NULL);
	}
	/* Destroyed guests whose memory an IOMMU holder may still reach stay allocated (quarantine.h): the
	 * pool's quarantined bytes less those of live guests. */
	uint64_t held = quarantine_bytes(m, NULL);
	list_for_each(pos, &m->guests.order)
		held -= quarantine_bytes(m, list_entry(pos, struct guest, order));
	if (m->bops->pool_used(m->backend) != used + held)
		die("the pool's used bytes are not the sum of the guests' sizes and the quarantine's", NULL);
}

/* ---- commands ---- */

struct timers {
	struct event *ev[256];
	size_t n;
};

static int collect_timer(const struct event_base *base, const struct event *ev, void *arg)
{
	struct timers *t = arg;
	(void)base;
	if (!(event_get_events(ev) & (EV_READ | EV_WRITE | EV_SIGNAL)) && event_pending(ev, EV_TIMEOUT, NULL) &&
	    t->n < ARRAY_SIZE(t->ev))
		t->ev[t->n++] = (struct event *)ev;
	return 0;
}

/* Every armed timer fires now, as if its time had come (the callback may not change the base, so the
 * timers are collected first and activated after). */
static void fire_timers(void)
{
	struct timers t = { .n = 0 };
	event_base_foreach_event(m->base, collect_timer, &t);
	for (size_t k = 0; k < t.n; k++)
		event_active(t.ev[k], EV_TIMEOUT, 0);
}

static void answer_prepares(int i, bool yes)
{
	struct peer *p = &peers[i];
	char buf[256];

	for (size_t k = 0; k < p->n_prepares; k++) {
		int n = snprintf(buf, sizeof(buf),
				 "{\"id\":%llu,\"op\":\"vote\",\"args\":{\"epoch\":%llu,\"seq\":%llu,\"vote\":\"%s\"%s}}",
				 (unsigned long long)p->auto_id++, (unsigned long long)p->prepares[k].epoch,
				 (unsigned long long)p->prepares[k].seq, yes ? "yes" : "no",
				 yes ? "" : ",\"errno\":\"EBUSY\",\"reason\":\"fuzz says no\"");
		send_dgram(i, buf, (size_t)n, 0);
	}
	p->n_prepares = 0;
}

static void answer_commits(int i)
{
	struct peer *p = &peers[i];
	char buf[256];

	for (size_t k = 0; k < p->n_commits; k++) {
		int n = snprintf(buf, sizeof(buf), "{\"id\":%llu,\"op\":\"ack\",\"args\":{\"epoch\":%llu,\"seq\":%llu}}",
				 (unsigned long long)p->auto_id++, (unsigned long long)p->commits[k].epoch,
				 (unsigned long long)p->commits[k].seq);
		send_dgram(i, buf, (size_t)n, 0);
	}
	p->n_commits = 0;
}

static void send_oversize(int i, const char *buf, size_t len)
{
	static char big[GMEM_MSG_MAX + 64];

	if (peers[i].fd < 0)
		return;
	memset(big, ' ', sizeof(big));
	memcpy(big, buf, MIN(len, sizeof(big)));
	/* Not noted as sent: gmemd never reads it as a request (and parsing 64 KiB would cost). */
	(void)gmem_wire_send(peers[i].fd, big, sizeof(big), NULL, 0, MSG_DONTWAIT);
}

static void direct(int i, const char *buf, size_t len)
{
	struct client *c = peer_client(i);
	if (!c)
		return;
	char *copy = malloc(len ? len : 1); /* exactly len bytes: a read past them is an ASan report */
	if (!copy)
		die("out of memory", NULL);
	memcpy(copy, buf, len);
	note_sent(i, buf, len);
	client_handle_datagram(c, copy, len);
	free(copy);
}

static int client_index(const char *p, size_t n)
{
	return n >= 1 && p[0] >= '0' && p[0] < '0' + K ? p[0] - '0' : -1;
}

static void run_record(const char *p, size_t n, bool nested, bool check);

static void repeat(const char *p, size_t n)
{
	if (n < 1)
		return;
	int e = p[0] >= '0' && p[0] <= '8' ? p[0] - '0' : -1;
	if (e < 0)
		return;
	p++, n--;
	size_t dollars = 0;
	for (size_t k = 0; k < n; k++)
		dollars += p[k] == '$';
	char *buf = malloc(n + dollars * 8 + 1);
	if (!buf)
		die("out of memory", NULL);
	unsigned reps = 1u << e;
	for (unsigned rep = 0; rep < reps && records_left; rep++) {
		size_t len = 0;
		for (size_t k = 0; k < n; k++) {
			if (p[k] == '$')
				len += (size_t)sprintf(buf + len, "%u", rep);
			else
				buf[len++] = p[k];
		}
		/* The loop runs after every 16th: gmemd reads up to 32 datagrams per wake-up anyway. */
		run_record(buf, len, true, false);
		if (rep % 16 == 15)
			settle(false);
	}
	free(buf);
	settle(true);
}

static void manager_start(void)
{
	struct manager_config cfg = {
		.backend = "memfd",
		.socket_path = sock_path,
		.state_dir = state_path,
		.pool_size = POOL_SIZE,
		.socket_mode = 0600,
		.prepare_timeout_ms = TIMEOUT_MS,
		.ack_timeout_ms = TIMEOUT_MS,
		.socket_gid = (gid_t)-1,
		.admin_gid = ADMIN_GID,
		.quota_bytes = 16u << 20,
		.quota_guests = 16,
		.max_connections = 5,
		.max_connections_per_uid = 3,
		NO_BUS
	};
	int r = manager_new(&cfg, &m);
	if (r < 0)
		die("manager_new failed", strerror(-r));
	m->epoch = FUZZ_EPOCH;
}

static void connect_start_clients(void)
{
	for (int i = 0; i < K; i++) {
		peer_close(i);
		if (i < K_START)
			peer_connect(i);
	}
}

/* gmemd stops with everything live and starts again, as after a restart. */
static void restart(void)
{
	m = manager_free(m);
	for (int i = 0; i < K; i++)
		peer_close(i);
	manager_start();
	connect_start_clients();
}

/* Back to the baseline every input starts from, through gmemd's own paths: everyone disconnects, then
 * every guest is destroyed. What is left must be nothing. */
static void manager_reset(void)
{
	for (int i = 0; i < K; i++)
		peer_close(i);
	settle(true);
	if (!list_empty(&m->clients) || !list_empty(&m->dead) || m->n_clients)
		die("a client outlived its disconnect", NULL);
	while (!list_empty(&m->guests.order))
		manager_guest_destroy(m, list_entry(m->guests.order.next, struct guest, order));
	settle(true);
	if (!list_empty(&m->active))
		die("a conversion outlived its guest", NULL);
	if (!list_empty(&m->delegations))
		die("a delegation outlived its guest", NULL);
	/* The holders of quarantined memory are this process's own sockets: they never exit. */
	quarantine_release_all(m);
	if (m->bops->pool_used(m->backend) != 0)
		die("the pool is not empty once every guest is destroyed", NULL);
	/* What an 'R' restart brought back lost, and what it decided, goes too; and the journal starts over,
	 * so the next input's restart replays only its own records. */
	while (!list_empty(&m->lost))
		manager_forget_lost(m, list_entry(m->lost.next, struct lost_guest, node));
	memset(&m->outcomes, 0, sizeof(m->outcomes));
	(void)unlinkat(m->state_fd, SNAPSHOT_FILE, 0);
	if (journal_reset(&m->journal) < 0)
		die("cannot empty the journal", NULL);
	m->next_client_id = m->next_guest_id = m->next_attach_id = m->next_conv_seq = m->next_delegation_id = 0;
	m->epoch = FUZZ_EPOCH;
}

static void free_manager_at_exit(void)
{
	for (int i = 0; i < K; i++)
		peer_close(i);
	m = manager_free(m);
	if (devnull >= 0)
		devnull = safe_close(devnull);
}

/* A copy of the record with each "@T" replaced by the last token (malloc'd; the caller frees it), or NULL
 * when there is nothing to replace. */
static char *with_token(const char *p, size_t n, size_t *ret_n)
{
	size_t hits = 0;
	if (!last_token[0])
		return NULL;
	for (size_t k = 0; k + 1 < n; k++)
		hits += p[k] == '@' && p[k + 1] == 'T';
	if (!hits)
		return NULL;
	char *buf = malloc(n + hits * GMEM_TOKEN_LEN + 1);
	if (!buf)
		die("out of memory", NULL);
	size_t len = 0;
	for (size_t k = 0; k < n; k++) {
		if (k + 1 < n && p[k] == '@' && p[k + 1] == 'T') {
			memcpy(buf + len, last_token, GMEM_TOKEN_LEN);
			len += GMEM_TOKEN_LEN;
			k++;
		} else {
			buf[len++] = p[k];
		}
	}
	*ret_n = len;
	return buf;
}

static void run_record_raw(const char *p, size_t n, bool nested, bool check);

static void run_record(const char *p, size_t n, bool nested, bool check)
{
	size_t tn;
	char *t = n && p[0] != '*' ? with_token(p, n, &tn) : NULL;
	if (t) {
		run_record_raw(t, tn, nested, check);
		free(t);
	} else {
		run_record_raw(p, n, nested, check);
	}
}

static void run_record_raw(const char *p, size_t n, bool nested, bool check)
{
	int i;

	if (n == 0 || records_left == 0)
		return;
	records_left--;
	char cmd = p[0];
	p++, n--;
	if (cmd >= '0' && cmd < '0' + K) {
		send_dgram(cmd - '0', p, n, 0);
	} else if (cmd == '*') {
		if (!nested)
			repeat(p, n);
		return; /* repeat() ran the loop */
	} else if (cmd == 't') {
		fire_timers();
	} else if (cmd == 'S') {
		/* manager_run() returns once the loop has gone round once, then says goodbye to everyone. */
		event_base_loopexit(m->base, NULL);
		if (manager_run(m) < 0)
			die("manager_run failed", NULL);
	} else if (cmd == 'R') {
		restart();
	} else if ((i = client_index(p, n)) >= 0) {
		p++, n--;
		switch (cmd) {
		case 'd':
			direct(i, p, n);
			break;
		case 'F':
			send_dgram(i, p, n, 2);
			break;
		case 'O':
			send_oversize(i, p, n);
			break;
		case 'Z':
			send_dgram(i, "", 0, 0);
			break;
		case 'x':
			peer_close(i);
			break;
		case 'r':
			peer_close(i);
			peer_connect(i);
			break;
		case 'c':
			peer_close(i);
			peer_connect_listener(i);
			break;
		case 'p':
			peers[i].paused = !peers[i].paused;
			break;
		case 'v':
			answer_prepares(i, n == 0 || p[0] != 'n');
			break;
		case 'k':
			answer_commits(i);
			break;
		default:
			return;
		}
	} else {
		return;
	}
	if (!nested)
		settle(check);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	if (!inited) {
		for (int i = 0; i < K; i++)
			peer_reset(i);
		init_once();
		manager_start();
		atexit(free_manager_at_exit);
		inited = true;
	}
	int fds_before = count_fds();

	connect_start_clients();
	settle(true);
	records_left = RECORDS_MAX;
	last_token[0] = '\0';
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		run_record(p, n, false, true);
		p += n + (nl ? 1 : 0);
	}
	settle(true);
	manager_reset();

	int fds = count_fds();
	if (fds != fds_before) {
		fprintf(stderr, "fuzz-requests: %d fds open after the input, %d before it\n", fds, fds_before);
		die("file descriptors leaked", NULL);
	}
	return 0;
}

#ifdef GMEM_LIBFUZZER
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed);

/* Three mutations in four know the protocol (mutate.c); the fourth, and any the structure-aware one
 * cannot make, are libFuzzer's own byte-level ones, with the dictionary. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed)
{
	if (seed % 4 != 0) {
		size_t n = fuzz_mutate_requests(data, size, max, seed);
		if (n)
			return n;
	}
	return LLVMFuzzerMutate(data, size, max);
}
#endif

/* ---- seed checks (replay --check-seeds) ---- */

static uint64_t passed_ops, passed_events;

int fuzz_seed_check(const char *name, const uint8_t *data, size_t size, char *why, size_t whylen)
{
	int op = fuzz_match_name(name, "op-", _GMEM_OP_MAX, fuzz_op_name);
	int ev = fuzz_match_name(name, "event-", _GMEM_WIRE_EVENT_MAX, fuzz_event_name);

	memset(&seen, 0, sizeof(seen));
	LLVMFuzzerTestOneInput(data, size);
	if (op >= 0) {
		/* An op seed is a clean conversation: everything in it succeeds, the named op included (a
		 * kmod-only op: answered EOPNOTSUPP, and nothing else fails). */
		if (seen.errors) {
			snprintf(why, whylen, "%u error replies, the first: %s", seen.errors, seen.first_error);
			return -1;
		}
		if (kmod_only(op) ? !(seen.unsupported & (UINT64_C(1) << op)) : !(seen.results & (UINT64_C(1) << op))) {
			snprintf(why, whylen, "gmemd never answered '%s' with %s", gmem_ops[op].name,
				 kmod_only(op) ? "EOPNOTSUPP (memfd)" : "a result");
			return -1;
		}
		passed_ops |= UINT64_C(1) << op;
		return 0;
	}
	if (ev >= 0) {
		if (!(seen.events & (UINT64_C(1) << ev))) {
			snprintf(why, whylen, "no client was sent the event '%s'", gmem_events[ev].name);
			return -1;
		}
		passed_events |= UINT64_C(1) << ev;
		return 0;
	}
	snprintf(why, whylen, "names no op or event");
	return -1;
}

int fuzz_seed_check_done(void)
{
	int r = 0;
	for (int i = 0; i < _GMEM_OP_MAX; i++)
		if (!(passed_ops & (UINT64_C(1) << i))) {
			fprintf(stderr, "fuzz-requests: no passing seed op-%s\n", gmem_ops[i].name);
			r = -1;
		}
	for (int i = 0; i < _GMEM_WIRE_EVENT_MAX; i++)
		if (!(passed_events & (UINT64_C(1) << i))) {
			fprintf(stderr, "fuzz-requests: no passing seed event-%s\n", gmem_events[i].name);
			r = -1;
		}
	return r;
}
