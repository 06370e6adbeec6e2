// The gateway's HTTP API as the app uses it. The bearer token lives in this module's memory
// only (never in storage); problem+json answers become ApiError with the gateway's detail.
export class ApiError extends Error {
  constructor(readonly status: number, readonly type: string, readonly title: string, readonly detail: string) {
    super(detail || title);
    this.name = "ApiError";
  }

  get slug(): string {
    return this.type.split(/[:/]/).pop() ?? "";
  }
}

let token: string | null = null;
let onSignedOut: ((reason: string) => void) | null = null;

export function setToken(value: string | null): void {
  token = value;
}

export function whenSignedOut(handler: (reason: string) => void): void {
  onSignedOut = handler;
}

async function problem(response: Response): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    body = (await response.json()) as Record<string, unknown>;
  } catch {
    // not JSON: keep the status line
  }
  const error = new ApiError(
    response.status,
    String(body.type ?? ""),
    String(body.title ?? response.statusText),
    String(body.detail ?? body.title ?? `HTTP ${response.status}`),
  );
  if (token !== null && (error.slug === "identity-suspended" || error.slug === "invalid-token")) {
    token = null;
    onSignedOut?.(error.slug === "identity-suspended" ? `Your identity is suspended: ${error.detail}` : `You were signed out: ${error.detail}`);
  }
  return error;
}

export async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  if (!response.ok) throw await problem(response);
  return response;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await request("GET", path)).json()) as T;
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  return (await (await request("POST", path, body)).json()) as T;
}

export async function getBytes(path: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await (await request("GET", path)).arrayBuffer());
}

/** The body of `path` as it streams in, piece by piece, with the total when known. */
export async function stream(path: string): Promise<{ reader: ReadableStreamDefaultReader<Uint8Array>; length: number | null }> {
  const response = await request("GET", path);
  if (response.body === null) throw new ApiError(502, "", "Empty answer", "the gateway sent no body");
  const length = response.headers.get("Content-Length");
  return { reader: response.body.getReader(), length: length === null ? null : Number(length) };
}

/**
 * POST `data` with upload progress (XMLHttpRequest: fetch reports none), answered as JSON;
 * a problem answer becomes ApiError like every other.
 */
export function postBytesWithProgress<T>(path: string, data: Blob, progress: (sent: number, total: number) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    if (token !== null) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.responseType = "arraybuffer";
    xhr.upload.onprogress = (event) => progress(event.loaded, event.lengthComputable ? event.total : data.size);
    xhr.onerror = () => reject(new ApiError(0, "", "Network error", `the upload to ${path} did not reach the gateway`));
    xhr.onload = () => {
      const headers = new Headers();
      const type = xhr.getResponseHeader("Content-Type");
      if (type !== null) headers.set("Content-Type", type);
      const response = new Response(xhr.status === 204 ? null : (xhr.response as ArrayBuffer), { status: xhr.status, statusText: xhr.statusText, headers });
      if (!response.ok) {
        void problem(response).then(reject, reject);
        return;
      }
      progress(data.size, data.size);
      response.json().then((body) => resolve(body as T), reject);
    };
    xhr.send(data);
  });
}
