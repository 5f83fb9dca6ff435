// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The generic-netlink family: read-only queries (pool, guests, holders with their pids), every op
 * GENL_ADMIN_PERM, and the events group, flagged GENL_MCAST_CAP_NET_ADMIN so only a process with
 * CAP_NET_ADMIN (gmemd keeps it and nothing else) may join. Events are rate-limited per guest; the
 * next event sent carries the count of those dropped.
 */
#include <linux/jiffies.h>
#include <linux/version.h>
#include <net/genetlink.h>

#include "gmem_pfn.h"

static const struct nla_policy gmem_genl_policy[GMEM_PFN_A_MAX + 1] = {
	[GMEM_PFN_A_GUEST_ID] = NLA_POLICY_MIN(NLA_U64, 1),
};

static const struct genl_multicast_group gmem_genl_mcgrps[] = {
	{ .name = GMEM_PFN_GENL_MCGRP_EVENTS, .flags = GENL_MCAST_CAP_NET_ADMIN },
};

static struct genl_family gmem_genl_family;

static struct nlattr **gmem_dump_attrs(struct netlink_callback *cb)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	return genl_info_dump(cb)->attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

static int gmem_put_pool(struct sk_buff *skb)
{
	u64 total, free;
	u32 nr_guests, nr_ranges;

	mutex_lock(&gmem_lock);
	gmem_pool_stats(&total, &free);
	nr_guests = gmem_nr_guests;
	nr_ranges = gmem_pool_nr_ranges();
	mutex_unlock(&gmem_lock);
	if (nla_put_u64_64bit(skb, GMEM_PFN_A_POOL_TOTAL, total, GMEM_PFN_A_PAD) ||
	    nla_put_u64_64bit(skb, GMEM_PFN_A_POOL_FREE, free, GMEM_PFN_A_PAD) ||
	    nla_put_u32(skb, GMEM_PFN_A_POOL_NR_GUESTS, nr_guests) ||
	    nla_put_u32(skb, GMEM_PFN_A_POOL_NR_RANGES, nr_ranges))
		return -EMSGSIZE;
	return 0;
}

static int gmem_genl_pool_get(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;
	int r;

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &gmem_genl_family, 0, GMEM_PFN_CMD_POOL_GET);
	if (!hdr) {
		r = -EMSGSIZE;
		goto out_free;
	}
	r = gmem_put_pool(msg);
	if (r)
		goto out_free;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
out_free:
	nlmsg_free(msg);
	return r;
}

/* Called with gmem_lock held (g cannot be destroyed meanwhile). */
static int gmem_put_guest(struct sk_buff *skb, struct gmem_guest *g)
{
	u32 nr_holders;

	mutex_lock(&g->lock);
	nr_holders = g->nr_holders;
	mutex_unlock(&g->lock);
	if (nla_put_u64_64bit(skb, GMEM_PFN_A_GUEST_ID, g->id, GMEM_PFN_A_PAD) ||
	    nla_put_u64_64bit(skb, GMEM_PFN_A_GUEST_COOKIE, g->cookie, GMEM_PFN_A_PAD) ||
	    nla_put_u64_64bit(skb, GMEM_PFN_A_GUEST_BYTES, g->bytes, GMEM_PFN_A_PAD) ||
	    nla_put_u32(skb, GMEM_PFN_A_GUEST_GRANULE_SHIFT, g->granule_shift) ||
	    nla_put_s32(skb, GMEM_PFN_A_GUEST_NODE, g->nid) ||
	    nla_put_u64_64bit(skb, GMEM_PFN_A_GUEST_PRIVATE_BYTES, gmem_guest_private_bytes(g),
			      GMEM_PFN_A_PAD) ||
	    nla_put_u32(skb, GMEM_PFN_A_GUEST_NR_HOLDERS, nr_holders))
		return -EMSGSIZE;
	return 0;
}

static int gmem_genl_guest_get(struct sk_buff *skb, struct genl_info *info)
{
	struct gmem_guest *g;
	struct sk_buff *msg;
	void *hdr;
	int r;

	if (GENL_REQ_ATTR_CHECK(info, GMEM_PFN_A_GUEST_ID))
		return -EINVAL;
	g = gmem_guest_get(nla_get_u64(info->attrs[GMEM_PFN_A_GUEST_ID]));
	if (!g) {
		NL_SET_ERR_MSG(info->extack, "no such guest");
		return -ENOENT;
	}
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg) {
		r = -ENOMEM;
		goto out_put;
	}
	hdr = genlmsg_put_reply(msg, info, &gmem_genl_family, 0, GMEM_PFN_CMD_GUEST_GET);
	r = hdr ? gmem_put_guest(msg, g) : -EMSGSIZE;
	if (r) {
		nlmsg_free(msg);
		goto out_put;
	}
	genlmsg_end(msg, hdr);
	r = genlmsg_reply(msg, info);
out_put:
	gmem_guest_put(g);
	return r;
}

/* cb->args[0]: the last guest id sent (ids only grow, and the table is in id order). */
static int gmem_genl_guest_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct gmem_guest *g;
	int r = 0;

	mutex_lock(&gmem_lock);
	list_for_each_entry(g, &gmem_guests, node) {
		void *hdr;

		if (g->id <= cb->args[0])
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq, &gmem_genl_family,
				  NLM_F_MULTI, GMEM_PFN_CMD_GUEST_GET);
		if (!hdr || gmem_put_guest(skb, g)) {
			if (hdr)
				genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0] = g->id;
	}
	mutex_unlock(&gmem_lock);
	r = skb->len;
	return r;
}

/* cb->args[0]: the last holder id sent. The guest must be named (GMEM_PFN_A_GUEST_ID). */
static int gmem_genl_holder_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct nlattr **attrs = gmem_dump_attrs(cb);
	struct gmem_holder *h;
	struct gmem_guest *g;

	if (!attrs || !attrs[GMEM_PFN_A_GUEST_ID]) {
		NL_SET_ERR_MSG(cb->extack, "GMEM_PFN_A_GUEST_ID is required");
		return -EINVAL;
	}
	g = gmem_guest_get(nla_get_u64(attrs[GMEM_PFN_A_GUEST_ID]));
	if (!g) {
		NL_SET_ERR_MSG(cb->extack, "no such guest");
		return -ENOENT;
	}
	mutex_lock(&g->lock);
	list_for_each_entry(h, &g->holders, node) {
		void *hdr;

		if (h->id <= cb->args[0])
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq, &gmem_genl_family,
				  NLM_F_MULTI, GMEM_PFN_CMD_HOLDER_GET);
		if (!hdr)
			break;
		if (nla_put_u64_64bit(skb, GMEM_PFN_A_GUEST_ID, g->id, GMEM_PFN_A_PAD) ||
		    nla_put_u64_64bit(skb, GMEM_PFN_A_HOLDER_ID, h->id, GMEM_PFN_A_PAD) ||
		    nla_put_u64_64bit(skb, GMEM_PFN_A_HOLDER_TAG, h->tag, GMEM_PFN_A_PAD) ||
		    nla_put_s32(skb, GMEM_PFN_A_HOLDER_OWNER_PID, h->owner_pid) ||
		    nla_put_s32(skb, GMEM_PFN_A_HOLDER_OPENER_PID, h->opener_pid) ||
		    (READ_ONCE(h->revoked) && nla_put_flag(skb, GMEM_PFN_A_HOLDER_REVOKED)) ||
		    nla_put_u32(skb, GMEM_PFN_A_HOLDER_NR_MAPPINGS, gmem_guest_nr_mappings(g, h->file))) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0] = h->id;
	}
	mutex_unlock(&g->lock);
	gmem_guest_put(g);
	return skb->len;
}

static const struct genl_ops gmem_genl_ops[] = {
	{
		.cmd = GMEM_PFN_CMD_POOL_GET,
		.doit = gmem_genl_pool_get,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = GMEM_PFN_CMD_GUEST_GET,
		.doit = gmem_genl_guest_get,
		.dumpit = gmem_genl_guest_dump,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = GMEM_PFN_CMD_HOLDER_GET,
		.dumpit = gmem_genl_holder_dump,
		.flags = GENL_ADMIN_PERM,
	},
};

static struct genl_family gmem_genl_family __ro_after_init = {
	.name = GMEM_PFN_GENL_NAME,
	.version = GMEM_PFN_GENL_VERSION,
	.maxattr = GMEM_PFN_A_MAX,
	.policy = gmem_genl_policy,
	.netnsok = false,
	.module = THIS_MODULE,
	.ops = gmem_genl_ops,
	.n_ops = ARRAY_SIZE(gmem_genl_ops),
	/* Every op is new: strict attribute validation, reserved header bytes must be zero. */
	.resv_start_op = GMEM_PFN_CMD_POOL_GET,
	.mcgrps = gmem_genl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(gmem_genl_mcgrps),
};

int gmem_genl_init(void)
{
	return genl_register_family(&gmem_genl_family);
}

void gmem_genl_exit(void)
{
	genl_unregister_family(&gmem_genl_family);
}

/* Returns the count dropped before this one, or -1 when this event must be dropped too. */
static long gmem_event_admit(struct gmem_guest *g)
{
	long dropped = -1;

	spin_lock(&g->ev_lock);
	if (time_after(jiffies, g->ev_window + HZ)) {
		g->ev_window = jiffies;
		g->ev_sent = 0;
	}
	if (g->ev_sent < GMEM_PFN_EVENT_BURST) {
		g->ev_sent++;
		dropped = g->ev_dropped;
		g->ev_dropped = 0;
	} else {
		g->ev_dropped++;
	}
	spin_unlock(&g->ev_lock);
	return dropped;
}

static void gmem_event_send(struct gmem_guest *g, u8 cmd, u64 holder_id, pid_t pid, u64 offset, bool revoked)
{
	struct sk_buff *msg;
	long dropped;
	void *hdr;

	if (!genl_has_listeners(&gmem_genl_family, &init_net, 0))
		return;
	dropped = gmem_event_admit(g);
	if (dropped < 0)
		return;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		goto out_lost;
	hdr = genlmsg_put(msg, 0, 0, &gmem_genl_family, 0, cmd);
	if (!hdr)
		goto out_free;
	if (nla_put_u64_64bit(msg, GMEM_PFN_A_GUEST_ID, g->id, GMEM_PFN_A_PAD) ||
	    nla_put_u64_64bit(msg, GMEM_PFN_A_GUEST_COOKIE, g->cookie, GMEM_PFN_A_PAD) ||
	    nla_put_u32(msg, GMEM_PFN_A_EVENT_DROPPED, dropped))
		goto out_free;
	if (cmd == GMEM_PFN_CMD_EVENT_PRIVATE_FAULT &&
	    (nla_put_s32(msg, GMEM_PFN_A_EVENT_PID, pid) ||
	     nla_put_u64_64bit(msg, GMEM_PFN_A_EVENT_OFFSET, offset, GMEM_PFN_A_PAD) ||
	     nla_put_u64_64bit(msg, GMEM_PFN_A_HOLDER_ID, holder_id, GMEM_PFN_A_PAD) ||
	     (revoked && nla_put_flag(msg, GMEM_PFN_A_HOLDER_REVOKED))))
		goto out_free;
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&gmem_genl_family, msg, 0, 0, GFP_KERNEL);
	return;
out_free:
	nlmsg_free(msg);
out_lost:
	/* Not sent: count it with the dropped ones so the listener learns about it. */
	spin_lock(&g->ev_lock);
	g->ev_dropped += dropped + 1;
	spin_unlock(&g->ev_lock);
}

void gmem_event_private_fault(struct gmem_guest *g, u64 holder_id, pid_t pid, u64 offset, bool revoked)
{
	gmem_event_send(g, GMEM_PFN_CMD_EVENT_PRIVATE_FAULT, holder_id, pid, offset, revoked);
}

void gmem_event_guest_released(struct gmem_guest *g)
{
	gmem_event_send(g, GMEM_PFN_CMD_EVENT_GUEST_RELEASED, 0, 0, 0, false);
}
