/* Face detection as FaceFusion 3.x does it (see docs/facefusion-models.md):
 * letterbox the frame top-left onto a zero canvas of the detector size
 * (scaled down only, aspect kept), normalise per family, run the model,
 * decode boxes / 5 landmarks / scores per output layout, drop low scores,
 * scale back to the frame and reduce with NMS (IoU 0.4).
 *
 * Output layouts, recognised from the model's output count and shapes:
 *   anchor_distance   9 outputs (scores N x 1, box distances N x 4, keypoint
 *                     offsets N x 10 for strides 8/16/32; N = cells x A):
 *                     scrfd_2.5g, insightface retinaface_10g.
 *   prior_box         3 outputs loc 1xNx4, conf 1xNx2 (softmaxed),
 *                     landmarks 1xNx10 with SSD prior boxes: the biubug6
 *                     Pytorch_Retinaface export.
 *   yunet             12 outputs cls, obj, bbox, kps for strides 8/16/32.
 *   yolo_decoded      1 output 1x20xN: cx, cy, w, h, score, 5 x (x, y, vis)
 *                     (FaceFusion's yoloface_8n).
 *   yolo_raw_head     3 outputs 1x80xHxW per stride: 64 DFL box bins, 1 class
 *                     logit, 15 keypoint values (a YOLOv8-face head as in
 *                     hpc203/yolov8-face-landmarks-opencv-dnn). */
#include "facegraph/face.h"

#include "base/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NMS_IOU_THRESHOLD 0.4f

typedef enum detector_layout {
    LAYOUT_ANCHOR_DISTANCE,
    LAYOUT_PRIOR_BOX,
    LAYOUT_YUNET,
    LAYOUT_YOLO_DECODED,
    LAYOUT_YOLO_RAW_HEAD
} detector_layout;

static const char *layout_description(detector_layout layout)
{
    switch (layout) {
    case LAYOUT_ANCHOR_DISTANCE: return "SCRFD-style (9 outputs: scores, boxes, keypoints per stride)";
    case LAYOUT_PRIOR_BOX: return "RetinaFace prior-box (loc, conf, landmarks)";
    case LAYOUT_YUNET: return "YuNet (12 outputs: cls, obj, bbox, kps per stride)";
    case LAYOUT_YOLO_DECODED: return "YOLO face decoded (1x20xN)";
    case LAYOUT_YOLO_RAW_HEAD: return "YOLOv8 face raw head (3 maps 1x80xHxW)";
    }
    return "unknown";
}

/* How the letterboxed BGR canvas becomes the model input. */
typedef struct normalisation {
    int swap_to_rgb;
    float mean[3]; /* in model channel order */
    float scale;   /* (x - mean) * scale */
} normalisation;

struct fg_face_detector {
    fg_session *session;
    fg_face_detector_family family;
    detector_layout layout;
    int width, height;
    normalisation norm;
    fg_dtype input_dtype;
    void *input_data;     /* what the model gets (float32 or float16) */
    float *input_float;   /* the float32 tensor (== input_data for float32) */
    fg_tensor input;      /* describes input_data */
    fg_tensor last_input; /* float32 view for fg_face_detector_last_input */
    int has_run;
    int n_outputs;
    fg_tensor *outputs;
    float **converted; /* per output: float copy when the model's output is not float32 */
    size_t *converted_capacity;
    float *priors; /* prior_box layout: cx, cy, w, h per prior, in pixels */
    int64_t n_priors;
};

typedef struct candidate_list {
    fg_face *items;
    int count, capacity;
} candidate_list;

/* ---------------------------------------------------------------- names */

static const char *const family_names[] = {"yolo_face", "scrfd", "retinaface", "yunet"};
static const char *const family_files[] = {"yoloface_8n.onnx", "scrfd_2.5g.onnx", "retinaface_10g.onnx",
                                           "yunet_2023_mar.onnx"};

fg_status *fg_face_detector_family_parse(const char *name, fg_face_detector_family *family)
{
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, family_names[i]) == 0) {
            *family = (fg_face_detector_family)i;
            return NULL;
        }
    }
    return fg_error(FG_ERR_INVALID_ARGUMENT,
                    "unknown face detector model '%s'; choose yolo_face, scrfd, retinaface or yunet",
                    name ? name : "");
}

const char *fg_face_detector_family_name(fg_face_detector_family family)
{
    return (unsigned)family < 4 ? family_names[family] : "unknown";
}

const char *fg_face_detector_default_file(fg_face_detector_family family)
{
    return (unsigned)family < 4 ? family_files[family] : "";
}

/* ---------------------------------------------------------------- opening */

static int64_t last_dim(const fg_value_info *info) { return info->rank > 0 ? info->dims[info->rank - 1] : -1; }

/* Recognises the layout from the declared outputs (dynamic dims allowed). */
static fg_status *recognise_layout(const fg_face_detector *det, const char *model_path, detector_layout *layout)
{
    int n = det->n_outputs;
    const fg_session *s = det->session;
    if (n == 9) {
        int counts[11] = {0};
        for (int i = 0; i < 9; i++) {
            int64_t d = last_dim(fg_session_output(s, i));
            if (d == 1 || d == 4 || d == 10)
                counts[d]++;
        }
        if (counts[1] == 3 && counts[4] == 3 && counts[10] == 3) {
            *layout = LAYOUT_ANCHOR_DISTANCE;
            return NULL;
        }
    } else if (n == 12) {
        int ok = 1;
        static const int64_t expected[4] = {1, 1, 4, 10};
        for (int i = 0; i < 12; i++)
            ok &= last_dim(fg_session_output(s, i)) == expected[i / 3];
        if (ok) {
            *layout = LAYOUT_YUNET;
            return NULL;
        }
    } else if (n == 1) {
        const fg_value_info *o = fg_session_output(s, 0);
        if (o->rank == 3 && o->dims[1] == 20) {
            *layout = LAYOUT_YOLO_DECODED;
            return NULL;
        }
    } else if (n == 3) {
        int maps = 1, has4 = 0, has2 = 0, has10 = 0;
        for (int i = 0; i < 3; i++) {
            const fg_value_info *o = fg_session_output(s, i);
            maps &= o->rank == 4 && o->dims[1] == 80;
            int64_t d = last_dim(o);
            has4 |= o->rank == 3 && d == 4;
            has2 |= o->rank == 3 && d == 2;
            has10 |= o->rank == 3 && d == 10;
        }
        if (maps) {
            *layout = LAYOUT_YOLO_RAW_HEAD;
            return NULL;
        }
        if (has4 && has2 && has10) {
            *layout = LAYOUT_PRIOR_BOX;
            return NULL;
        }
    }
    char shapes[512] = "";
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof shapes - 40; i++) {
        const fg_value_info *o = fg_session_output(s, i);
        char buf[96];
        fg_shape_format(o->rank, o->dims, buf, sizeof buf);
        used += (size_t)snprintf(shapes + used, sizeof shapes - used, "%s%s", i ? ", " : "", buf);
    }
    return fg_error(FG_ERR_UNSUPPORTED,
                    "%s: %d outputs (%s) match no face detector layout facegraph knows (SCRFD 9 outputs, "
                    "RetinaFace loc/conf/landmarks, YuNet 12 outputs, YOLO face 1x20xN or 3x 1x80xHxW)",
                    model_path, n, shapes);
}

static int layout_fits_family(fg_face_detector_family family, detector_layout layout)
{
    switch (family) {
    case FG_FACE_DETECTOR_YOLO_FACE: return layout == LAYOUT_YOLO_DECODED || layout == LAYOUT_YOLO_RAW_HEAD;
    case FG_FACE_DETECTOR_SCRFD: return layout == LAYOUT_ANCHOR_DISTANCE;
    case FG_FACE_DETECTOR_RETINAFACE: return layout == LAYOUT_ANCHOR_DISTANCE || layout == LAYOUT_PRIOR_BOX;
    case FG_FACE_DETECTOR_YUNET: return layout == LAYOUT_YUNET;
    }
    return 0;
}

static normalisation layout_normalisation(detector_layout layout)
{
    normalisation n = {0, {0, 0, 0}, 1.0f};
    switch (layout) {
    case LAYOUT_ANCHOR_DISTANCE: /* FaceFusion: (x - 127.5) / 128, BGR */
        n.mean[0] = n.mean[1] = n.mean[2] = 127.5f;
        n.scale = 1.0f / 128.0f;
        break;
    case LAYOUT_PRIOR_BOX: /* Pytorch_Retinaface: BGR minus (104, 117, 123) */
        n.mean[0] = 104.0f;
        n.mean[1] = 117.0f;
        n.mean[2] = 123.0f;
        break;
    case LAYOUT_YUNET: /* raw 0..255 BGR */ break;
    case LAYOUT_YOLO_DECODED: /* FaceFusion feeds yoloface_8n BGR / 255 */
        n.scale = 1.0f / 255.0f;
        break;
    case LAYOUT_YOLO_RAW_HEAD: /* the hpc203 reference feeds RGB / 255 */
        n.swap_to_rgb = 1;
        n.scale = 1.0f / 255.0f;
        break;
    }
    return n;
}

/* SSD prior boxes of Pytorch_Retinaface (min_sizes per step, clip off). */
static fg_status *make_priors(fg_face_detector *det)
{
    static const int steps[3] = {8, 16, 32};
    static const int min_sizes[3][2] = {{16, 32}, {64, 128}, {256, 512}};
    int64_t total = 0;
    for (int k = 0; k < 3; k++)
        total += (int64_t)((det->height + steps[k] - 1) / steps[k]) * ((det->width + steps[k] - 1) / steps[k]) * 2;
    det->priors = malloc(sizeof(float) * 4 * (size_t)total);
    if (!det->priors)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory for %lld prior boxes", (long long)total);
    float *p = det->priors;
    for (int k = 0; k < 3; k++) {
        int rows = (det->height + steps[k] - 1) / steps[k], cols = (det->width + steps[k] - 1) / steps[k];
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < cols; x++)
                for (int m = 0; m < 2; m++) {
                    *p++ = (x + 0.5f) * steps[k];
                    *p++ = (y + 0.5f) * steps[k];
                    *p++ = (float)min_sizes[k][m];
                    *p++ = (float)min_sizes[k][m];
                }
    }
    det->n_priors = total;
    return NULL;
}

fg_status *fg_face_detector_open(fg_engine *engine, fg_face_detector_family family, const char *model_path,
                                 int width, int height, fg_face_detector **detector)
{
    *detector = NULL;
    if ((unsigned)family >= 4)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "unknown face detector family %d", (int)family);
    if (width < 0 || height < 0 || (width == 0) != (height == 0))
        return fg_error(FG_ERR_INVALID_ARGUMENT, "face detector size %dx%d is invalid", width, height);
    fg_face_detector *det = calloc(1, sizeof *det);
    if (!det)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory opening a face detector");
    det->family = family;
    fg_status *status = fg_session_open(engine, model_path, &det->session);
    if (status) {
        free(det);
        return status;
    }
#define FAIL(expr)                            \
    do {                                      \
        status = (expr);                      \
        fg_face_detector_close(det);          \
        return status;                        \
    } while (0)
    if (fg_session_input_count(det->session) != 1)
        FAIL(fg_error(FG_ERR_UNSUPPORTED, "%s: a face detector must have one input, this model has %d", model_path,
                      fg_session_input_count(det->session)));
    const fg_value_info *in = fg_session_input(det->session, 0);
    if (in->rank != 4 || (in->dims[1] >= 0 && in->dims[1] != 3) || (in->dims[0] > 1))
        FAIL(fg_error(FG_ERR_UNSUPPORTED, "%s: the input '%s' must be 1x3xHxW (NCHW, BGR/RGB)", model_path,
                      in->name));
    if (in->dtype != FG_FLOAT32 && in->dtype != FG_FLOAT16)
        FAIL(fg_error(FG_ERR_DTYPE, "%s: the input '%s' is %s; float32 or float16 expected", model_path, in->name,
                      fg_dtype_name(in->dtype)));
    det->input_dtype = in->dtype;
    int fixed = in->dims[2] > 0 && in->dims[3] > 0;
    if (width == 0) {
        width = fixed ? (int)in->dims[3] : 640;
        height = fixed ? (int)in->dims[2] : 640;
    } else if (fixed && (width != in->dims[3] || height != in->dims[2])) {
        FAIL(fg_error(FG_ERR_INVALID_ARGUMENT, "%s: the model takes a fixed %lldx%lld input; face detector size %dx%d "
                      "cannot be used (leave it out or pass %lldx%lld)",
                      model_path, (long long)in->dims[3], (long long)in->dims[2], width, height,
                      (long long)in->dims[3], (long long)in->dims[2]));
    } else if (!fixed && (width % 32 || height % 32 || width > 4096 || height > 4096)) {
        FAIL(fg_error(FG_ERR_INVALID_ARGUMENT,
                      "face detector size %dx%d: width and height must be multiples of 32 up to 4096 (e.g. 640x640)",
                      width, height));
    }
    det->width = width;
    det->height = height;

    det->n_outputs = fg_session_output_count(det->session);
    if (det->n_outputs > 0) {
        det->outputs = calloc((size_t)det->n_outputs, sizeof *det->outputs);
        det->converted = calloc((size_t)det->n_outputs, sizeof *det->converted);
        det->converted_capacity = calloc((size_t)det->n_outputs, sizeof *det->converted_capacity);
        if (!det->outputs || !det->converted || !det->converted_capacity)
            FAIL(fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory opening a face detector"));
    }
    status = recognise_layout(det, model_path, &det->layout);
    if (status)
        FAIL(status);
    if (!layout_fits_family(family, det->layout))
        FAIL(fg_error(FG_ERR_INVALID_ARGUMENT, "%s: the model's outputs are %s, which is not a %s detector; pick "
                      "the matching --face-detector-model",
                      model_path, layout_description(det->layout), fg_face_detector_family_name(family)));
    det->norm = layout_normalisation(det->layout);
    if (det->layout == LAYOUT_PRIOR_BOX && (status = make_priors(det)))
        FAIL(status);

    size_t plane = (size_t)width * height;
    det->input_float = fg_aligned_alloc(sizeof(float) * 3 * plane);
    if (!det->input_float)
        FAIL(fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory for a %dx%d detector input", width, height));
    if (det->input_dtype == FG_FLOAT16) {
        det->input_data = fg_aligned_alloc(sizeof(uint16_t) * 3 * plane);
        if (!det->input_data)
            FAIL(fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory for a %dx%d detector input", width, height));
    } else {
        det->input_data = det->input_float;
    }
    fg_tensor t = {FG_FLOAT32, 4, {1, 3, height, width}, det->input_float, FG_HOST};
    det->last_input = t;
    det->input = t;
    det->input.dtype = det->input_dtype;
    det->input.data = det->input_data;
    *detector = det;
    return NULL;
#undef FAIL
}

void fg_face_detector_close(fg_face_detector *det)
{
    if (!det)
        return;
    fg_session_close(det->session);
    if (det->input_data != det->input_float)
        fg_aligned_free(det->input_data);
    fg_aligned_free(det->input_float);
    if (det->converted)
        for (int i = 0; i < det->n_outputs; i++)
            free(det->converted[i]);
    free(det->converted);
    free(det->converted_capacity);
    free(det->outputs);
    free(det->priors);
    free(det);
}

void fg_face_detector_size(const fg_face_detector *det, int *width, int *height)
{
    *width = det->width;
    *height = det->height;
}

const fg_tensor *fg_face_detector_last_input(const fg_face_detector *det)
{
    return det && det->has_run ? &det->last_input : NULL;
}

void fg_faces_free(fg_face *faces) { free(faces); }

/* ---------------------------------------------------------------- input */

/* Letterboxes `frame` (already scaled to fit) top-left onto the zero canvas
 * and normalises every canvas pixel, padding included (as FaceFusion does). */
static void fill_input(fg_face_detector *det, const fg_image *frame)
{
    const int W = det->width, H = det->height;
    const size_t plane = (size_t)W * H;
    const normalisation *n = &det->norm;
    float pad[3];
    for (int c = 0; c < 3; c++)
        pad[c] = (0.0f - n->mean[c]) * n->scale;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < H; y++) {
        float *rows[3];
        for (int c = 0; c < 3; c++)
            rows[c] = det->input_float + c * plane + (size_t)y * W;
        int x = 0;
        if (y < frame->height) {
            const uint8_t *src = frame->pixels + (size_t)y * frame->stride;
            for (; x < frame->width && x < W; x++) {
                for (int c = 0; c < 3; c++) {
                    int channel = n->swap_to_rgb ? 2 - c : c;
                    rows[c][x] = ((float)src[3 * x + channel] - n->mean[c]) * n->scale;
                }
            }
        }
        for (; x < W; x++)
            for (int c = 0; c < 3; c++)
                rows[c][x] = pad[c];
    }
    if (det->input_dtype == FG_FLOAT16) {
        uint16_t *half = det->input_data;
        for (size_t i = 0; i < 3 * plane; i++)
            half[i] = fg_float_to_half(det->input_float[i]);
    }
}

/* ---------------------------------------------------------------- decoding */

static fg_status *push_candidate(candidate_list *list, const fg_face *face)
{
    if (list->count == list->capacity) {
        int capacity = list->capacity ? list->capacity * 2 : 256;
        fg_face *items = realloc(list->items, sizeof *items * (size_t)capacity);
        if (!items)
            return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory for %d face candidates", capacity);
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = *face;
    return NULL;
}

/* Output `index` as host float32 (converting other dtypes). */
static fg_status *output_floats(fg_face_detector *det, int index, const float **data)
{
    const fg_tensor *t = &det->outputs[index];
    if (t->location != FG_HOST || !t->data)
        return fg_error(FG_ERR_INTERNAL, "face detector output %d is not in host memory", index);
    if (t->dtype == FG_FLOAT32) {
        *data = t->data;
        return NULL;
    }
    if (t->dtype != FG_FLOAT16 && t->dtype != FG_FLOAT64)
        return fg_error(FG_ERR_DTYPE, "face detector output %d is %s; a float type was expected", index,
                        fg_dtype_name(t->dtype));
    size_t n = (size_t)fg_tensor_numel(t);
    if (det->converted_capacity[index] < n) {
        free(det->converted[index]);
        det->converted[index] = malloc(sizeof(float) * (n ? n : 1));
        det->converted_capacity[index] = det->converted[index] ? n : 0;
        if (!det->converted[index])
            return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory converting a detector output");
    }
    for (size_t i = 0; i < n; i++)
        det->converted[index][i] = (float)fg_load_f64(t->dtype, t->data, (int64_t)i);
    *data = det->converted[index];
    return NULL;
}

static fg_status *shape_error(const fg_face_detector *det, int index, const char *expected)
{
    char buf[96];
    const fg_tensor *t = &det->outputs[index];
    fg_shape_format(t->rank, t->dims, buf, sizeof buf);
    return fg_error(FG_ERR_SHAPE, "face detector output %d has shape %s; expected %s for a %dx%d input", index, buf,
                    expected, det->width, det->height);
}

static int64_t rows_of(const fg_tensor *t) { return t->rank > 0 && t->dims[t->rank - 1] > 0 ? fg_tensor_numel(t) / t->dims[t->rank - 1] : 0; }

/* Sorts the given output indices by descending row count: stride 8 first. */
static void sort_by_rows(const fg_face_detector *det, int *indices, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && rows_of(&det->outputs[indices[j]]) > rows_of(&det->outputs[indices[j - 1]]); j--) {
            int t = indices[j];
            indices[j] = indices[j - 1];
            indices[j - 1] = t;
        }
}

static const int strides[3] = {8, 16, 32};

static fg_status *decode_anchor_distance(fg_face_detector *det, float threshold, candidate_list *out)
{
    int groups[11][3], counts[11] = {0};
    for (int i = 0; i < 9; i++) {
        const fg_tensor *t = &det->outputs[i];
        int64_t d = t->rank > 0 ? t->dims[t->rank - 1] : 0;
        if ((d != 1 && d != 4 && d != 10) || counts[d] == 3)
            return shape_error(det, i, "N x 1, N x 4 or N x 10 (three of each)");
        groups[d][counts[d]++] = i;
    }
    sort_by_rows(det, groups[1], 3);
    sort_by_rows(det, groups[4], 3);
    sort_by_rows(det, groups[10], 3);
    for (int s = 0; s < 3; s++) {
        int stride = strides[s];
        int rows = det->height / stride, cols = det->width / stride;
        int64_t cells = (int64_t)rows * cols;
        int64_t n = rows_of(&det->outputs[groups[1][s]]);
        int anchors = cells > 0 ? (int)(n / cells) : 0;
        if (anchors < 1 || n != cells * anchors)
            return shape_error(det, groups[1][s], "(H/stride)*(W/stride)*anchors rows");
        if (rows_of(&det->outputs[groups[4][s]]) != n)
            return shape_error(det, groups[4][s], "as many rows as the scores");
        if (rows_of(&det->outputs[groups[10][s]]) != n)
            return shape_error(det, groups[10][s], "as many rows as the scores");
        const float *scores, *boxes, *kps;
        FG_TRY(output_floats(det, groups[1][s], &scores));
        FG_TRY(output_floats(det, groups[4][s], &boxes));
        FG_TRY(output_floats(det, groups[10][s], &kps));
        for (int64_t i = 0; i < n; i++) {
            if (!(scores[i] >= threshold))
                continue;
            int64_t cell = i / anchors;
            float ax = (float)((cell % cols) * stride), ay = (float)((cell / cols) * stride);
            const float *b = boxes + 4 * i, *k = kps + 10 * i;
            fg_face f;
            f.score = scores[i];
            f.box[0] = ax - b[0] * stride;
            f.box[1] = ay - b[1] * stride;
            f.box[2] = ax + b[2] * stride;
            f.box[3] = ay + b[3] * stride;
            for (int p = 0; p < 5; p++) {
                f.landmarks_5[p][0] = ax + k[2 * p] * stride;
                f.landmarks_5[p][1] = ay + k[2 * p + 1] * stride;
            }
            FG_TRY(push_candidate(out, &f));
        }
    }
    return NULL;
}

static fg_status *decode_yunet(fg_face_detector *det, float threshold, candidate_list *out)
{
    static const int64_t widths[4] = {1, 1, 4, 10};
    int order[4][3];
    for (int g = 0; g < 4; g++) {
        for (int s = 0; s < 3; s++) {
            int i = 3 * g + s;
            const fg_tensor *t = &det->outputs[i];
            if (t->rank < 1 || t->dims[t->rank - 1] != widths[g])
                return shape_error(det, i, g < 2 ? "1 x N x 1" : g == 2 ? "1 x N x 4" : "1 x N x 10");
            order[g][s] = i;
        }
        sort_by_rows(det, order[g], 3);
    }
    for (int s = 0; s < 3; s++) {
        int stride = strides[s];
        int rows = det->height / stride, cols = det->width / stride;
        int64_t n = (int64_t)rows * cols;
        for (int g = 0; g < 4; g++)
            if (rows_of(&det->outputs[order[g][s]]) != n)
                return shape_error(det, order[g][s], "(H/stride)*(W/stride) rows, one anchor per cell");
        const float *cls, *obj, *bbox, *kps;
        FG_TRY(output_floats(det, order[0][s], &cls));
        FG_TRY(output_floats(det, order[1][s], &obj));
        FG_TRY(output_floats(det, order[2][s], &bbox));
        FG_TRY(output_floats(det, order[3][s], &kps));
        for (int64_t i = 0; i < n; i++) {
            float score = cls[i] * obj[i];
            if (!(score >= threshold))
                continue;
            float ax = (float)((i % cols) * stride), ay = (float)((i / cols) * stride);
            const float *b = bbox + 4 * i, *k = kps + 10 * i;
            float cx = b[0] * stride + ax, cy = b[1] * stride + ay;
            float w = expf(b[2]) * stride, h = expf(b[3]) * stride;
            fg_face f;
            f.score = score;
            f.box[0] = cx - w * 0.5f;
            f.box[1] = cy - h * 0.5f;
            f.box[2] = cx + w * 0.5f;
            f.box[3] = cy + h * 0.5f;
            for (int p = 0; p < 5; p++) {
                f.landmarks_5[p][0] = k[2 * p] * stride + ax;
                f.landmarks_5[p][1] = k[2 * p + 1] * stride + ay;
            }
            FG_TRY(push_candidate(out, &f));
        }
    }
    return NULL;
}

static fg_status *decode_prior_box(fg_face_detector *det, float threshold, candidate_list *out)
{
    int loc = -1, conf = -1, landmarks = -1;
    for (int i = 0; i < 3; i++) {
        const fg_tensor *t = &det->outputs[i];
        int64_t d = t->rank > 0 ? t->dims[t->rank - 1] : 0;
        if (d == 4)
            loc = i;
        else if (d == 2)
            conf = i;
        else if (d == 10)
            landmarks = i;
    }
    if (loc < 0 || conf < 0 || landmarks < 0)
        return shape_error(det, 0, "loc 1xNx4, conf 1xNx2 and landmarks 1xNx10");
    int64_t n = det->n_priors;
    if (rows_of(&det->outputs[loc]) != n)
        return shape_error(det, loc, "one row per prior box");
    if (rows_of(&det->outputs[conf]) != n)
        return shape_error(det, conf, "one row per prior box");
    if (rows_of(&det->outputs[landmarks]) != n)
        return shape_error(det, landmarks, "one row per prior box");
    const float *l, *c, *m;
    FG_TRY(output_floats(det, loc, &l));
    FG_TRY(output_floats(det, conf, &c));
    FG_TRY(output_floats(det, landmarks, &m));
    const float variance_center = 0.1f, variance_size = 0.2f;
    for (int64_t i = 0; i < n; i++) {
        float score = c[2 * i + 1];
        if (!(score >= threshold))
            continue;
        const float *prior = det->priors + 4 * i, *d = l + 4 * i, *k = m + 10 * i;
        float cx = prior[0] + d[0] * variance_center * prior[2];
        float cy = prior[1] + d[1] * variance_center * prior[3];
        float w = prior[2] * expf(d[2] * variance_size), h = prior[3] * expf(d[3] * variance_size);
        fg_face f;
        f.score = score;
        f.box[0] = cx - w * 0.5f;
        f.box[1] = cy - h * 0.5f;
        f.box[2] = cx + w * 0.5f;
        f.box[3] = cy + h * 0.5f;
        for (int p = 0; p < 5; p++) {
            f.landmarks_5[p][0] = prior[0] + k[2 * p] * variance_center * prior[2];
            f.landmarks_5[p][1] = prior[1] + k[2 * p + 1] * variance_center * prior[3];
        }
        FG_TRY(push_candidate(out, &f));
    }
    return NULL;
}

static fg_status *decode_yolo_decoded(fg_face_detector *det, float threshold, candidate_list *out)
{
    const fg_tensor *t = &det->outputs[0];
    if (t->rank != 3 || t->dims[0] != 1 || t->dims[1] != 20)
        return shape_error(det, 0, "1 x 20 x N");
    int64_t n = t->dims[2];
    const float *d;
    FG_TRY(output_floats(det, 0, &d));
#define AT(row, i) d[(int64_t)(row) * n + (i)]
    for (int64_t i = 0; i < n; i++) {
        float score = AT(4, i);
        if (!(score >= threshold))
            continue;
        float cx = AT(0, i), cy = AT(1, i), w = AT(2, i), h = AT(3, i);
        fg_face f;
        f.score = score;
        f.box[0] = cx - w * 0.5f;
        f.box[1] = cy - h * 0.5f;
        f.box[2] = cx + w * 0.5f;
        f.box[3] = cy + h * 0.5f;
        for (int p = 0; p < 5; p++) {
            f.landmarks_5[p][0] = AT(5 + 3 * p, i);
            f.landmarks_5[p][1] = AT(6 + 3 * p, i);
        }
        FG_TRY(push_candidate(out, &f));
    }
#undef AT
    return NULL;
}

/* YOLOv8 raw head: per cell 4 x 16 distribution-focal-loss bins (softmax,
 * then the expected bin index is the distance in grid units), one class
 * logit, and 5 keypoints (x, y, visibility) decoded as
 * (raw * 2 + cell index) * stride. */
static fg_status *decode_yolo_raw_head(fg_face_detector *det, float threshold, candidate_list *out)
{
    enum { BINS = 16, CHANNELS = 80 };
    if (!(threshold > 0.0f))
        threshold = 1e-6f;
    float logit_threshold = threshold >= 1.0f ? INFINITY : logf(threshold / (1.0f - threshold));
    for (int i = 0; i < 3; i++) {
        const fg_tensor *t = &det->outputs[i];
        if (t->rank != 4 || t->dims[0] != 1 || t->dims[1] != CHANNELS || t->dims[2] <= 0 || t->dims[3] <= 0)
            return shape_error(det, i, "1 x 80 x H/stride x W/stride");
        int64_t rows = t->dims[2], cols = t->dims[3];
        if (det->height % rows || det->width % cols || det->height / rows != det->width / cols)
            return shape_error(det, i, "a map whose stride divides the input size");
        float stride = (float)(det->height / rows);
        int64_t plane = rows * cols;
        const float *d;
        FG_TRY(output_floats(det, i, &d));
        for (int64_t cell = 0; cell < plane; cell++) {
            float logit = d[64 * plane + cell];
            if (!(logit >= logit_threshold))
                continue;
            float gx = (float)(cell % cols), gy = (float)(cell / cols);
            float distance[4];
            for (int side = 0; side < 4; side++) {
                float values[BINS], top = -INFINITY, sum = 0, expected = 0;
                for (int b = 0; b < BINS; b++) {
                    values[b] = d[(int64_t)(side * BINS + b) * plane + cell];
                    if (values[b] > top)
                        top = values[b];
                }
                for (int b = 0; b < BINS; b++) {
                    float e = expf(values[b] - top);
                    sum += e;
                    expected += e * b;
                }
                distance[side] = expected / sum;
            }
            float ax = gx + 0.5f, ay = gy + 0.5f;
            fg_face f;
            f.score = 1.0f / (1.0f + expf(-logit));
            f.box[0] = (ax - distance[0]) * stride;
            f.box[1] = (ay - distance[1]) * stride;
            f.box[2] = (ax + distance[2]) * stride;
            f.box[3] = (ay + distance[3]) * stride;
            for (int p = 0; p < 5; p++) {
                f.landmarks_5[p][0] = (d[(int64_t)(65 + 3 * p) * plane + cell] * 2.0f + gx) * stride;
                f.landmarks_5[p][1] = (d[(int64_t)(66 + 3 * p) * plane + cell] * 2.0f + gy) * stride;
            }
            FG_TRY(push_candidate(out, &f));
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- NMS */

static float box_iou(const float *a, const float *b)
{
    float iw = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
    float ih = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    if (iw <= 0 || ih <= 0)
        return 0;
    float inter = iw * ih;
    float area_a = fmaxf(a[2] - a[0], 0) * fmaxf(a[3] - a[1], 0);
    float area_b = fmaxf(b[2] - b[0], 0) * fmaxf(b[3] - b[1], 0);
    float uni = area_a + area_b - inter;
    return uni > 0 ? inter / uni : 0;
}

static int by_descending_score(const void *pa, const void *pb)
{
    const fg_face *a = pa, *b = pb;
    return (a->score < b->score) - (a->score > b->score);
}

/* Greedy NMS over score-sorted candidates; compacts the kept ones in place. */
static fg_status *apply_nms(candidate_list *list, float iou_threshold)
{
    int n = list->count;
    if (n == 0)
        return NULL;
    qsort(list->items, (size_t)n, sizeof *list->items, by_descending_score);
    unsigned char *suppressed = calloc((size_t)n, 1);
    if (!suppressed)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory for NMS over %d candidates", n);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (suppressed[i])
            continue;
        const fg_face *keep = &list->items[i];
        for (int j = i + 1; j < n; j++)
            if (!suppressed[j] && box_iou(keep->box, list->items[j].box) > iou_threshold)
                suppressed[j] = 1;
        list->items[kept++] = list->items[i];
    }
    free(suppressed);
    list->count = kept;
    return NULL;
}

/* ---------------------------------------------------------------- run */

fg_status *fg_face_detector_run(fg_face_detector *det, const fg_image *image, float score_threshold,
                                fg_face **faces, int *count)
{
    *faces = NULL;
    *count = 0;
    if (!det || !image || !image->pixels || image->width <= 0 || image->height <= 0)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "face detection needs a detector and a non-empty image");
    if (!(score_threshold >= 0.0f && score_threshold <= 1.0f))
        return fg_error(FG_ERR_INVALID_ARGUMENT, "face detector score %g is out of range 0..1", score_threshold);

    /* FaceFusion's resize_frame_resolution: only ever scale down. */
    const fg_image *frame = image;
    fg_image *resized = NULL;
    if (image->width > det->width || image->height > det->height) {
        double scale = fmin((double)det->height / image->height, (double)det->width / image->width);
        int w = (int)(image->width * scale), h = (int)(image->height * scale);
        if (w < 1)
            w = 1;
        if (h < 1)
            h = 1;
        FG_TRY(fg_image_resize(image, w, h, &resized));
        frame = resized;
    }
    float ratio_x = (float)image->width / frame->width, ratio_y = (float)image->height / frame->height;
    fill_input(det, frame);
    fg_image_free(resized);
    det->has_run = 1;

    FG_TRY(fg_session_run(det->session, &det->input, 1, det->outputs, det->n_outputs));

    candidate_list list = {0};
    fg_status *status = NULL;
    switch (det->layout) {
    case LAYOUT_ANCHOR_DISTANCE: status = decode_anchor_distance(det, score_threshold, &list); break;
    case LAYOUT_PRIOR_BOX: status = decode_prior_box(det, score_threshold, &list); break;
    case LAYOUT_YUNET: status = decode_yunet(det, score_threshold, &list); break;
    case LAYOUT_YOLO_DECODED: status = decode_yolo_decoded(det, score_threshold, &list); break;
    case LAYOUT_YOLO_RAW_HEAD: status = decode_yolo_raw_head(det, score_threshold, &list); break;
    }
    if (status) {
        free(list.items);
        return status;
    }
    /* Back to frame pixels before NMS, as FaceFusion does. */
    for (int i = 0; i < list.count; i++) {
        fg_face *f = &list.items[i];
        f->box[0] *= ratio_x;
        f->box[1] *= ratio_y;
        f->box[2] *= ratio_x;
        f->box[3] *= ratio_y;
        for (int p = 0; p < 5; p++) {
            f->landmarks_5[p][0] *= ratio_x;
            f->landmarks_5[p][1] *= ratio_y;
        }
    }
    status = apply_nms(&list, NMS_IOU_THRESHOLD);
    if (status) {
        free(list.items);
        return status;
    }
    if (list.count == 0) {
        free(list.items);
        return NULL;
    }
    *faces = list.items;
    *count = list.count;
    return NULL;
}
