/* Decoding of PNG and JPEG images to 8-bit RGB rows, for the Swift image loader.
 * libpng and libjpeg report errors by longjmp, which Swift code cannot catch; these
 * functions contain that and turn every failure into a return code plus a message.
 *
 * Decoding is bounded: the dimensions a file claims are checked against a pixel limit
 * before anything is allocated for the image, a JPEG stops at the first sign of corrupt or
 * missing data, and the decoder hands out rows, so a caller can keep one output buffer or,
 * when it only needs a resized copy, just a few rows. Memory, beyond the caller's buffers:
 *   - PNG: a few rows (each at most 8 bytes per pixel); an interlaced PNG read in pieces
 *     (fewer rows at a time than the whole image) is held whole, 3 bytes per pixel;
 *   - baseline JPEG: a few rows;
 *   - progressive (multi-scan) JPEG: the coefficients of the whole image, 2 bytes per
 *     pixel for gray, 3 for 4:2:0 colour, 6 for 4:4:4. Read a row at a time they may take
 *     at most 3 bytes per pixel of the limit (any gray or 4:2:0 image within it; 4:4:4 up
 *     to half of it); read whole (MNV3IMG_WHOLE_IMAGE) they and the caller's image (3 bytes
 *     per pixel) together at most MNV3IMG_WHOLE_BYTES_PER_PIXEL bytes per pixel of the
 *     limit, 64 MiB at the default limit. Past that the image is refused as too large;
 *     libjpeg's working memory is capped there (plus 16 MiB).
 * So image data never takes more than 4 bytes per pixel of the limit, whole or not. */
#ifndef MNV3_IMAGE_SHIM_H
#define MNV3_IMAGE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mnv3img_status {
    MNV3IMG_OK = 0,
    MNV3IMG_CORRUPT = 1,      /* not decodable: truncated, corrupt or malformed data */
    MNV3IMG_UNSUPPORTED = 2,  /* valid file of a kind this decoder does not handle */
    MNV3IMG_TOO_LARGE = 3,    /* more pixels than the limit, a side over MNV3IMG_MAX_DIMENSION,
                               * or progressive JPEG coefficients over what the limit allows */
    MNV3IMG_NO_MEMORY = 4     /* an allocation failed, or libjpeg's working memory would pass
                               * the cap the pixel limit sets */
} mnv3img_status;

/* The longest side any image may have (the preprocessing accepts no more). */
#define MNV3IMG_MAX_DIMENSION 65535u
/* The default pixel limit, used when 0 is passed: 16 Mi pixels (for example 4096 x 4096 or
 * 4896 x 3264), 48 MiB as 8-bit RGB. */
#define MNV3IMG_DEFAULT_MAX_PIXELS (1u << 24)
/* What decoding an image whole may hold, per pixel of the limit: the caller's 8-bit RGB
 * image (3 bytes per pixel of the image) and a progressive JPEG's coefficients together;
 * 64 MiB at the default limit. */
#define MNV3IMG_WHOLE_BYTES_PER_PIXEL 4u
/* mnv3img_open flags: the caller will read every row into one buffer and hold it (3 bytes
 * per pixel), which then counts against the memory a progressive JPEG may take. */
#define MNV3IMG_WHOLE_IMAGE 1u
/* A progressive JPEG with more scans than this is refused as corrupt: every scan passes
 * over the whole image, so a small file with thousands of scans would take minutes.
 * Encoders write about ten. */
#define MNV3IMG_MAX_JPEG_SCANS 100

typedef enum mnv3img_format { MNV3IMG_FORMAT_PNG = 1, MNV3IMG_FORMAT_JPEG = 2 } mnv3img_format;

/* What the file's header says. */
typedef struct mnv3img_info {
    uint32_t format;           /* mnv3img_format */
    uint32_t width, height;    /* as claimed; also set when the result is MNV3IMG_TOO_LARGE */
    uint32_t source_channels;  /* channels in the file: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    uint32_t source_bit_depth; /* 8 or 16 for PNG, 8 for JPEG */
    uint32_t interlaced;       /* Adam7 PNG or multi-scan (progressive) JPEG */
} mnv3img_info;

typedef struct mnv3img_decoder mnv3img_decoder;

/* Starts decoding a PNG or JPEG image (told apart by its signature) held in memory, which
 * must stay valid until mnv3img_close(). Reads the header and checks the claimed size
 * against max_pixels (0 means MNV3IMG_DEFAULT_MAX_PIXELS) and MNV3IMG_MAX_DIMENSION; for a
 * progressive JPEG it also checks the coefficients' memory (which depends on `flags`: 0, or
 * MNV3IMG_WHOLE_IMAGE when every row goes into one buffer the caller holds) and reads all
 * scans. On success *decoder is set and the image is
 * ready to be read a row at a time. `info` is filled as far as the header was read.
 * `message` receives a short reason on failure (may be NULL). */
mnv3img_status mnv3img_open(const uint8_t *data, size_t size, uint64_t max_pixels,
                            uint32_t flags, mnv3img_decoder **decoder, mnv3img_info *info,
                            char *message, size_t message_capacity);

/* Decodes the next `count` rows as 8-bit RGB (width * 3 bytes each; gray replicated, alpha
 * dropped, not composited, 16-bit samples reduced, palettes expanded) into rows `stride`
 * bytes apart starting at `rows`. Reading the last row also checks the end of the data. A
 * failure leaves the decoder unusable (close it). */
mnv3img_status mnv3img_read_rows(mnv3img_decoder *decoder, uint8_t *rows, size_t stride,
                                 uint32_t count, char *message, size_t message_capacity);

void mnv3img_close(mnv3img_decoder *decoder);

/* Encoders, used by tests and tools to produce sample files. `channels` is 1 or 3 (or 2
 * and 4 for PNG). On success *out_data is malloc'ed (release with mnv3img_free_bytes). */
mnv3img_status mnv3img_encode_png(const uint8_t *pixels, uint32_t width, uint32_t height,
                                  uint32_t channels, uint8_t **out_data, size_t *out_size,
                                  char *message, size_t message_capacity);
mnv3img_status mnv3img_encode_jpeg(const uint8_t *pixels, uint32_t width, uint32_t height,
                                   uint32_t channels, int quality, int progressive,
                                   uint8_t **out_data, size_t *out_size, char *message,
                                   size_t message_capacity);

void mnv3img_free_bytes(uint8_t *data);

#ifdef __cplusplus
}
#endif
#endif
