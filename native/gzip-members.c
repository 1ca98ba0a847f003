/*
 * Whole gzip members decoded by libdeflate, many per call: the fast path of curation/gzip-members.ts.
 *
 * A Common Crawl WARC/WAT is a concatenation of small gzip members (one per record). libdeflate decodes a whole
 * member in one call, about twice as fast as zlib's streaming inflate; this loop decodes as many members as the
 * input holds and the output has room for, so that one call into the thread pool covers about a megabyte.
 * Built by bin/build-native.js with libdeflate's own sources (from its crates.io package) into one shared
 * library, loaded through koffi. The JS side falls back to zlib wherever this stops (see the statuses).
 */
#include <stddef.h>
#include <stdint.h>
#include "libdeflate.h"

/* Why decode_members stopped. */
enum {
  STOP_INPUT_END = 0,   /* every input byte was consumed: the input ended on a member boundary */
  STOP_OUTPUT_FULL = 1, /* the next member does not fit in the output space left */
  STOP_UNDECODED = 2,   /* the next member is not decodable from the bytes given (incomplete, or bad data) */
  STOP_NOT_MEMBER = 3,  /* the next byte does not start a plain member (zero padding, a header CRC, anything else) */
};

#define GZIP_FHCRC 0x02
#define EXPORT __attribute__((visibility("default")))

EXPORT struct libdeflate_decompressor *gzip_members_new(void) { return libdeflate_alloc_decompressor(); }

EXPORT void gzip_members_free(struct libdeflate_decompressor *d) { libdeflate_free_decompressor(d); }

/*
 * Decodes the whole gzip members at the start of in[0, in_len) into out[0, out_cap), one after the other, and
 * writes [status, input bytes consumed, output bytes produced, members] to result. A member is decoded only when
 * its CRC-32 and length check out (libdeflate verifies both), so every byte produced belongs to a sound member.
 * A member whose header carries a header CRC is left to zlib (STOP_NOT_MEMBER), which checks that CRC;
 * libdeflate skips it.
 */
EXPORT void gzip_members_decode(struct libdeflate_decompressor *d, const uint8_t *in, double in_len, uint8_t *out, double out_cap,
                         double *result) {
  size_t in_end = (size_t)in_len, out_end = (size_t)out_cap;
  size_t in_pos = 0, out_pos = 0;
  double members = 0;
  int status = STOP_INPUT_END;
  while (in_pos < in_end) {
    if (in_end - in_pos < 4 || in[in_pos] != 0x1f || in[in_pos + 1] != 0x8b || (in[in_pos + 3] & GZIP_FHCRC)) {
      /* Too few bytes to tell, or not a plain member. */
      status = (in_end - in_pos < 4 && in[in_pos] == 0x1f) ? STOP_UNDECODED : STOP_NOT_MEMBER;
      break;
    }
    size_t used_in = 0, used_out = 0;
    enum libdeflate_result r = libdeflate_gzip_decompress_ex(d, in + in_pos, in_end - in_pos, out + out_pos, out_end - out_pos,
                                                             &used_in, &used_out);
    if (r == LIBDEFLATE_SUCCESS) {
      in_pos += used_in;
      out_pos += used_out;
      members++;
      continue;
    }
    status = r == LIBDEFLATE_INSUFFICIENT_SPACE ? STOP_OUTPUT_FULL : STOP_UNDECODED;
    break;
  }
  result[0] = status;
  result[1] = (double)in_pos;
  result[2] = (double)out_pos;
  result[3] = members;
}
