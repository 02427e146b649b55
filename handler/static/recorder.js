// Recording from the microphone with MediaRecorder. The browser's own container and codec
// (webm/opus in Chromium and Firefox, mp4/aac in Safari) go up as they are: the server decodes
// anything FFmpeg does.

const PREFERRED_TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];
const SUFFIXES = { "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a" };

/** True when this browser can record audio (a secure context with MediaRecorder). */
export function canRecord() {
  return Boolean(window.isSecureContext && navigator.mediaDevices?.getUserMedia && window.MediaRecorder);
}

/** One recording: `await start()`, later `await stop()` gives a File. */
export class Recording {
  constructor() {
    /** @type {Blob[]} */
    this.chunks = [];
    this.stream = null;
    this.recorder = null;
    this.startedAt = 0;
  }

  /** Ask for the microphone and start; rejects when the person or the browser refuses. */
  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const mimeType = PREFERRED_TYPES.find((type) => MediaRecorder.isTypeSupported(type));
    this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : {});
    this.recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size > 0) this.chunks.push(event.data);
    });
    this.recorder.start();
    this.startedAt = performance.now();
  }

  /** Seconds since the start. */
  elapsed() {
    return this.startedAt ? (performance.now() - this.startedAt) / 1000 : 0;
  }

  /**
   * Stop, release the microphone, and return the recording as a File.
   * @returns {Promise<File>}
   */
  stop() {
    const recorder = this.recorder;
    return new Promise((resolve) => {
      recorder.addEventListener(
        "stop",
        () => {
          for (const track of this.stream.getTracks()) track.stop();
          const type = (recorder.mimeType || "audio/webm").split(";")[0];
          const blob = new Blob(this.chunks, { type });
          const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
          resolve(new File([blob], `recording-${stamp}.${SUFFIXES[type] ?? "webm"}`, { type }));
        },
        { once: true },
      );
      recorder.stop();
    });
  }
}
