/* Images: JPEG/PNG decoding (by content), encoding (by extension), bilinear
 * resize and the drawing helpers used for annotated output. Pixels are 8-bit
 * BGR interleaved, as FaceFusion (OpenCV) keeps frames. */
#include "facegraph/face.h"

#include "base/base.h"

#include <errno.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE */
#include <jpeglib.h>
#include <jerror.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- basics */

fg_status *fg_image_create(int width, int height, fg_image **image)
{
    *image = NULL;
    if (width <= 0 || height <= 0 || width > (1 << 16) || height > (1 << 16))
        return fg_error(FG_ERR_INVALID_ARGUMENT, "image size %dx%d is out of range (1..65536 per side)", width,
                        height);
    fg_image *img = calloc(1, sizeof *img);
    if (!img)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory for a %dx%d image", width, height);
    img->width = width;
    img->height = height;
    img->stride = (size_t)width * 3;
    img->pixels = calloc((size_t)height, img->stride);
    if (!img->pixels) {
        free(img);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory for a %dx%d image", width, height);
    }
    *image = img;
    return NULL;
}

void fg_image_free(fg_image *image)
{
    if (!image)
        return;
    free(image->pixels);
    free(image);
}

/* Reads a whole regular file; errors name the path. */
static fg_status *read_whole_file(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return fg_error(FG_ERR_NOT_FOUND, "%s: no such file", path);
        return fg_error(FG_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return fg_error(FG_ERR_INVALID_ARGUMENT, "%s: is a directory, not an image file", path);
    if (!S_ISREG(st.st_mode))
        return fg_error(FG_ERR_INVALID_ARGUMENT, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fg_error(errno == ENOENT ? FG_ERR_NOT_FOUND : FG_ERR_IO, "%s: %s", path, strerror(errno));
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (failed || got != n) {
        free(buf);
        return fg_error(FG_ERR_IO, "%s: read failed", path);
    }
    *data = buf;
    *size = n;
    return NULL;
}

/* ---------------------------------------------------------------- JPEG */

typedef struct jpeg_failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warned;
} jpeg_failure;

static void jpeg_fail_exit(j_common_ptr cinfo)
{
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, failure->message);
    longjmp(failure->jump, 1);
}

/* Warnings (level -1) mean corrupt data (e.g. "Premature end of JPEG file",
 * which libjpeg would otherwise paper over with grey rows); keep the first one so the caller can report it. Trace messages are
 * ignored. Nothing is printed. */
static void jpeg_note_message(j_common_ptr cinfo, int level)
{
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    /* Stray bytes between markers are common in camera files and harmless. */
    if (level < 0 && cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA)
        return;
    if (level < 0 && !failure->warned) {
        failure->warned = 1;
        (*cinfo->err->format_message)(cinfo, failure->message);
    }
}

static fg_status *decode_jpeg(const char *path, const uint8_t *data, size_t size, fg_image **image)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    memset(&failure, 0, sizeof failure);
    cinfo.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_fail_exit;
    failure.manager.emit_message = jpeg_note_message;
    /* volatile: modified between setjmp and a possible longjmp */
    fg_image *volatile img = NULL;
    uint8_t *volatile cmyk_row = NULL;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&cinfo);
        fg_image_free(img);
        free(cmyk_row);
        *image = NULL;
        return fg_error(FG_ERR_CORRUPT, "%s: corrupt or truncated JPEG (%s)", path, failure.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;
    jpeg_start_decompress(&cinfo);
    fg_image *created = NULL;
    fg_status *status = fg_image_create((int)cinfo.output_width, (int)cinfo.output_height, &created);
    if (status) {
        jpeg_destroy_decompress(&cinfo);
        return fg_error_wrap(status, "%s", path);
    }
    img = created;
    if (cmyk) {
        cmyk_row = malloc((size_t)cinfo.output_width * 4);
        if (!cmyk_row)
            longjmp(failure.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *row = img->pixels + (size_t)cinfo.output_scanline * img->stride;
        if (!cmyk) {
            JSAMPROW rows[1] = {row};
            jpeg_read_scanlines(&cinfo, rows, 1);
            continue;
        }
        JSAMPROW rows[1] = {cmyk_row};
        jpeg_read_scanlines(&cinfo, rows, 1);
        /* Adobe CMYK JPEGs store inverted values: channel * K / 255. */
        for (JDIMENSION x = 0; x < cinfo.output_width; x++) {
            const uint8_t *p = cmyk_row + 4 * x;
            int k = p[3];
            row[3 * x + 0] = (uint8_t)((p[2] * k + 127) / 255);
            row[3 * x + 1] = (uint8_t)((p[1] * k + 127) / 255);
            row[3 * x + 2] = (uint8_t)((p[0] * k + 127) / 255);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(cmyk_row);
    if (failure.warned) {
        fg_image_free(img);
        *image = NULL;
        return fg_error(FG_ERR_CORRUPT, "%s: corrupt or truncated JPEG (%s)", path, failure.message);
    }
    *image = img;
    return NULL;
}

/* ---------------------------------------------------------------- PNG */

typedef struct png_source {
    const uint8_t *data;
    size_t size;
    size_t offset;
} png_source;

typedef struct png_failure {
    char message[256];
} png_failure;

static void png_read_from_memory(png_structp png, png_bytep out, png_size_t count)
{
    png_source *source = png_get_io_ptr(png);
    if (source->size - source->offset < count)
        png_error(png, "unexpected end of file (truncated PNG)");
    memcpy(out, source->data + source->offset, count);
    source->offset += count;
}

static void png_fail(png_structp png, png_const_charp message)
{
    png_failure *failure = png_get_error_ptr(png);
    snprintf(failure->message, sizeof failure->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static fg_status *decode_png(const char *path, const uint8_t *data, size_t size, fg_image **image)
{
    png_failure failure = {"unknown error"};
    png_source source = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, png_fail, png_ignore_warning);
    if (!png)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of memory starting the PNG decoder", path);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of memory starting the PNG decoder", path);
    }
    fg_image *volatile img = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fg_image_free(img);
        free(rows);
        *image = NULL;
        return fg_error(FG_ERR_CORRUPT, "%s: corrupt or truncated PNG (%s)", path, failure.message);
    }
    png_set_read_fn(png, &source, png_read_from_memory);
    png_read_info(png, info);
    int color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    /* Everything to 8-bit BGR, alpha dropped (OpenCV imread IMREAD_COLOR). */
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16)
        png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_strip_alpha(png); /* also drops tRNS-derived alpha */
    png_set_bgr(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)png_get_image_width(png, info) * 3)
        png_error(png, "unsupported pixel layout after conversion");
    fg_image *created = NULL;
    fg_status *status =
        fg_image_create((int)png_get_image_width(png, info), (int)png_get_image_height(png, info), &created);
    if (status) {
        png_destroy_read_struct(&png, &info, NULL);
        return fg_error_wrap(status, "%s", path);
    }
    img = created;
    rows = malloc(sizeof(png_bytep) * (size_t)img->height);
    if (!rows)
        png_error(png, "out of memory");
    for (int y = 0; y < img->height; y++)
        rows[y] = img->pixels + (size_t)y * img->stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *image = img;
    return NULL;
}

fg_status *fg_image_load(const char *path, fg_image **image)
{
    *image = NULL;
    if (!path || !*path)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "no image path given");
    uint8_t *data;
    size_t size;
    FG_TRY(read_whole_file(path, &data, &size));
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    fg_status *status;
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        status = decode_jpeg(path, data, size, image);
    else if (size >= 8 && memcmp(data, png_magic, 8) == 0)
        status = decode_png(path, data, size, image);
    else if (size == 0)
        status = fg_error(FG_ERR_CORRUPT, "%s: empty file, not a JPEG or PNG image", path);
    else
        status = fg_error(FG_ERR_UNSUPPORTED, "%s: not a JPEG or PNG image", path);
    free(data);
    return status;
}

/* ---------------------------------------------------------------- writing */

static int has_extension(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

static fg_status *encode_jpeg(const fg_image *image, FILE *f, const char *path)
{
    struct jpeg_compress_struct cinfo;
    jpeg_failure failure;
    memset(&failure, 0, sizeof failure);
    cinfo.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_fail_exit;
    failure.manager.emit_message = jpeg_note_message;
    if (setjmp(failure.jump)) {
        jpeg_destroy_compress(&cinfo);
        return fg_error(FG_ERR_IO, "%s: writing JPEG failed (%s)", path, failure.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)image->width;
    cinfo.image_height = (JDIMENSION)image->height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_EXT_BGR;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rows[1] = {image->pixels + (size_t)cinfo.next_scanline * image->stride};
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return NULL;
}

static fg_status *encode_png(const fg_image *image, FILE *f, const char *path)
{
    png_failure failure = {"unknown error"};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &failure, png_fail, png_ignore_warning);
    if (!png)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of memory starting the PNG encoder", path);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of memory starting the PNG encoder", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return fg_error(FG_ERR_IO, "%s: writing PNG failed (%s)", path, failure.message);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)image->width, (png_uint_32)image->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_set_bgr(png);
    for (int y = 0; y < image->height; y++)
        png_write_row(png, image->pixels + (size_t)y * image->stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return NULL;
}

fg_status *fg_image_save(const fg_image *image, const char *path)
{
    if (!image || !image->pixels)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "no image to save");
    if (!path || !*path)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "no output path given");
    int jpeg = has_extension(path, ".jpg") || has_extension(path, ".jpeg");
    int png = has_extension(path, ".png");
    if (!jpeg && !png)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "%s: unknown image extension; use .jpg, .jpeg or .png", path);
    size_t n = strlen(path);
    char *temp = malloc(n + 16);
    if (!temp)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    snprintf(temp, n + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(temp);
    if (fd < 0) {
        fg_status *s = fg_error(errno == ENOENT ? FG_ERR_NOT_FOUND : FG_ERR_IO, "%s: cannot create a file there (%s)",
                                path, strerror(errno));
        free(temp);
        return s;
    }
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(temp);
        free(temp);
        return fg_error(FG_ERR_IO, "%s: %s", path, strerror(errno));
    }
    fg_status *status = jpeg ? encode_jpeg(image, f, path) : encode_png(image, f, path);
    if (fflush(f) != 0 && !status)
        status = fg_error(FG_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
    if (fclose(f) != 0 && !status)
        status = fg_error(FG_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
    if (!status && rename(temp, path) != 0)
        status = fg_error(FG_ERR_IO, "%s: cannot rename the finished file into place (%s)", path, strerror(errno));
    if (status)
        unlink(temp);
    free(temp);
    return status;
}

/* ---------------------------------------------------------------- resize */

/* Source index and weight of the second sample for one output coordinate,
 * with pixel centres aligned (OpenCV INTER_LINEAR). */
static void linear_tap(int out_index, double scale, int in_size, int *first, float *weight)
{
    double position = (out_index + 0.5) * scale - 0.5;
    int base = (int)floor(position);
    double fraction = position - base;
    if (base < 0) {
        base = 0;
        fraction = 0;
    }
    if (base >= in_size - 1) {
        base = in_size - 1;
        fraction = 0;
    }
    *first = base;
    *weight = (float)fraction;
}

fg_status *fg_image_resize(const fg_image *source, int width, int height, fg_image **resized)
{
    *resized = NULL;
    fg_image *out;
    FG_TRY(fg_image_create(width, height, &out));
    int *x_index = malloc(sizeof(int) * (size_t)width);
    float *x_weight = malloc(sizeof(float) * (size_t)width);
    if (!x_index || !x_weight) {
        free(x_index);
        free(x_weight);
        fg_image_free(out);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory resizing to %dx%d", width, height);
    }
    double scale_x = (double)source->width / width, scale_y = (double)source->height / height;
    for (int x = 0; x < width; x++)
        linear_tap(x, scale_x, source->width, &x_index[x], &x_weight[x]);
    const int last_x = source->width - 1;
#pragma omp parallel for schedule(static) if ((long)width * height > 65536)
    for (int y = 0; y < height; y++) {
        int y0;
        float wy;
        linear_tap(y, scale_y, source->height, &y0, &wy);
        int y1 = y0 + 1 < source->height ? y0 + 1 : y0;
        const uint8_t *row0 = source->pixels + (size_t)y0 * source->stride;
        const uint8_t *row1 = source->pixels + (size_t)y1 * source->stride;
        uint8_t *dst = out->pixels + (size_t)y * out->stride;
        for (int x = 0; x < width; x++) {
            int x0 = x_index[x];
            int x1 = x0 < last_x ? x0 + 1 : x0;
            float wx = x_weight[x];
            for (int c = 0; c < 3; c++) {
                float top = row0[3 * x0 + c] + (row0[3 * x1 + c] - row0[3 * x0 + c]) * wx;
                float bottom = row1[3 * x0 + c] + (row1[3 * x1 + c] - row1[3 * x0 + c]) * wx;
                float value = top + (bottom - top) * wy;
                dst[3 * x + c] = (uint8_t)(value + 0.5f);
            }
        }
    }
    free(x_index);
    free(x_weight);
    *resized = out;
    return NULL;
}

/* ---------------------------------------------------------------- drawing */

static void fill_span(fg_image *image, int y, int x1, int x2, uint8_t b, uint8_t g, uint8_t r)
{
    if (y < 0 || y >= image->height)
        return;
    if (x1 < 0)
        x1 = 0;
    if (x2 > image->width - 1)
        x2 = image->width - 1;
    uint8_t *row = image->pixels + (size_t)y * image->stride;
    for (int x = x1; x <= x2; x++) {
        row[3 * x] = b;
        row[3 * x + 1] = g;
        row[3 * x + 2] = r;
    }
}

void fg_image_draw_rectangle(fg_image *image, int x1, int y1, int x2, int y2, int thickness, uint8_t blue,
                             uint8_t green, uint8_t red)
{
    if (!image || thickness < 1)
        return;
    if (x1 > x2) {
        int t = x1;
        x1 = x2;
        x2 = t;
    }
    if (y1 > y2) {
        int t = y1;
        y1 = y2;
        y2 = t;
    }
    int first_row = y1 < 0 ? 0 : y1, last_row = y2 > image->height - 1 ? image->height - 1 : y2;
    for (int y = first_row; y <= last_row; y++) {
        if (y < y1 + thickness || y > y2 - thickness) {
            fill_span(image, y, x1, x2, blue, green, red);
        } else {
            fill_span(image, y, x1, x1 + thickness - 1, blue, green, red);
            fill_span(image, y, x2 - thickness + 1, x2, blue, green, red);
        }
    }
}

void fg_image_draw_circle(fg_image *image, float center_x, float center_y, float radius, uint8_t blue,
                          uint8_t green, uint8_t red)
{
    if (!image || !(radius > 0) || !(fabsf(center_x) < 1e6f) || !(fabsf(center_y) < 1e6f) || !(radius < 1e6f))
        return;
    int top = (int)floorf(center_y - radius), bottom = (int)ceilf(center_y + radius);
    if (top < 0)
        top = 0;
    if (bottom > image->height - 1)
        bottom = image->height - 1;
    for (int y = top; y <= bottom; y++) {
        float dy = (float)y - center_y;
        float half = radius * radius - dy * dy;
        if (half < 0)
            continue;
        float span = sqrtf(half);
        fill_span(image, y, (int)ceilf(center_x - span), (int)floorf(center_x + span), blue, green, red);
    }
}
