/**
 * An AWS Lambda handler for API Gateway (REST v1 and HTTP API v2 events) and Lambda function URLs:
 *
 *   export const handler = createLambdaHandler();
 *
 * Direct mode, as the fetch handler: dispatch inside the invocation (work stops when the
 * response is returned), 503/502 when GitHub fails so the sender may retry. Base64 bodies are
 * decoded before the signature check, which is over the decoded bytes.
 */
import type { RelayResponse } from '../handler.js';
import { isHealthz, lazyDirectCore, type DirectOptions } from './direct.js';

export interface LambdaHttpEvent {
  /** v2 (HTTP API, function URL) */
  readonly version?: string;
  readonly rawPath?: string;
  readonly requestContext?: { readonly http?: { readonly method?: string; readonly path?: string } };
  /** v1 (REST API) */
  readonly httpMethod?: string;
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string | undefined>> | null;
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
}

export interface LambdaHttpResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: false;
}

export type LambdaHandler = (event: LambdaHttpEvent) => Promise<LambdaHttpResult>;

function toResult(r: RelayResponse): LambdaHttpResult {
  return { statusCode: r.status, headers: r.headers, body: r.body, isBase64Encoded: false };
}

export function createLambdaHandler(options: DirectOptions = {}): LambdaHandler {
  const core = lazyDirectCore(options);
  return async (event) => {
    const method = (event.requestContext?.http?.method ?? event.httpMethod ?? 'GET').toUpperCase();
    const path = event.rawPath ?? event.requestContext?.http?.path ?? event.path ?? '/';
    if (isHealthz(method, path)) return toResult({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"status":"ok"}' });
    const built = core();
    if (!built.ok) return toResult(built.response);
    const { handler, bodyLimitBytes } = built.core;
    const pre = handler.preflight(method, path);
    if (!pre.ok) return toResult(pre.response);
    const raw = event.body ?? '';
    const body = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
    let signature: string | undefined;
    for (const [name, value] of Object.entries(event.headers ?? {})) {
      if (name.toLowerCase() === 'saucelabs-sign' && value !== undefined) signature = value;
    }
    const response = await handler.handle(
      {
        method,
        path,
        headers: signature === undefined ? {} : { 'saucelabs-sign': signature },
        body,
        bodyTooLarge: body.byteLength > bodyLimitBytes,
      },
      pre.route,
    );
    return toResult(response);
  };
}
