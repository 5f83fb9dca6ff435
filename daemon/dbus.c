/* SPDX-License-Identifier: MIT */
/*
 * dbus: org.gmem.Manager1 over sd-bus, on the manager's libevent loop (see dbus.h).
 *
 * Loop glue: one event on sd_bus_get_fd() watching sd_bus_get_events(), one timer for
 * sd_bus_get_timeout() (absolute CLOCK_MONOTONIC µs, UINT64_MAX = none). A wake-up drains
 * sd_bus_process() (at most DISPATCH_MAX messages, so the socket's clients keep their turn) and re-arms
 * both; so does every signal queued from outside a bus callback (libevent has no prepare hook).
 *
 * Invariants:
 * - Nothing here blocks. Methods need the caller's uid for visibility; a bus daemon does not attach it
 *   to messages, and sd_bus_query_sender_creds() would then ask the bus with a synchronous call inside
 *   the loop. So such calls are answered later: GetConnectionCredentials goes out asynchronously, and
 *   the method replies when the credentials come back (struct caller_query).
 * - Visibility is the socket's: a caller is treated like a client of its uid and groups (policy.c),
 *   so ListGuests and DescribeGuest show only guests it may see, and ListClients only connections of
 *   its own uid unless it may be admin (root, gmemd's uid, the admin group). Invisible and missing
 *   guests give the same error. The properties are gmemd-wide counters, the same for everyone.
 * - ConversionFailed goes out for every aborted conversion. ConversionSummary is at most one per guest
 *   per second: a guest's first conversion after a quiet spell opens a one-second window, conversions
 *   inside it are counted, and the window's summary goes out when it closes. A window opens only after
 *   the previous one was emitted, so two summaries of one guest are always >= 1 s apart, and windows
 *   close in the order they opened (one FIFO, one timer).
 * - Losing the bus drops the connection, its waiting callers and the open windows, and schedules a
 *   reconnect (1 s, doubling to 30 s; back to 1 s once a bus answers).
 */
#include "dbus.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "util.h"

#ifndef GMEM_HAVE_DBUS
#define GMEM_HAVE_DBUS 1
#endif

int dbus_kind_from_string(const char *s)
{
	if (strcmp(s, "system") == 0)
		return DBUS_KIND_SYSTEM;
	if (strcmp(s, "session") == 0)
		return DBUS_KIND_SESSION;
	if (strcmp(s, "none") == 0)
		return DBUS_KIND_NONE;
	return -EINVAL;
}

#if GMEM_HAVE_DBUS

#include <event2/event.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "backend.h"
#include "client.h"
#include "codec.h"
#include "errname.h"
#include "gmem-proto.h"
#include "guest.h"
#include "list.h"
#include "manager.h"
#include "policy.h"
#include "sharemap.h"
#include "twopc.h"

#ifndef GMEM_VERSION
#define GMEM_VERSION "0"
#endif

#define DBUS_NAME "org.gmem.Manager1"
#define DBUS_PATH "/org/gmem/Manager1"
#define DBUS_IFACE "org.gmem.Manager1"
#define DBUS_ERROR_NO_SUCH_GUEST "org.gmem.Error.NoSuchGuest"

#define RETRY_MIN_S 1
#define RETRY_MAX_S 30
#define DISPATCH_MAX 64          /* messages per wake-up */
#define QUERIES_MAX 256          /* method calls waiting for their caller's credentials */
#define SUMMARY_WINDOW_US 1000000 /* one ConversionSummary per guest per this */
#define SUMMARY_BUCKETS 256      /* a power of two */
#define DESCRIBE_RUNS_MAX 65536  /* a bigger map is paged through the socket (gmemctl map) */
#define WQUEUE_MAX 4096          /* messages waiting for a bus that does not read: beyond, refuse and drop */

/* The open summary window of one guest. */
struct summary {
	uint64_t guest_id; /* ids are never reused within a run: a recreated name is a new guest */
	char name[GMEM_NAME_MAX + 1];
	uint32_t committed, aborted;
	uint64_t bytes; /* changed by the committed ones */
	int64_t due_us; /* the window closes */
	struct summary *hash_next;
	struct list_node node; /* dbus.windows, in due order */
};

struct dbus;

/* Builds and sends the reply to call for a caller seen as who. Return: >= 0, or -errno (answered with
 * an error by the caller of this). */
typedef int (*reply_fn)(struct dbus *b, sd_bus_message *call, const struct client *who);

/* A method call waiting for GetConnectionCredentials of its sender. */
struct caller_query {
	struct dbus *b;
	sd_bus_message *call; /* a reference */
	sd_bus_slot *slot;    /* the pending GetConnectionCredentials (holds a reference on the bus) */
	reply_fn fn;
	struct list_node node; /* dbus.queries */
};

struct dbus {
	struct manager *m;
	enum dbus_kind kind;
	sd_bus *bus; /* NULL while there is no connection */

	struct event *io_ev, *time_ev, *retry_ev, *flush_ev;
	int io_fd;          /* what io_ev watches now: -1 and 0 when it is not added */
	short io_flags;
	uint64_t time_usec; /* the deadline time_ev is armed for; UINT64_MAX: not armed */
	unsigned backoff_s;
	bool outage_logged; /* the notice for this outage is out: retries log at debug */

	struct list_node queries; /* struct caller_query.node */
	size_t n_queries;
	struct summary *buckets[SUMMARY_BUCKETS];
	struct list_node windows; /* struct summary.node, oldest first */
};

static const char *kind_name(enum dbus_kind k)
{
	return k == DBUS_KIND_SYSTEM ? "system" : "session";
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval tv_from_us(uint64_t us)
{
	return (struct timeval){ .tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000) };
}

/* ---- loop glue ---- */

static void on_bus_ready(evutil_socket_t fd, short what, void *arg);
static void schedule_retry(struct dbus *b);
static void drop_connection(struct dbus *b);

/*
 * Makes the loop watch what sd-bus wants now: the fd's events and the next timeout. again: sd-bus has
 * more to do at once (the dispatch stopped at DISPATCH_MAX). Return: 0 or -errno (the bus is gone).
 */
static int rearm(struct dbus *b, bool again)
{
	struct event_base *base = b->m->base;
	int fd = sd_bus_get_fd(b->bus);
	int ev = sd_bus_get_events(b->bus);
	uint64_t until;

	if (fd < 0)
		return fd;
	if (ev < 0)
		return ev;
	short flags = (short)((ev & POLLIN ? EV_READ : 0) | (ev & POLLOUT ? EV_WRITE : 0));
	if (fd != b->io_fd || flags != b->io_flags) {
		event_del(b->io_ev);
		b->io_fd = -1;
		b->io_flags = 0;
		if (flags) {
			if (event_assign(b->io_ev, base, fd, flags | EV_PERSIST, on_bus_ready, b) < 0 ||
			    event_add(b->io_ev, NULL) < 0)
				return -ENOMEM;
			b->io_fd = fd;
			b->io_flags = flags;
		}
	}

	int r = sd_bus_get_timeout(b->bus, &until);
	if (r < 0)
		return r;
	if (again)
		until = 0;
	if (until != b->time_usec) {
		event_del(b->time_ev);
		b->time_usec = UINT64_MAX;
		if (until != UINT64_MAX) {
			uint64_t now = (uint64_t)now_us();
			struct timeval tv = tv_from_us(until > now ? until - now : 0);
			if (event_add(b->time_ev, &tv) < 0)
				return -ENOMEM;
			b->time_usec = until;
		}
	}
	return 0;
}

static void lost(struct dbus *b, int r)
{
	/* One notice per outage: a bus that takes connections and drops them says so once, not per retry. */
	log_msg(b->outage_logged ? LOG_DEBUG : LOG_NOTICE,
		"D-Bus: lost the %s bus (%s); serving the socket without it, reconnecting", kind_name(b->kind),
		strerror(r < 0 ? -r : ECONNRESET));
	b->outage_logged = true;
	drop_connection(b);
	schedule_retry(b);
}

/* Re-arms after something was queued from outside a bus callback. */
static void kick(struct dbus *b)
{
	int r = rearm(b, false);
	if (r < 0)
		lost(b, r);
}

static void on_bus_ready(evutil_socket_t fd, short what, void *arg)
{
	struct dbus *b = arg;
	int r = 0;
	(void)fd;

	if (what & EV_TIMEOUT)
		b->time_usec = UINT64_MAX; /* a timer fires once */
	for (int i = 0; i < DISPATCH_MAX; i++) {
		r = sd_bus_process(b->bus, NULL);
		if (r <= 0)
			break;
	}
	if (r >= 0 && sd_bus_is_open(b->bus) <= 0)
		r = -ECONNRESET;
	if (r >= 0)
		r = rearm(b, r > 0);
	if (r < 0)
		lost(b, r);
}

/* The bus daemon stopped reading from us: add nothing more to what waits for it. */
static bool congested(struct dbus *b)
{
	uint64_t n = 0;
	return sd_bus_get_n_queued_write(b->bus, &n) >= 0 && n >= WQUEUE_MAX;
}

/* ---- who is calling ---- */

static struct caller_query *query_free(struct caller_query *q)
{
	if (!q)
		return NULL;
	list_del(&q->node);
	q->b->n_queries--;
	sd_bus_slot_unref(q->slot);
	sd_bus_message_unref(q->call);
	free(q);
	return NULL;
}

static int answer(struct dbus *b, sd_bus_message *call, reply_fn fn, uid_t uid, const gid_t *gids, size_t n_gids)
{
	/* A client of that uid and those groups, as policy.c sees one: never admin, since a D-Bus caller
	 * asks for no role. gid (the primary group) is unknown; the bus's group list includes it. */
	struct client who = { .uid = uid, .gid = (gid_t)-1, .groups = (gid_t *)gids, .n_groups = n_gids };
	return fn(b, call, &who);
}

static int on_caller_creds(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	struct caller_query *q = userdata;
	_cleanup_free_ gid_t *gids = NULL;
	size_t n_gids = 0;
	uint32_t uid = UINT32_MAX;
	int r;
	(void)ret_error;

	if (sd_bus_message_is_method_error(reply, NULL)) {
		const sd_bus_error *e = sd_bus_message_get_error(reply);
		log_debug("D-Bus: no credentials for %s: %s", sd_bus_message_get_sender(q->call),
			  e && e->message ? e->message : "error");
		goto denied;
	}
	r = sd_bus_message_enter_container(reply, 'a', "{sv}");
	while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
		const char *key;
		r = sd_bus_message_read(reply, "s", &key);
		if (r < 0)
			break;
		if (strcmp(key, "UnixUserID") == 0) {
			r = sd_bus_message_read(reply, "v", "u", &uid);
		} else if (strcmp(key, "UnixGroupIDs") == 0 && !gids) {
			const void *p;
			size_t size;
			r = sd_bus_message_enter_container(reply, 'v', "au");
			if (r >= 0)
				r = sd_bus_message_read_array(reply, 'u', &p, &size);
			if (r >= 0 && size) {
				gids = malloc(size);
				if (!gids) {
					r = -ENOMEM;
					break;
				}
				memcpy(gids, p, size);
				n_gids = size / sizeof(uint32_t);
			}
			if (r >= 0)
				r = sd_bus_message_exit_container(reply);
		} else {
			r = sd_bus_message_skip(reply, "v");
		}
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
	}
	if (r < 0 || uid == UINT32_MAX) {
		log_debug("D-Bus: unreadable credentials for %s", sd_bus_message_get_sender(q->call));
		goto denied;
	}
	_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is not 32 bits");
	r = answer(q->b, q->call, q->fn, (uid_t)uid, gids, n_gids);
	if (r < 0)
		(void)sd_bus_reply_method_errno(q->call, r, NULL);
	query_free(q);
	return 0;

denied:
	(void)sd_bus_reply_method_errorf(q->call, SD_BUS_ERROR_ACCESS_DENIED, "gmemd cannot tell who is calling");
	query_free(q);
	return 0;
}

/*
 * Runs fn for the caller of call: at once when its identity is at hand (the message carries it, or a
 * peer-to-peer connection's peer credentials), else once the bus told us (the method is answered
 * later). Return: as a method handler.
 */
static int with_caller(sd_bus_message *call, struct dbus *b, reply_fn fn, sd_bus_error *ret_error)
{
	const char *sender = sd_bus_message_get_sender(call);
	sd_bus_creds *mc = sd_bus_message_get_creds(call);
	uint64_t have = mc ? sd_bus_creds_get_mask(mc) : 0;
	int r;

	if (!sender || (have & SD_BUS_CREDS_EUID)) {
		/* No round trip: only what the message (or the connection) already holds is asked for. */
		sd_bus_creds *c = NULL;
		const gid_t *gids = NULL;
		uid_t uid;
		r = sd_bus_query_sender_creds(call, SD_BUS_CREDS_EUID | (have & SD_BUS_CREDS_SUPPLEMENTARY_GIDS), &c);
		if (r >= 0)
			r = sd_bus_creds_get_euid(c, &uid);
		if (r >= 0) {
			int n = sd_bus_creds_get_supplementary_gids(c, &gids);
			r = answer(b, call, fn, uid, gids, n > 0 ? (size_t)n : 0);
		} else {
			r = sd_bus_error_set(ret_error, SD_BUS_ERROR_ACCESS_DENIED, "gmemd cannot tell who is calling");
		}
		sd_bus_creds_unref(c);
		return r;
	}

	if (b->n_queries >= QUERIES_MAX || congested(b))
		return sd_bus_error_set(ret_error, SD_BUS_ERROR_LIMITS_EXCEEDED, "gmemd is busy; try again");
	struct caller_query *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->b = b;
	q->fn = fn;
	list_init(&q->node);
	r = sd_bus_call_method_async(b->bus, &q->slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				     "org.freedesktop.DBus", "GetConnectionCredentials", on_caller_creds, q, "s",
				     sender);
	if (r < 0) {
		free(q);
		return r;
	}
	q->call = sd_bus_message_ref(call);
	list_add_tail(&b->queries, &q->node);
	b->n_queries++;
	return 1; /* answered from on_caller_creds */
}

/* ---- methods ---- */

static int reply_list_guests(struct dbus *b, sd_bus_message *call, const struct client *who)
{
	struct manager *m = b->m;
	sd_bus_message *reply = NULL;
	int r = sd_bus_message_new_method_return(call, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(stttub)");
	list_for_each(pos, &m->guests.order) {
		const struct guest *g = list_entry(pos, struct guest, order);
		if (r < 0)
			break;
		if (!(policy_perms(m, who, g) & PERM_SEE))
			continue;
		uint64_t touched = m->bops->guest_touched(m->backend, g->mem);
		r = sd_bus_message_append(reply, "(stttub)", g->name, g->size, g->granule, touched, (uint32_t)g->owner,
					  g->lease != NULL);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

struct run_walk {
	sd_bus_message *reply;
	uint64_t granule;
	size_t n;
};

static int append_run(uint64_t start, uint64_t len, enum share_state st, void *arg)
{
	struct run_walk *w = arg;
	if (++w->n > DESCRIBE_RUNS_MAX)
		return -E2BIG;
	int r = sd_bus_message_append(w->reply, "(tts)", start * w->granule, len * w->granule,
				      gmem_target_names[st == SHARE_PRIVATE ? GMEM_PRIVATE : GMEM_SHARED]);
	return r < 0 ? r : 0;
}

static int reply_describe_guest(struct dbus *b, sd_bus_message *call, const struct client *who)
{
	struct manager *m = b->m;
	const char *name;
	int r = sd_bus_message_rewind(call, true);
	if (r >= 0)
		r = sd_bus_message_read(call, "s", &name);
	if (r < 0)
		return r;
	const struct guest *g = guest_table_find(&m->guests, name);
	if (!g || !(policy_perms(m, who, g) & PERM_SEE)) {
		char quoted[GMEM_NAME_MAX + 1]; /* cut on a character boundary: D-Bus strings are UTF-8 */
		gmem_utf8_copy(quoted, sizeof(quoted), name);
		return sd_bus_reply_method_errorf(call, DBUS_ERROR_NO_SUCH_GUEST, "no guest named '%s'", quoted);
	}

	sd_bus_message *reply = NULL;
	r = sd_bus_message_new_method_return(call, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "stt", g->name, g->size, g->granule);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(tts)");
	if (r >= 0) {
		struct run_walk w = { .reply = reply, .granule = g->granule };
		r = sharemap_walk(g->map, 0, g->size / g->granule, append_run, &w);
		if (r == -E2BIG) {
			sd_bus_message_unref(reply);
			return sd_bus_reply_method_errorf(call, SD_BUS_ERROR_LIMITS_EXCEEDED,
							  "guest '%s' has more than %d runs; read it with gmemctl map",
							  g->name, DESCRIBE_RUNS_MAX);
		}
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int reply_list_clients(struct dbus *b, sd_bus_message *call, const struct client *who)
{
	struct manager *m = b->m;
	bool all = policy_may_admin(m, who);
	sd_bus_message *reply = NULL;
	int r = sd_bus_message_new_method_return(call, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(tuus)");
	list_for_each(pos, &m->clients) {
		const struct client *c = list_entry(pos, struct client, node);
		if (r < 0)
			break;
		if (!all && c->uid != who->uid)
			continue;
		r = sd_bus_message_append(reply, "(tuus)", c->id, (uint32_t)c->pid, (uint32_t)c->uid,
					  c->hello ? gmem_role_names[c->role] : "none");
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_list_guests(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
	return with_caller(call, userdata, reply_list_guests, ret_error);
}

static int method_describe_guest(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
	return with_caller(call, userdata, reply_describe_guest, ret_error);
}

static int method_list_clients(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
	return with_caller(call, userdata, reply_list_clients, ret_error);
}

/* ---- properties ---- */

#define PROPERTY_GETTER(fn)                                                                              \
	static int fn(sd_bus *bus, const char *path, const char *interface, const char *property,       \
		      sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)

PROPERTY_GETTER(prop_version)
{
	(void)bus, (void)path, (void)interface, (void)property, (void)userdata, (void)ret_error;
	return sd_bus_message_append(reply, "s", GMEM_VERSION);
}

PROPERTY_GETTER(prop_backend)
{
	struct dbus *b = userdata;
	(void)bus, (void)path, (void)interface, (void)property, (void)ret_error;
	return sd_bus_message_append(reply, "s", b->m->bops->name);
}

PROPERTY_GETTER(prop_enforcing)
{
	struct dbus *b = userdata;
	(void)bus, (void)path, (void)interface, (void)property, (void)ret_error;
	return sd_bus_message_append(reply, "b", (int)b->m->bops->enforcing);
}

PROPERTY_GETTER(prop_pool_size)
{
	struct dbus *b = userdata;
	(void)bus, (void)path, (void)interface, (void)property, (void)ret_error;
	return sd_bus_message_append(reply, "t", b->m->bops->pool_size(b->m->backend));
}

PROPERTY_GETTER(prop_pool_used)
{
	struct dbus *b = userdata;
	(void)bus, (void)path, (void)interface, (void)property, (void)ret_error;
	return sd_bus_message_append(reply, "t", b->m->bops->pool_used(b->m->backend));
}

PROPERTY_GETTER(prop_pool_free)
{
	struct dbus *b = userdata;
	const struct backend_ops *o = b->m->bops;
	uint64_t size = o->pool_size(b->m->backend), used = o->pool_used(b->m->backend);
	(void)bus, (void)path, (void)interface, (void)property, (void)ret_error;
	return sd_bus_message_append(reply, "t", size > used ? size - used : 0);
}

PROPERTY_GETTER(prop_guests)
{
	struct dbus *b = userdata;
	(void)bus, (void)path, (void)interface, (void)property, (void)ret_error;
	return sd_bus_message_append(reply, "u", (uint32_t)b->m->guests.count);
}

PROPERTY_GETTER(prop_in_flight)
{
	struct dbus *b = userdata;
	uint32_t n = 0;
	(void)bus, (void)path, (void)interface, (void)property, (void)ret_error;
	list_for_each(pos, &b->m->active)
		n++;
	return sd_bus_message_append(reply, "u", n);
}

/*
 * The first four never change while gmemd runs. The other four change with every guest and
 * conversion: they emit no PropertiesChanged (introspection says EmitsChangedSignal=false), since a
 * boot-time conversion storm must not become a signal storm; read them when needed, and watch
 * ConversionSummary for activity.
 */
static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Backend", "s", prop_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Enforcing", "b", prop_enforcing, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("PoolSize", "t", prop_pool_size, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("PoolUsed", "t", prop_pool_used, 0, 0),
	SD_BUS_PROPERTY("PoolFree", "t", prop_pool_free, 0, 0),
	SD_BUS_PROPERTY("Guests", "u", prop_guests, 0, 0),
	SD_BUS_PROPERTY("ConversionsInFlight", "u", prop_in_flight, 0, 0),
	SD_BUS_METHOD_WITH_ARGS("ListGuests", SD_BUS_NO_ARGS,
				SD_BUS_RESULT("a(stttub)", guests), /* name, size, granule, touched, owner, leased */
				method_list_guests, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("DescribeGuest", SD_BUS_ARGS("s", name),
				SD_BUS_RESULT("s", name, "t", size, "t", granule,
					      "a(tts)", runs), /* offset, length, "shared"/"private" */
				method_describe_guest, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListClients", SD_BUS_NO_ARGS,
				SD_BUS_RESULT("a(tuus)", clients), /* client id, pid, uid, role */
				method_list_clients, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("ConversionFailed", SD_BUS_ARGS("s", guest, "t", seq, "s", outcome, "s", reason), 0),
	SD_BUS_SIGNAL_WITH_ARGS("ConversionSummary",
				SD_BUS_ARGS("s", guest, "u", committed, "u", aborted, "t", bytes), 0),
	SD_BUS_VTABLE_END,
};

/* ---- connection ---- */

static int on_name_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	struct dbus *b = userdata;
	uint32_t ret = 0;
	(void)ret_error;

	b->backoff_s = RETRY_MIN_S; /* a bus that answers: the next outage starts its backoff over */
	b->outage_logged = false;
	if (sd_bus_message_is_method_error(reply, NULL)) {
		const sd_bus_error *e = sd_bus_message_get_error(reply);
		log_warning("D-Bus: cannot own %s on the %s bus (%s); serving the socket without it", DBUS_NAME,
			    kind_name(b->kind), e && e->message ? e->message : "refused");
	} else if (sd_bus_message_read(reply, "u", &ret) < 0 || (ret != 1 && ret != 4)) {
		log_warning("D-Bus: %s is owned by another connection on the %s bus; serving the socket without it",
			    DBUS_NAME, kind_name(b->kind));
	} else {
		log_notice("D-Bus: %s on the %s bus", DBUS_NAME, kind_name(b->kind));
	}
	return 0;
}

/* Opens the bus and queues the name request; nothing waits for an answer. */
static int connect_bus(struct dbus *b)
{
	sd_bus *bus = NULL;
	int r = b->kind == DBUS_KIND_SYSTEM ? sd_bus_open_system(&bus) : sd_bus_open_user(&bus);
	if (r < 0)
		return r;
	/* Floating slots: they live and die with the connection. */
	r = sd_bus_add_object_vtable(bus, NULL, DBUS_PATH, DBUS_IFACE, manager_vtable, b);
	if (r >= 0)
		r = sd_bus_request_name_async(bus, NULL, DBUS_NAME, 0, on_name_reply, b);
	if (r < 0) {
		sd_bus_close_unref(bus);
		return r;
	}
	b->bus = bus;
	r = rearm(b, false);
	if (r < 0)
		drop_connection(b);
	return r;
}

static void summaries_clear(struct dbus *b)
{
	list_for_each_safe(pos, &b->windows)
		free(list_entry(pos, struct summary, node));
	list_init(&b->windows);
	memset(b->buckets, 0, sizeof(b->buckets));
	event_del(b->flush_ev);
}

static void drop_connection(struct dbus *b)
{
	/* The callers waiting for credentials first: each holds a message that holds the bus. */
	list_for_each_safe(pos, &b->queries)
		query_free(list_entry(pos, struct caller_query, node));
	summaries_clear(b);
	event_del(b->io_ev);
	event_del(b->time_ev);
	b->io_fd = -1;
	b->io_flags = 0;
	b->time_usec = UINT64_MAX;
	/* No flush: a bus that does not read must not hold gmemd up. */
	b->bus = sd_bus_close_unref(b->bus);
}

static void schedule_retry(struct dbus *b)
{
	struct timeval tv = { .tv_sec = (time_t)b->backoff_s };
	event_add(b->retry_ev, &tv);
	b->backoff_s = MIN(b->backoff_s * 2, RETRY_MAX_S);
}

static void try_connect(struct dbus *b)
{
	int r = connect_bus(b);
	if (r >= 0)
		return;
	if (!b->outage_logged)
		log_notice("D-Bus: no %s bus (%s); serving the socket without it, retrying", kind_name(b->kind),
			   strerror(-r));
	else
		log_debug("D-Bus: %s bus still unavailable (%s); next try in %u s", kind_name(b->kind), strerror(-r),
			  b->backoff_s);
	b->outage_logged = true;
	schedule_retry(b);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	try_connect(arg);
}

/* ---- signals ---- */

/* Why a conversion aborted, from the engine's record: the first no, else the first silence. */
static void abort_reason(const struct twopc *t, char *buf, size_t size)
{
	for (size_t i = 0; i < t->n_parts; i++) {
		const struct twopc_part *p = &t->parts[i];
		if (p->state == TPP_NO) {
			const char *en = gmem_errno_name(p->no_err);
			char text[32 + sizeof(p->reason)];
			/* The reason came through the codec (valid UTF-8); cut it on a character boundary. */
			snprintf(text, sizeof(text), "%s: %s", en ? en : "EPERM", p->reason);
			gmem_utf8_copy(buf, size, text);
			return;
		}
	}
	for (size_t i = 0; i < t->n_parts; i++)
		if (!t->parts[i].voted && t->parts[i].timed_out) {
			snprintf(buf, size, "ETIMEDOUT: a participant did not vote in time");
			return;
		}
	for (size_t i = 0; i < t->n_parts; i++)
		if (!t->parts[i].voted && t->parts[i].gone) {
			snprintf(buf, size, "ECONNRESET: a participant disconnected before voting");
			return;
		}
	if (t->cancelled)
		snprintf(buf, size, "ECANCELED: cancelled before it was decided");
	else if (t->log_err)
		snprintf(buf, size, "%s: the commit decision could not be written",
			 gmem_errno_name(t->log_err) ? gmem_errno_name(t->log_err) : "EIO");
	else
		snprintf(buf, size, "aborted");
}

static void flush_arm(struct dbus *b)
{
	if (list_empty(&b->windows))
		return;
	const struct summary *s = list_entry(b->windows.next, struct summary, node);
	int64_t left = s->due_us - now_us();
	struct timeval tv = tv_from_us(left > 0 ? (uint64_t)left : 0);
	event_add(b->flush_ev, &tv);
}

static void summary_unhash(struct dbus *b, struct summary *s)
{
	for (struct summary **pp = &b->buckets[s->guest_id & (SUMMARY_BUCKETS - 1)]; *pp; pp = &(*pp)->hash_next)
		if (*pp == s) {
			*pp = s->hash_next;
			break;
		}
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct dbus *b = arg;
	int64_t now = now_us();
	bool sent = false;
	(void)fd;
	(void)what;

	/* The loop's clock may be a coarse one and fire a little early: go by ours. */
	while (!list_empty(&b->windows)) {
		struct summary *s = list_entry(b->windows.next, struct summary, node);
		if (s->due_us > now)
			break;
		int r = congested(b) ? -ENOBUFS
				     : sd_bus_emit_signal(b->bus, DBUS_PATH, DBUS_IFACE, "ConversionSummary", "suut",
							  s->name, s->committed, s->aborted, s->bytes);
		if (r < 0)
			log_debug("D-Bus: ConversionSummary of '%s' dropped: %s", s->name, strerror(-r));
		sent = true;
		summary_unhash(b, s);
		list_del(&s->node);
		free(s);
	}
	flush_arm(b);
	if (sent)
		kick(b);
}

/* The open window of g, opened now if there is none; NULL when out of memory. */
static struct summary *summary_window(struct dbus *b, const struct guest *g)
{
	struct summary **head = &b->buckets[g->id & (SUMMARY_BUCKETS - 1)];
	for (struct summary *s = *head; s; s = s->hash_next)
		if (s->guest_id == g->id)
			return s;
	struct summary *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->guest_id = g->id;
	snprintf(s->name, sizeof(s->name), "%s", g->name);
	s->due_us = now_us() + SUMMARY_WINDOW_US;
	s->hash_next = *head;
	*head = s;
	bool first = list_empty(&b->windows);
	list_add_tail(&b->windows, &s->node); /* opened now: due last */
	if (first)
		flush_arm(b);
	return s;
}

void dbus_conversion_done(struct dbus *b, const struct guest *g, uint64_t seq, int outcome, uint64_t bytes,
			  const struct twopc *t)
{
	if (!b || !b->bus)
		return;
	bool aborted = outcome == GMEM_ABORTED;
	if (aborted) {
		char reason[GMEM_TEXT_MAX];
		abort_reason(t, reason, sizeof(reason));
		int r = congested(b) ? -ENOBUFS
				     : sd_bus_emit_signal(b->bus, DBUS_PATH, DBUS_IFACE, "ConversionFailed", "stss",
							  g->name, seq, gmem_outcome_names[outcome], reason);
		if (r < 0)
			log_debug("D-Bus: ConversionFailed of '%s' dropped: %s", g->name, strerror(-r));
		kick(b);
		if (!b->bus)
			return;
	}
	struct summary *s = summary_window(b, g);
	if (!s)
		return; /* summaries are best effort */
	if (aborted) {
		s->aborted++;
	} else {
		s->committed++;
		s->bytes += bytes;
	}
}

/* ---- life ---- */

int dbus_new(struct manager *m, enum dbus_kind kind, struct dbus **ret)
{
	*ret = NULL;
	if (kind == DBUS_KIND_NONE) {
		log_info("D-Bus: off (--bus none)");
		return 0;
	}
	struct dbus *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->m = m;
	b->kind = kind;
	b->io_fd = -1;
	b->time_usec = UINT64_MAX;
	b->backoff_s = RETRY_MIN_S;
	list_init(&b->queries);
	list_init(&b->windows);
	b->io_ev = event_new(m->base, -1, 0, on_bus_ready, b);
	b->time_ev = evtimer_new(m->base, on_bus_ready, b);
	b->retry_ev = evtimer_new(m->base, on_retry, b);
	b->flush_ev = evtimer_new(m->base, on_flush, b);
	if (!b->io_ev || !b->time_ev || !b->retry_ev || !b->flush_ev) {
		dbus_free(b);
		return -ENOMEM;
	}
	try_connect(b);
	*ret = b;
	return 0;
}

struct dbus *dbus_free(struct dbus *b)
{
	if (!b)
		return NULL;
	if (b->bus)
		drop_connection(b);
	if (b->io_ev)
		event_free(b->io_ev);
	if (b->time_ev)
		event_free(b->time_ev);
	if (b->retry_ev)
		event_free(b->retry_ev);
	if (b->flush_ev)
		event_free(b->flush_ev);
	free(b);
	return NULL;
}

#else /* !GMEM_HAVE_DBUS */

int dbus_new(struct manager *m, enum dbus_kind kind, struct dbus **ret)
{
	(void)m;
	*ret = NULL;
	if (kind != DBUS_KIND_NONE)
		log_info("D-Bus: this gmemd was built without D-Bus support; --bus is ignored");
	return 0;
}

struct dbus *dbus_free(struct dbus *b)
{
	(void)b;
	return NULL;
}

void dbus_conversion_done(struct dbus *b, const struct guest *g, uint64_t seq, int outcome, uint64_t bytes,
			  const struct twopc *t)
{
	(void)b, (void)g, (void)seq, (void)outcome, (void)bytes, (void)t;
}

#endif
