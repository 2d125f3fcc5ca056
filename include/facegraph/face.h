/* facegraph images and face detection.
 *
 * Images are 8-bit BGR interleaved (FaceFusion's / OpenCV's order), rows
 * `stride` bytes apart. Face detection follows FaceFusion 3.x: the frame is
 * scaled down (aspect kept, never up) to fit the detector size, placed
 * top-left on a zero canvas, normalised per detector family, run through the
 * model, decoded, filtered by score, reduced by non-maximum suppression
 * (IoU 0.4) and scaled back to the frame's coordinates.
 *
 * Same conventions as facegraph.h: fallible calls return `fg_status *`
 * (NULL on success), nothing is printed, nothing aborts.
 */
#ifndef FACEGRAPH_FACE_H
#define FACEGRAPH_FACE_H

#include "facegraph/facegraph.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- images */
typedef struct fg_image {
    int width;
    int height;
    size_t stride;   /* bytes between rows (>= 3 * width) */
    uint8_t *pixels; /* B, G, R per pixel; owned by the image */
} fg_image;

/* Loads a JPEG or PNG, recognised by its content (magic bytes), not by its
 * extension. PNGs of any bit depth and colour type are accepted: 16-bit
 * samples are reduced to 8, gray is expanded, palettes are applied and alpha
 * is dropped (as OpenCV's imread does). A missing file, a directory, an
 * unknown format or corrupt/truncated data is an error naming the file. */
fg_status *fg_image_load(const char *path, fg_image **image);

/* A new black image. */
fg_status *fg_image_create(int width, int height, fg_image **image);

/* Writes the image; the format is chosen by the extension of `path`:
 * .jpg/.jpeg (quality 95) or .png. The data is first written to a temporary
 * file in the same directory and then renamed over `path`, so a failed write
 * leaves nothing half-written behind. */
fg_status *fg_image_save(const fg_image *image, const char *path);

void fg_image_free(fg_image *image); /* NULL is fine */

/* Resizes with bilinear interpolation using pixel centres (OpenCV's
 * INTER_LINEAR convention: src = (dst + 0.5) * in / out - 0.5, clamped at the
 * borders), rounding to nearest. */
fg_status *fg_image_resize(const fg_image *source, int width, int height, fg_image **resized);

/* Drawing helpers for annotated output; everything is clipped to the image.
 * Colours are given as B, G, R. */
void fg_image_draw_rectangle(fg_image *image, int x1, int y1, int x2, int y2, int thickness, uint8_t blue,
                             uint8_t green, uint8_t red);
void fg_image_draw_circle(fg_image *image, float center_x, float center_y, float radius, uint8_t blue,
                          uint8_t green, uint8_t red);

/* ---------------------------------------------------------------- faces */
typedef enum fg_face_detector_family {
    FG_FACE_DETECTOR_YOLO_FACE = 0, /* yoloface_8n (decoded 1x20xN) or a raw YOLOv8-face head */
    FG_FACE_DETECTOR_SCRFD,         /* scrfd_2.5g: 9 outputs, 2 anchors per cell */
    FG_FACE_DETECTOR_RETINAFACE,    /* retinaface_10g (SCRFD layout) or biubug6 loc/conf/landmarks */
    FG_FACE_DETECTOR_YUNET          /* yunet_2023mar: 12 outputs, 1 anchor per cell */
} fg_face_detector_family;

/* "yolo_face", "scrfd", "retinaface", "yunet" -> family; error otherwise. */
fg_status *fg_face_detector_family_parse(const char *name, fg_face_detector_family *family);
const char *fg_face_detector_family_name(fg_face_detector_family family);
/* FaceFusion's file name for the family's default model, e.g.
 * "scrfd_2.5g.onnx" (looked up in the models directory). */
const char *fg_face_detector_default_file(fg_face_detector_family family);

typedef struct fg_face {
    float box[4];            /* x1, y1, x2, y2 in frame pixels */
    float score;             /* 0..1 */
    float landmarks_5[5][2]; /* eyes, nose tip, mouth corners: (x, y) */
} fg_face;

typedef struct fg_face_detector fg_face_detector;

/* Opens a detector of `family` from an ONNX file. width/height is the
 * detector size (the canvas the frame is letterboxed into); 0, 0 means the
 * model's own input size, or 640x640 when the model's size is dynamic. A size
 * that the model cannot take (a fixed-size model of another size, or not a
 * multiple of 32) is an error. The model's outputs are checked against the
 * layouts the family knows; the layout is recognised from the output count
 * and shapes. The engine must outlive the detector. */
fg_status *fg_face_detector_open(fg_engine *engine, fg_face_detector_family family, const char *model_path,
                                 int width, int height, fg_face_detector **detector);
void fg_face_detector_close(fg_face_detector *detector); /* NULL is fine */

/* The detector size actually used. */
void fg_face_detector_size(const fg_face_detector *detector, int *width, int *height);

/* Detects faces in `image`. Faces scoring below `score_threshold` are
 * dropped, overlapping ones are reduced by NMS (IoU 0.4), and the rest are
 * returned sorted by descending score in `*faces` (free with fg_faces_free;
 * NULL when *count is 0). There is no cap on the number of faces. */
fg_status *fg_face_detector_run(fg_face_detector *detector, const fg_image *image, float score_threshold,
                                fg_face **faces, int *count);
void fg_faces_free(fg_face *faces); /* NULL is fine */

/* The model input made by the last fg_face_detector_run (the letterboxed,
 * normalised frame, 1x3xHxW float32, owned by the detector, valid until the
 * next run or close); NULL before the first run. For tests and debugging. */
const fg_tensor *fg_face_detector_last_input(const fg_face_detector *detector);

#ifdef __cplusplus
}
#endif
#endif
