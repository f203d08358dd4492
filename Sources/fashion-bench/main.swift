// fashion-bench: performance measurements for fashiond. Each measurement is a subcommand.
FashionBench.main()
