// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Holder files: every holder of a guest gets its own struct file on the guest's inode, so it can be
 * revoked alone and the audit can name it. Mappings are MAP_SHARED PFN mappings filled at fault
 * time: a shared granule is inserted (a PMD for a 2 MiB granule where the kernel can), a private
 * granule, a revoked holder or a destroyed guest answers SIGBUS. There is no .access (ptrace and
 * /proc/PID/mem cannot read through the mapping), no .open on the inode (the file cannot be
 * reopened through /proc/PID/fd), and mremap and misaligned splits are refused.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pfn_t.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "gmem_pfn.h"

struct vfsmount *gmem_fs_mnt(void);

static atomic64_t gmem_next_holder_id = ATOMIC64_INIT(0);
static const struct file_operations gmem_holder_fops;

bool gmem_file_is_holder(const struct file *file)
{
	return file->f_op == &gmem_holder_fops;
}

static vm_fault_t gmem_sigbus(struct gmem_guest *g, struct gmem_holder *h, u64 offset)
{
	atomic64_inc(&g->nr_sigbus);
	filemap_invalidate_unlock_shared(g->mapping);
	gmem_event_private_fault(g, h->id, task_tgid_nr(current), offset, READ_ONCE(h->revoked));
	return VM_FAULT_SIGBUS;
}

/* order 0: one 4 KiB PTE; PMD_ORDER: one PMD, or VM_FAULT_FALLBACK to PTEs. */
static vm_fault_t gmem_fault_order(struct vm_fault *vmf, unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct gmem_holder *h = vma->vm_file->private_data;
	struct gmem_guest *g = h->guest;
	unsigned long addr = vmf->address & ~((PAGE_SIZE << order) - 1);
	u64 offset = ((u64)vma->vm_pgoff << PAGE_SHIFT) + (addr - vma->vm_start);
	vm_fault_t ret;
	phys_addr_t phys;

	if (order && (addr < vma->vm_start || addr + (PAGE_SIZE << order) > vma->vm_end ||
		      g->granule_shift < PAGE_SHIFT + order || (offset & ((PAGE_SIZE << order) - 1))))
		return VM_FAULT_FALLBACK;

	filemap_invalidate_lock_shared(g->mapping);
	atomic64_inc(&g->nr_faults);
	if (offset >= g->bytes) {
		filemap_invalidate_unlock_shared(g->mapping);
		atomic64_inc(&g->nr_sigbus);
		return VM_FAULT_SIGBUS;
	}
	if (g->dead || h->revoked || test_bit(offset >> g->granule_shift, g->private))
		return gmem_sigbus(g, h, offset);
	phys = gmem_guest_phys(g, offset);
#if GMEM_PFN_HAVE_PMD
	if (order) {
		ret = vmf_insert_pfn_pmd(vmf, __pfn_to_pfn_t(PHYS_PFN(phys), 0),
					 vmf->flags & FAULT_FLAG_WRITE);
		if (ret == VM_FAULT_NOPAGE)
			atomic64_inc(&g->nr_pmd_maps);
		filemap_invalidate_unlock_shared(g->mapping);
		return ret;
	}
#endif
	ret = vmf_insert_pfn(vma, vmf->address & PAGE_MASK, PHYS_PFN(phys));
	if (ret == VM_FAULT_NOPAGE)
		atomic64_inc(&g->nr_pte_maps);
	filemap_invalidate_unlock_shared(g->mapping);
	return ret;
}

static vm_fault_t gmem_fault(struct vm_fault *vmf)
{
	/* vmf->address lies inside the page; the offset is recomputed from it, as for PMDs. */
	return gmem_fault_order(vmf, 0);
}

#if GMEM_PFN_HAVE_PMD
static vm_fault_t gmem_huge_fault(struct vm_fault *vmf, unsigned int order)
{
	if (order != PMD_ORDER)
		return VM_FAULT_FALLBACK;
	return gmem_fault_order(vmf, order);
}
#endif

static int gmem_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	struct gmem_holder *h = vma->vm_file->private_data;
	u64 off = ((u64)vma->vm_pgoff << PAGE_SHIFT) + (addr - vma->vm_start);

	/* A split inside a granule would leave a PMD half in each VMA. */
	return off & ((1ULL << h->guest->granule_shift) - 1) ? -EINVAL : 0;
}

static int gmem_mremap(struct vm_area_struct *vma)
{
	/* Moving a mapping would make the audit's addresses and the VMM's view disagree: refuse. */
	return -EINVAL;
}

static const struct vm_operations_struct gmem_vm_ops = {
	.fault = gmem_fault,
#if GMEM_PFN_HAVE_PMD
	.huge_fault = gmem_huge_fault,
#endif
	.may_split = gmem_may_split,
	.mremap = gmem_mremap,
};

static int gmem_holder_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct gmem_holder *h = file->private_data;
	struct gmem_guest *g = h->guest;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT, len = vma->vm_end - vma->vm_start;
	vm_flags_t set = VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY;
	int r;

	/* vmf_insert_pfn() BUG()s on copy-on-write mappings: only MAP_SHARED. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	r = gmem_guest_check_range(g, off, len);
	if (r)
		return r;
	filemap_invalidate_lock_shared(g->mapping);
	r = (g->dead || h->revoked) ? -ENODEV : 0;
	filemap_invalidate_unlock_shared(g->mapping);
	if (r)
		return r;

#if GMEM_PFN_HAVE_PMD
	/* THP in "madvise" mode only tries .huge_fault on VM_HUGEPAGE mappings. */
	if (g->granule_shift == GMEM_PFN_GRANULE_2M_SHIFT)
		set |= VM_HUGEPAGE;
#endif
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, set);
#else
	vma->vm_flags |= set;
#endif
	vma->vm_ops = &gmem_vm_ops;
	/* Who mapped it, for the audit: the file may have been passed to another process. */
	vma->vm_private_data = (void *)(unsigned long)task_tgid_nr(current);
	return 0;
}

static long gmem_holder_prefault(struct file *file, void __user *uarg)
{
	struct gmem_holder *h = file->private_data;
	struct gmem_guest *g = h->guest;
	struct mm_struct *mm = current->mm;
	struct gmem_pfn_prefault req;
	u64 gsize = 1ULL << g->granule_shift, addr, end;
	u32 usize;
	long r = 0;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (usize < GMEM_PFN_PREFAULT_SIZE_VER1 || usize > PAGE_SIZE)
		return -EINVAL;
	r = copy_struct_from_user(&req, sizeof(req), uarg, usize);
	if (r)
		return r;
	if (req.flags)
		return -EINVAL;
	req.mapped_bytes = req.skipped_bytes = 0;
	if (!req.length || (req.addr & (gsize - 1)) || (req.length & (gsize - 1)))
		return -EINVAL;
	if (req.addr + req.length < req.addr || req.addr + req.length > TASK_SIZE)
		return -ERANGE;
	if (!mm)
		return -EFAULT;

	mmap_read_lock(mm);
	for (addr = req.addr, end = req.addr + req.length; addr < end; addr += gsize) {
		struct vm_area_struct *vma = vma_lookup(mm, addr);
		u64 offset;
		vm_fault_t ret;

		if (!vma || vma->vm_file != file || vma->vm_end - addr < gsize) {
			r = -EFAULT;
			break;
		}
		if (READ_ONCE(h->revoked) || READ_ONCE(g->dead)) {
			r = -ENODEV;
			break;
		}
		if (fatal_signal_pending(current)) {
			r = -EINTR;
			break;
		}
		offset = ((u64)vma->vm_pgoff << PAGE_SHIFT) + (addr - vma->vm_start);
		/* Unlocked peek: a granule going private meanwhile is answered SIGBUS below, also skipped. */
		if (offset < g->bytes && test_bit(offset >> g->granule_shift, g->private)) {
			req.skipped_bytes += gsize;
			continue;
		}
		/* Through the fault path, so a 2 MiB granule goes in as a PMD where it can. */
		ret = handle_mm_fault(vma, addr, (vma->vm_flags & VM_WRITE) ? FAULT_FLAG_WRITE : 0, NULL);
		if (ret & VM_FAULT_SIGBUS) {
			req.skipped_bytes += gsize;
			continue;
		}
		if (ret & VM_FAULT_ERROR) {
			r = -EFAULT;
			break;
		}
		if (gsize > PAGE_SIZE && !(ret & VM_FAULT_ERROR)) {
			unsigned long a;

			/* A PTE-mapped 2 MiB granule: fault the rest of it (cheap when a PMD went in). */
			for (a = addr + PAGE_SIZE; a < addr + gsize; a += PAGE_SIZE) {
				ret = handle_mm_fault(vma, a, (vma->vm_flags & VM_WRITE) ? FAULT_FLAG_WRITE : 0,
						      NULL);
				if (ret & VM_FAULT_ERROR)
					break;
			}
			if (ret & VM_FAULT_SIGBUS) {
				req.skipped_bytes += gsize;
				continue;
			}
			if (ret & VM_FAULT_ERROR) {
				r = -EFAULT;
				break;
			}
		}
		req.mapped_bytes += gsize;
	}
	mmap_read_unlock(mm);
	if (copy_to_user(uarg, &req, min_t(size_t, usize, sizeof(req))))
		return -EFAULT;
	return r;
}

static long gmem_holder_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	if ((cmd & ~IOCSIZE_MASK) == (GMEM_PFN_IOC_PREFAULT & ~IOCSIZE_MASK))
		return gmem_holder_prefault(file, (void __user *)arg);
	return -ENOTTY;
}

static int gmem_holder_release(struct inode *inode, struct file *file)
{
	struct gmem_holder *h = file->private_data;
	struct gmem_guest *g;

	if (!h) /* gmem_holder_new failed before the file became a holder */
		return 0;
	g = h->guest;
	mutex_lock(&g->lock);
	list_del(&h->node);
	g->nr_holders--;
	mutex_unlock(&g->lock);
	kfree(h);
	gmem_guest_put(g);
	return 0;
}

static const struct file_operations gmem_holder_fops = {
	.owner = THIS_MODULE,
	.mmap = gmem_holder_mmap,
	/* 2 MiB-aligned addresses for 2 MiB-aligned offsets, so PMDs can go in. */
	.get_unmapped_area = thp_get_unmapped_area,
	.unlocked_ioctl = gmem_holder_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = gmem_holder_release,
	.llseek = noop_llseek,
};

int gmem_holder_new(struct gmem_guest *g, u32 flags, u64 tag, pid_t owner_pid, u64 *ret_id)
{
	struct gmem_holder *h;
	struct file *file;
	int fd, r;

	if (flags & ~GMEM_PFN_HOLDER_READONLY)
		return -EINVAL;
	if (owner_pid < 0)
		return -EINVAL;
	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h)
		return -ENOMEM;
	/* Reserve the fd first, install it last: nothing after fd_install can fail. */
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto out_free;
	}
	/* alloc_file_pseudo takes no reference on fops->owner, but the file's last fput drops one. */
	__module_get(THIS_MODULE);
	ihold(g->inode);
	file = alloc_file_pseudo(g->inode, gmem_fs_mnt(), "gmem_pfn",
				 (flags & GMEM_PFN_HOLDER_READONLY) ? O_RDONLY : O_RDWR, &gmem_holder_fops);
	if (IS_ERR(file)) {
		iput(g->inode);
		module_put(THIS_MODULE);
		r = PTR_ERR(file);
		goto out_put_fd;
	}
	h->file = file;
	h->tag = tag;
	h->opener_pid = task_tgid_nr(current);
	h->owner_pid = owner_pid ? owner_pid : h->opener_pid;
	file->private_data = h;

	filemap_invalidate_lock_shared(g->mapping);
	mutex_lock(&g->lock);
	if (g->dead)
		r = -ENODEV;
	else if (g->nr_holders >= GMEM_PFN_MAX_HOLDERS)
		r = -EMFILE;
	else
		r = 0;
	if (!r) {
		kref_get(&g->ref);
		h->guest = g;
		h->id = atomic64_inc_return(&gmem_next_holder_id);
		list_add_tail(&h->node, &g->holders);
		g->nr_holders++;
	}
	mutex_unlock(&g->lock);
	filemap_invalidate_unlock_shared(g->mapping);
	if (r) {
		file->private_data = NULL;
		goto out_fput;
	}
	*ret_id = h->id;
	fd_install(fd, file);
	return fd;

out_fput:
	kfree(h);
	h = NULL;
	fput(file);
out_put_fd:
	put_unused_fd(fd);
out_free:
	kfree(h);
	return r;
}

int gmem_holder_revoke(struct gmem_guest *g, u64 holder_id)
{
	struct gmem_holder *h, *found = NULL;
	struct vm_area_struct *vma;
	struct rb_node *node;

	filemap_invalidate_lock(g->mapping);
	mutex_lock(&g->lock);
	list_for_each_entry(h, &g->holders, node) {
		if (h->id == holder_id) {
			found = h;
			break;
		}
	}
	if (found) {
		found->revoked = true;
		/* Only this file's mappings: the other holders keep theirs. */
		i_mmap_lock_read(g->mapping);
		gmem_for_each_vma(vma, node, g->mapping)
			if (vma->vm_file == found->file)
				zap_vma_ptes(vma, vma->vm_start, vma->vm_end - vma->vm_start);
		i_mmap_unlock_read(g->mapping);
	}
	mutex_unlock(&g->lock);
	filemap_invalidate_unlock(g->mapping);
	return found ? 0 : -ENOENT;
}
