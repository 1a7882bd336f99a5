"""python -m pipnet_jax.data.synthetic --out DIR [...]: writes a synthetic WFLW-format set."""
from pipnet_jax.data.synthetic.writer import main

if __name__ == "__main__":  # spawned workers import this module again: they must not run main
    main()
