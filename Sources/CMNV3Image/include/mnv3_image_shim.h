/* Decoding of PNG and JPEG images to 8-bit interleaved pixels, for the Swift image loader.
 * libpng and libjpeg report errors by longjmp, which Swift code cannot catch; these
 * functions contain that and turn every failure into a return code plus a message. */
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
    MNV3IMG_TOO_LARGE = 3,    /* dimensions beyond MNV3IMG_MAX_DIMENSION / MNV3IMG_MAX_PIXELS */
    MNV3IMG_NO_MEMORY = 4
} mnv3img_status;

#define MNV3IMG_MAX_DIMENSION 65535u
#define MNV3IMG_MAX_PIXELS (1u << 28)

/* A decoded image: height x width pixels of `channels` bytes, rows tightly packed. */
typedef struct mnv3img_image {
    uint8_t *pixels;     /* malloc'ed; release with mnv3img_free() */
    uint32_t width, height;
    uint32_t channels;   /* always 3 (RGB) from these decoders */
    uint32_t source_channels;  /* channels in the file: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    uint32_t source_bit_depth; /* 8 or 16 for PNG, 8 for JPEG */
} mnv3img_image;

/* Decodes a PNG image to 8-bit RGB. Alpha is dropped (not composited), gray is replicated,
 * 16-bit samples are reduced to 8 bits, palettes are expanded. `message` receives a short
 * reason on failure (may be NULL). */
mnv3img_status mnv3img_decode_png(const uint8_t *data, size_t size, mnv3img_image *out,
                                  char *message, size_t message_capacity);

/* Decodes a baseline or progressive JPEG (gray, YCbCr or RGB) to 8-bit RGB. A file that
 * ends early or has corrupt entropy data is an error, not a partly gray image. */
mnv3img_status mnv3img_decode_jpeg(const uint8_t *data, size_t size, mnv3img_image *out,
                                   char *message, size_t message_capacity);

/* Encoders, used by tests and tools to produce sample files. `channels` is 1 or 3 (or 2
 * and 4 for PNG). On success *out_data is malloc'ed (release with mnv3img_free_bytes). */
mnv3img_status mnv3img_encode_png(const uint8_t *pixels, uint32_t width, uint32_t height,
                                  uint32_t channels, uint8_t **out_data, size_t *out_size,
                                  char *message, size_t message_capacity);
mnv3img_status mnv3img_encode_jpeg(const uint8_t *pixels, uint32_t width, uint32_t height,
                                   uint32_t channels, int quality, uint8_t **out_data,
                                   size_t *out_size, char *message, size_t message_capacity);

void mnv3img_free(mnv3img_image *image);
void mnv3img_free_bytes(uint8_t *data);

#ifdef __cplusplus
}
#endif
#endif
