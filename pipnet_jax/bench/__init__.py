"""Tools outside the product: benchmarks, their timing and tables, the PyTorch reference network
and the parity demo. Nothing in the product imports this package."""
