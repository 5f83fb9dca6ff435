/* SPDX-License-Identifier: MIT */
/*
 * errname: the table of errno names gmem puts on the wire. Only errors gmem can actually return are
 * listed; a receiver maps an unknown name to EIO (see PROTOCOL.md, "Errors").
 */
#include "errname.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "util.h"

#define E(x) { x, #x }
static const struct {
	int err;
	const char *name;
} table[] = {
	E(EPERM),     E(ENOENT),          E(ESRCH),        E(EINTR),       E(EIO),         E(ENXIO),
	E(E2BIG),     E(EBADF),           E(EAGAIN),       E(ENOMEM),      E(EACCES),      E(EFAULT),
	E(EBUSY),     E(EEXIST),          E(ENODEV),       E(EINVAL),      E(ENFILE),      E(EMFILE),
	E(EFBIG),     E(ENOSPC),          E(EROFS),        E(EPIPE),       E(EDOM),        E(ERANGE),
	E(EDEADLK),   E(ENAMETOOLONG),    E(ENOSYS),       E(ENOTEMPTY),   E(ELOOP),       E(ENODATA),
	E(ETIME),     E(EPROTO),          E(EBADMSG),      E(EOVERFLOW),   E(EILSEQ),      E(EUSERS),
	E(EMSGSIZE),  E(EPROTONOSUPPORT), E(EOPNOTSUPP),   E(EADDRINUSE),  E(ENOBUFS),     E(ENOTCONN),
	E(ESHUTDOWN), E(ETIMEDOUT),       E(ECONNREFUSED), E(ECONNRESET),  E(EALREADY),    E(EINPROGRESS),
	E(ESTALE),    E(EDQUOT),          E(ECANCELED),    E(EOWNERDEAD),  E(ENOTRECOVERABLE),
	E(EHWPOISON), E(ENOLINK),         E(ECONNABORTED), E(EHOSTDOWN),   E(ENOMEDIUM),   E(EKEYREVOKED),
	E(ENOTSUP),
};
#undef E

const char *gmem_errno_name(int err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].err == err)
			return table[i].name;
	return NULL;
}

int gmem_errno_from_name(const char *name)
{
	if (!name)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].err;
	return 0;
}
