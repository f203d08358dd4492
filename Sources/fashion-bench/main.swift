// fashion-bench: performance measurements for fashiond. Each measurement is a subcommand.
import Inference

// The engine is measured with the OpenBLAS kernels fashiond would use (it may re-execute itself for them).
BLASKernelSelection.useFastestKernels()
FashionBench.main()
