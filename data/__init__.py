"""MNIST through torchvision: getting and verifying the files (mnist.py, mirror.py, idx.py),
and loading them (loaders.py: the published per-image pipeline and the in-memory tensor one)."""
