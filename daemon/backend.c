/* SPDX-License-Identifier: MIT */
/*
 * backend: the registry of built-in backends. A build without libnl-genl has no kmod backend, and then
 * `--backend kmod` fails the start, as any named-but-unavailable backend must.
 */
#include "backend.h"

#include <stddef.h>
#include <string.h>

static const struct backend_ops *const backends[] = {
	&backend_memfd_ops,
#if GMEM_HAVE_KMOD
	&backend_kmod_ops,
#endif
};

const struct backend_ops *backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

const char *backend_names(void)
{
	return GMEM_HAVE_KMOD ? "memfd, kmod" : "memfd";
}
