# Every guest is gone: the module must unload, and leave nothing in /proc/iomem.
if rmmod gmem_pfn && ! grep -q gmem_pfn /proc/iomem; then echo "ok - rmmod after the tests"; else echo "not ok - rmmod after the tests"; fi
