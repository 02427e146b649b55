// Every error the page can meet, in words a person understands: a headline saying what
// happened and what to do, and the server's own message (OpenAI's envelope) beneath it.

import { formatSeconds, formatUsd } from "./money.js";

/**
 * @param {import("./api.js").ApiError} error
 * @param {{wallet?: {balance_micro_usd: number, plan: string} | null}} [context]
 *   the wallet read after a 402, to state the balance
 * @returns {{title: string, detail: string}}
 */
export function describeError(error, { wallet = null } = {}) {
  const detail = error.requestId ? `${error.message} (request ${error.requestId})` : error.message;
  switch (error.status) {
    case 0:
      return {
        title: "The server could not be reached. Check your connection and try again.",
        detail: error.message,
      };
    case 400:
      return {
        title: error.param === "file"
          ? "This file could not be used as audio. Try another file or format."
          : "The server could not accept this request.",
        detail,
      };
    case 401:
      return {
        title: "Your API key was not accepted. Check that it is complete (it starts with sk-) and not revoked.",
        detail,
      };
    case 402: {
      const balance = wallet ? ` Your balance is ${formatUsd(wallet.balance_micro_usd)}.` : "";
      return {
        title: `Not enough credit for this audio.${balance} Top up the wallet, or try a shorter recording.`,
        detail,
      };
    }
    case 404:
      return { title: "The server does not know this resource.", detail };
    case 413:
      return {
        title:
          "This audio is too large or too long for the page. Send it through the jobs API " +
          "(POST v1/audio/transcriptions/jobs), which takes large files, or cut it shorter.",
        detail,
      };
    case 429:
      return {
        title: error.retryAfter !== null
          ? `Too many requests with this key. Try again in ${formatSeconds(error.retryAfter)}.`
          : "Too many requests with this key. Wait a moment and try again.",
        detail,
      };
    case 503:
      return {
        title: error.retryAfter !== null
          ? `The server is busy. Try again in ${formatSeconds(error.retryAfter)}; a failed request is not charged.`
          : "The server is busy. Try again shortly; a failed request is not charged.",
        detail,
      };
    default:
      if (error.status >= 500) {
        return { title: "The server failed on this request (a failed request is not charged). Try again.", detail };
      }
      return { title: `The request failed (HTTP ${error.status}).`, detail };
  }
}
