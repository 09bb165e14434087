/**
 * X webhook cryptography: the CRC answer and the delivery signature. Both are
 * `sha256=` + base64(HMAC-SHA256(key = the app's consumer secret (X_API_SECRET), message)):
 * the message is the `crc_token` for the CRC and the raw request body for a delivery
 * (header `x-twitter-webhooks-signature`).
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-twitter-webhooks-signature";

// base64 of a 32-byte digest: 43 characters and one "=" of padding.
const SIGNATURE_RE = /^sha256=([A-Za-z0-9+/]{43}=)$/;

function hmac(secret: string, message: string | Uint8Array): Buffer {
  return createHmac("sha256", secret).update(message).digest();
}

/** The `response_token` for a CRC challenge. */
export function crcResponseToken(secret: string, crcToken: string): string {
  return "sha256=" + hmac(secret, Buffer.from(crcToken, "utf8")).toString("base64");
}

/** The `x-twitter-webhooks-signature` value X sends with `body` (used by tests and tools). */
export function signBody(secret: string, body: Uint8Array | string): string {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return "sha256=" + hmac(secret, bytes).toString("base64");
}

export type SignatureCheck = "valid" | "missing" | "malformed" | "mismatch";

/** Is the header well formed at all (checked before reading the body)? */
export function signatureShape(header: string | null): SignatureCheck {
  if (header === null || header === "") return "missing";
  return SIGNATURE_RE.test(header) ? "valid" : "malformed";
}

/** Verify `header` against the raw body bytes, in constant time. */
export function verifySignature(secret: string, body: Uint8Array, header: string | null): SignatureCheck {
  const shape = signatureShape(header);
  if (shape !== "valid") return shape;
  const given = Buffer.from(SIGNATURE_RE.exec(header as string)![1], "base64");
  const expected = hmac(secret, body);
  if (given.length !== expected.length) return "malformed";
  return timingSafeEqual(given, expected) ? "valid" : "mismatch";
}
