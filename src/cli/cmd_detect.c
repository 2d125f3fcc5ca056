/* facegraph detect -t IMAGE [-o ANNOTATED.jpg] [--json] [--face-detector-* ...] */
#include "cli/cli.h"
#include "cli/npy.h"

#include "base/base.h"
#include "facegraph/face.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static void usage(FILE *to)
{
    fprintf(to,
            "usage: facegraph detect -t IMAGE [-o ANNOTATED.jpg] [--json]\n"
            "       [--face-detector-model yolo_face|scrfd|retinaface|yunet] [--face-detector-path FILE.onnx]\n"
            "       [--face-detector-size 640x640] [--face-detector-score 0.5] [--models DIR]\n"
            "       [--execution-providers cpu] [--execution-device-id N] [--execution-thread-count N]\n"
            "\n"
            "Finds faces in a JPEG or PNG image (FaceFusion's face detection: letterbox, model, decode,\n"
            "score threshold, NMS IoU 0.4) and prints one line per face, or JSON with --json:\n"
            "  {\"faces\": [{\"box\": [x1, y1, x2, y2], \"score\": s, \"landmarks_5\": [[x, y], ...]}, ...]}\n"
            "\n"
            "  -t, --target IMAGE           the image (JPEG or PNG, recognised by content)\n"
            "  -o, --output FILE            write a copy with boxes and landmarks drawn (.jpg or .png)\n"
            "  --json                       machine-readable output\n"
            "  --face-detector-model NAME   yolo_face (default, as FaceFusion), scrfd,\n"
            "                               retinaface or yunet\n"
            "  --face-detector-path FILE    the ONNX file (default: FaceFusion's file name for the model\n"
            "                               in the models directory: yoloface_8n.onnx, scrfd_2.5g.onnx,\n"
            "                               retinaface_10g.onnx, yunet_2023_mar.onnx)\n"
            "  --face-detector-size WxH     detector canvas (default: the model's size, 640x640 if dynamic)\n"
            "  --face-detector-score S      minimum score 0..1 (default 0.5)\n"
            "  --models DIR                 models directory (default: $FACEGRAPH_MODELS, then ./models)\n"
            "  --dump-input FILE.npy        also write the detector's input tensor (for testing)\n");
}

static int parse_float(const char *text, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno)
        return 0;
    *out = (float)v;
    return 1;
}

static void print_json(const fg_face *faces, int count)
{
    printf("{\"faces\": [");
    for (int i = 0; i < count; i++) {
        const fg_face *f = &faces[i];
        printf("%s\n  {\"box\": [%.3f, %.3f, %.3f, %.3f], \"score\": %.6f, \"landmarks_5\": [", i ? "," : "",
               f->box[0], f->box[1], f->box[2], f->box[3], f->score);
        for (int p = 0; p < 5; p++)
            printf("%s[%.3f, %.3f]", p ? ", " : "", f->landmarks_5[p][0], f->landmarks_5[p][1]);
        printf("]}");
    }
    printf("%s]}\n", count ? "\n" : "");
}

static void print_text(const char *target, const fg_face *faces, int count)
{
    printf("%s: %d face%s\n", target, count, count == 1 ? "" : "s");
    for (int i = 0; i < count; i++) {
        const fg_face *f = &faces[i];
        printf("  face %d: score %.3f box (%.1f, %.1f)-(%.1f, %.1f)\n", i, f->score, f->box[0], f->box[1],
               f->box[2], f->box[3]);
    }
}

static void annotate(fg_image *image, const fg_face *faces, int count)
{
    int side = image->width > image->height ? image->width : image->height;
    int thickness = side / 500 + 1;
    float radius = (float)thickness + 1.0f;
    static const uint8_t point_colours[5][3] = {
        {255, 0, 0}, {255, 0, 0}, {0, 255, 255}, {255, 0, 255}, {255, 0, 255}}; /* BGR */
    for (int i = 0; i < count; i++) {
        const fg_face *f = &faces[i];
        float b[4];
        for (int k = 0; k < 4; k++) {
            b[k] = f->box[k];
            if (b[k] < -1e6f)
                b[k] = -1e6f;
            if (b[k] > 1e6f)
                b[k] = 1e6f;
        }
        fg_image_draw_rectangle(image, (int)b[0], (int)b[1], (int)b[2], (int)b[3], thickness, 0, 255, 0);
        for (int p = 0; p < 5; p++)
            fg_image_draw_circle(image, f->landmarks_5[p][0], f->landmarks_5[p][1], radius, point_colours[p][0],
                                 point_colours[p][1], point_colours[p][2]);
    }
}

int cli_detect(int argc, char **argv)
{
    const char *cmd = "detect";
    const char *target = NULL, *output = NULL, *model_name = "yolo_face", *model_path = NULL, *models_dir = NULL;
    const char *dump_input = NULL;
    int json = 0, width = 0, height = 0;
    float score = 0.5f;
    cli_exec_options exec;
    cli_exec_options_init(&exec);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_parse_exec_option(argc, argv, &i, &exec);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        int takes_value = !strcmp(a, "-t") || !strcmp(a, "--target") || !strcmp(a, "-o") ||
                          !strcmp(a, "--output") || !strcmp(a, "--face-detector-model") ||
                          !strcmp(a, "--face-detector-path") || !strcmp(a, "--face-detector-size") ||
                          !strcmp(a, "--face-detector-score") || !strcmp(a, "--models") ||
                          !strcmp(a, "--dump-input");
        if (!takes_value)
            return cli_usage_error(cmd, "unknown option '%s'", a);
        if (i + 1 >= argc)
            return cli_usage_error(cmd, "%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-t") || !strcmp(a, "--target"))
            target = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            output = v;
        else if (!strcmp(a, "--face-detector-model"))
            model_name = v;
        else if (!strcmp(a, "--face-detector-path"))
            model_path = v;
        else if (!strcmp(a, "--models"))
            models_dir = v;
        else if (!strcmp(a, "--dump-input"))
            dump_input = v;
        else if (!strcmp(a, "--face-detector-score")) {
            if (!parse_float(v, &score) || !(score >= 0.0f && score <= 1.0f))
                return cli_usage_error(cmd, "--face-detector-score needs a number from 0 to 1, not '%s'", v);
        } else { /* --face-detector-size */
            int64_t dims[3];
            if (cli_parse_shape(v, dims, 3) != 2 || dims[0] < 32 || dims[1] < 32 || dims[0] > 4096 || dims[1] > 4096)
                return cli_usage_error(cmd, "--face-detector-size needs WIDTHxHEIGHT such as 640x640, not '%s'", v);
            width = (int)dims[0];
            height = (int)dims[1];
        }
    }
    if (!target)
        return cli_usage_error(cmd, "no image given; pass -t IMAGE");
    if (output) {
        size_t n = strlen(output);
        int ok = (n > 4 && (!strcasecmp(output + n - 4, ".jpg") || !strcasecmp(output + n - 4, ".png"))) ||
                 (n > 5 && !strcasecmp(output + n - 5, ".jpeg"));
        if (!ok)
            return cli_usage_error(cmd, "-o %s: the annotated image must end in .jpg, .jpeg or .png", output);
    }

    fg_face_detector_family family;
    fg_status *status = fg_face_detector_family_parse(model_name, &family);
    if (status) {
        int code = cli_usage_error(cmd, "%s", fg_status_message(status));
        fg_status_free(status);
        return code;
    }
    char path_buffer[4096];
    if (!model_path) {
        if (!models_dir)
            models_dir = getenv("FACEGRAPH_MODELS");
        if (!models_dir || !*models_dir)
            models_dir = "models";
        snprintf(path_buffer, sizeof path_buffer, "%s/%s", models_dir, fg_face_detector_default_file(family));
        model_path = path_buffer;
    }
    struct stat st;
    if (stat(model_path, &st) != 0 || !S_ISREG(st.st_mode))
        return cli_fail(cmd, fg_error(FG_ERR_NOT_FOUND,
                                      "face detector model %s not found; pass --face-detector-path FILE.onnx, "
                                      "or --models DIR holding FaceFusion's model files",
                                      model_path));

    fg_image *image = NULL;
    if ((status = fg_image_load(target, &image)))
        return cli_fail(cmd, status);
    fg_engine *engine = NULL;
    fg_face_detector *detector = NULL;
    fg_face *faces = NULL;
    int count = 0;
    status = cli_engine_create(&exec, &engine);
    if (!status)
        status = fg_face_detector_open(engine, family, model_path, width, height, &detector);
    if (!status)
        status = fg_face_detector_run(detector, image, score, &faces, &count);
    if (dump_input && detector && fg_face_detector_last_input(detector)) {
        fg_status *dump_status = npy_write(dump_input, fg_face_detector_last_input(detector));
        if (dump_status && !status)
            status = dump_status;
        else
            fg_status_free(dump_status);
    }
    if (!status) {
        if (json)
            print_json(faces, count);
        else
            print_text(target, faces, count);
        if (output) {
            annotate(image, faces, count);
            status = fg_image_save(image, output);
        }
    }
    fg_faces_free(faces);
    fg_face_detector_close(detector);
    fg_engine_destroy(engine);
    fg_image_free(image);
    if (status)
        return cli_fail(cmd, status);
    return 0;
}
