/* PNG (libpng simplified API) and JPEG (libjpeg / libjpeg-turbo) decoding for the Swift
 * image loader. See include/mnv3_image_shim.h. */
#include "mnv3_image_shim.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

static void set_message(char *message, size_t capacity, const char *text) {
    size_t n;
    if (!message || capacity == 0) return;
    n = strlen(text);
    if (n >= capacity) n = capacity - 1;
    memcpy(message, text, n);
    message[n] = '\0';
}

static int size_ok(uint32_t width, uint32_t height) {
    return width > 0 && height > 0 && width <= MNV3IMG_MAX_DIMENSION &&
           height <= MNV3IMG_MAX_DIMENSION &&
           (uint64_t)width * (uint64_t)height <= (uint64_t)MNV3IMG_MAX_PIXELS;
}

void mnv3img_free(mnv3img_image *image) {
    if (!image) return;
    free(image->pixels);
    image->pixels = NULL;
}

void mnv3img_free_bytes(uint8_t *data) { free(data); }

/* ------------------------------------------------------------------------------------ */
/* PNG                                                                                   */
/* ------------------------------------------------------------------------------------ */

mnv3img_status mnv3img_decode_png(const uint8_t *data, size_t size, mnv3img_image *out,
                                  char *message, size_t message_capacity) {
    png_image image;
    uint8_t *rgba = NULL, *rgb = NULL;
    size_t pixels, i;
    if (!data || !out) {
        set_message(message, message_capacity, "no data");
        return MNV3IMG_CORRUPT;
    }
    memset(out, 0, sizeof *out);
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        set_message(message, message_capacity, image.message[0] ? image.message : "not a PNG image");
        png_image_free(&image);
        return MNV3IMG_CORRUPT;
    }
    if (!size_ok(image.width, image.height)) {
        set_message(message, message_capacity, "image dimensions are too large");
        png_image_free(&image);
        return MNV3IMG_TOO_LARGE;
    }
    out->width = image.width;
    out->height = image.height;
    out->channels = 3;
    out->source_channels = PNG_IMAGE_SAMPLE_CHANNELS(image.format);
    out->source_bit_depth = PNG_IMAGE_SAMPLE_COMPONENT_SIZE(image.format) == 2 ? 16 : 8;
    /* 16-bit samples without colour-space information are taken as sRGB-encoded, so the
     * reduction to 8 bits is a plain rescale and does not change the brightness. */
    image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    /* Read as 8-bit RGBA (alpha kept, not composited), then drop alpha below. */
    image.format = PNG_FORMAT_RGBA;
    pixels = (size_t)image.width * image.height;
    rgba = (uint8_t *)malloc(pixels * 4);
    if (!rgba) {
        png_image_free(&image);
        set_message(message, message_capacity, "out of memory");
        return MNV3IMG_NO_MEMORY;
    }
    if (!png_image_finish_read(&image, NULL, rgba, 0, NULL)) {
        set_message(message, message_capacity, image.message[0] ? image.message : "corrupt PNG data");
        free(rgba);
        png_image_free(&image);
        return MNV3IMG_CORRUPT;
    }
    /* A warning (for example a bad CRC in an ancillary chunk) is tolerated like other
     * decoders do; errors in image data fail above. */
    rgb = (uint8_t *)malloc(pixels * 3);
    if (!rgb) {
        free(rgba);
        set_message(message, message_capacity, "out of memory");
        return MNV3IMG_NO_MEMORY;
    }
    for (i = 0; i < pixels; ++i) {
        rgb[3 * i + 0] = rgba[4 * i + 0];
        rgb[3 * i + 1] = rgba[4 * i + 1];
        rgb[3 * i + 2] = rgba[4 * i + 2];
    }
    free(rgba);
    out->pixels = rgb;
    return MNV3IMG_OK;
}

mnv3img_status mnv3img_encode_png(const uint8_t *pixels, uint32_t width, uint32_t height,
                                  uint32_t channels, uint8_t **out_data, size_t *out_size,
                                  char *message, size_t message_capacity) {
    png_image image;
    png_alloc_size_t size = 0;
    uint8_t *buffer;
    if (!pixels || !out_data || !out_size || (channels != 1 && channels != 2 && channels != 3 && channels != 4) ||
        !size_ok(width, height)) {
        set_message(message, message_capacity, "invalid arguments");
        return MNV3IMG_UNSUPPORTED;
    }
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = channels == 1 ? PNG_FORMAT_GRAY
                 : channels == 2 ? PNG_FORMAT_GA
                 : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL)) {
        set_message(message, message_capacity, image.message);
        return MNV3IMG_CORRUPT;
    }
    buffer = (uint8_t *)malloc(size);
    if (!buffer) return MNV3IMG_NO_MEMORY;
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        set_message(message, message_capacity, image.message);
        free(buffer);
        return MNV3IMG_CORRUPT;
    }
    *out_data = buffer;
    *out_size = size;
    return MNV3IMG_OK;
}

/* ------------------------------------------------------------------------------------ */
/* JPEG                                                                                  */
/* ------------------------------------------------------------------------------------ */

typedef struct jpeg_failure {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    int warnings;
    char first_warning[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    longjmp(f->jump, 1);
}

static void jpeg_note(j_common_ptr cinfo, int level) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    /* A warning: premature end of data, corrupt entropy data, ... Stray bytes between
     * markers are common in files from cameras and harmless, so they are let through. */
    if (level < 0 && cinfo->err->msg_code != JWRN_EXTRANEOUS_DATA) {
        if (f->warnings++ == 0) cinfo->err->format_message(cinfo, f->first_warning);
    }
}

mnv3img_status mnv3img_decode_jpeg(const uint8_t *data, size_t size, mnv3img_image *out,
                                   char *message, size_t message_capacity) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    uint8_t *volatile pixels = NULL;
    size_t row_bytes;
    volatile mnv3img_status status = MNV3IMG_CORRUPT;
    if (!data || !out || size == 0) {
        set_message(message, message_capacity, "no data");
        return MNV3IMG_CORRUPT;
    }
    memset(out, 0, sizeof *out);
    memset(&failure, 0, sizeof failure);
    cinfo.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_fail;
    failure.base.emit_message = jpeg_note;
    if (setjmp(failure.jump)) {
        char text[JMSG_LENGTH_MAX];
        failure.base.format_message((j_common_ptr)&cinfo, text);
        set_message(message, message_capacity, text);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return status;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        set_message(message, message_capacity, "CMYK JPEG images are not supported");
        jpeg_destroy_decompress(&cinfo);
        return MNV3IMG_UNSUPPORTED;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (!size_ok(cinfo.output_width, cinfo.output_height) || cinfo.output_components != 3) {
        set_message(message, message_capacity,
                    cinfo.output_components != 3 ? "unsupported JPEG colour space"
                                                 : "image dimensions are too large");
        status = cinfo.output_components != 3 ? MNV3IMG_UNSUPPORTED : MNV3IMG_TOO_LARGE;
        jpeg_destroy_decompress(&cinfo);
        return status;
    }
    row_bytes = (size_t)cinfo.output_width * 3;
    pixels = (uint8_t *)malloc(row_bytes * cinfo.output_height);
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        set_message(message, message_capacity, "out of memory");
        return MNV3IMG_NO_MEMORY;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + row_bytes * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    out->width = cinfo.output_width;
    out->height = cinfo.output_height;
    out->channels = 3;
    out->source_channels = (uint32_t)cinfo.num_components;
    out->source_bit_depth = 8;
    jpeg_destroy_decompress(&cinfo);
    if (failure.warnings > 0) {
        /* libjpeg pads a truncated or damaged stream with gray and only warns; a
         * classifier must not silently look at that, so it is an error here. */
        set_message(message, message_capacity, failure.first_warning);
        free(pixels);
        memset(out, 0, sizeof *out);
        return MNV3IMG_CORRUPT;
    }
    out->pixels = pixels;
    return MNV3IMG_OK;
}

mnv3img_status mnv3img_encode_jpeg(const uint8_t *pixels, uint32_t width, uint32_t height,
                                   uint32_t channels, int quality, uint8_t **out_data,
                                   size_t *out_size, char *message, size_t message_capacity) {
    struct jpeg_compress_struct cinfo;
    jpeg_failure failure;
    unsigned char *volatile buffer = NULL;
    unsigned long size = 0;
    size_t row_bytes;
    if (!pixels || !out_data || !out_size || (channels != 1 && channels != 3) || !size_ok(width, height)) {
        set_message(message, message_capacity, "invalid arguments");
        return MNV3IMG_UNSUPPORTED;
    }
    memset(&failure, 0, sizeof failure);
    cinfo.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_fail;
    failure.base.emit_message = jpeg_note;
    if (setjmp(failure.jump)) {
        char text[JMSG_LENGTH_MAX];
        failure.base.format_message((j_common_ptr)&cinfo, text);
        set_message(message, message_capacity, text);
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return MNV3IMG_CORRUPT;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, (unsigned char **)&buffer, &size);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = (int)channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    row_bytes = (size_t)width * channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + row_bytes * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out_data = buffer;
    *out_size = (size_t)size;
    return MNV3IMG_OK;
}
