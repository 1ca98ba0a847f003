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
