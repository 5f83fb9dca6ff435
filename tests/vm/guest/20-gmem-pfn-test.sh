# The module's own tests ($GMEM_PFN_TESTS: names of gmem-pfn-test cases, default all).
gmem-pfn-test $GMEM_PFN_TESTS
