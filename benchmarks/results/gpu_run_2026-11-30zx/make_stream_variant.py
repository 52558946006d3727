s=open('statex_dist/kernels/ssd/triton_ssd.py').read()
def rep(old,new,count=1):
    global s
    assert s.count(old)==count,(old,s.count(old))
    s=s.replace(old,new)
rep("tl.store(OUT + ((i_r * NC + c) * H + i_h).to(tl.int64) * P * N + pn, S.to(OUT.dtype.element_ty), mask=pnm)",
    "tl.store(OUT + ((i_r * NC + c) * H + i_h).to(tl.int64) * P * N + pn, S.to(OUT.dtype.element_ty), mask=pnm,\n                 cache_modifier=\".cs\")")
rep("x = tl.load(X + rows[:, None] * SX + i_h * P + p[None, :], mask=pm[None, :], other=0.0)\n        w = tl.load(W + rows * H + i_h)\n        y = tl.load(Y + rows[:, None] * SY + i_g * N + n[None, :], mask=nm[None, :], other=0.0)",
    "x = tl.load(X + rows[:, None] * SX + i_h * P + p[None, :], mask=pm[None, :], other=0.0, eviction_policy=\"evict_last\")\n        w = tl.load(W + rows * H + i_h)\n        y = tl.load(Y + rows[:, None] * SY + i_g * N + n[None, :], mask=nm[None, :], other=0.0, eviction_policy=\"evict_last\")")
rep("st = tl.load(S + base + p[:, None] * N + n[None, :], mask=pm[:, None] & nm[None, :], other=0.0)",
    "st = tl.load(S + base + p[:, None] * N + n[None, :], mask=pm[:, None] & nm[None, :], other=0.0,\n                     eviction_policy=\"evict_first\")")
rep("st = tl.load(S + pn, mask=pnm, other=0.0)\n", "st = tl.load(S + pn, mask=pnm, other=0.0, eviction_policy=\"evict_first\")\n", 2)
rep("dst = tl.load(D + pn, mask=pnm, other=0.0)\n", "dst = tl.load(D + pn, mask=pnm, other=0.0, eviction_policy=\"evict_first\")\n", 2)
open('benchmarks/_stream_triton_ssd.py','w').write(s)
