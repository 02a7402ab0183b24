/** Standard base64 without Node's Buffer (not available as a global in Deno code we ship). */

/** Encode bytes as standard padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Decode standard base64; throws a TypeError naming the problem on bad input. */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  let bin: string;
  try {
    bin = atob(text);
  } catch {
    throw new TypeError("not valid base64");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
