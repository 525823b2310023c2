/** Why an image decoder (io/image-png.ts, io/jpeg/) refused a file; io/image.ts turns it into a SketchError. */
export type DecodeErrorKind = 'corrupt' | 'truncated' | 'unsupported' | 'too-large';

/** A decoder's refusal: its kind and what was wrong. Each decoder throws its own subclass. */
export class DecodeError extends Error {
  readonly kind: DecodeErrorKind;
  constructor(kind: DecodeErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}
