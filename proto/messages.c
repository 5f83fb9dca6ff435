/* SPDX-License-Identifier: MIT */
/*
 * messages: the field table of every op and event payload. Bounds live here, next to the keys, so the
 * daemon never sees a value outside them; PROTOCOL.md lists the same bounds.
 */
#include <string.h>

#include "gmem-proto.h"

const char *const gmem_role_names[] = { "vmm", "device", "admin", NULL };
const char *const gmem_attach_kind_names[] = { "mmap", "iommu", "kvm", NULL };
const char *const gmem_target_names[] = { "shared", "private", NULL };
const char *const gmem_content_names[] = { "preserve", "zero", NULL };
const char *const gmem_vote_names[] = { "yes", "no", NULL };
const char *const gmem_outcome_names[] = { "committed", "aborted", "committed-unverified", NULL };
const char *const gmem_state_names[] = { "queued", "preparing", "committing", "committed", "aborted",
					 "committed-unverified", NULL };
const char *const gmem_feature_names[] = {
#define X(id, name) name,
	GMEM_FEATURES(X)
#undef X
	NULL,
};

/* The largest guest or offset the protocol carries: 2^62, far above any pool, and sums of two stay < 2^63. */
#define SIZE_MAX_WIRE (UINT64_C(1) << 62)

const struct gmem_field gmem_no_fields[] = { GMEM_FIELD_END };

const struct gmem_field gmem_hello_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_hello_args, version, "version", 1, 65535, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_hello_args, role, "role", gmem_role_names, GMEM_F_REQUIRED),
	GMEM_FIELD_FLAGS(struct gmem_hello_args, features, "features", gmem_feature_names, 0),
	GMEM_FIELD_STRING(struct gmem_hello_args, client_name, "client_name", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_hello_reply_fields[] = {
	GMEM_FIELD_U64(struct gmem_hello_reply, version, "version", 1, 65535, GMEM_F_REQUIRED),
	GMEM_FIELD_FLAGS(struct gmem_hello_reply, features, "features", gmem_feature_names, 0),
	GMEM_FIELD_STRING(struct gmem_hello_reply, server, "server", 0, 0),
	GMEM_FIELD_STRING(struct gmem_hello_reply, backend, "backend", 0, 0),
	GMEM_FIELD_BOOL(struct gmem_hello_reply, enforcing, "enforcing", 0),
	GMEM_FIELD_U64(struct gmem_hello_reply, client_id, "client_id", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_END,
};

static const struct gmem_field wire_node_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_node, node, "node", 0, GMEM_NODE_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_node, total, "total", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_node, free, "free", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_END,
};

static const struct gmem_field quarantine_fields[] = {
	GMEM_FIELD_STRING(struct gmem_wire_quarantine, guest, "guest", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_BOOL(struct gmem_wire_quarantine, destroyed, "destroyed", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_wire_quarantine, offset, "offset", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_quarantine, length, "length", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_quarantine, seq, "seq", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_wire_quarantine, client_id, "client_id", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_quarantine, pid, "pid", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_STRING(struct gmem_wire_quarantine, client_name, "client_name", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_status_reply_fields[] = {
	GMEM_FIELD_STRING(struct gmem_status_reply, server, "server", 0, 0),
	GMEM_FIELD_STRING(struct gmem_status_reply, backend, "backend", 0, 0),
	GMEM_FIELD_BOOL(struct gmem_status_reply, enforcing, "enforcing", 0),
	GMEM_FIELD_U64(struct gmem_status_reply, pool_size, "pool_size", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_status_reply, pool_used, "pool_used", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_status_reply, touched, "touched", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_status_reply, guests, "guests", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_status_reply, clients, "clients", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_ARRAY(struct gmem_status_reply, nodes, n_nodes, "nodes", struct gmem_wire_node, wire_node_fields,
			 GMEM_NODES_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_status_reply, quarantined, "quarantined", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_ARRAY(struct gmem_status_reply, quarantine, n_quarantine, "quarantine", struct gmem_wire_quarantine,
			 quarantine_fields, GMEM_QUARANTINE_LIST_MAX, 0),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_guest_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_guest_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_destroy_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_destroy_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_BOOL(struct gmem_destroy_args, force, "force", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

static const struct gmem_field wire_orphan_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_orphan, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_orphan, size, "size", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_orphan, granule, "granule", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_BOOL(struct gmem_wire_orphan, on_node, "on_node", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_wire_orphan, node, "node", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_wire_orphan, private_bytes, "private", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_orphan, holders, "holders", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_orphan, cookie, "cookie", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_orphans_reply_fields[] = {
	GMEM_FIELD_ARRAY(struct gmem_orphans_reply, orphans, n_orphans, "orphans", struct gmem_wire_orphan,
			 wire_orphan_fields, GMEM_ORPHANS_PAGE, 0),
	GMEM_FIELD_U64(struct gmem_orphans_reply, next, "next", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_adopt_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_adopt_args, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_adopt_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_adopt_args, owner, "owner", 0, UINT32_MAX - 1, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_orphan_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_orphan_args, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_holders_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_holders_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_holders_args, after, "after", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
static const struct gmem_field wire_attachment_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_attachment, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_attachment, offset, "offset", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_attachment, length, "length", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_wire_attachment, kind, "kind", gmem_attach_kind_names, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
static const struct gmem_field wire_holder_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_holder, client_id, "client_id", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_holder, pid, "pid", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_holder, uid, "uid", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_STRING(struct gmem_wire_holder, client_name, "client_name", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_ENUM(struct gmem_wire_holder, role, "role", gmem_role_names, 0),
	GMEM_FIELD_U64(struct gmem_wire_holder, files, "files", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_BOOL(struct gmem_wire_holder, leased, "leased", 0),
	GMEM_FIELD_U64(struct gmem_wire_holder, attachments, "attachments", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_ARRAY(struct gmem_wire_holder, ranges, n_ranges, "ranges", struct gmem_wire_attachment,
			 wire_attachment_fields, GMEM_HOLDER_RANGES_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_holders_reply_fields[] = {
	GMEM_FIELD_ARRAY(struct gmem_holders_reply, holders, n_holders, "holders", struct gmem_wire_holder,
			 wire_holder_fields, GMEM_HOLDERS_PAGE, 0),
	GMEM_FIELD_U64(struct gmem_holders_reply, next, "next", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_cancel_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_cancel_args, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_cancel_args, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_evict_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_evict_args, client_id, "client_id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

static const struct gmem_field guest_stats_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, id, "id", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_STRING(struct gmem_wire_guest_stats, name, "name", 0, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, conversions, "conversions", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, committed, "committed", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, aborted, "aborted", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, unverified, "unverified", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, queued, "queued", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, window, "window", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, p50_us, "p50_us", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, p99_us, "p99_us", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, quarantined_bytes, "quarantined_bytes", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, slowest_client_id, "slowest_client_id", 0, GMEM_INT_MAX,
		       GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, slowest_pid, "slowest_pid", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_STRING(struct gmem_wire_guest_stats, slowest_name, "slowest_name", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_wire_guest_stats, slowest_vote_us, "slowest_vote_us", 0, GMEM_INT_MAX,
		       GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_stats_reply_fields[] = {
	GMEM_FIELD_ARRAY(struct gmem_stats_reply, guests, n_guests, "guests", struct gmem_wire_guest_stats,
			 guest_stats_fields, GMEM_STATS_PAGE, 0),
	GMEM_FIELD_U64(struct gmem_stats_reply, next, "next", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_stats_reply, quarantined_bytes, "quarantined_bytes", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_create_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_create_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_create_args, size, "size", 1, SIZE_MAX_WIRE, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_create_args, granule, "granule", GMEM_GRANULE_4K, GMEM_GRANULE_2M, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_BOOL(struct gmem_create_args, on_node, "on_node", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_create_args, node, "node", 0, GMEM_NODE_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_BOOL(struct gmem_create_args, ephemeral, "ephemeral", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_wire_guest_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_guest, id, "id", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_STRING(struct gmem_wire_guest, name, "name", 0, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest, size, "size", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest, granule, "granule", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest, owner, "owner", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest, touched, "touched", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest, holders, "holders", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_guest, attachments, "attachments", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_BOOL(struct gmem_wire_guest, leased, "leased", 0),
	GMEM_FIELD_U64(struct gmem_wire_guest, delegations, "delegations", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_BOOL(struct gmem_wire_guest, ephemeral, "ephemeral", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_list_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_list_args, after, "after", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_list_reply_fields[] = {
	GMEM_FIELD_ARRAY(struct gmem_list_reply, guests, n_guests, "guests", struct gmem_wire_guest,
			 gmem_wire_guest_fields, GMEM_LIST_PAGE, 0),
	GMEM_FIELD_U64(struct gmem_list_reply, next, "next", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_open_reply_fields[] = {
	GMEM_FIELD_OBJECT(struct gmem_open_reply, guest, "guest", gmem_wire_guest_fields, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_open_reply, fd, "fd", 0, 0, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_grant_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_grant_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_grant_args, who, "who", 5, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_grant_args, role, "role", gmem_role_names, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_attach_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_attach_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_attach_args, offset, "offset", 0, SIZE_MAX_WIRE, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_attach_args, length, "length", 1, SIZE_MAX_WIRE, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_attach_args, kind, "kind", gmem_attach_kind_names, GMEM_F_REQUIRED),
	/* pid_t is an int; 0 is "no pid" (the field's default) and never a process a client may name. */
	GMEM_FIELD_U64(struct gmem_attach_args, pid, "pid", 1, INT32_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_attach_reply_fields[] = {
	GMEM_FIELD_U64(struct gmem_attach_reply, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_detach_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_detach_args, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_delegate_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_delegate_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_delegate_args, who, "who", 5, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_delegate_args, offset, "offset", 0, SIZE_MAX_WIRE, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_delegate_args, length, "length", 1, SIZE_MAX_WIRE, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_delegate_args, kind, "kind", gmem_attach_kind_names, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_delegate_reply_fields[] = {
	GMEM_FIELD_U64(struct gmem_delegate_reply, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_delegate_reply, token, "token", GMEM_TOKEN_LEN, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_delegate_reply, expires_ms, "expires_ms", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_redeem_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_redeem_args, token, "token", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_redeem_reply_fields[] = {
	GMEM_FIELD_OBJECT(struct gmem_redeem_reply, guest, "guest", gmem_wire_guest_fields, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_redeem_reply, fd, "fd", 0, 0, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_redeem_reply, attachment, "attachment", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_redeem_reply, delegation, "delegation", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_undelegate_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_undelegate_args, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_revoked_event_fields[] = {
	GMEM_FIELD_STRING(struct gmem_revoked_event, name, "name", 0, 0),
	GMEM_FIELD_U64(struct gmem_revoked_event, attachment, "attachment", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_revoked_event, delegation, "delegation", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_shutdown_event_fields[] = {
	GMEM_FIELD_STRING(struct gmem_shutdown_event, reason, "reason", 0, 0),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_guest_event_fields[] = {
	GMEM_FIELD_STRING(struct gmem_guest_event, name, "name", 0, 0),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_wire_range_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_range, offset, "offset", 0, SIZE_MAX_WIRE, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_range, length, "length", 1, SIZE_MAX_WIRE, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_convert_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_convert_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_ARRAY(struct gmem_convert_args, ranges, n_ranges, "ranges", struct gmem_wire_range,
			 gmem_wire_range_fields, GMEM_RANGES_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_convert_args, target, "target", gmem_target_names, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_convert_args, content, "content", gmem_content_names, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_BOOL(struct gmem_convert_args, force, "force", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

static const struct gmem_field refusal_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_refusal, client_id, "client_id", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_refusal, pid, "pid", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_STRING(struct gmem_wire_refusal, client_name, "client_name", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_STRING(struct gmem_wire_refusal, err, "errno", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_STRING(struct gmem_wire_refusal, reason, "reason", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_BOOL(struct gmem_wire_refusal, timed_out, "timed_out", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_BOOL(struct gmem_wire_refusal, gone, "gone", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
static const struct gmem_field party_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_party, client_id, "client_id", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_party, pid, "pid", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_STRING(struct gmem_wire_party, client_name, "client_name", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_convert_reply_fields[] = {
	GMEM_FIELD_U64(struct gmem_convert_reply, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_convert_reply, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_convert_reply, outcome, "outcome", gmem_outcome_names, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_convert_reply, changed, "changed", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_convert_reply, participants, "participants", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_convert_reply, latency_us, "latency_us", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_ARRAY(struct gmem_convert_reply, refusals, n_refusals, "refusals", struct gmem_wire_refusal,
			 refusal_fields, GMEM_REFUSALS_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_ARRAY(struct gmem_convert_reply, unverified, n_unverified, "unverified",
			 struct gmem_wire_party, party_fields, GMEM_REFUSALS_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_ARRAY(struct gmem_convert_reply, revoked, n_revoked, "revoked",
			 struct gmem_wire_party, party_fields, GMEM_REFUSALS_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_ARRAY(struct gmem_convert_reply, not_asked, n_not_asked, "not_asked",
			 struct gmem_wire_party, party_fields, GMEM_REFUSALS_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_vote_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_vote_args, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_vote_args, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_vote_args, vote, "vote", gmem_vote_names, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_vote_args, err, "errno", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_STRING(struct gmem_vote_args, reason, "reason", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_ack_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_ack_args, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_ack_args, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_resolve_reply_fields[] = {
	GMEM_FIELD_STRING(struct gmem_resolve_reply, guest, "guest", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_resolve_reply, outcome, "outcome", gmem_outcome_names, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_publish_map_reply_fields[] = {
	GMEM_FIELD_U64(struct gmem_publish_map_reply, fd, "fd", 0, 0, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_publish_map_reply, bytes, "bytes", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_publish_map_reply, granule, "granule", GMEM_GRANULE_4K, GMEM_GRANULE_2M, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_publish_map_reply, granules, "granules", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_map_args_fields[] = {
	GMEM_FIELD_STRING(struct gmem_map_args, name, "name", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_map_args, offset, "offset", 0, SIZE_MAX_WIRE, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
static const struct gmem_field run_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_run, offset, "offset", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_run, length, "length", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_wire_run, state, "state", gmem_target_names, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_map_reply_fields[] = {
	GMEM_FIELD_U64(struct gmem_map_reply, size, "size", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_map_reply, granule, "granule", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_map_reply, shared_bytes, "shared_bytes", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_map_reply, private_bytes, "private_bytes", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_map_reply, quarantined_bytes, "quarantined_bytes", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_ARRAY(struct gmem_map_reply, runs, n_runs, "runs", struct gmem_wire_run, run_fields,
			 GMEM_MAP_PAGE, 0),
	GMEM_FIELD_U64(struct gmem_map_reply, next, "next", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_clients_args_fields[] = {
	GMEM_FIELD_U64(struct gmem_clients_args, after, "after", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
static const struct gmem_field client_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_client, id, "id", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_client, pid, "pid", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_client, uid, "uid", 0, UINT32_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_client, gid, "gid", 0, UINT32_MAX, 0),
	GMEM_FIELD_BOOL(struct gmem_wire_client, hello, "hello", 0),
	GMEM_FIELD_ENUM(struct gmem_wire_client, role, "role", gmem_role_names, 0),
	GMEM_FIELD_STRING(struct gmem_wire_client, client_name, "client_name", 0, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_wire_client, attachments, "attachments", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_client, files, "files", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_client, leases, "leases", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_client, converts, "converts", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_BOOL(struct gmem_wire_client, self, "self", GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_clients_reply_fields[] = {
	GMEM_FIELD_ARRAY(struct gmem_clients_reply, clients, n_clients, "clients", struct gmem_wire_client,
			 client_fields, GMEM_CLIENTS_PAGE, 0),
	GMEM_FIELD_U64(struct gmem_clients_reply, next, "next", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

static const struct gmem_field conversion_fields[] = {
	GMEM_FIELD_U64(struct gmem_wire_conversion, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_conversion, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_wire_conversion, guest, "guest", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_wire_conversion, target, "target", gmem_target_names, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_wire_conversion, state, "state", gmem_state_names, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_wire_conversion, bytes, "bytes", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_conversion, ranges, "ranges", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_conversion, participants, "participants", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_conversion, latency_us, "latency_us", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_wire_conversion, requester_pid, "requester_pid", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_conversions_reply_fields[] = {
	GMEM_FIELD_ARRAY(struct gmem_conversions_reply, in_flight, n_in_flight, "in_flight",
			 struct gmem_wire_conversion, conversion_fields, GMEM_IN_FLIGHT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_conversions_reply, omitted, "omitted", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_ARRAY(struct gmem_conversions_reply, recent, n_recent, "recent", struct gmem_wire_conversion,
			 conversion_fields, GMEM_RECENT_MAX, 0),
	GMEM_FIELD_END,
};

const struct gmem_field gmem_prepare_event_fields[] = {
	GMEM_FIELD_U64(struct gmem_prepare_event, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_prepare_event, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_prepare_event, guest, "guest", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_prepare_event, target, "target", gmem_target_names, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_prepare_event, content, "content", gmem_content_names, 0),
	GMEM_FIELD_ENUM(struct gmem_prepare_event, role, "role", gmem_role_names, GMEM_F_REQUIRED),
	GMEM_FIELD_ARRAY(struct gmem_prepare_event, ranges, n_ranges, "ranges", struct gmem_wire_range,
			 gmem_wire_range_fields, GMEM_RANGES_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_commit_event_fields[] = {
	GMEM_FIELD_U64(struct gmem_commit_event, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_commit_event, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_commit_event, guest, "guest", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_commit_event, wave, "wave", 1, 3, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_conv_event_fields[] = {
	GMEM_FIELD_U64(struct gmem_conv_event, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_conv_event, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_conv_event, guest, "guest", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_done_event_fields[] = {
	GMEM_FIELD_U64(struct gmem_done_event, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_done_event, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_done_event, guest, "guest", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_done_event, outcome, "outcome", gmem_outcome_names, GMEM_F_REQUIRED),
	GMEM_FIELD_END,
};
const struct gmem_field gmem_watch_event_fields[] = {
	GMEM_FIELD_U64(struct gmem_watch_event, epoch, "epoch", 0, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_watch_event, seq, "seq", 1, GMEM_INT_MAX, GMEM_F_REQUIRED),
	GMEM_FIELD_STRING(struct gmem_watch_event, guest, "guest", 1, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_watch_event, target, "target", gmem_target_names, GMEM_F_REQUIRED),
	GMEM_FIELD_ENUM(struct gmem_watch_event, state, "state", gmem_state_names, GMEM_F_REQUIRED),
	GMEM_FIELD_U64(struct gmem_watch_event, bytes, "bytes", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_watch_event, ranges, "ranges", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_watch_event, participants, "participants", 0, GMEM_INT_MAX, 0),
	GMEM_FIELD_U64(struct gmem_watch_event, latency_us, "latency_us", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_U64(struct gmem_watch_event, requester_pid, "requester_pid", 0, GMEM_INT_MAX, GMEM_F_OMIT_EMPTY),
	GMEM_FIELD_END,
};

const struct gmem_op_desc gmem_ops[_GMEM_OP_MAX] = {
#define X(id, nm, A, AF, R, RF, fl)                                                                      \
	[GMEM_OP_##id] = { .name = nm, .args = AF, .args_size = sizeof(struct A), .reply = RF,            \
			   .reply_size = sizeof(struct R), .flags = fl },
	GMEM_OPS(X)
#undef X
};

const struct gmem_wire_event_desc gmem_events[_GMEM_WIRE_EVENT_MAX] = {
#define X(id, nm, S, F) [GMEM_WIRE_EVENT_##id] = { .name = nm, .fields = F, .size = sizeof(struct S) },
	GMEM_EVENTS(X)
#undef X
};

enum gmem_op gmem_op_from_name(const char *name)
{
	for (int i = 0; i < _GMEM_OP_MAX; i++)
		if (strcmp(gmem_ops[i].name, name) == 0)
			return (enum gmem_op)i;
	return GMEM_OP_INVALID;
}

enum gmem_wire_event gmem_wire_event_from_name(const char *name)
{
	for (int i = 0; i < _GMEM_WIRE_EVENT_MAX; i++)
		if (strcmp(gmem_events[i].name, name) == 0)
			return (enum gmem_wire_event)i;
	return GMEM_WIRE_EVENT_INVALID;
}

uint32_t gmem_features_parse(const char *list)
{
	uint32_t bits = 0;
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");
		for (int i = 0; gmem_feature_names[i]; i++)
			if (strlen(gmem_feature_names[i]) == n && strncmp(gmem_feature_names[i], p, n) == 0)
				bits |= 1u << i;
		p += n + (p[n] == ',');
	}
	return bits;
}

bool gmem_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > GMEM_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}
