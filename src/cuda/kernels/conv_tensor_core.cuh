/* CD_TC_*: 3x3 convolutions (stride 1 or 2, dilation 1, group 1) as an
 * implicit GEMM on the tensor cores, in float32 precision ("3xTF32").
 * Included by conv_direct.cuh, whose cd_kind, weight packing, tuning and
 * launch switch these variants share.
 *
 * Why: in float32 (TF32 off) the SIMT kernels (CD_T3_*, cuDNN) reach about
 * 14 TFLOPS on the 3x3 convolutions of 12..80 channels that make up a
 * detector like SCRFD (so far these kernels reach the same: see
 * bench/results/gpu-h100-targets.md). The tensor cores' TF32 rate is several times the
 * FFMA rate, but TF32 keeps only 10 mantissa bits. Splitting each operand
 * into a TF32 "big" part and a TF32 "small" part (the rounding residual)
 * and summing big*big + big*small + small*big in float32 accumulators
 * recovers float32 accuracy (the dropped small*small term is ~2^-22 of the
 * product), at three MMAs per product.
 *
 * GEMM view: M = output pixels, N = output channels, K = input channels x
 * taps. M tiles of 16 pixels are 2 output rows x 8 columns; N tiles are 8
 * channels (so 12, 24, 48 and 80 channels waste little); each k-step is 8
 * input channels at one tap. A block computes TH x TW output pixels of one
 * image x BN = 8 * NT output channels; each warp MT m-tiles x all NT
 * n-tiles, over all taps or (KS = 3) one kernel row of them. Chunks of 8 input channels (their input tile with its halo, and
 * their weights [ci][tap][BN]) are copied into shared memory with cp.async,
 * in a pipeline of NSTAGE stages, as CD_T3_* does. Channel planes and
 * weight rows are padded so that every fragment load is free of bank
 * conflicts. mma.sync.m16n8k8 (sm_80+); the products of one output are
 * accumulated in a fixed order: results are deterministic.
 */
#ifndef FACEGRAPH_CUDA_CONV_TENSOR_CORE_CUH
#define FACEGRAPH_CUDA_CONV_TENSOR_CORE_CUH

#define CD_TC_MAX_DEVICES 64

/* Geometry of a CD_TC instance (see above); KS: slices of the taps (1, or
 * 3: warp slice k takes the taps of kernel row k, see cd_tc_kernel); ST: stride. */
template <int TH, int TW, int NT, int MT, int KS, int ST>
struct cd_tc_geo {
    static constexpr int BN = 8 * NT;                 /* output channels of a block */
    static constexpr int MX = TW / 8;                 /* m-tiles across the tile's width */
    static constexpr int MTILES = TH / 2 * MX;        /* m-tiles of a block */
    static constexpr int WPS = MTILES / MT;           /* warps per slice */
    static constexpr int TPS = 32 * WPS;              /* threads per slice */
    static constexpr int THREADS = KS * TPS;
    static constexpr int NA = KS > 1 ? 3 : 1;         /* accumulator sets per tile (see cd_tc_kernel) */
    static constexpr int CK = 8;                      /* input channels of a chunk: one k-step per tap */
    static constexpr int IH = (TH - 1) * ST + 3, IW = (TW - 1) * ST + 3; /* input tile with its halo */
    /* stride 1: rows of RS floats; stride 2: each row split into its even and
       odd columns (two planes of IH rows), so that the 8 columns of an m-tile
       row are 8 consecutive words */
    static constexpr int RS = ST == 1 ? IW : TW + 1;
    static constexpr int PLANE = ST == 1 ? IH * RS : 2 * IH * RS;
    /* channel stride = 8 (mod 16): the 4 channels (lane % 4) x 8 columns
       (lane / 4) of a fragment load fall on 32 distinct banks */
    static constexpr int CH = (PLANE + 7) / 16 * 16 + 8;
    static constexpr int XS = CK * CH;                /* input floats of a stage (weights follow) */
    /* weight row stride (one tap of one input channel): 9 * WSTR = 8 (mod 16) likewise */
    static constexpr int WSTR = (BN + 7) / 16 * 16 + 8;
    static constexpr int STAGE = XS + CK * 9 * WSTR;
    static constexpr int NSTAGE = 3 * STAGE * 4 <= 100 * 1024 ? 3 : 2;
    static constexpr int RED = (KS - 1) * MT * NT * 4 * TPS; /* slices 1..: partial sums, after the last chunk */
    static constexpr int SMEM_BYTES = 4 * (NSTAGE * STAGE > RED ? NSTAGE * STAGE : RED);
};

/* x -> (big, small): big = x rounded to TF32, small = the residual rounded to TF32. */
static __device__ __forceinline__ void cd_tc_split(float x, uint32_t &big, uint32_t &small)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(big) : "f"(x));
    const float r = x - __uint_as_float(big);
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(small) : "f"(r));
#else
    big = __float_as_uint(x);
    small = 0;
#endif
}

/* c += a (16x8, row) * b (8x8, col) in TF32 with float32 accumulation. */
static __device__ __forceinline__ void cd_tc_mma(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2])
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap();
#endif
}

/* CD_TC_* stage: cd_stage_chunk with the instance's geometry (weight rows of WSTR floats). */
template <int TH, int TW, int NT, int MT, int KS, int ST>
static __device__ __forceinline__ void cd_tc_stage(float *st, const float *xb, const float *wbuf, const cd_params &p,
                                                   int c, int ih_base, int iw_base, int m0)
{
    typedef cd_tc_geo<TH, TW, NT, MT, KS, ST> G;
    cd_stage_chunk<G::CK, G::IH, G::IW, G::RS, G::CH, ST, G::BN, G::WSTR, G::XS, G::THREADS>(st, xb, wbuf, p, c,
                                                                                             ih_base, iw_base, m0);
}

/* blockIdx.x = tile of TH x TW output pixels (row-major over the tiles of the
 * map), blockIdx.y = tile of BN output channels, blockIdx.z = image. Warp w
 * of slice k (w = k * WPS + v) computes m-tiles v * MT .. + MT - 1 (m-tile i:
 * output rows 2 (i / MX) + 0, 1, columns 8 (i % MX) .. + 7) for all BN
 * channels. KS = 1: over each chunk all 9 taps in (kh, kw) order, per tap
 * small*big, big*small, big*big into one accumulator per output. KS = 3:
 * slice k takes the taps of kernel row k, and the three products go to three
 * accumulator sets: each chain of dependent MMAs is 3 long per chunk instead
 * of 27 (a block of few warps is otherwise bound by that latency), and a
 * block has three times the warps. At the end an output is (small*big +
 * big*small) + big*big within a slice, then the slices' sums are added in
 * slice order through shared memory. Both orders are fixed: deterministic. */
template <int TH, int TW, int NT, int MT, int KS, int ST>
__global__ void __launch_bounds__(cd_tc_geo<TH, TW, NT, MT, KS, ST>::THREADS)
    cd_tc_kernel(const float *__restrict__ x, const float *__restrict__ wbuf, float *__restrict__ y, cd_params p,
                 op_activation act)
{
    CU_KERNEL_PROLOGUE();
    typedef cd_tc_geo<TH, TW, NT, MT, KS, ST> G;
    static_assert(TH % 2 == 0 && TW % 8 == 0 && G::MTILES % MT == 0, "tile shape");
    static_assert(KS == 1 || KS == 3, "tap slices: all taps, or one kernel row each");
    static_assert(G::XS % 4 == 0 && G::WSTR % 4 == 0 && G::STAGE % 4 == 0, "16-byte weight rows");
    extern __shared__ __align__(16) float cd_tc_smem[];
    float *smem = cd_tc_smem;

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int slice = KS == 1 ? 0 : warp / G::WPS, v = KS == 1 ? warp : warp - slice * G::WPS;

    const int tiles_w = (p.out_w + TW - 1) / TW;
    const int tile_r = blockIdx.x / tiles_w, tile_c = blockIdx.x - tile_r * tiles_w;
    const int oh0 = tile_r * TH, ow0 = tile_c * TW;
    const int m0 = blockIdx.y * G::BN;
    const int b = blockIdx.z;
    const int ih_base = oh0 * ST - p.p_h, iw_base = ow0 * ST - p.p_w;
    const float *xb = x + (size_t)b * p.c_in * p.in_h * p.in_w;
    const int chunks = (p.c_in + G::CK - 1) / G::CK;

    /* this lane's a0 (channel t, pixel row 0, column g of each m-tile) at its
       slice's first tap, and b0 (channel t, output channel g of n-tile 0) at
       that tap, within a stage */
    int a_off[MT];
#pragma unroll
    for (int i = 0; i < MT; i++) {
        const int mi = v * MT + i, ry = mi / G::MX, cx = mi - ry * G::MX;
        a_off[i] = t * G::CH + 2 * ry * ST * G::RS + 8 * cx + g + slice * G::RS;
    }
    const int b_off = G::XS + t * 9 * G::WSTR + g + slice * 3 * G::WSTR;

    float acc[G::NA][MT][NT][4] = {};
    const int SB = 0, BS = G::NA > 1 ? 1 : 0, BB = G::NA > 1 ? 2 : 0; /* accumulator set of each product */

    /* pipeline: chunk c goes to stage c % NSTAGE; one commit group per chunk
       (empty past the last), NSTAGE - 1 chunks in flight ahead of the one used */
#pragma unroll
    for (int c = 0; c < G::NSTAGE - 1; c++) {
        if (c < chunks)
            cd_tc_stage<TH, TW, NT, MT, KS, ST>(smem + c * G::STAGE, xb, wbuf, p, c, ih_base, iw_base, m0);
        cd_cp_async_commit();
    }
    int use = 0, fill = G::NSTAGE - 1;
    for (int c = 0; c < chunks; c++) {
        cd_cp_async_wait<G::NSTAGE - 2>(); /* chunk c has landed (this thread's copies) */
        __syncthreads(); /* ... everyone's; and everyone is done with chunk c - 1, whose stage is refilled now */
        if (c + G::NSTAGE - 1 < chunks)
            cd_tc_stage<TH, TW, NT, MT, KS, ST>(smem + fill * G::STAGE, xb, wbuf, p, c + G::NSTAGE - 1, ih_base,
                                                iw_base, m0);
        cd_cp_async_commit();
        const float *stg = smem + use * G::STAGE;
        use = use + 1 == G::NSTAGE ? 0 : use + 1;
        fill = fill + 1 == G::NSTAGE ? 0 : fill + 1;
#pragma unroll
        for (int tap = 0; tap < 9 / KS; tap++) {
            /* KS = 1: tap (kh, kw) = (tap / 3, tap % 3); KS = 3: (slice, tap), the slice in a_off and b_off */
            const int kh = KS == 1 ? tap / 3 : 0, kw = KS == 1 ? tap % 3 : tap;
            const int toff = kh * G::RS + (ST == 1 ? kw : (kw & 1) * (G::IH * G::RS) + (kw >> 1));
            uint32_t ab[MT][4], as[MT][4];
#pragma unroll
            for (int i = 0; i < MT; i++) {
                const float *xa = stg + a_off[i] + toff;
                /* a0: (pixel row 0, channel t), a1: (row 1, t), a2: (row 0, t + 4), a3: (row 1, t + 4) */
                cd_tc_split(xa[0], ab[i][0], as[i][0]);
                cd_tc_split(xa[ST * G::RS], ab[i][1], as[i][1]);
                cd_tc_split(xa[4 * G::CH], ab[i][2], as[i][2]);
                cd_tc_split(xa[4 * G::CH + ST * G::RS], ab[i][3], as[i][3]);
            }
            uint32_t bb[NT][2], bs[NT][2];
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const float *wb = stg + b_off + tap * G::WSTR + 8 * n;
                cd_tc_split(wb[0], bb[n][0], bs[n][0]);
                cd_tc_split(wb[4 * 9 * G::WSTR], bb[n][1], bs[n][1]);
            }
            /* three passes over the MT x NT tiles, so that consecutive MMAs are independent */
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int n = 0; n < NT; n++)
                    cd_tc_mma(acc[SB][i][n], as[i], bb[n]);
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int n = 0; n < NT; n++)
                    cd_tc_mma(acc[BS][i][n], ab[i], bs[n]);
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int n = 0; n < NT; n++)
                    cd_tc_mma(acc[BB][i][n], ab[i], bb[n]);
        }
    }

    float out[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int j = 0; j < 4; j++)
                out[i][n][j] = G::NA > 1 ? (acc[SB][i][n][j] + acc[BS][i][n][j]) + acc[BB][i][n][j] : acc[0][i][n][j];
    /* the kernel-row slices' sums, out[i][n][j] being sum (i * NT + n) * 4 + j */
    if (KS > 1 && !cd_sum_slices<MT * NT * 4, KS, G::TPS>(reinterpret_cast<float(&)[MT * NT * 4]>(out), smem, slice,
                                                          threadIdx.x - slice * G::TPS))
        return;

/* c0, c1: pixel row 0, column g, channels 2t, 2t + 1; c2, c3: pixel row 1 */
    const int plane = p.out_h * p.out_w;
    const float *bias = wbuf + p.bias_off;
#pragma unroll
    for (int i = 0; i < MT; i++) {
        const int mi = v * MT + i, ry = mi / G::MX, cx = mi - ry * G::MX;
        const int ow = ow0 + 8 * cx + g;
        if (ow >= p.out_w)
            continue;
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int m = m0 + 8 * n + 2 * t + (j & 1), oh = oh0 + 2 * ry + (j >> 1);
                if (m < p.c_out && oh < p.out_h) {
                    float *dst = y + ((size_t)b * p.c_out + m) * plane + oh * p.out_w + ow;
                    *dst = cd_out(p, y, dst, out[i][n][j] + __ldg(bias + m), act);
                }
            }
    }
}

/* Sets the kernel's dynamic shared-memory limit once per device (before its
 * first launch there, which is eager: the planner's warm-up runs and the
 * tuner launch every convolution before any capture). */
template <int TH, int TW, int NT, int MT, int KS, int ST>
static cudaError_t cd_launch_tc_stride(const float *x, const float *wbuf, float *y, const cd_params *p,
                                       op_activation act, cudaStream_t stream)
{
    typedef cd_tc_geo<TH, TW, NT, MT, KS, ST> G;
    static volatile int ready[CD_TC_MAX_DEVICES];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= CD_TC_MAX_DEVICES)
        return cudaErrorInvalidDevice;
    if (!ready[dev]) {
        cudaError_t err = cudaFuncSetAttribute(cd_tc_kernel<TH, TW, NT, MT, KS, ST>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, G::SMEM_BYTES);
        if (err != cudaSuccess)
            return err;
        ready[dev] = 1;
    }
    dim3 grid((unsigned)(((p->out_h + TH - 1) / TH) * ((p->out_w + TW - 1) / TW)),
              (unsigned)((p->c_out + G::BN - 1) / G::BN), (unsigned)p->batch);
    return cu_launch(cd_tc_kernel<TH, TW, NT, MT, KS, ST>, grid, G::THREADS, G::SMEM_BYTES, stream, x, wbuf, y, *p, act);
}

template <int TH, int TW, int NT, int MT, int KS>
static cudaError_t cd_launch_tc(const float *x, const float *wbuf, float *y, const cd_params *p, op_activation act,
                                cudaStream_t stream)
{
    if (p->s_h == 1)
        return cd_launch_tc_stride<TH, TW, NT, MT, KS, 1>(x, wbuf, y, p, act, stream);
    return cd_launch_tc_stride<TH, TW, NT, MT, KS, 2>(x, wbuf, y, p, act, stream);
}

#endif
