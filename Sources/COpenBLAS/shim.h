#include <cblas.h>
/* openblas_set_num_threads is declared by OpenBLAS's cblas.h on Debian. */
