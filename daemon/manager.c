/* SPDX-License-Identifier: MIT */
/*
 * manager: start-up in dependency order (state dir lock, backend, listener, signals), the accept loop,
 * the reaper for dead clients, and an orderly shutdown that tells every client before it goes.
 */
#include "manager.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "conversion.h"
#include "delegation.h"
#include "fdstore.h"
#include "journal-state.h"
#include "lifetime.h"
#include "listener.h"
#include "log.h"
#include "pid-attach.h"
#include "replay.h"
#include "sharemap.h"
#include "sharemap-publish.h"
#include "util.h"

static int lock_state_dir(const char *dir, int *ret_fd)
{
	char path[4096];

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_errno(LOG_ERR, -errno, "state dir %s", dir);
	snprintf(path, sizeof(path), "%s/gmemd.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(LOG_ERR, -errno, "open %s", path);
	/* Two daemons on one state dir would each believe they own every guest in it. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return log_errno(LOG_ERR, r, "%s: another gmemd uses this state dir", dir);
	}
	*ret_fd = fd;
	return 0;
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct manager *m = arg;
	(void)fd;
	(void)what;
	event_add(m->listen_ev, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct manager *m = arg;
	(void)what;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of fds: stop accepting for a moment instead of spinning on a ready socket. */
				log_warning("accept: %s; pausing accepts for 100 ms", strerror(errno));
				event_del(m->listen_ev);
				struct timeval tv = { 0, 100000 };
				event_add(m->accept_retry_ev, &tv);
			}
			return;
		}
		struct client *c;
		int r = client_new(m, fd, &c);
		if (r < 0) {
			log_errno(LOG_WARNING, r, "cannot set up a new client");
			continue;
		}
		/* Limits are checked on the identity: one uid cannot take every connection. */
		uint64_t same_uid = 0;
		list_for_each(pos, &m->clients)
			same_uid += list_entry(pos, struct client, node)->uid == c->uid;
		const char *why = m->n_clients > m->cfg.max_connections ? "too many connections"
				  : same_uid > m->cfg.max_connections_per_uid ? "too many connections from this uid"
									      : NULL;
		if (why) {
			log_warning("refusing a connection from pid %d uid %u: %s", c->pid, c->uid, why);
			client_send_error(c, false, 0, -EUSERS, why);
			client_kill(c, why);
		}
		notify_changed(m->notify);
	}
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct manager *m = arg;
	(void)fd;
	(void)what;
	list_for_each_safe(pos, &m->dead) {
		struct client *c = list_entry(pos, struct client, node);
		/* Here, on a fresh stack, and not in client_kill: see conversion.h. */
		conversion_client_gone(m, c);
		client_free(c);
	}
	notify_changed(m->notify);
}

static void on_compact(evutil_socket_t fd, short what, void *arg)
{
	struct manager *m = arg;
	(void)fd;
	(void)what;
	if (journal_want_snapshot(&m->journal))
		(void)jstate_snapshot(m);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct manager *m = arg;
	(void)what;
	log_notice("received %s, shutting down", strsignal((int)sig));
	(void)sd_notify(0, "STOPPING=1");
	event_base_loopexit(m->base, NULL);
}

int manager_new(const struct manager_config *cfg, struct manager **ret)
{
	struct manager *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	m->listen_fd = -EBADF;
	m->lock_fd = -EBADF;
	m->state_fd = -EBADF;
	m->journal.fd = -EBADF;
	list_init(&m->lost);
	m->self_uid = geteuid();
	list_init(&m->clients);
	list_init(&m->dead);
	list_init(&m->active);
	list_init(&m->delegations);
	quarantine_init(&m->quarantine);
	if (getrandom(&m->epoch, sizeof(m->epoch), GRND_NONBLOCK) != sizeof(m->epoch))
		m->epoch = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	m->epoch &= INT64_MAX;
	/* Test-only: act as an older gmemd without these features (test-skew). */
	m->features = GMEM_FEATURES_ALL & ~gmem_features_parse(getenv("GMEMD_TEST_FEATURES_OFF"));
	if (m->features != GMEM_FEATURES_ALL)
		log_warning("features turned off by $GMEMD_TEST_FEATURES_OFF: %s", getenv("GMEMD_TEST_FEATURES_OFF"));
	const char *sc = getenv("GMEM_TEST_TIMEOUT_SCALE");
	double scale = sc ? strtod(sc, NULL) : 1.0;
	if (!(scale >= 1.0))
		scale = 1.0;
	m->prepare_timeout_ms = (uint64_t)((double)(cfg->prepare_timeout_ms ? cfg->prepare_timeout_ms : 1000) * scale);
	m->ack_timeout_ms = (uint64_t)((double)(cfg->ack_timeout_ms ? cfg->ack_timeout_ms : 2000) * scale);
	m->token_timeout_ms = (uint64_t)((double)(cfg->token_timeout_ms ? cfg->token_timeout_ms : 30000) * scale);
	r = guest_table_init(&m->guests);
	if (r < 0)
		goto fail;
	m->recv_buf = malloc(GMEM_MSG_MAX);
	m->base = event_base_new();
	if (!m->recv_buf || !m->base) {
		r = -ENOMEM;
		goto fail;
	}

	/* Before anything is created: a backend that is not there is the operator's typo or a missing
	 * module, and gmemd never falls back to another one. */
	m->bops = backend_find(cfg->backend);
	if (!m->bops) {
		log_error("backend '%s' is not available in this build (built in: %s)", cfg->backend, backend_names());
		r = -ENOENT;
		goto fail;
	}

	r = lock_state_dir(cfg->state_dir, &m->lock_fd);
	if (r < 0)
		goto fail;
	m->state_fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->state_fd < 0) {
		r = log_errno(LOG_ERR, -errno, "state dir %s", cfg->state_dir);
		goto fail;
	}
	struct backend_config bc = { .pool_size = cfg->pool_size, .device = cfg->kmod_device, .base = m->base };
	r = m->bops->open(&bc, &m->backend);
	if (r < 0) {
		log_error("backend '%s' failed to start; not falling back to another backend", cfg->backend);
		goto fail;
	}
	m->compact_ev = event_new(m->base, -1, 0, on_compact, m);
	if (!m->compact_ev) {
		r = -ENOMEM;
		goto fail;
	}
	/* Before the listener: the fd store's memfds come in the same LISTEN_FDS as a passed socket, and
	 * no client may see a guest before its journal state is back. */
	r = replay_restore(m);
	if (r < 0)
		goto fail;

	r = listener_open(cfg->socket_path, cfg->socket_mode, cfg->socket_gid, &m->listen_fd, &m->listen_owned);
	if (r < 0)
		goto fail;
	fdstore_release(&m->fdstore, true);

	m->listen_ev = event_new(m->base, m->listen_fd, EV_READ | EV_PERSIST, on_accept, m);
	m->accept_retry_ev = evtimer_new(m->base, on_accept_retry, m);
	m->reap_ev = event_new(m->base, -1, 0, on_reap, m);
	m->sig_ev[0] = evsignal_new(m->base, SIGTERM, on_signal, m);
	m->sig_ev[1] = evsignal_new(m->base, SIGINT, on_signal, m);
	if (!m->listen_ev || !m->accept_retry_ev || !m->reap_ev || !m->sig_ev[0] || !m->sig_ev[1] ||
	    event_add(m->listen_ev, NULL) < 0 || event_add(m->sig_ev[0], NULL) < 0 ||
	    event_add(m->sig_ev[1], NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = notify_new(m, &m->notify);
	if (r < 0)
		goto fail;
	/* Last, and never fatal: no bus is a notice and a reconnect, not a failed start. */
	r = dbus_new(m, cfg->bus, &m->dbus);
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;

fail:
	manager_free(m);
	return r;
}

struct lost_guest *manager_lost_find(struct manager *m, const char *name)
{
	list_for_each(pos, &m->lost) {
		struct lost_guest *l = list_entry(pos, struct lost_guest, node);
		if (strcmp(l->name, name) == 0)
			return l;
	}
	return NULL;
}

void manager_forget_lost(struct manager *m, struct lost_guest *l)
{
	jstate_destroy(m, l->id);
	log_notice("lost guest '%s' forgotten", l->name);
	list_del(&l->node);
	m->n_lost--;
	free(l);
}

size_t manager_holder_revoke(struct manager *m, const struct holder *h)
{
	size_t n = 0;
	for (size_t i = 0; m->bops->holder_revoke && h->guest->mem && i < h->n_file_ids; i++)
		n += m->bops->holder_revoke(m->backend, h->guest->mem, h->file_ids[i]) == 0;
	return n;
}

void manager_guest_destroy(struct manager *m, struct guest *g)
{
	struct gmem_guest_event ev;

	snprintf(ev.name, sizeof(ev.name), "%s", g->name);
	conversion_guest_gone(m, g);
	pid_attach_guest_gone(g);
	delegation_guest_gone(m, g);
	jstate_destroy(m, g->id);
	if (m->bops->guest_store_fd(m->backend, g->mem) >= 0)
		fdstore_remove(g->id);
	pubmap_retire(g->pub);
	guest_table_remove(&m->guests, g);
	if (quarantine_guest_destroy(m, g)) {
		/* An IOMMU holder may still reach its PFNs: they stay allocated (the quarantine owns them now),
		 * and only the CPU mappings go, where the backend can take them. */
		list_for_each(pos, &g->holders)
			(void)manager_holder_revoke(m, list_entry(pos, struct holder, guest_node));
	} else {
		/* Memory first: a holder told of the destroy must already read zeroes when it looks. */
		m->bops->guest_destroy(m->backend, g->mem);
	}
	g->mem = NULL;
	log_info("guest '%s' destroyed", g->name);

	/* Tell everyone who holds files or attachments, once each, before their records go. A failed send
	 * kills its client, which moves it off this list: hence the safe walk. */
	list_for_each_safe(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		bool involved = g->lease == c;
		list_for_each(p2, &g->holders)
			involved |= list_entry(p2, struct holder, guest_node)->client == c;
		list_for_each(p2, &g->attachments)
			involved |= list_entry(p2, struct attachment, guest_node)->client == c;
		if (involved)
			client_send_event(c, GMEM_WIRE_EVENT_GUEST_DESTROYED, &ev);
	}
	list_for_each(pos, &m->clients)
		client_forget_guest(list_entry(pos, struct client, node), g);
	sharemap_free(g->map);
	pubmap_free(g->pub);
	lifetime_free(g->life);
	free(g->stats);
	free(g->grants);
	free(g);
	notify_changed(m->notify);
}

int manager_run(struct manager *m)
{
	/* READY only now: the socket accepts, so a client started after READY can connect. */
	notify_ready(m->notify);
	log_notice("ready: backend %s, pool %llu bytes, socket %s", m->bops->name,
		   (unsigned long long)m->bops->pool_size(m->backend), m->cfg.socket_path);
	if (event_base_dispatch(m->base) < 0)
		return -EIO;

	/* Say goodbye to everyone still connected; best effort, nothing waits for them. */
	struct gmem_shutdown_event ev = { .reason = "gmemd is stopping" };
	list_for_each_safe(pos, &m->clients)
		client_send_event(list_entry(pos, struct client, node), GMEM_WIRE_EVENT_SHUTDOWN, &ev);
	return 0;
}

struct manager *manager_free(struct manager *m)
{
	if (!m)
		return NULL;
	m->dbus = dbus_free(m->dbus);
	m->notify = notify_free(m->notify);
	list_for_each(pos, &m->guests.order)
		conversion_guest_release(list_entry(pos, struct guest, order));
	list_for_each_safe(pos, &m->clients)
		client_free(list_entry(pos, struct client, node));
	list_for_each_safe(pos, &m->dead)
		client_free(list_entry(pos, struct client, node));
	list_for_each_safe(pos, &m->guests.order) {
		struct guest *g = list_entry(pos, struct guest, order);
		delegation_guest_gone(m, g);
		guest_table_remove(&m->guests, g);
		pid_attach_guest_gone(g);
		m->bops->guest_release(m->backend, g->mem);
		sharemap_free(g->map);
		pubmap_free(g->pub);
		lifetime_free(g->life);
		free(g->stats);
		free(g->grants);
		free(g);
	}
	guest_table_deinit(&m->guests);
	list_for_each_safe(pos, &m->lost)
		free(list_entry(pos, struct lost_guest, node));
	journal_close(&m->journal);
	fdstore_release(&m->fdstore, false);
	safe_close(m->state_fd);
	if (m->compact_ev)
		event_free(m->compact_ev);
	quarantine_deinit(m);
	if (m->bops && m->backend)
		m->bops->close(m->backend);
	listener_close(m->listen_fd, m->cfg.socket_path, m->listen_owned);
	if (m->listen_ev)
		event_free(m->listen_ev);
	if (m->accept_retry_ev)
		event_free(m->accept_retry_ev);
	if (m->reap_ev)
		event_free(m->reap_ev);
	for (size_t i = 0; i < ARRAY_SIZE(m->sig_ev); i++)
		if (m->sig_ev[i])
			event_free(m->sig_ev[i]);
	if (m->base)
		event_base_free(m->base);
	safe_close(m->lock_fd);
	free(m->recv_buf);
	free(m);
	return NULL;
}
