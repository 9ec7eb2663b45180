"""The Redis adapter: key names, and the atomic operations on them."""
