"""Token-mixer kernels: GLA (per-key-channel decay) and Mamba2 SSD (scalar decay per head).

Each op has a float64-capable step recurrence (``naive.py``), a pure-PyTorch chunked path (``chunk_torch.py``,
the CPU path and the reference) and Triton kernels; ``ops.py`` picks one and wraps it as a ``torch.library``
custom op. Importing this package registers nothing; ``ops`` registers its ops on first import.
"""
