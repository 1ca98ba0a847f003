/**
 * Classified input errors. A `CorruptInputError` means the bytes themselves are bad: retrying cannot help,
 * so activities turn it into a non-retryable failure and the shard is recorded as failed with this reason.
 */
export type CorruptKind =
  | 'gzip'            // the gzip stream is invalid or truncated
  | 'not-warc'        // the input does not start with a WARC/ARC record
  | 'bad-header'      // a record header cannot be parsed (no Content-Length, no blank line)
  | 'truncated'       // the input ends inside a record
  | 'garbage';        // bytes between records that are not a record

export class CorruptInputError extends Error {
  constructor(readonly kind: CorruptKind, message: string, readonly offset?: number) {
    super(`${kind}: ${message}${offset !== undefined ? ` (at decompressed byte ${offset})` : ''}`);
    this.name = 'CorruptInputError';
  }
}

/** Invalid configuration or arguments given by the user. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Longest input-derived string (failure reasons, URLs in errors) that may enter a Temporal payload or a manifest. */
export const MAX_REASON_CHARS = 1_000;

/**
 * A failure reason made safe to carry: control characters and lone surrogates escaped (so a header value full
 * of control bytes stays readable), and at most `max` characters, with how much was cut.
 */
export function capReason(reason: string, max = MAX_REASON_CHARS): string {
  let out = '';
  let i = 0;
  for (; i < reason.length && out.length < max; i++) {
    const c = reason.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < reason.length && (reason.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      out += reason[i] + reason[i + 1];
      i++;
    } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff)) {
      out += c === 0x0a ? '\\n' : c === 0x09 ? '\\t' : `\\u${c.toString(16).padStart(4, '0')}`;
    } else out += reason[i];
  }
  return i < reason.length ? `${out}… (${reason.length - i} more characters)` : out;
}
