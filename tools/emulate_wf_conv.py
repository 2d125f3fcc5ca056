#!/usr/bin/env python3
"""Emulates the index math of the fused Winograd kernel (wf_kernel and
wf_weights_kernel in src/cuda/kernels/conv_winograd.cuh) in numpy, without
a GPU: the weight layout, each thread's input patches and their Vs slots,
the weight chunk copied into Us, each thread's share of the products, the
Ms exchange and the output transform's tiles; checks every variant against
a direct convolution (several shapes: partial blocks, channel padding,
batch 2, asymmetric pads), that no shared read falls on a word the chunk
did not write, and that every output is written exactly once.
Mirror any change to the kernel's geometry here before spending GPU time.
usage: python3 tools/emulate_wf_conv.py"""
import itertools
import numpy as np

TILES_H = 4
# WF_CONFIG_*: M, KB, TH, TW, KR, TR, CB
VARIANTS = {"F2_K16": (2, 16, TILES_H, 8, 4, 8, 8), "F2_K8": (2, 8, TILES_H, 8, 2, 8, 8),
            "F2_K8_C16": (2, 8, TILES_H, 8, 2, 8, 16), "F2_K16_T16_C16": (2, 16, TILES_H, 4, 4, 4, 16),
            "F2_K24_T16": (2, 24, TILES_H, 4, 6, 4, 8), "F2_K48_T16": (2, 48, TILES_H, 4, 12, 4, 8),
            "F2_K32_T16": (2, 32, TILES_H, 4, 8, 4, 8),
            "F2_K24_T16_C12": (2, 24, TILES_H, 4, 6, 4, 12), "F2_K12_C12": (2, 12, TILES_H, 8, 3, 8, 12)}
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)
G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64)


def config(M, KB, TH, TW, KR, TR, CB):
    A = M + 2
    c = dict(A=A, A2=A * A, TB=TH * TW, NT=(KB // KR) * (TH * TW // TR))
    c["THREADS"] = c["A2"] * c["NT"]
    c["PP"] = -(-CB * c["TB"] // c["THREADS"])
    c["PC"] = c["THREADS"] // c["TB"]
    c["VS"] = CB * c["TB"] + 4
    c["US"] = CB * c["A2"] * KB
    c["OPS"] = c["US"] + c["A2"] * c["VS"]
    c["MS"] = c["A2"] * KB * c["TB"]
    assert c["THREADS"] % c["TB"] == 0 and c["PP"] * c["PC"] >= CB, "whole passes over the chunk's patches"
    assert KB % KR == 0 and c["TB"] % TR == 0 and TR % 4 == 0 and KB % 4 == 0, "tile shape"
    assert max(c["OPS"], c["MS"]) * 4 <= 48 * 1024, "static shared memory"
    return c


def weights(w, M, KB, CB):  # wf_weights_kernel: U[k block][c][xi][k in block]
    K, C = w.shape[:2]
    kblocks, c_pad, A = -(-K // KB), -(-C // CB) * CB, M + 2
    u = np.zeros(kblocks * c_pad * A * A * KB)
    for kb, c, kk in itertools.product(range(kblocks), range(c_pad), range(KB)):
        k = kb * KB + kk
        if k < K and c < C:
            t = G @ w[k, c] @ G.T
            for xi in range(A * A):
                u[((kb * c_pad + c) * A * A + xi) * KB + kk] = t.flat[xi]
    return u, c_pad


def run(x, w, bias, ph, pw, oh, ow, variant):
    M, KB, TH, TW, KR, TR, CB = variant
    cf = config(*variant)
    A, A2, TB, NT, T = cf["A"], cf["A2"], cf["TB"], cf["NT"], cf["THREADS"]
    B, C, H, W = x.shape
    K = w.shape[0]
    u, c_pad = weights(w, M, KB, CB)
    tiles_h, tiles_w = -(-oh // M), -(-ow // M)
    blocks_w = -(-tiles_w // TW)
    y = np.full((B, K, oh, ow), np.nan)
    writes = np.zeros((B, K, oh, ow), int)

    def patch(b, c, h0, w0):
        d = np.zeros((A, A))
        for r, s in itertools.product(range(A), range(A)):
            if 0 <= h0 + r < H and 0 <= w0 + s < W and c < C:
                d[r, s] = x[b, c, h0 + r, w0 + s]
        return d

    for bx, kb, b in itertools.product(range(-(-tiles_h // TH) * blocks_w), range(-(-K // KB)), range(B)):
        ty0, tx0 = bx // blocks_w * TH, bx % blocks_w * TW
        acc = np.zeros((T, KR, TR))
        for ch in range(c_pad // CB):
            smem = np.full(cf["OPS"], np.nan)
            for tid in range(T):  # patches -> Vs[xi][c][t]
                pc, pt = tid // TB, tid % TB
                h0, w0 = (ty0 + pt // TW) * M - ph, (tx0 + pt % TW) * M - pw
                for i in range(cf["PP"]):
                    c = pc + i * cf["PC"]
                    if c < CB:
                        v = BT @ patch(b, ch * CB + c, h0, w0) @ BT.T
                        for xi in range(A2):
                            smem[cf["US"] + xi * cf["VS"] + c * TB + pt] = v.flat[xi]
            base = kb * c_pad * A2 * KB + ch * cf["US"]  # the weight chunk -> Us[c][xi][k]
            smem[:cf["US"]] = u[base:base + cf["US"]]
            for tid in range(T):  # products
                xi, sub = tid // NT, tid % NT
                kq, tq = sub // (TB // TR), sub % (TB // TR)
                for c in range(CB):
                    ka = smem[[c * A2 * KB + xi * KB + kq * KR + i for i in range(KR)]]
                    ta = smem[[cf["US"] + xi * cf["VS"] + c * TB + tq * TR + j for j in range(TR)]]
                    assert not np.isnan(ka).any() and not np.isnan(ta).any(), "a shared read of an unwritten word"
                    acc[tid] += np.outer(ka, ta)
        ms = np.full(cf["MS"], np.nan)
        for tid in range(T):  # Ms[xi][k][t]
            xi, sub = tid // NT, tid % NT
            kq, tq = sub // (TB // TR), sub % (TB // TR)
            for i, j in itertools.product(range(KR), range(TR)):
                ms[(xi * KB + kq * KR + i) * TB + tq * TR + j] = acc[tid, i, j]
        for q in range(KB * TB):  # output transform, (k, tile) per thread
            kk, t = q // TB, q % TB
            k, ty, tx = kb * KB + kk, ty0 + t // TW, tx0 + t % TW
            if k >= K or ty >= tiles_h or tx >= tiles_w:
                continue
            mv = np.array([ms[(xi * KB + kk) * TB + t] for xi in range(A2)]).reshape(A, A)
            assert not np.isnan(mv).any(), "an Ms read of an unwritten word"
            o = AT @ mv @ AT.T
            for r, s in itertools.product(range(M), range(M)):
                if ty * M + r < oh and tx * M + s < ow:
                    y[b, k, ty * M + r, tx * M + s] = o[r, s] + bias[k]
                    writes[b, k, ty * M + r, tx * M + s] += 1
    return y, writes


def direct(x, w, bias, ph, pw, oh, ow):
    B, C, H, W = x.shape
    xp = np.zeros((B, C, oh + 2, ow + 2))
    hh, ww = min(H, oh + 2 - ph), min(W, ow + 2 - pw)
    xp[:, :, ph:ph + hh, pw:pw + ww] = x[:, :, :hh, :ww]
    y = np.zeros((B, w.shape[0], oh, ow))
    for i, j in itertools.product(range(3), range(3)):
        y += np.einsum("bchw,kc->bkhw", xp[:, :, i:i + oh, j:j + ow], w[:, :, i, j])
    return y + bias[None, :, None, None]


def main():
    rng = np.random.default_rng(3)
    shapes = [(1, 12, 20, 9, 13, 1, 1, 1, 1), (2, 9, 7, 11, 6, 0, 1, 2, 1), (1, 17, 50, 10, 19, 1, 1, 1, 1)]
    passed = failed = 0
    for (B, C, K, H, W, pt, pl, pb, pr), (name, variant) in itertools.product(shapes, VARIANTS.items()):
        oh, ow = H + pt + pb - 2, W + pl + pr - 2
        x, w, bias = rng.uniform(-1, 1, (B, C, H, W)), rng.uniform(-1, 1, (K, C, 3, 3)), rng.uniform(-1, 1, K)
        try:
            y, writes = run(x, w, bias, pt, pl, oh, ow, variant)
            err = np.abs(y - direct(x, w, bias, pt, pl, oh, ow)).max()
            ok = (writes == 1).all() and err < 1e-9
            why = "" if ok else " (outputs written %s times; max err %.3g)" % (sorted(set(writes.flat)), err)
        except AssertionError as e:
            ok, why = False, " (%s)" % e
        passed, failed = passed + ok, failed + (not ok)
        print("%s %-15s n%d c%d->%d %dx%d pads %d,%d,%d,%d%s" % ("ok  " if ok else "FAIL", name, B, C, K, H, W,
                                                                pt, pl, pb, pr, why))
    print("emulate_wf_conv: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
