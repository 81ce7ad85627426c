/**
 * Pure: reading request headers as node:http gives them (names in lower case, a repeated header as
 * an array), for the webhook handler, the server and the console alike.
 */
export type Headers = Readonly<Record<string, string | readonly string[] | undefined>>;

/** A header's value (the first, when it was sent more than once). */
export function headerValue(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v[0] as string | undefined;
  return undefined;
}

/** The token of `Authorization: Bearer <token>`; undefined without one. Compare it in constant time. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')?.[1];
}
