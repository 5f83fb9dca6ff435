/* SPDX-License-Identifier: MIT */
/*
 * errname: errno values <-> the portable names the protocol carries ("ENOENT"). Errno numbers differ
 * between architectures, names do not, so the wire only ever carries names.
 */
#pragma once

/* "ENOENT" for ENOENT (positive or negative); NULL for a value outside the table. */
const char *gmem_errno_name(int err);
/* ENOENT for "ENOENT"; 0 for an unknown name. */
int gmem_errno_from_name(const char *name);
