"""Make Triton's CPU interpreter (``TRITON_INTERPRET=1``) run our kernels with current NumPy.

Under triton 3.6 the interpreter keeps scalars as 1-element arrays and turns them into loop bounds with
``int(array)``, which NumPy >= 2.3 refuses ("only 0-dimensional arrays can be converted"), so any ``range``
over a runtime value fails. We re-register ``__index__`` through ``.item()``; nothing changes on a GPU.
"""
from __future__ import annotations

from statex_dist.kernels.layout import interpreting

_patched = False


def patch_interpreter() -> None:
    global _patched
    if _patched or not interpreting():
        return
    try:
        import triton.runtime.interpreter as interp
    except ImportError:
        return
    original = getattr(interp, "_patch_lang_tensor", None)
    if original is None:
        return

    def _patch_lang_tensor(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interp._patch_lang_tensor = _patch_lang_tensor
    _patched = True
