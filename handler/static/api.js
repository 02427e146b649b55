// Requests to the API, by URLs relative to the page (so the page works under an API Gateway
// stage path or a custom domain's base path). The key travels only in the Authorization
// header: never in a URL, never logged.

export const MODEL = "whisper-1";

/** An error answered by the API (OpenAI's envelope), or a failure to reach it. */
export class ApiError extends Error {
  /**
   * @param {object} fields
   * @param {number} fields.status HTTP status, 0 when the server could not be reached
   * @param {string} fields.message the envelope's message (or a description of the failure)
   * @param {string|null} [fields.type] the envelope's type, e.g. "insufficient_credits"
   * @param {string|null} [fields.code] the envelope's code, e.g. "audio_too_long"
   * @param {string|null} [fields.param] the field at fault, e.g. "file"
   * @param {number|null} [fields.retryAfter] seconds, from the Retry-After header
   * @param {string|null} [fields.requestId] the x-request-id header
   */
  constructor({ status, message, type = null, code = null, param = null, retryAfter = null, requestId = null }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
    this.retryAfter = retryAfter;
    this.requestId = requestId;
  }
}

/**
 * An ApiError from a response's status, headers and body text.
 * @param {number} status
 * @param {(name: string) => string|null} header
 * @param {string} body
 */
function errorFrom(status, header, body) {
  let envelope = null;
  try {
    envelope = JSON.parse(body).error ?? null;
  } catch {
    envelope = null;
  }
  const retry = Number.parseInt(header("Retry-After") ?? "", 10);
  return new ApiError({
    status,
    message: envelope?.message || `The server answered with HTTP status ${status}.`,
    type: envelope?.type ?? null,
    code: envelope?.code ?? null,
    param: envelope?.param ?? null,
    retryAfter: Number.isFinite(retry) ? retry : null,
    requestId: header("x-request-id"),
  });
}

function unreachable() {
  return new ApiError({ status: 0, message: "The server could not be reached." });
}

/**
 * GET a JSON resource of the API with the key.
 * @param {string} path relative, e.g. "v1/wallet"
 * @param {string} key
 * @returns {Promise<any>} the parsed body; rejects with ApiError
 */
export async function getJson(path, key) {
  let response;
  try {
    response = await fetch(path, {
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw unreachable();
  }
  const body = await response.text();
  if (!response.ok) throw errorFrom(response.status, (name) => response.headers.get(name), body);
  return JSON.parse(body);
}

/** The key's wallet: `{balance_micro_usd, plan, price_per_minute, ...}` (GET v1/wallet). */
export function getWallet(key) {
  return getJson("v1/wallet", key);
}

/** The wallet's most recent ledger entries, newest first (GET v1/usage). */
export function getUsage(key, limit = 8) {
  return getJson(`v1/usage?limit=${limit}`, key);
}

/**
 * Server-sent events read from a body that grows (XMLHttpRequest's responseText while it loads):
 * each call of `read` returns the events completed since the last one. Only `data` lines count
 * (joined with newlines, as the SSE standard says); a `[DONE]` line is skipped.
 */
export class EventReader {
  constructor() {
    this.offset = 0;
  }

  /**
   * @param {string} body everything received so far
   * @returns {object[]} the events (parsed JSON) completed since the last call
   */
  read(body) {
    const events = [];
    const text = body.replaceAll("\r\n", "\n");
    for (let end = text.indexOf("\n\n", this.offset); end !== -1; end = text.indexOf("\n\n", this.offset)) {
      const block = text.slice(this.offset, end);
      this.offset = end + 2;
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (data && data !== "[DONE]") events.push(JSON.parse(data));
    }
    return events;
  }
}

/** HTTP status an error event stands for (the stream itself answered 200). */
const STREAM_ERROR_STATUS = { service_unavailable: 503, rate_limit_error: 429 };

/**
 * @typedef {object} Outcome
 * @property {object} result verbose_json (text, duration, segments, words?, usage) or, when
 *   streamed, what the events carried: {text, segments: [{id, start, end, text}], usage}
 * @property {boolean} streamed whether the text arrived as server-sent events
 * @property {number|null} billedSeconds from x-tinyscribe-billed-seconds
 * @property {number|null} costMicroUsd from x-tinyscribe-cost-micro-usd
 * @property {string|null} requestId from x-request-id
 */

/**
 * Transcribe `file`: the one place that talks to POST v1/audio/transcriptions.
 *
 * With `stream` it asks for `json` with `stream=true` and `timestamp_granularities[]=segment`:
 * the server sends a `transcript.text.delta` event as each segment is decoded (`onPartial`
 * gets the text so far), a `transcript.text.segment` event with its times, then
 * `transcript.text.done`. Without it, `verbose_json` with segment and word times, in one piece.
 * Either way the page plays along and builds every download from this one billed answer.
 * Progress, partial text and the final result go through the callbacks; the returned promise
 * settles with the same outcome, or rejects with an ApiError (an `error` event included).
 *
 * @param {object} request
 * @param {string} request.key
 * @param {Blob} request.file
 * @param {string} request.filename
 * @param {boolean} request.stream segment times only, the text shown as it is decoded
 * @param {("segment"|"word")[]} request.granularities when not streamed
 * @param {string} [request.prompt]
 * @param {object} [callbacks]
 * @param {(progress: {phase: "upload"|"transcribe", loaded: number, total: number}) => void} [callbacks.onProgress]
 * @param {(text: string) => void} [callbacks.onPartial] the text so far
 * @param {(outcome: Outcome) => void} [callbacks.onResult]
 * @returns {Promise<Outcome>}
 */
export function transcribe(request, { onProgress, onPartial, onResult } = {}) {
  const form = new FormData();
  form.append("file", request.file, request.filename);
  form.append("model", MODEL);
  if (request.stream) {
    form.append("response_format", "json");
    form.append("stream", "true");
    form.append("timestamp_granularities[]", "segment");
  } else {
    form.append("response_format", "verbose_json");
    for (const granularity of request.granularities) {
      form.append("timestamp_granularities[]", granularity);
    }
  }
  if (request.prompt) form.append("prompt", request.prompt);

  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "v1/audio/transcriptions");
    xhr.setRequestHeader("Authorization", `Bearer ${request.key}`);
    xhr.setRequestHeader("Accept", request.stream ? "text/event-stream" : "application/json");
    const total = request.file.size;
    const header = (name) => xhr.getResponseHeader(name);
    const failure = (message) => new ApiError({ status: xhr.status, message, requestId: header("x-request-id") });
    const events = new EventReader();
    const streamed = { text: "", segments: [], done: null, error: null };
    let malformed = false;

    /** Take in the events received so far (a 200 only: errors come as one envelope). */
    const consume = () => {
      if (!request.stream || xhr.status !== 200 || malformed) return;
      let received;
      try {
        received = events.read(xhr.responseText);
      } catch {
        malformed = true;
        return;
      }
      for (const event of received) {
        if (event.type === "transcript.text.delta") {
          streamed.text += event.delta;
          onPartial?.(streamed.text);
        } else if (event.type === "transcript.text.segment") {
          streamed.segments.push({ id: event.id, start: event.start, end: event.end, text: event.text });
        } else if (event.type === "transcript.text.done") {
          streamed.done = event;
        } else if (event.type === "error") {
          streamed.error = event.error ?? {};
        }
      }
    };

    xhr.upload.addEventListener("progress", (event) => {
      onProgress?.({ phase: "upload", loaded: event.loaded, total: event.lengthComputable ? event.total : total });
    });
    xhr.upload.addEventListener("load", () => {
      onProgress?.({ phase: "transcribe", loaded: total, total });
    });
    xhr.addEventListener("progress", consume);
    xhr.addEventListener("load", () => {
      if (xhr.status < 200 || xhr.status >= 300) {
        reject(errorFrom(xhr.status, header, xhr.responseText));
        return;
      }
      let result;
      if (request.stream) {
        consume();
        if (streamed.error) {
          const error = streamed.error;
          reject(new ApiError({
            status: STREAM_ERROR_STATUS[error.type] ?? 500,
            message: error.message || "The transcription failed.",
            type: error.type ?? null,
            code: error.code ?? null,
            param: error.param ?? null,
            requestId: header("x-request-id"),
          }));
          return;
        }
        if (malformed || !streamed.done) {
          reject(failure(malformed
            ? "The server's events could not be read."
            : "The transcription ended before it was complete."));
          return;
        }
        result = { text: streamed.done.text, segments: streamed.segments, usage: streamed.done.usage };
      } else {
        try {
          result = JSON.parse(xhr.responseText);
        } catch {
          reject(failure("The server's answer was not JSON."));
          return;
        }
      }
      const number = (name) => (header(name) === null ? null : Number(header(name)));
      const outcome = {
        result,
        streamed: request.stream,
        billedSeconds: number("x-tinyscribe-billed-seconds") ?? result.usage?.seconds ?? null,
        costMicroUsd: number("x-tinyscribe-cost-micro-usd"),
        requestId: header("x-request-id"),
      };
      onResult?.(outcome);
      resolve(outcome);
    });
    xhr.addEventListener("error", () => reject(unreachable()));
    xhr.addEventListener("abort", () => reject(new ApiError({ status: 0, message: "The request was cancelled." })));
    xhr.send(form);
  });
}
