import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "interpret: Triton kernels run under TRITON_INTERPRET=1 on CPU (tiny shapes)")
    config.addinivalue_line("markers", "gpu: needs a CUDA device")
