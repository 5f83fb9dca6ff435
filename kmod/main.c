// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * gmem_pfn: guest memory from PFN ranges reserved at boot, allocated to guests by the module,
 * mapped by holders through fault-time PFN mappings, made private by zap + audit, scrubbed on claim
 * and on free. See kmod/README.md and uapi/gmem_pfn.h.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "gmem_pfn.h"

static char *ranges;
module_param(ranges, charp, 0444);
MODULE_PARM_DESC(ranges, "PFN ranges reserved with memmap=: BASE+SIZE[@NODE][,...], page-aligned");

/* ORDER: the pool and the filesystem exist before the node and the family make them reachable. */
static int __init gmem_init(void)
{
	int r;

	r = gmem_pool_init(ranges);
	if (r)
		return r;
	r = gmem_fs_init();
	if (r)
		goto out_pool;
	r = gmem_genl_init();
	if (r)
		goto out_fs;
	r = gmem_ctl_init();
	if (r)
		goto out_genl;
	if (GMEM_PFN_TEST_BUILD)
		pr_warn("gmem_pfn: TEST BUILD with a safety check disabled: never use it for real guests\n");
	return 0;
out_genl:
	gmem_genl_exit();
out_fs:
	gmem_fs_exit();
out_pool:
	gmem_pool_exit();
	return r;
}

/* Runs only when no guest exists: every guest holds a module reference until it is freed. */
static void __exit gmem_exit(void)
{
	gmem_ctl_exit();
	gmem_genl_exit();
	gmem_fs_exit();
	gmem_pool_exit();
}

module_init(gmem_init);
module_exit(gmem_exit);
MODULE_DESCRIPTION("gmem: guest memory from reserved PFN ranges, with kernel-enforced private ranges");
MODULE_LICENSE("Dual MIT/GPL");
MODULE_VERSION("0.1.0");
