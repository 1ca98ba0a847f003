/** Buffered writes to stdout that respect backpressure and end quietly when the reader goes away (EPIPE). */
export class LineWriter {
  private buf: string[] = [];
  private size = 0;
  private closed = false;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.closed = true;
      else throw err;
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async line(s: string): Promise<void> {
    this.buf.push(s);
    this.size += s.length + 1;
    if (this.size >= 1 << 16) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0 || this.closed) return;
    const chunk = this.buf.join('\n') + '\n';
    this.buf = [];
    this.size = 0;
    if (!this.out.write(chunk)) await new Promise<void>((resolve) => this.out.once('drain', resolve));
  }
}
