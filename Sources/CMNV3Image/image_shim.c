/* PNG (libpng) and JPEG (libjpeg / libjpeg-turbo) decoding, a row at a time, for the Swift
 * image loader. See include/mnv3_image_shim.h. */
#include "mnv3_image_shim.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

#define TEXT_CAPACITY 320

struct mnv3img_decoder {
    mnv3img_info info;
    uint64_t max_pixels;
    uint32_t flags;           /* MNV3IMG_WHOLE_IMAGE */
    uint32_t next_row;
    int failed;               /* a read failed: the library state is gone */
    jmp_buf jump;             /* where library errors (and aborting warnings) return to */
    mnv3img_status jump_status;
    char text[TEXT_CAPACITY]; /* the reason, set by the hooks before jumping */
    /* PNG */
    png_structp png;
    png_infop png_info;
    const uint8_t *data;
    size_t size, pos;
    int passes;
    int out_of_memory;
    uint8_t *whole;           /* an interlaced PNG read in pieces, held whole */
    /* JPEG */
    int jpeg_created;
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
};

static void set_message(char *message, size_t capacity, const char *text) {
    size_t n;
    if (!message || capacity == 0) return;
    n = strlen(text);
    if (n >= capacity) n = capacity - 1;
    memcpy(message, text, n);
    message[n] = '\0';
}

static void set_text(mnv3img_decoder *d, const char *text) {
    set_message(d->text, sizeof d->text, text);
}

/* Checks the claimed size; on failure writes the reason to d->text. */
static mnv3img_status check_size(mnv3img_decoder *d, uint32_t width, uint32_t height) {
    uint64_t pixels = (uint64_t)width * height;
    d->info.width = width;
    d->info.height = height;
    if (width > MNV3IMG_MAX_DIMENSION || height > MNV3IMG_MAX_DIMENSION) {
        snprintf(d->text, sizeof d->text, "%ux%u: a side is longer than %u pixels", width,
                 height, MNV3IMG_MAX_DIMENSION);
        return MNV3IMG_TOO_LARGE;
    }
    if (pixels > d->max_pixels) {
        snprintf(d->text, sizeof d->text, "%ux%u is %llu pixels, more than the limit of %llu",
                 width, height, (unsigned long long)pixels, (unsigned long long)d->max_pixels);
        return MNV3IMG_TOO_LARGE;
    }
    return MNV3IMG_OK;
}

/* ------------------------------------------------------------------------------------ */
/* PNG                                                                                   */
/* ------------------------------------------------------------------------------------ */

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; ++i) {
        crc ^= p[i];
        for (k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void png_fail(png_structp png, png_const_charp text) {
    mnv3img_decoder *d = (mnv3img_decoder *)png_get_error_ptr(png);
    set_text(d, text);
    d->jump_status = d->out_of_memory ? MNV3IMG_NO_MEMORY : MNV3IMG_CORRUPT;
    longjmp(d->jump, 1);
}

/* Warnings (a bad CRC in an ancillary chunk, a benign error) are tolerated like other
 * decoders do; errors in the image data fail. */
static void png_warn(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static png_voidp png_allocate(png_structp png, png_alloc_size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) ((mnv3img_decoder *)png_get_mem_ptr(png))->out_of_memory = 1;
    return p;
}

static void png_release(png_structp png, png_voidp p) {
    (void)png;
    free(p);
}

static void png_read_memory(png_structp png, png_bytep out, size_t n) {
    mnv3img_decoder *d = (mnv3img_decoder *)png_get_io_ptr(png);
    if (n > d->size - d->pos) png_error(png, "the PNG data ends early");
    memcpy(out, d->data + d->pos, n);
    d->pos += n;
}

/* Chunks read besides IHDR, PLTE, tRNS, IDAT and IEND: those that change the pixels. The
 * others (text, time, ...) are skipped unread. */
static const png_byte png_chunks_used[] = {
    'b', 'K', 'G', 'D', '\0', 'c', 'H', 'R', 'M', '\0', 'g', 'A', 'M', 'A', '\0',
    'i', 'C', 'C', 'P', '\0', 's', 'B', 'I', 'T', '\0', 's', 'R', 'G', 'B', '\0',
};

/* The claimed size, from IHDR (always the first chunk), before libpng allocates anything.
 * The chunk's CRC is checked first, so that a damaged header is reported as corrupt, not
 * as too large. Anything unusual is left to libpng. */
static mnv3img_status png_precheck(mnv3img_decoder *d) {
    const uint8_t *p = d->data;
    uint32_t width, height;
    if (d->size < 33 || be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0) return MNV3IMG_OK;
    if (crc32_of(p + 12, 17) != be32(p + 29)) return MNV3IMG_OK;
    width = be32(p + 16);
    height = be32(p + 20);
    if (width == 0 || height == 0 || width > PNG_UINT_31_MAX || height > PNG_UINT_31_MAX)
        return MNV3IMG_OK;
    return check_size(d, width, height);
}

static mnv3img_status png_begin(mnv3img_decoder *d) {
    png_uint_32 width, height;
    int bit_depth, color_type, interlace, has_alpha;
    mnv3img_status status = png_precheck(d);
    if (status != MNV3IMG_OK) return status;
    d->png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, d, png_fail, png_warn, d,
                                      png_allocate, png_release);
    if (d->png) d->png_info = png_create_info_struct(d->png);
    if (!d->png || !d->png_info) {
        set_text(d, "out of memory");
        return MNV3IMG_NO_MEMORY;
    }
    png_set_read_fn(d->png, d, png_read_memory);
    png_set_user_limits(d->png, MNV3IMG_MAX_DIMENSION, MNV3IMG_MAX_DIMENSION);
    png_set_chunk_cache_max(d->png, 1000);
    png_set_chunk_malloc_max(d->png, 8u << 20);
    png_set_benign_errors(d->png, 1);
    png_set_keep_unknown_chunks(d->png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_keep_unknown_chunks(d->png, PNG_HANDLE_CHUNK_AS_DEFAULT, png_chunks_used,
                                (int)(sizeof png_chunks_used / 5));
    png_read_info(d->png, d->png_info);
    png_get_IHDR(d->png, d->png_info, &width, &height, &bit_depth, &color_type, &interlace,
                 NULL, NULL);
    status = check_size(d, width, height);
    if (status != MNV3IMG_OK) return status;
    has_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 ||
                png_get_valid(d->png, d->png_info, PNG_INFO_tRNS) != 0;
    d->info.source_channels = ((color_type & PNG_COLOR_MASK_COLOR) ? 3u : 1u) + (has_alpha ? 1u : 0u);
    d->info.source_bit_depth = bit_depth == 16 ? 16 : 8;
    d->info.interlaced = interlace != PNG_INTERLACE_NONE;

    /* The transformations libpng's simplified API sets up for 8-bit sRGB output, with alpha
     * stripped instead of composited. 16-bit samples without colour-space information are
     * taken as sRGB-encoded (its PNG_IMAGE_FLAG_16BIT_sRGB), so the reduction to 8 bits is a
     * plain rescale and does not change the brightness. */
    png_set_expand(d->png);
    if (!(color_type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(d->png);
    png_set_alpha_mode_fixed(d->png, PNG_ALPHA_PNG, PNG_DEFAULT_sRGB);
    if (bit_depth == 16) png_set_scale_16(d->png);
    if (has_alpha) png_set_strip_alpha(d->png);
    png_set_alpha_mode_fixed(d->png, PNG_ALPHA_PNG, PNG_DEFAULT_sRGB);
    d->passes = png_set_interlace_handling(d->png);
    png_read_update_info(d->png, d->png_info);
    if (png_get_bit_depth(d->png, d->png_info) != 8 || png_get_channels(d->png, d->png_info) != 3 ||
        png_get_rowbytes(d->png, d->png_info) != (size_t)width * 3) {
        set_text(d, "unexpected PNG transformation result");
        return MNV3IMG_UNSUPPORTED;
    }
    return MNV3IMG_OK;
}

/* Called with d->jump set. */
static mnv3img_status png_rows(mnv3img_decoder *d, uint8_t *rows, size_t stride,
                               uint32_t count) {
    uint32_t i, y;
    int pass;
    size_t row_bytes = (size_t)d->info.width * 3;
    if (d->passes <= 1) {
        for (i = 0; i < count; ++i) png_read_row(d->png, rows + stride * i, NULL);
        return MNV3IMG_OK;
    }
    /* Interlaced: no row is final before the last pass. Asked for the whole image, the
     * passes go straight into the caller's rows; read in pieces, the image is held here. */
    if (d->next_row == 0 && count == d->info.height && !d->whole) {
        for (pass = 0; pass < d->passes; ++pass)
            for (y = 0; y < d->info.height; ++y) png_read_row(d->png, rows + stride * y, NULL);
        return MNV3IMG_OK;
    }
    if (!d->whole) {
        d->whole = (uint8_t *)malloc(row_bytes * d->info.height);
        if (!d->whole) {
            set_text(d, "out of memory");
            return MNV3IMG_NO_MEMORY;
        }
        for (pass = 0; pass < d->passes; ++pass)
            for (y = 0; y < d->info.height; ++y)
                png_read_row(d->png, d->whole + row_bytes * y, NULL);
    }
    for (i = 0; i < count; ++i)
        memcpy(rows + stride * i, d->whole + row_bytes * (d->next_row + i), row_bytes);
    return MNV3IMG_OK;
}

/* ------------------------------------------------------------------------------------ */
/* JPEG                                                                                  */
/* ------------------------------------------------------------------------------------ */

static void jpeg_fail(j_common_ptr cinfo) {
    mnv3img_decoder *d = (mnv3img_decoder *)cinfo->client_data;
    char text[JMSG_LENGTH_MAX];
    int code = cinfo->err->msg_code;
    cinfo->err->format_message(cinfo, text);
    set_text(d, text);
    if (code == JERR_NO_BACKING_STORE) {
        set_text(d, "the JPEG decoder needs more working memory than the pixel limit allows");
        d->jump_status = MNV3IMG_NO_MEMORY;
    } else if (code == JERR_OUT_OF_MEMORY) {
        d->jump_status = MNV3IMG_NO_MEMORY;
    } else if (code == JERR_IMAGE_TOO_BIG) {
        d->info.width = ((j_decompress_ptr)cinfo)->image_width;
        d->info.height = ((j_decompress_ptr)cinfo)->image_height;
        d->jump_status = MNV3IMG_TOO_LARGE;
    } else if (code == JERR_BAD_PRECISION || code == JERR_CONVERSION_NOTIMPL ||
               code == JERR_NOT_COMPILED) {
        d->jump_status = MNV3IMG_UNSUPPORTED;
    } else {
        d->jump_status = MNV3IMG_CORRUPT;
    }
    longjmp(d->jump, 1);
}

/* A warning means corrupt or missing data (libjpeg would fill it in with gray and go on):
 * decoding stops at once, so a damaged file costs no more than the data it has. Stray
 * bytes between markers are common in files from cameras and harmless, so they are let
 * through. */
static void jpeg_note(j_common_ptr cinfo, int level) {
    mnv3img_decoder *d = (mnv3img_decoder *)cinfo->client_data;
    char text[JMSG_LENGTH_MAX];
    if (level >= 0 || cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
    cinfo->err->format_message(cinfo, text);
    set_text(d, text);
    d->jump_status = MNV3IMG_CORRUPT;
    longjmp(d->jump, 1);
}

static void jpeg_progress(j_common_ptr cinfo) {
    mnv3img_decoder *d = (mnv3img_decoder *)cinfo->client_data;
    if (((j_decompress_ptr)cinfo)->input_scan_number > MNV3IMG_MAX_JPEG_SCANS) {
        snprintf(d->text, sizeof d->text, "more than %d scans in a progressive JPEG",
                 MNV3IMG_MAX_JPEG_SCANS);
        d->jump_status = MNV3IMG_CORRUPT;
        longjmp(d->jump, 1);
    }
}

/* What the whole-image coefficient buffers of a multi-scan JPEG may take. Read a row at a
 * time: 3 bytes per pixel of the limit, enough for a gray or 4:2:0 colour image of the full
 * limit, plus the same for the pixels that pad this image to whole MCUs. Read whole
 * (MNV3IMG_WHOLE_IMAGE), the caller's image, 3 bytes per pixel, is held beside them: the
 * two together may take MNV3IMG_WHOLE_BYTES_PER_PIXEL bytes per pixel of the limit (so the
 * coefficients get what the image leaves, and never more than the row-at-a-time budget). */
static uint64_t coefficient_budget(const mnv3img_decoder *d,
                                   const struct jpeg_decompress_struct *cinfo) {
    uint64_t mw = 8u * (uint64_t)cinfo->max_h_samp_factor, mh = 8u * (uint64_t)cinfo->max_v_samp_factor;
    uint64_t w = cinfo->image_width, h = cinfo->image_height;
    uint64_t padding = (w + mw - 1) / mw * mw * ((h + mh - 1) / mh * mh) - w * h;
    uint64_t rows = (d->max_pixels + padding) * 3u, total, image;
    if (!(d->flags & MNV3IMG_WHOLE_IMAGE)) return rows;
    total = d->max_pixels * MNV3IMG_WHOLE_BYTES_PER_PIXEL;
    image = w * h * 3u;
    if (image >= total) return 0;
    return total - image < rows ? total - image : rows;
}

/* The bytes libjpeg allocates for the coefficients of a multi-scan (progressive) image:
 * each component's blocks, rounded up to whole MCUs, 64 coefficients of 2 bytes each. */
static uint64_t coefficient_bytes(const struct jpeg_decompress_struct *cinfo) {
    uint64_t total = 0;
    int ci;
    for (ci = 0; ci < cinfo->num_components; ++ci) {
        const jpeg_component_info *c = &cinfo->comp_info[ci];
        uint64_t h = (uint64_t)c->h_samp_factor, v = (uint64_t)c->v_samp_factor;
        uint64_t wide = (c->width_in_blocks + h - 1) / h * h;
        uint64_t high = (c->height_in_blocks + v - 1) / v * v;
        total += wide * high * DCTSIZE2 * sizeof(JCOEF);
    }
    return total;
}

static mnv3img_status jpeg_begin(mnv3img_decoder *d) {
    struct jpeg_decompress_struct *cinfo = &d->cinfo;
    uint64_t budget;
    mnv3img_status status;
    cinfo->err = jpeg_std_error(&d->jerr);
    d->jerr.error_exit = jpeg_fail;
    d->jerr.emit_message = jpeg_note;
    cinfo->client_data = d;
    d->jpeg_created = 1;
    jpeg_create_decompress(cinfo);
    d->progress.progress_monitor = jpeg_progress;
    cinfo->progress = &d->progress;
    jpeg_mem_src(cinfo, (const unsigned char *)d->data, (unsigned long)d->size);
    jpeg_read_header(cinfo, TRUE);
    /* A bound on libjpeg's working memory: the coefficient budget and room for row
     * buffers. libjpeg refuses to go beyond it (it has no backing store) instead of
     * allocating; the coefficients are also checked below, with a clearer message. */
    budget = coefficient_budget(d, cinfo) + (16u << 20);
    cinfo->mem->max_memory_to_use = budget > (uint64_t)LONG_MAX ? LONG_MAX : (long)budget;
    d->info.source_channels = cinfo->num_components == 1 ? 1u : 3u;
    d->info.source_bit_depth = 8;
    d->info.interlaced = jpeg_has_multiple_scans(cinfo) ? 1u : 0u;
    status = check_size(d, cinfo->image_width, cinfo->image_height);
    if (status != MNV3IMG_OK) return status;
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
        set_text(d, "CMYK JPEG images are not supported");
        return MNV3IMG_UNSUPPORTED;
    }
    if (d->info.interlaced && coefficient_bytes(cinfo) > coefficient_budget(d, cinfo)) {
        const unsigned long long mib = 1u << 20;
        const unsigned long long coefficients = (coefficient_bytes(cinfo) + mib - 1) / mib;
        if (d->flags & MNV3IMG_WHOLE_IMAGE)
            snprintf(d->text, sizeof d->text,
                     "a progressive JPEG of %ux%u decoded whole needs %llu MiB for its "
                     "coefficients beside %llu MiB for its pixels; the pixel limit of %llu "
                     "allows %llu MiB for both (%u bytes per pixel): decode it row by row "
                     "while resizing it, or raise the limit",
                     cinfo->image_width, cinfo->image_height, coefficients,
                     ((unsigned long long)cinfo->image_width * cinfo->image_height * 3u + mib - 1) /
                         mib,
                     (unsigned long long)d->max_pixels,
                     (unsigned long long)(d->max_pixels * MNV3IMG_WHOLE_BYTES_PER_PIXEL / mib),
                     MNV3IMG_WHOLE_BYTES_PER_PIXEL);
        else
            snprintf(d->text, sizeof d->text,
                     "a progressive JPEG of %ux%u needs %llu MiB for its coefficients; the pixel "
                     "limit of %llu allows %llu MiB (3 bytes per pixel)",
                     cinfo->image_width, cinfo->image_height, coefficients,
                     (unsigned long long)d->max_pixels,
                     (unsigned long long)(coefficient_budget(d, cinfo) / mib));
        return MNV3IMG_TOO_LARGE;
    }
    cinfo->out_color_space = JCS_RGB;
    /* A progressive file is read whole here, into the coefficient buffers. */
    jpeg_start_decompress(cinfo);
    if (cinfo->output_components != 3 || cinfo->output_width != cinfo->image_width ||
        cinfo->output_height != cinfo->image_height) {
        set_text(d, "unsupported JPEG colour space");
        return MNV3IMG_UNSUPPORTED;
    }
    return MNV3IMG_OK;
}

/* Called with d->jump set. */
static mnv3img_status jpeg_rows(mnv3img_decoder *d, uint8_t *rows, size_t stride,
                                uint32_t count) {
    uint32_t i;
    for (i = 0; i < count; ++i) {
        JSAMPROW row = rows + stride * i;
        if (jpeg_read_scanlines(&d->cinfo, &row, 1) != 1) {
            set_text(d, "the JPEG decoder returned no row");
            return MNV3IMG_CORRUPT;
        }
    }
    /* The end of the data: a file cut short after the last row is still noticed. */
    if (d->cinfo.output_scanline >= d->cinfo.output_height) jpeg_finish_decompress(&d->cinfo);
    return MNV3IMG_OK;
}

/* ------------------------------------------------------------------------------------ */
/* The decoder                                                                           */
/* ------------------------------------------------------------------------------------ */

mnv3img_status mnv3img_open(const uint8_t *data, size_t size, uint64_t max_pixels,
                            uint32_t flags, mnv3img_decoder **decoder, mnv3img_info *info,
                            char *message, size_t message_capacity) {
    mnv3img_decoder *d;
    mnv3img_status status;
    uint32_t format;
    if (info) memset(info, 0, sizeof *info);
    if (!decoder) {
        set_message(message, message_capacity, "invalid arguments");
        return MNV3IMG_UNSUPPORTED;
    }
    *decoder = NULL;
    if (!data || size == 0) {
        set_message(message, message_capacity, "no data");
        return MNV3IMG_CORRUPT;
    }
    if (size >= 8 && memcmp(data, png_signature, 8) == 0)
        format = MNV3IMG_FORMAT_PNG;
    else if (size >= 2 && data[0] == 0xFF && data[1] == 0xD8)
        format = MNV3IMG_FORMAT_JPEG;
    else {
        set_message(message, message_capacity, "not a PNG or JPEG image");
        return MNV3IMG_UNSUPPORTED;
    }
    d = (mnv3img_decoder *)calloc(1, sizeof *d);
    if (!d) {
        set_message(message, message_capacity, "out of memory");
        return MNV3IMG_NO_MEMORY;
    }
    d->info.format = format;
    d->flags = flags;
    d->data = data;
    d->size = size;
    /* No image can have more pixels than the longest sides allow (this also keeps the
     * arithmetic on the limit from overflowing). */
    d->max_pixels = max_pixels ? max_pixels : MNV3IMG_DEFAULT_MAX_PIXELS;
    if (d->max_pixels > (uint64_t)MNV3IMG_MAX_DIMENSION * MNV3IMG_MAX_DIMENSION)
        d->max_pixels = (uint64_t)MNV3IMG_MAX_DIMENSION * MNV3IMG_MAX_DIMENSION;
    if (setjmp(d->jump)) {
        status = d->jump_status;
    } else {
        status = d->info.format == MNV3IMG_FORMAT_PNG ? png_begin(d) : jpeg_begin(d);
    }
    if (info) *info = d->info;
    if (status != MNV3IMG_OK) {
        set_message(message, message_capacity, d->text[0] ? d->text : "cannot decode the image");
        mnv3img_close(d);
        return status;
    }
    *decoder = d;
    return MNV3IMG_OK;
}

mnv3img_status mnv3img_read_rows(mnv3img_decoder *d, uint8_t *rows, size_t stride,
                                 uint32_t count, char *message, size_t message_capacity) {
    mnv3img_status status;
    if (!d || (!rows && count > 0) || stride < (size_t)d->info.width * 3 ||
        count > d->info.height - d->next_row) {
        set_message(message, message_capacity, "invalid arguments");
        return MNV3IMG_UNSUPPORTED;
    }
    if (d->failed) {
        set_message(message, message_capacity, "the decoder has already failed");
        return MNV3IMG_CORRUPT;
    }
    if (count == 0) return MNV3IMG_OK;
    if (setjmp(d->jump)) {
        status = d->jump_status;
    } else {
        status = d->info.format == MNV3IMG_FORMAT_PNG ? png_rows(d, rows, stride, count)
                                                       : jpeg_rows(d, rows, stride, count);
    }
    if (status != MNV3IMG_OK) {
        d->failed = 1;
        set_message(message, message_capacity, d->text[0] ? d->text : "cannot decode the image");
        return status;
    }
    d->next_row += count;
    return MNV3IMG_OK;
}

void mnv3img_close(mnv3img_decoder *d) {
    if (!d) return;
    if (d->png) png_destroy_read_struct(&d->png, d->png_info ? &d->png_info : NULL, NULL);
    if (d->jpeg_created) jpeg_destroy_decompress(&d->cinfo);
    free(d->whole);
    free(d);
}

void mnv3img_free_bytes(uint8_t *data) { free(data); }

/* ------------------------------------------------------------------------------------ */
/* Encoders                                                                              */
/* ------------------------------------------------------------------------------------ */

static int encode_size_ok(uint32_t width, uint32_t height) {
    return width > 0 && height > 0 && width <= MNV3IMG_MAX_DIMENSION &&
           height <= MNV3IMG_MAX_DIMENSION && (uint64_t)width * height <= (1u << 28);
}

mnv3img_status mnv3img_encode_png(const uint8_t *pixels, uint32_t width, uint32_t height,
                                  uint32_t channels, uint8_t **out_data, size_t *out_size,
                                  char *message, size_t message_capacity) {
    png_image image;
    png_alloc_size_t size = 0;
    uint8_t *buffer;
    if (!pixels || !out_data || !out_size || (channels != 1 && channels != 2 && channels != 3 && channels != 4) ||
        !encode_size_ok(width, height)) {
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
    if (!buffer) {
        set_message(message, message_capacity, "out of memory");
        return MNV3IMG_NO_MEMORY;
    }
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        set_message(message, message_capacity, image.message);
        free(buffer);
        return MNV3IMG_CORRUPT;
    }
    *out_data = buffer;
    *out_size = size;
    return MNV3IMG_OK;
}

typedef struct encode_failure {
    struct jpeg_error_mgr base;
    jmp_buf jump;
} encode_failure;

static void encode_fail(j_common_ptr cinfo) { longjmp(((encode_failure *)cinfo->err)->jump, 1); }

static void encode_note(j_common_ptr cinfo, int level) {
    (void)cinfo;
    (void)level;
}

mnv3img_status mnv3img_encode_jpeg(const uint8_t *pixels, uint32_t width, uint32_t height,
                                   uint32_t channels, int quality, int progressive,
                                   uint8_t **out_data, size_t *out_size, char *message,
                                   size_t message_capacity) {
    struct jpeg_compress_struct cinfo;
    encode_failure failure;
    unsigned char *volatile buffer = NULL;
    unsigned long size = 0;
    size_t row_bytes;
    if (!pixels || !out_data || !out_size || (channels != 1 && channels != 3) ||
        !encode_size_ok(width, height)) {
        set_message(message, message_capacity, "invalid arguments");
        return MNV3IMG_UNSUPPORTED;
    }
    memset(&failure, 0, sizeof failure);
    cinfo.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = encode_fail;
    failure.base.emit_message = encode_note;
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
    if (progressive) jpeg_simple_progression(&cinfo);
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
