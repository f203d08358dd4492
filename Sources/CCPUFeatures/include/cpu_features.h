#ifndef FASHION_CPU_FEATURES_H
#define FASHION_CPU_FEATURES_H

/* CPU features as CPUID and the OS (XSAVE state) report them; 0 on other architectures.
   Read without /proc/cpuinfo, which systemd's ProcSubset=pid hides from the daemon. */

/* AVX2 and FMA: what OpenBLAS's Haswell kernels need. */
int fashion_cpu_has_avx2_fma(void);

/* AVX-512 F, CD, BW, DQ and VL: what OpenBLAS's SkylakeX kernels need. */
int fashion_cpu_has_avx512_skylake(void);

#endif
