/**
 * Every call to the mlops-nb server extension goes through here, so the token, the XSRF
 * cookie and the base URL are handled once, by JupyterLab's own ServerConnection.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const API_NAMESPACE = 'mlops-nb/api';

/** An API error with the server's message (the store's own wording), for the status line. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function apiUrl(baseUrl: string, endpoint: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') {
      params.set(key, String(value));
    }
  }
  const qs = params.toString();
  return URLExt.join(baseUrl, API_NAMESPACE, endpoint) + (qs ? `?${qs}` : '');
}

async function send(
  endpoint: string,
  init: RequestInit,
  query: Query,
  settings?: ServerConnection.ISettings
): Promise<Response> {
  const s = settings ?? ServerConnection.makeSettings();
  const url = apiUrl(s.baseUrl, endpoint, query);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, s);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok) {
    let message = response.statusText;
    try {
      const body = await response.json();
      message = body.message || message;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(message, response.status);
  }
  return response;
}

export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {},
  query: Query = {},
  settings?: ServerConnection.ISettings
): Promise<T> {
  const response = await send(endpoint, init, query, settings);
  return (await response.json()) as T;
}

export async function requestText(
  endpoint: string,
  query: Query = {},
  settings?: ServerConnection.ISettings
): Promise<string> {
  const response = await send(endpoint, { method: 'GET' }, query, settings);
  return response.text();
}

export function postAPI<T>(
  endpoint: string,
  body: unknown,
  settings?: ServerConnection.ISettings
): Promise<T> {
  return requestAPI<T>(endpoint, { method: 'POST', body: JSON.stringify(body) }, {}, settings);
}
