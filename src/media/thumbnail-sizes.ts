/**
 * Which thumbnail answers a request (content_repo.md, "Thumbnails"): the dimensions asked for
 * are a minimum; the answer is the smallest thumbnail of the same method at least that large,
 * never an upscaled one, and the original itself when the original is no larger than asked.
 */

export type ThumbnailMethod = 'crop' | 'scale';

export interface ThumbnailSpec {
  width: number;
  height: number;
  method: ThumbnailMethod;
}

/** The sizes the spec suggests, made for every image on upload. */
export const STANDARD_THUMBNAILS: readonly ThumbnailSpec[] = [
  { width: 32, height: 32, method: 'crop' },
  { width: 96, height: 96, method: 'crop' },
  { width: 320, height: 240, method: 'scale' },
  { width: 640, height: 480, method: 'scale' },
  { width: 800, height: 600, method: 'scale' },
];

/** Largest dimension a client may ask for; larger requests are clamped (the original is served). */
export const MAX_THUMBNAIL_DIMENSION = 4096;

export type ThumbnailChoice = { kind: 'original' } | { kind: 'thumbnail'; spec: ThumbnailSpec };

/**
 * Picks what to serve for a request of `want` on an image of `original` (upright) dimensions,
 * given the specs already made or planned (`available`).
 */
export function chooseThumbnail(want: ThumbnailSpec, original: { width: number; height: number }, available: readonly ThumbnailSpec[]): ThumbnailChoice {
  // Anything at least as large as the original is the original: thumbnails never upscale.
  if (want.width >= original.width && want.height >= original.height) return { kind: 'original' };
  const bigEnough = available
    .filter((s) => s.method === want.method && s.width >= want.width && s.height >= want.height)
    .sort((a, b) => a.width * a.height - b.width * b.height);
  if (bigEnough.length > 0) return { kind: 'thumbnail', spec: bigEnough[0] };
  return { kind: 'thumbnail', spec: { width: want.width, height: want.height, method: want.method } };
}

/**
 * The output size of `spec` on an image of `original` size. Scale keeps the aspect ratio and fits
 * inside the box (one side equals the box unless the original is smaller); crop fills the box
 * exactly, or as much of it as the original covers.
 */
export function outputSize(spec: ThumbnailSpec, original: { width: number; height: number }): { width: number; height: number } {
  if (spec.method === 'crop') {
    return { width: Math.min(spec.width, original.width), height: Math.min(spec.height, original.height) };
  }
  const ratio = Math.min(spec.width / original.width, spec.height / original.height, 1);
  return { width: Math.max(1, Math.round(original.width * ratio)), height: Math.max(1, Math.round(original.height * ratio)) };
}
