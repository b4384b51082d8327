"""Development-only tooling: never shipped in the wheel (`[tool.setuptools.packages.find]`
includes only `ml` and `serve`). The tests and the benchmarks in scripts/ share it; a benchmark
puts the checkout on `sys.path` to import it."""
