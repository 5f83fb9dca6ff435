/* SPDX-License-Identifier: MIT */
/*
 * libgmem — the client library of gmem, for VMMs, device managers and tools.
 *
 * A handle (struct gmem_client) is one connection to gmemd. Every call returns 0 (or a documented
 * non-negative value) on success and a negative errno on failure; after a failure the daemon's own
 * explanation, if it sent one, is in gmem_last_error().
 *
 * Threads and loops: the library starts no threads and installs no signal handlers. A handle is not
 * thread-safe: use it from one thread at a time. Synchronous calls block until gmemd answers (see
 * gmem_set_timeout). Events from gmemd are queued and delivered by gmem_dispatch(), which never blocks:
 * poll gmem_get_fd() for POLLIN in your own loop and call gmem_dispatch() when it fires. Event callbacks
 * run inside gmem_dispatch(), in the caller's thread; they may call any function on the same handle
 * except gmem_disconnect().
 *
 * Every fd the library creates or receives is O_CLOEXEC; every send is MSG_NOSIGNAL (no SIGPIPE).
 */
#ifndef GMEM_GMEM_H
#define GMEM_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GMEM_NAME_MAX_LEN 64

/* What a connection asks to be, at connect time. admin needs uid 0 (or gmemd's own uid). */
enum gmem_role {
	GMEM_ROLE_VMM = 0,
	GMEM_ROLE_DEVICE = 1,
	GMEM_ROLE_ADMIN = 2,
};

/* What a client declares it does with a range it attached. kvm needs the guest's vmm lease. */
enum gmem_attach_kind {
	GMEM_ATTACH_MMAP = 0,
	GMEM_ATTACH_IOMMU = 1,
	GMEM_ATTACH_KVM = 2,
};

/* The two states of a granule, and a conversion's target. */
enum gmem_target {
	GMEM_SHARED = 0,  /* host processes may map it */
	GMEM_PRIVATE = 1, /* taken away from every host mapping */
};

/* How a conversion ended. */
enum gmem_outcome {
	GMEM_COMMITTED = 0,
	GMEM_ABORTED = 1,
	/* Committed, but a participant that voted yes left (or never acked) before gmemd saw it let go:
	 * on the memfd backend nothing can check it did. */
	GMEM_COMMITTED_UNVERIFIED = 2,
};

struct gmem_client;

/*
 * Connects and says hello. path: the socket; NULL means $GMEM_SOCKET, else /run/gmem/gmemd.sock.
 * Return: 0, or -errno: -ENOENT/-ECONNREFUSED (no gmemd there), -EPROTONOSUPPORT (protocol version),
 * -EPERM (role refused).
 */
int gmem_connect(const char *path, enum gmem_role role, struct gmem_client **ret);
/* Closes the connection and frees the handle; NULL is fine. Files opened through it stay valid. */
void gmem_disconnect(struct gmem_client *c);

/* The fd to poll for POLLIN. It stays the same for the handle's whole life. Do not read or close it. */
int gmem_get_fd(const struct gmem_client *c);
/* Timeout in milliseconds for synchronous calls (-1, the default: wait for ever). -ETIMEDOUT then. */
void gmem_set_timeout(struct gmem_client *c, int timeout_ms);
/* The daemon's message for the last failed call on this handle ("" if none). Valid until the next call. */
const char *gmem_last_error(const struct gmem_client *c);

/* What the daemon said at hello. */
const char *gmem_server_version(const struct gmem_client *c);
const char *gmem_backend_name(const struct gmem_client *c);
/* Whether the backend enforces private in the kernel (false for memfd: declared, not audited). */
bool gmem_backend_enforcing(const struct gmem_client *c);
uint64_t gmem_client_id(const struct gmem_client *c);

/* ---- events ---- */
enum gmem_event_type {
	GMEM_EVENT_SHUTDOWN = 1,        /* gmemd is stopping; the connection will close */
	GMEM_EVENT_GUEST_DESTROYED = 2, /* a guest this client holds or attached was destroyed */
	GMEM_EVENT_CONVERSION = 3,      /* after gmem_watch(): a conversion changed state */
	GMEM_EVENT_REVOKED = 4,         /* a delegation this client redeemed was withdrawn: its attachment ended */
	/* With gmem_set_reconnect(): */
	GMEM_EVENT_DISCONNECTED = 5,    /* gmemd went away; libgmem reconnects (calls fail with -ENOTCONN) */
	GMEM_EVENT_RECONNECTED = 6,     /* back, attachments, leases and watch announced again; reason names
					 * how many no longer held (their guest is gone), or is NULL */
	GMEM_EVENT_IN_DOUBT = 7,        /* how the restarted gmemd ended a conversion this client was in */
};

/* GMEM_EVENT_IN_DOUBT: a conversion this client took part in and had not heard the end of when gmemd
 * went away. If known, the participant ops follow at once with what gmemd could not send (commit and
 * done, or abort and done). If not known, nothing follows: the participant stays in doubt and must not
 * resume on its own (ask again with gmem_resolve, or an operator decides). */
struct gmem_in_doubt_info {
	uint64_t epoch, seq;
	const char *guest;
	bool known;
	enum gmem_outcome outcome; /* when known */
};

/* What gmem_watch() reports about a conversion. */
struct gmem_watch_info {
	uint64_t epoch, seq;
	enum gmem_target target;
	const char *state; /* "queued", "preparing", "committed", "aborted", "committed-unverified" */
	uint64_t bytes;    /* that change state (known from "preparing" on) */
	uint64_t ranges;
	uint64_t participants;
	uint64_t latency_us;   /* when it ended */
	uint32_t requester_pid;
};

struct gmem_event {
	enum gmem_event_type type;
	const char *guest;  /* GUEST_DESTROYED, CONVERSION: the guest's name; else NULL */
	const char *reason; /* SHUTDOWN: why; else NULL */
	const struct gmem_watch_info *conversion; /* CONVERSION; else NULL */
	uint64_t attachment; /* REVOKED: the attachment that ended (its file stays open on memfd); else 0 */
	uint64_t delegation; /* REVOKED: the delegation withdrawn; else 0 */
	const struct gmem_in_doubt_info *in_doubt; /* IN_DOUBT; else NULL */
};

/*
 * Reconnect after gmemd restarts, behind the same gmem_get_fd(): when the connection drops, requests in
 * flight fail (-ECONNRESET to their callbacks), GMEM_EVENT_DISCONNECTED is delivered, and gmem_dispatch()
 * retries with a backoff doubling from 10 ms up to max_backoff_ms; once back it says hello, takes the
 * leases and attaches the ranges it held (attachment ids stay valid), watches again, and asks how every
 * conversion it was in doubt about ended (GMEM_EVENT_IN_DOUBT). 0 turns it off (the default: then a
 * dropped connection is final, gmem_dispatch returns -ECONNRESET).
 */
void gmem_set_reconnect(struct gmem_client *c, int max_backoff_ms);

/* The callback sees events in the order gmemd sent them; the struct is valid during the call only. */
typedef void (*gmem_event_fn)(struct gmem_client *c, const struct gmem_event *ev, void *userdata);
void gmem_set_event_handler(struct gmem_client *c, gmem_event_fn fn, void *userdata);
/*
 * Reads what has arrived and delivers queued events, without blocking.
 * Return: the number of events delivered, or -ECONNRESET once gmemd has closed the connection.
 */
int gmem_dispatch(struct gmem_client *c);

/* ---- ops ---- */
struct gmem_status {
	char server[GMEM_NAME_MAX_LEN + 1]; /* "gmemd 0.1.0" */
	char backend[16];
	bool enforcing;
	uint64_t pool_size;  /* bytes the pool holds */
	uint64_t pool_used;  /* bytes allocated to guests */
	uint64_t touched;    /* bytes of the caller's visible guests actually backed by memory */
	uint64_t guests;     /* guests the caller may see */
	uint64_t clients;    /* connections */
};
int gmem_status(struct gmem_client *c, struct gmem_status *ret);

#define GMEM_GRANULE_4K UINT64_C(4096)
#define GMEM_GRANULE_2M (UINT64_C(2) << 20)

struct gmem_guest_info {
	uint64_t id;
	char name[GMEM_NAME_MAX_LEN + 1];
	uint64_t size;
	uint64_t granule;
	uint32_t owner_uid;
	uint64_t touched;     /* bytes backed by memory now */
	uint64_t holders;     /* files handed to connected clients */
	uint64_t attachments;
	bool leased;          /* a vmm holds the lease */
	uint64_t delegations; /* delegations made and not ended: unredeemed tokens, redeemed attachments */
};

/*
 * Creates a guest owned by the caller's uid. granule: GMEM_GRANULE_4K or _2M (0 means 4K); size a
 * multiple of it. ret may be NULL. Return: 0, -EEXIST (name taken), -ENOSPC (pool full), -EINVAL.
 */
int gmem_guest_create(struct gmem_client *c, const char *name, uint64_t size, uint64_t granule,
		      struct gmem_guest_info *ret);
/* The same, with the memory taken from NUMA node `node` only (kmod backend; ranges given with @node).
 * Return: as gmem_guest_create, and -EINVAL (no range on that node), -EOPNOTSUPP (memfd backend). */
int gmem_guest_create_on_node(struct gmem_client *c, const char *name, uint64_t size, uint64_t granule,
			      unsigned node, struct gmem_guest_info *ret);

/* The pool per NUMA node (kmod backend, ranges given with @node); none elsewhere. */
struct gmem_node_info {
	unsigned node;
	uint64_t total, free; /* bytes */
};
/* *ret is malloc'd (free it), *ret_n may be 0. Return: 0 or -errno. */
int gmem_pool_nodes(struct gmem_client *c, struct gmem_node_info **ret, size_t *ret_n);
enum {
	/* Destroyed when the process holding its vmm lease exits (bound by the first gmem_lease, moved by
	 * each later one; until then it lives like any guest). Needs gmemd's feature "ephemeral". */
	GMEM_CREATE_EPHEMERAL = 1 << 0,
};
/* gmem_guest_create with flags (GMEM_CREATE_*). -EOPNOTSUPP when gmemd lacks a feature a flag needs. */
int gmem_guest_create_ex(struct gmem_client *c, const char *name, uint64_t size, uint64_t granule, unsigned flags,
			 struct gmem_guest_info *ret);
/*
 * Destroys a guest: its memory goes back to the pool at once. Clients still holding its files are sent
 * GMEM_EVENT_GUEST_DESTROYED; on the memfd backend their files then read zeroes (never another guest's
 * data) until they close them.
 */
int gmem_guest_destroy(struct gmem_client *c, const char *name);
enum {
	/* Operators (role admin) only: destroy, and evict every other connection that held a file, an
	 * attachment or the lease of the guest. On memfd the files they hold stay open in their processes
	 * (reading zeroes, still writable): gmemd cannot revoke them. Needs gmemd's feature "operator". */
	GMEM_DESTROY_FORCE = 1 << 0,
};
int gmem_guest_destroy_ex(struct gmem_client *c, const char *name, unsigned flags);
/* Every guest the caller may see, in creation order; *ret is malloc'd, free() it. */
int gmem_guest_list(struct gmem_client *c, struct gmem_guest_info **ret, size_t *ret_n);
/*
 * Guests whose memory did not come back after a gmemd restart (the memfd backend's fd store was emptied
 * by a full stop): never recreated empty, their names kept until gmem_guest_forget(). Only the owner,
 * root and admins see them. *ret is malloc'd (free it); sizes, granule, owner and id are filled in.
 */
int gmem_guest_list_lost(struct gmem_client *c, struct gmem_guest_info **ret, size_t *ret_n);
int gmem_guest_forget(struct gmem_client *c, const char *name);

/* A guest the kernel module holds that no gmemd journal names (its state dir was wiped): an orphan. */
struct gmem_orphan_info {
	uint64_t id;            /* the module's guest id: what gmem_orphan_adopt/_destroy take */
	uint64_t size;
	uint64_t granule;
	int node;               /* NUMA node it was created on, -1: any */
	uint64_t private_bytes; /* bytes the module keeps private */
	uint64_t holders;       /* files open on it in processes (handed out by an earlier gmemd) */
	uint64_t cookie;        /* the guest id the gmemd that created it gave it */
};
/*
 * Orphans (role admin only, -EPERM otherwise; -EOPNOTSUPP on the memfd backend or when gmemd lacks the
 * feature "orphans"): list them (*ret is malloc'd, free it); adopt one as guest name owned by uid owner
 * (its memory, contents and shared/private state as the module keeps them; ret may be NULL); or destroy
 * one (its memory is scrubbed and returns to the pool; -EBUSY while files of it are open in processes).
 */
int gmem_orphan_list(struct gmem_client *c, struct gmem_orphan_info **ret, size_t *ret_n);
int gmem_orphan_adopt(struct gmem_client *c, uint64_t id, const char *name, uint32_t owner,
		      struct gmem_guest_info *ret);
int gmem_orphan_destroy(struct gmem_client *c, uint64_t id);

/*
 * A new file for the guest, to mmap(MAP_SHARED) from offset 0; the caller owns *ret_fd (O_CLOEXEC).
 * ret_info may be NULL.
 */
int gmem_guest_open(struct gmem_client *c, const char *name, int *ret_fd, struct gmem_guest_info *ret_info);

/* Declares use of [offset, offset+length) (granule-aligned). *ret_id names it for gmem_detach. */
int gmem_attach(struct gmem_client *c, const char *name, uint64_t offset, uint64_t length,
		enum gmem_attach_kind kind, uint64_t *ret_id);
int gmem_detach(struct gmem_client *c, uint64_t id);
/*
 * Declares use of [offset, offset+length) on behalf of pid, a live child of the calling process with
 * its uid (what `gmemctl exec` does for a program that knows nothing of gmem). The attachment is not
 * this connection's: it lasts until that process exits (gmemd watches a pidfd) or the guest is
 * destroyed, and cannot be detached. Such a holder cannot vote, so gmemd refuses a to-private
 * conversion of memory it holds. Return: 0, -ESRCH (no such process), -EPERM (not our child, another
 * uid), -EOPNOTSUPP (gmemd lacks the attach-pid feature), and as gmem_attach.
 */
int gmem_attach_pid(struct gmem_client *c, const char *name, uint64_t offset, uint64_t length, pid_t pid,
		    uint64_t *ret_id);

/*
 * Access for others (owner or root only). who is "uid:N" or "gid:N" (a gid matches a connection's primary
 * or supplementary groups). role GMEM_ROLE_DEVICE: see, open, attach mmap/iommu; GMEM_ROLE_VMM: also take
 * the lease, attach kvm and convert. Checked at every request, so a revoke takes effect on the next one;
 * files already handed out stay open in their processes (the memfd backend cannot take them back).
 * Return: 0, -EPERM, -ENOENT, -EINVAL, -EDQUOT (64 grants per guest).
 */
int gmem_grant(struct gmem_client *c, const char *name, const char *who, enum gmem_role role);
int gmem_revoke(struct gmem_client *c, const char *name, const char *who, enum gmem_role role);

/* One connection to gmemd, as gmem_client_list() shows it. */
struct gmem_client_info {
	uint64_t id;           /* as gmem_client_id() of that connection */
	uint32_t pid, uid, gid; /* captured when it connected */
	bool hello;            /* it said hello (role and name are meaningful) */
	enum gmem_role role;
	char name[GMEM_NAME_MAX_LEN + 1]; /* its client_name, "" if none */
	uint64_t attachments;
	uint64_t files;        /* files of guests handed to it */
	uint64_t leases;       /* vmm leases it holds */
	uint64_t converts;     /* its convert requests not answered yet */
	bool self;             /* the connection that asked */
};
/*
 * The connections to gmemd: every one for an admin (role admin, root, gmemd's own uid), else those of
 * the caller's uid. *ret is malloc'd, free() it. Return: 0, -ENOSYS (a gmemd without this op).
 */
int gmem_client_list(struct gmem_client *c, struct gmem_client_info **ret, size_t *ret_n);
/*
 * Delegation: the supported way to hand guest memory to another process (a vhost-user back end) instead
 * of passing your own fd. A holder (a connection that opened the guest) names a grantee ("uid:N" or
 * "gid:N", which must already hold a grant on the guest) and a range; gmemd returns a one-time token,
 * good for ret->expires_ms. Pass the token to the grantee by any channel; the grantee redeems it over its
 * own connection and gets a file of its own and an attachment of its own (kind mmap or iommu) on that
 * range, which takes part in conversions like any attachment. gmem_undelegate() ends that attachment
 * alone (the grantee is sent GMEM_EVENT_REVOKED); on the memfd backend its file stays open in the
 * grantee's process. Unredeemed tokens die when they expire, when used, or when the delegating
 * connection closes.
 */
#define GMEM_TOKEN_LEN 32
struct gmem_delegation {
	uint64_t id;                     /* names it for gmem_undelegate() */
	char token[GMEM_TOKEN_LEN + 1];  /* 128 random bits, hex: whoever has it and is the grantee may redeem */
	uint64_t expires_ms;
};
/* Return: 0, -EPERM (no file of the guest: open it first), -ENOENT (no such guest, or no grant for who),
 * -EINVAL, -ERANGE, -EDQUOT (16 unredeemed delegations per connection). */
int gmem_delegate(struct gmem_client *c, const char *name, const char *who, uint64_t offset, uint64_t length,
		  enum gmem_attach_kind kind, struct gmem_delegation *ret);
/* Redeems a token: *ret_fd is a new file of the guest (the caller owns it, O_CLOEXEC), *ret_attach_id the
 * new attachment (may be NULL), ret_info may be NULL. Return: 0, -ENOENT (used, expired, withdrawn or never
 * made), -EPERM (not the named grantee, or its grant was revoked), -EBUSY (the range is converting). */
int gmem_redeem(struct gmem_client *c, const char *token, int *ret_fd, uint64_t *ret_attach_id,
		struct gmem_guest_info *ret_info);
/* Withdraws a delegation (its maker or the guest's owner): an unredeemed token dies, a redeemed one's
 * attachment ends. Return: 0, -ENOENT, -EPERM. */
int gmem_undelegate(struct gmem_client *c, uint64_t id);

/* The guest's single vmm lease (role vmm). -EBUSY when another client holds it. Dropped on disconnect. */
int gmem_lease(struct gmem_client *c, const char *name);
int gmem_release(struct gmem_client *c, const char *name);

/* ---- conversions ---- */
struct gmem_range {
	uint64_t offset; /* bytes, multiples of the guest's granule */
	uint64_t length;
};

/* gmem_watch(): receive GMEM_EVENT_CONVERSION for every conversion of the guests you may see. */
int gmem_watch(struct gmem_client *c);

struct gmem_run {
	uint64_t offset, length;
	enum gmem_target state;
};
/* The guest's map as maximal runs, in order; *ret is malloc'd (free it). shared/private_bytes may be NULL. */
int gmem_map(struct gmem_client *c, const char *name, struct gmem_run **ret, size_t *ret_n,
	     uint64_t *shared_bytes, uint64_t *private_bytes);

/*
 * The participant contract. A client with attachments overlapping a conversion, and the guest's vmm
 * lease holder, take part in it:
 *   prepare  stop NEW use of the ranges and make sure the commit cannot fail for you — to-private: that
 *            you can unmap (drain DMA, nothing pinned you cannot release); to-shared: that you have the
 *            resources to map (IOVA space, mapping slots). Unmap nothing yet. Then vote with
 *            gmem_vote(), from the callback or later (a device manager may drain DMA first). A yes is a
 *            promise: the commit cannot fail for you. Not voting within gmemd's prepare timeout is a no.
 *   commit   wave 1 or 3 (cv->wave). to-private: a device unmaps (IOMMU first) in wave 1; the vmm, in
 *            wave 3 after the backend revoked the memory, updates KVM's view. to-shared: the vmm updates
 *            KVM's view in wave 1; devices map in wave 3, after the backend made it shared. Then
 *            gmem_ack(). An ack that never comes does not undo the commit.
 *   abort    nothing was unmapped: resume.
 *   done     the conversion ended (cv->outcome); the last event of every conversion.
 * Callbacks run inside gmem_dispatch() (or a blocking gmem_convert()) in the caller's thread. Within them
 * any libgmem call on the same handle is allowed, except gmem_disconnect().
 */
struct gmem_conversion {
	uint64_t epoch, seq;       /* the conversion's id: pass both to gmem_vote/gmem_ack */
	const char *guest;
	enum gmem_target target;
	bool zero;                 /* contents are discarded */
	enum gmem_role role;       /* GMEM_ROLE_VMM (lease holder) or GMEM_ROLE_DEVICE */
	const struct gmem_range *ranges; /* the changing ranges that concern you (prepare's, repeated by commit,
					  * abort and done: target, zero and role too) */
	size_t n_ranges;
	int wave;                  /* commit: 1 or 3 */
	enum gmem_outcome outcome; /* done */
};

struct gmem_participant_ops {
	void (*prepare)(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata);
	void (*commit)(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata);
	void (*abort)(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata);
	void (*done)(struct gmem_client *c, const struct gmem_conversion *cv, void *userdata);
};
/* ops is borrowed and must outlive the handle (or the next call); NULL stops delivering. A client with
 * no participant ops that is asked to prepare does not vote, and so refuses by timeout. */
void gmem_set_participant(struct gmem_client *c, const struct gmem_participant_ops *ops, void *userdata);

/* yes, or no with err (a positive errno, 0 means EPERM) and a reason shown to the requester (may be
 * NULL). Return: 0, -ESTALE (the conversion no longer awaits your vote), -EALREADY. */
int gmem_vote(struct gmem_client *c, uint64_t epoch, uint64_t seq, bool yes, int err, const char *reason);
int gmem_ack(struct gmem_client *c, uint64_t epoch, uint64_t seq);
/* After a gmemd restart: how the restarted gmemd ended a conversion of the earlier one (epoch, seq) this
 * client was in doubt about (voted, then lost gmemd before abort or done). GMEM_COMMITTED: do your
 * wave's part; GMEM_ABORTED: resume. Return: 0, -ENOENT (not known), -EINVAL (of this gmemd). */
int gmem_resolve(struct gmem_client *c, uint64_t epoch, uint64_t seq, enum gmem_outcome *ret);

enum {
	GMEM_CONVERT_ZERO = 1 << 0,  /* discard the contents */
	GMEM_CONVERT_FORCE = 1 << 1, /* kmod only: do not ask; revoke (-EOPNOTSUPP on memfd) */
};

struct gmem_refusal {
	uint64_t client_id;
	uint32_t pid;
	char client_name[GMEM_NAME_MAX_LEN + 1];
	int err;          /* positive errno */
	char reason[256]; /* as the participant gave it: may hold control characters */
	bool timed_out;   /* did not vote in time */
	bool gone;        /* disconnected before voting */
};

struct gmem_party {
	uint64_t client_id;
	uint32_t pid;
	char client_name[GMEM_NAME_MAX_LEN + 1];
};

struct gmem_convert_result {
	uint64_t epoch, seq;
	enum gmem_outcome outcome;
	uint64_t changed;      /* bytes that changed state */
	uint64_t participants;
	uint64_t latency_us;   /* measured by gmemd from request to outcome */
	struct gmem_refusal *refusals; /* aborted: who said no or did not answer */
	size_t n_refusals;
	struct gmem_party *unverified; /* committed-unverified: whose letting go was not seen */
	size_t n_unverified;
	struct gmem_party *revoked; /* kmod: files revoked for keeping a mapping (pid: who mapped) */
	size_t n_revoked;
	struct gmem_party *not_asked; /* GMEM_CONVERT_FORCE: the holders it did not ask (they fault) */
	size_t n_not_asked;
};
/* Frees the arrays inside (not r itself). */
void gmem_convert_result_free(struct gmem_convert_result *r);

/*
 * Converts ranges of a guest to target, and blocks until the outcome — while it waits it keeps
 * delivering this handle's events, so a VMM that is both requester and participant answers its own
 * prepare and commit. Return: 0 when the conversion ran (whatever its outcome: read ret->outcome), or
 * -errno when gmemd refused the request. On 0, release ret with gmem_convert_result_free().
 */
int gmem_convert(struct gmem_client *c, const char *name, const struct gmem_range *ranges, size_t n,
		 enum gmem_target target, unsigned flags, struct gmem_convert_result *ret);

/* The same without blocking: fn runs from gmem_dispatch() once, with err 0 and the result (valid during
 * the call), or with a negative errno and NULL. */
typedef void (*gmem_convert_fn)(struct gmem_client *c, int err, const struct gmem_convert_result *r,
				void *userdata);
int gmem_convert_async(struct gmem_client *c, const char *name, const struct gmem_range *ranges, size_t n,
		       enum gmem_target target, unsigned flags, gmem_convert_fn fn, void *userdata);

/* A conversion as gmem_conversion_list() shows it. */
struct gmem_conversion_info {
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX_LEN + 1];
	enum gmem_target target;
	char state[24];        /* in flight: "queued", "preparing", "committing"; ended: its outcome */
	uint64_t bytes;        /* that change state (0 while queued) */
	uint64_t ranges;
	uint64_t participants;
	uint64_t latency_us;   /* from the request to its outcome; in flight: so far */
	uint32_t requester_pid;
};
/*
 * The conversions of the guests the caller may see: those queued or running (*ret_in_flight; at most
 * 100, *ret_omitted counts the rest, may be NULL), and the last ones that ended, newest first
 * (*ret_recent; gmemd remembers 64 in all). Both arrays are malloc'd: free() them.
 * Return: 0, -ENOSYS (a gmemd without this op).
 */
int gmem_conversion_list(struct gmem_client *c, struct gmem_conversion_info **ret_in_flight, size_t *ret_n_in_flight,
			 uint64_t *ret_omitted, struct gmem_conversion_info **ret_recent, size_t *ret_n_recent);
/* ---- operator controls (role admin, gmemd's feature "operator"; -EOPNOTSUPP without it) ---- */
#define GMEM_HOLDER_RANGES 16
struct gmem_holder_info {
	uint64_t client_id;   /* as gmem_evict takes it */
	uint32_t pid, uid;
	char client_name[GMEM_NAME_MAX_LEN + 1];
	enum gmem_role role;
	uint64_t files;       /* files of the guest handed to this connection */
	bool leased;          /* it holds the guest's vmm lease */
	uint64_t attachments; /* how many; the first GMEM_HOLDER_RANGES are in ranges[] */
	struct {
		uint64_t id, offset, length;
		enum gmem_attach_kind kind;
	} ranges[GMEM_HOLDER_RANGES];
	size_t n_ranges;
};
/* The connections holding a file, an attachment or the lease of the guest; *ret is malloc'd. */
int gmem_holders(struct gmem_client *c, const char *name, struct gmem_holder_info **ret, size_t *ret_n);
/* Aborts conversion seq (epoch 0: the running gmemd's) if it is not decided yet. -EALREADY when it is,
 * -ENOENT when no such conversion is queued or in flight. */
int gmem_cancel(struct gmem_client *c, uint64_t epoch, uint64_t seq);
/* Disconnects another client (its id from gmem_holders). Its files stay in its process. */
int gmem_evict(struct gmem_client *c, uint64_t client_id);

/* ---- statistics (gmemd's feature "stats"; -EOPNOTSUPP without it) ---- */
struct gmem_guest_stats {
	uint64_t id;
	char name[GMEM_NAME_MAX_LEN + 1];
	uint64_t conversions, committed, aborted, unverified; /* ended since the guest was created */
	uint64_t queued;             /* waiting, the one in flight included */
	uint64_t window;             /* how many recent conversions p50_us and p99_us are over (up to 128) */
	uint64_t p50_us, p99_us;     /* latency, request to outcome, measured by gmemd */
	uint64_t quarantined_bytes;  /* memory no one may be handed until a holder lets go */
	struct {
		uint64_t client_id;  /* 0: no vote among the recent conversions */
		uint32_t pid;
		char client_name[GMEM_NAME_MAX_LEN + 1];
		uint64_t vote_us;    /* prepare to vote */
	} slowest;                   /* the slowest voter of the window */
};
/* Every guest the caller may see; *ret is malloc'd. quarantined (may be NULL): over all of them. */
int gmem_stats(struct gmem_client *c, struct gmem_guest_stats **ret, size_t *ret_n, uint64_t *quarantined);

/* ---- the local shareability query ---- */
/*
 * A guest's shareability map published by gmemd to its vmm lease holder: a read-only, sealed mapping
 * that answers "is this range shared?" without a round trip to gmemd and without locks, so device
 * emulation can check every guest address it touches (a virtqueue in private memory would fault it).
 * A range reads not shared from the prepare of a conversion to private on, and shared only after the
 * done of a conversion to shared. The queries may run in any thread, concurrently with each other and
 * with calls on the handle; they never block and never call gmemd.
 */
struct gmem_shared_map;

/* Needs the guest's vmm lease on this handle (gmem_lease). -EPERM otherwise; -EOPNOTSUPP when gmemd
 * does not offer the feature "publish-map". The map stays valid after the handle is gone. */
int gmem_shared_map_open(struct gmem_client *c, const char *name, struct gmem_shared_map **ret);
void gmem_shared_map_close(struct gmem_shared_map *m);
/* The map's read-only file (borrowed: valid until close), to pass to a device process, which opens its
 * own view with gmem_shared_map_from_fd (fd borrowed: the map keeps a duplicate). Nobody can write the
 * file: gmemd sealed it (F_SEAL_FUTURE_WRITE), a reopen through /proc included. */
int gmem_shared_map_fd(const struct gmem_shared_map *m);
int gmem_shared_map_from_fd(int fd, struct gmem_shared_map **ret);

/* 1 when every byte of [offset, offset+length) is shared, 0 when some is not; -EINVAL (empty or not
 * granule-aligned), -ERANGE (past the end), -ENODEV (the guest was destroyed). The answer comes from one consistent state of the map: a
 * change in the middle of the read makes it read again. */
int gmem_range_is_shared(const struct gmem_shared_map *m, uint64_t offset, uint64_t length);
/* The number of granules of the range that are not shared, from one consistent state. */
int gmem_range_count_private(const struct gmem_shared_map *m, uint64_t offset, uint64_t length,
			     uint64_t *ret_granules);

/*
 * Quarantine: memory an IOMMU holder may still reach — a range whose to-private commit a device with an
 * `iommu` attachment did not ack (it stays private: a to-shared of it fails with -EHWPOISON), or the
 * memory of a guest destroyed while such a holder lived (it stays allocated). Each record is released
 * when its holder acks that conversion (gmem_ack() after the conversion ended is fine) or its process
 * exits.
 */
struct gmem_quarantine_info {
	char guest[GMEM_NAME_MAX_LEN + 1];
	bool destroyed;         /* the guest is gone; offset 0, length its size */
	uint64_t offset, length;
	uint64_t seq;           /* the conversion the holder did not ack (0 for a destroyed guest's holder) */
	uint64_t client_id;     /* the holder */
	uint32_t pid;
	char client_name[GMEM_NAME_MAX_LEN + 1];
};
/*
 * The records the caller may see: of guest name, or over the pool when name is NULL (at most 64).
 * *ret is malloc'd (free it; NULL when there are none); *ret_bytes (may be NULL): quarantined bytes, of
 * that guest or over the pool, each byte once. Return: 0 or -errno.
 */
int gmem_quarantine_list(struct gmem_client *c, const char *name, struct gmem_quarantine_info **ret, size_t *ret_n,
			 uint64_t *ret_bytes);

#ifdef __cplusplus
}
#endif
#endif
