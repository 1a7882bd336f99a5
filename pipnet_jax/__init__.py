"""JAX/Flax reimplementation of PIPNet (pixel-in-pixel facial landmark detection)."""
