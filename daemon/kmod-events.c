/* SPDX-License-Identifier: MIT */
#include "kmod-events.h"

#include <errno.h>
#include <event2/event.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <stdlib.h>

#include "gmem_pfn.h"
#include "log.h"

struct kmod_events {
	struct nl_sock *sk;
	struct event *ev;
	kmod_events_name_fn name_of;
	void *ctx;
};

static int on_msg(struct nl_msg *msg, void *arg)
{
	struct kmod_events *e = arg;
	struct nlattr *a[GMEM_PFN_A_MAX + 1];
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));

	/* The module is trusted, but a malformed message is still only logged, never followed. */
	if (genlmsg_parse(nlmsg_hdr(msg), 0, a, GMEM_PFN_A_MAX, NULL) < 0 || !a[GMEM_PFN_A_GUEST_ID]) {
		log_warning("kmod events: a malformed message from gmem_pfn (command %u)", gh->cmd);
		return NL_SKIP;
	}
	uint64_t id = nla_get_u64(a[GMEM_PFN_A_GUEST_ID]);
	const char *name = e->name_of(e->ctx, id);
	uint32_t dropped = a[GMEM_PFN_A_EVENT_DROPPED] ? nla_get_u32(a[GMEM_PFN_A_EVENT_DROPPED]) : 0;

	switch (gh->cmd) {
	case GMEM_PFN_CMD_EVENT_PRIVATE_FAULT:
		log_warning("%s: guest '%s' (module guest %llu), pid %d, offset %#llx, holder file %llu "
			    "(%u earlier events dropped by the module's rate limit)",
			    a[GMEM_PFN_A_HOLDER_REVOKED] ? "fault on a revoked file" : "private-page fault", name ? name : "?",
			    (unsigned long long)id,
			    a[GMEM_PFN_A_EVENT_PID] ? (int)nla_get_s32(a[GMEM_PFN_A_EVENT_PID]) : -1,
			    a[GMEM_PFN_A_EVENT_OFFSET] ? (unsigned long long)nla_get_u64(a[GMEM_PFN_A_EVENT_OFFSET]) : 0ULL,
			    a[GMEM_PFN_A_HOLDER_ID] ? (unsigned long long)nla_get_u64(a[GMEM_PFN_A_HOLDER_ID]) : 0ULL,
			    dropped);
		break;
	case GMEM_PFN_CMD_EVENT_GUEST_RELEASED:
		log_info("kmod: module guest %llu%s%s%s was scrubbed and returned to the pool", (unsigned long long)id,
			 name ? " ('" : "", name ? name : "", name ? "')" : "");
		break;
	default:
		log_debug("kmod events: command %u ignored", gh->cmd);
		break;
	}
	return NL_OK;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct kmod_events *e = arg;
	(void)fd;
	(void)what;
	int r = nl_recvmsgs_default(e->sk);
	/* An overrun socket lost events, not the connection: say so and read on. */
	if (r < 0 && r != -NLE_AGAIN)
		log_warning("kmod events: %s (events were lost)", nl_geterror(r));
}

int kmod_events_open(struct event_base *base, kmod_events_name_fn name_of, void *ctx, struct kmod_events **ret)
{
	struct kmod_events *e = calloc(1, sizeof(*e));
	int r, grp;

	if (!e)
		return -ENOMEM;
	e->name_of = name_of;
	e->ctx = ctx;
	e->sk = nl_socket_alloc();
	if (!e->sk) {
		r = -ENOMEM;
		goto fail;
	}
	/* Multicast events carry no sequence numbers of ours. */
	nl_socket_disable_seq_check(e->sk);
	nl_socket_modify_cb(e->sk, NL_CB_VALID, NL_CB_CUSTOM, on_msg, e);
	r = genl_connect(e->sk);
	if (r < 0) {
		r = log_errno(LOG_WARNING, -EIO, "kmod events: generic netlink: %s", nl_geterror(r));
		goto fail;
	}
	grp = genl_ctrl_resolve_grp(e->sk, GMEM_PFN_GENL_NAME, GMEM_PFN_GENL_MCGRP_EVENTS);
	if (grp < 0) {
		r = log_errno(LOG_WARNING, -ENOENT, "kmod events: no group '%s' in family '%s': %s",
			      GMEM_PFN_GENL_MCGRP_EVENTS, GMEM_PFN_GENL_NAME, nl_geterror(grp));
		goto fail;
	}
	r = nl_socket_add_membership(e->sk, grp);
	if (r < 0) {
		r = log_errno(LOG_WARNING, -EPERM, "kmod events: joining the events group: %s (gmemd needs "
			      "CAP_NET_ADMIN)", nl_geterror(r));
		goto fail;
	}
	nl_socket_set_nonblocking(e->sk);
	e->ev = event_new(base, nl_socket_get_fd(e->sk), EV_READ | EV_PERSIST, on_readable, e);
	if (!e->ev || event_add(e->ev, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = e;
	return 0;

fail:
	kmod_events_close(e);
	return r;
}

void kmod_events_close(struct kmod_events *e)
{
	if (!e)
		return;
	if (e->ev)
		event_free(e->ev);
	if (e->sk)
		nl_socket_free(e->sk);
	free(e);
}
