// The downloads, built in the browser from the one verbose_json answer (a second request
// would be billed again). SRT and VTT follow the server's renderers (handler/formats.py):
// timestamps from whole milliseconds, cues numbered from 1 in SRT, a WEBVTT header in VTT.

/**
 * "HH:MM:SS,mmm" (SRT) or "HH:MM:SS.mmm" (VTT) from seconds, via whole milliseconds.
 * @param {number} seconds
 * @param {"," | "."} marker
 * @returns {string}
 */
export function formatTimestamp(seconds, marker) {
  let ms = Math.max(0, Math.round(seconds * 1000));
  const hours = Math.floor(ms / 3_600_000);
  ms -= hours * 3_600_000;
  const minutes = Math.floor(ms / 60_000);
  ms -= minutes * 60_000;
  const secs = Math.floor(ms / 1000);
  ms -= secs * 1000;
  const two = (n) => String(n).padStart(2, "0");
  return `${two(hours)}:${two(minutes)}:${two(secs)}${marker}${String(ms).padStart(3, "0")}`;
}

/**
 * @typedef {{start: number, end: number, text: string}} Segment
 * @typedef {{text: string, segments: Segment[], words?: {word: string, start: number, end: number}[]}} VerboseJson
 */

/** @param {VerboseJson} result */
export function toText(result) {
  return `${result.text}\n`;
}

/** @param {VerboseJson} result */
export function toSrt(result) {
  return result.segments
    .map((s, i) => {
      const timing = `${formatTimestamp(s.start, ",")} --> ${formatTimestamp(s.end, ",")}`;
      return `${i + 1}\n${timing}\n${s.text.trim()}\n`;
    })
    .join("\n");
}

/** @param {VerboseJson} result */
export function toVtt(result) {
  const cues = result.segments.map(
    (s) => `${formatTimestamp(s.start, ".")} --> ${formatTimestamp(s.end, ".")}\n${s.text.trim()}\n`,
  );
  return `WEBVTT\n\n${cues.join("\n")}`;
}

/** @param {VerboseJson} result */
export function toJson(result) {
  return `${JSON.stringify(result, null, 2)}\n`;
}

/** Every download: file suffix, media type and renderer. */
export const DOWNLOADS = [
  { suffix: "txt", type: "text/plain;charset=utf-8", render: toText },
  { suffix: "srt", type: "application/x-subrip;charset=utf-8", render: toSrt },
  { suffix: "vtt", type: "text/vtt;charset=utf-8", render: toVtt },
  { suffix: "json", type: "application/json;charset=utf-8", render: toJson },
];
