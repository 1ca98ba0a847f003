/*
 * Whole gzip members decoded by libdeflate, many per call, in libuv's thread pool: the fast path of
 * curation/gzip-members.ts, as a Node-API addon.
 *
 * A Common Crawl WARC/WAT is a concatenation of small gzip members (one per record). libdeflate decodes a whole
 * member in one call, about twice as fast as zlib's streaming inflate; decode() decodes as many members as its
 * input holds and its output has room for, on a pool thread, so that one call covers about a megabyte. Built by
 * bin/build-native.js with libdeflate's own sources (from its crates.io package) into one addon. The JS side
 * hands zlib everything from where this stops (see the statuses).
 *
 * JS API:
 *   newDecoder() -> decoder                  (an external; freed when collected)
 *   decode(decoder, input, output, callback)  input and output are Uint8Arrays; callback(status, consumed,
 *                                             produced, members) runs on the JS thread when the pool is done.
 *   The decoder, input, output and callback are held (references) until then; a decoder serves one call at a time.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <node_api.h>
#include "libdeflate.h"

/* Why a decode stopped. */
enum {
  STOP_INPUT_END = 0,   /* every input byte was consumed: the input ended on a member boundary */
  STOP_OUTPUT_FULL = 1, /* the next member does not fit in the output space left */
  STOP_UNDECODED = 2,   /* the next member is not decodable from the bytes given (incomplete, or bad data) */
  STOP_NOT_MEMBER = 3,  /* the next byte does not start a plain member (zero padding, a header CRC, anything else) */
};

#define GZIP_FHCRC 0x02

struct decode_call {
  napi_async_work work;
  napi_ref decoder_ref, input_ref, output_ref, callback_ref;
  struct libdeflate_decompressor *decompressor;
  const uint8_t *in;
  size_t in_len;
  uint8_t *out;
  size_t out_cap;
  /* results */
  int status;
  size_t consumed, produced;
  double members;
};

/*
 * Decodes the whole gzip members at the start of in[0, in_len) into out[0, out_cap), one after the other. A member
 * is decoded only when its CRC-32 and length check out (libdeflate verifies both), so every byte produced belongs
 * to a sound member. A member whose header carries a header CRC is left to zlib (STOP_NOT_MEMBER), which checks
 * that CRC; libdeflate skips it.
 */
static void decode_members(struct decode_call *c) {
  const uint8_t *in = c->in;
  size_t in_end = c->in_len, out_end = c->out_cap, in_pos = 0, out_pos = 0;
  double members = 0;
  int status = STOP_INPUT_END;
  while (in_pos < in_end) {
    if (in_end - in_pos < 4 || in[in_pos] != 0x1f || in[in_pos + 1] != 0x8b || (in[in_pos + 3] & GZIP_FHCRC)) {
      /* Too few bytes to tell (they may be the start of a member), or not a plain member. */
      status = (in_end - in_pos < 4 && in[in_pos] == 0x1f && (in_end - in_pos < 2 || in[in_pos + 1] == 0x8b)) ? STOP_UNDECODED : STOP_NOT_MEMBER;
      break;
    }
    size_t used_in = 0, used_out = 0;
    enum libdeflate_result r = libdeflate_gzip_decompress_ex(c->decompressor, in + in_pos, in_end - in_pos, c->out + out_pos,
                                                             out_end - out_pos, &used_in, &used_out);
    if (r == LIBDEFLATE_SUCCESS) {
      in_pos += used_in;
      out_pos += used_out;
      members++;
      continue;
    }
    status = r == LIBDEFLATE_INSUFFICIENT_SPACE ? STOP_OUTPUT_FULL : STOP_UNDECODED;
    break;
  }
  c->status = status;
  c->consumed = in_pos;
  c->produced = out_pos;
  c->members = members;
}

static void execute(napi_env env, void *data) {
  (void)env;
  decode_members((struct decode_call *)data);
}

static void complete(napi_env env, napi_status work_status, void *data) {
  struct decode_call *c = (struct decode_call *)data;
  napi_value callback, global, argv[4];
  napi_get_reference_value(env, c->callback_ref, &callback);
  napi_get_global(env, &global);
  if (work_status == napi_ok) {
    napi_create_int32(env, c->status, &argv[0]);
  } else {
    napi_create_int32(env, -1, &argv[0]); /* cancelled */
  }
  napi_create_double(env, (double)c->consumed, &argv[1]);
  napi_create_double(env, (double)c->produced, &argv[2]);
  napi_create_double(env, c->members, &argv[3]);
  napi_delete_reference(env, c->decoder_ref);
  napi_delete_reference(env, c->input_ref);
  napi_delete_reference(env, c->output_ref);
  napi_delete_reference(env, c->callback_ref);
  napi_delete_async_work(env, c->work);
  free(c);
  napi_call_function(env, global, callback, 4, argv, NULL);
}

static void free_decompressor(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  libdeflate_free_decompressor((struct libdeflate_decompressor *)data);
}

static napi_value new_decoder(napi_env env, napi_callback_info info) {
  (void)info;
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  if (d == NULL) {
    napi_throw_error(env, NULL, "libdeflate_alloc_decompressor failed");
    return NULL;
  }
  napi_value external;
  if (napi_create_external(env, d, free_decompressor, NULL, &external) != napi_ok) {
    libdeflate_free_decompressor(d);
    napi_throw_error(env, NULL, "napi_create_external failed");
    return NULL;
  }
  return external;
}

/* The bytes of a Uint8Array (a Buffer): its data and length, or 0 when it is not one. */
static int bytes_of(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || !is_typed_array) return 0;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  void *p = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &p, &buffer, &offset) != napi_ok || type != napi_uint8_array) return 0;
  *data = (uint8_t *)p;
  return 1;
}

static napi_value decode(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *d = NULL;
  uint8_t *in = NULL, *out = NULL;
  size_t in_len = 0, out_cap = 0;
  napi_valuetype callback_type;
  if (argc < 4 || napi_get_value_external(env, argv[0], &d) != napi_ok || !bytes_of(env, argv[1], &in, &in_len) ||
      !bytes_of(env, argv[2], &out, &out_cap) || napi_typeof(env, argv[3], &callback_type) != napi_ok || callback_type != napi_function) {
    napi_throw_type_error(env, NULL, "decode(decoder, input: Uint8Array, output: Uint8Array, callback)");
    return NULL;
  }
  struct decode_call *c = (struct decode_call *)calloc(1, sizeof *c);
  if (c == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  c->decompressor = (struct libdeflate_decompressor *)d;
  c->in = in;
  c->in_len = in_len;
  c->out = out;
  c->out_cap = out_cap;
  napi_value name;
  napi_create_string_utf8(env, "gzipMembersDecode", NAPI_AUTO_LENGTH, &name);
  /* The decoder, the input, the output and the callback live until complete() has run. */
  napi_create_reference(env, argv[0], 1, &c->decoder_ref);
  napi_create_reference(env, argv[1], 1, &c->input_ref);
  napi_create_reference(env, argv[2], 1, &c->output_ref);
  napi_create_reference(env, argv[3], 1, &c->callback_ref);
  if (napi_create_async_work(env, NULL, name, execute, complete, c, &c->work) != napi_ok || napi_queue_async_work(env, c->work) != napi_ok) {
    napi_delete_reference(env, c->decoder_ref);
    napi_delete_reference(env, c->input_ref);
    napi_delete_reference(env, c->output_ref);
    napi_delete_reference(env, c->callback_ref);
    free(c);
    napi_throw_error(env, NULL, "could not queue the decode");
    return NULL;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "newDecoder", NAPI_AUTO_LENGTH, new_decoder, NULL, &fn);
  napi_set_named_property(env, exports, "newDecoder", fn);
  napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decode", fn);
  return exports;
}
