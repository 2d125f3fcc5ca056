"""Architecture-faithful ONNX stand-ins for FaceFusion's heavy models.

FaceFusion's model files cannot be downloaded here, so these generators
build graphs with seeded random weights that match the real files' input /
output names, shapes and dtypes, their operator mix, and (at --scale full)
their parameter count within 10 % (the real count is estimated as file size
/ 4; sizes from /work/shared/docs/facefusion-model-hashes.tsv).

Each entry of MODELS describes one model: its builder (taking a width
multiplier), the target parameter count, the inputs (name, shape, dtype,
value range for test feeds) and the outputs (name, shape, dtype).
"""

from . import enhancer, landmarkers, maskers, recognizer, swapper, transformers, yolo
from .common import count_parameters

SCALES = {'full': 1.0, 'small': 0.25}

# name: (builder, file size in bytes from facefusion-model-hashes.tsv, inputs, outputs)
# inputs: (name, shape, dtype, (low, high)); outputs: (name, shape, dtype)
MODELS = {
    'yoloface_8n': (yolo.build_yoloface_8n, 12659761,
                    [('input', [1, 3, 640, 640], 'float32', (0.0, 1.0))],
                    [('output', [1, 20, 8400], 'float32')]),
    '2dfan4': (landmarkers.build_2dfan4, 97904803,
               [('input', [1, 3, 256, 256], 'float32', (0.0, 1.0))],
               [('landmarks', [1, 68, 3], 'float32'), ('heatmaps', [1, 68, 64, 64], 'float32')]),
    'fan_68_5': (landmarkers.build_fan_68_5, 944321,
                 [('input', [1, 5, 2], 'float32', (0.3, 0.7))],
                 [('output', [1, 68, 2], 'float32')]),
    'arcface_w600k_r50': (recognizer.build_arcface_w600k_r50, 174388474,
                          [('input', [1, 3, 112, 112], 'float32', (-1.0, 1.0))],
                          [('output', [1, 512], 'float32')]),
    'inswapper_128': (swapper.build_inswapper_128, 555303150,
                      [('target', [1, 3, 128, 128], 'float32', (0.0, 1.0)),
                       ('source', [1, 512], 'float32', (-0.1, 0.1))],
                      [('output', [1, 3, 128, 128], 'float32')]),
    'inswapper_128_fp16': (swapper.build_inswapper_128_fp16, 277680829 * 2,  # fp16 file: 2 bytes per parameter
                           [('target', [1, 3, 128, 128], 'float16', (0.0, 1.0)),
                            ('source', [1, 512], 'float16', (-0.1, 0.1))],
                           [('output', [1, 3, 128, 128], 'float16')]),
    'gfpgan_1.4': (enhancer.build_gfpgan_1_4, 340299087,
                   [('input', [1, 3, 512, 512], 'float32', (-1.0, 1.0))],
                   [('output', [1, 3, 512, 512], 'float32')]),
    'nsfw_1': (yolo.build_nsfw_1, 80414194,
               [('input', [1, 3, 640, 640], 'float32', (0.0, 1.0))],
               [('output', [1, 9, 8400], 'float32')]),
    'nsfw_2': (transformers.build_nsfw_2, 22489928,
               [('input', [1, 3, 384, 384], 'float32', (-1.0, 1.0))],
               [('output', [1, 2], 'float32')]),
    'nsfw_3': (transformers.build_nsfw_3, 358188033,
               [('input', [1, 3, 448, 448], 'float32', (-1.8, 2.1))],
               [('output', [1, 4], 'float32')]),
    'bisenet_resnet_34': (maskers.build_bisenet_resnet_34, 93632546,
                          [('input', [1, 3, 512, 512], 'float32', (-2.1, 2.6))],
                          [('output', [1, 19, 512, 512], 'float32')]),
    'xseg_1': (maskers.build_xseg_1, 70324286,
               [('input', [1, 256, 256, 3], 'float32', (0.0, 1.0))],
               [('output', [1, 256, 256, 1], 'float32')]),
}


def target_parameters(name):
    return MODELS[name][1] // 4


def build(name, scale='full'):
    width = SCALES[scale] if isinstance(scale, str) else float(scale)
    return MODELS[name][0](width)


__all__ = ['MODELS', 'SCALES', 'build', 'count_parameters', 'target_parameters']
