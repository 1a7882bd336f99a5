"""python -m pipnet_jax.bench: the inference benchmark (pipnet_jax.bench.inference)."""
import sys

from pipnet_jax.bench.inference import main

if __name__ == "__main__":
    main(sys.argv)
