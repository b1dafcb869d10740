/** esbuild's file loader (scripts/build-web.mjs): an image import is its URL in the bundle. */
declare module '*.png' {
  const url: string;
  export default url;
}
