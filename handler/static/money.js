// Money and durations for display. Amounts arrive as integer micro-USD (the API's unit) and
// are formatted with integer arithmetic, never through floating-point dollars.

const MICRO_PER_USD = 1_000_000;

/**
 * Dollars from integer micro-USD: at least 2 decimals, up to 6, trailing zeros dropped.
 * 5_000_000 -> "$5.00", 999_800 -> "$0.9998", 200 -> "$0.0002", -200 -> "-$0.0002".
 * @param {number} micro
 * @returns {string}
 */
export function formatUsd(micro) {
  const sign = micro < 0 ? "-" : "";
  const absolute = Math.abs(Math.trunc(micro));
  const whole = Math.floor(absolute / MICRO_PER_USD);
  let fraction = String(absolute % MICRO_PER_USD).padStart(6, "0").replace(/0+$/, "");
  fraction = fraction.padEnd(2, "0");
  return `${sign}$${whole.toLocaleString("en-US")}.${fraction}`;
}

/**
 * A length of audio for people: "0:03.42", "12:05.00", "1:02:03.50".
 * @param {number} seconds
 * @returns {string}
 */
export function formatClock(seconds) {
  const centis = Math.max(0, Math.round(seconds * 100));
  const hours = Math.floor(centis / 360_000);
  const minutes = Math.floor((centis % 360_000) / 6000);
  const secs = Math.floor((centis % 6000) / 100);
  const rest = String(centis % 100).padStart(2, "0");
  const mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
  const head = hours ? `${hours}:${mm}` : mm;
  return `${head}:${String(secs).padStart(2, "0")}.${rest}`;
}

/**
 * A whole number of seconds in words: "1 second", "42 seconds".
 * @param {number} seconds
 * @returns {string}
 */
export function formatSeconds(seconds) {
  return seconds === 1 ? "1 second" : `${seconds} seconds`;
}
