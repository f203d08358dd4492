// glibc's allocator controls (malloc_trim), which Swift's Glibc module does not export. Part of libc:
// nothing to link, no package to install.
#include <malloc.h>
