/**
 * What a picture or video's message carries besides its media id, so a chat can lay it out before it loads
 * and show something at once: its width and height, and a tiny JPEG thumbnail (a data URL, ~1–3 KB, well
 * inside a body's 32 KiB) drawn in the browser.
 */
export interface MediaFacts { w?: number; h?: number; thumb?: string }

const THUMB_PX = 48;

function thumbOf(source: CanvasImageSource, w: number, h: number): string | undefined {
  const k = THUMB_PX / Math.max(w, h);
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(w * k));
  canvas.height = Math.max(1, Math.round(h * k));
  const ctx = canvas.getContext('2d');
  if (!ctx) return undefined;
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL('image/jpeg', 0.6);
}

export async function mediaFacts(file: File): Promise<MediaFacts> {
  try {
    if (file.type.startsWith('image/')) {
      const bmp = await createImageBitmap(file);
      const facts = { w: bmp.width, h: bmp.height, thumb: thumbOf(bmp, bmp.width, bmp.height) };
      bmp.close();
      return facts;
    }
    if (file.type.startsWith('video/')) return await videoFacts(file);
  } catch {
    // A format this browser can't decode: sent without them (shown in a default box).
  }
  return {};
}

function videoFacts(file: File): Promise<MediaFacts> {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const v = document.createElement('video');
    const done = (f: MediaFacts) => { URL.revokeObjectURL(url); resolve(f); };
    const timer = setTimeout(() => done({}), 5_000);
    v.muted = true;
    v.preload = 'auto';
    v.onloadeddata = () => {
      clearTimeout(timer);
      done({ w: v.videoWidth, h: v.videoHeight, thumb: v.videoWidth ? thumbOf(v, v.videoWidth, v.videoHeight) : undefined });
    };
    v.onerror = () => { clearTimeout(timer); done({}); };
    v.src = url;
  });
}
