// The page: key, wallet, file or recording, transcription, player and downloads.
// Plain ES modules, no framework, no inline code (the Content-Security-Policy forbids it).

import { getUsage, getWallet, transcribe } from "./api.js";
import { describeError } from "./messages.js";
import { formatClock, formatSeconds, formatUsd } from "./money.js";
import { Recording, canRecord } from "./recorder.js";
import { DOWNLOADS } from "./subtitles.js";

const KEY_ITEM = "tinyscribe.apiKey";

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const ui = {
  keyForm: $("key-form"),
  key: /** @type {HTMLInputElement} */ ($("api-key")),
  remember: /** @type {HTMLInputElement} */ ($("remember-key")),
  walletEmpty: $("wallet-empty"),
  walletSummary: $("wallet-summary"),
  walletBalance: $("wallet-balance"),
  walletPlan: $("wallet-plan"),
  walletPrice: $("wallet-price"),
  walletError: $("wallet-error"),
  usage: $("usage"),
  usageRows: $("usage-rows"),
  dropZone: $("drop-zone"),
  file: /** @type {HTMLInputElement} */ ($("audio-file")),
  fileName: $("file-name"),
  record: /** @type {HTMLButtonElement} */ ($("record")),
  recordStatus: $("record-status"),
  prompt: /** @type {HTMLTextAreaElement} */ ($("prompt")),
  transcribe: /** @type {HTMLButtonElement} */ ($("transcribe")),
  busy: $("busy"),
  progress: /** @type {HTMLProgressElement} */ ($("upload-progress")),
  status: $("status"),
  error: $("error"),
  errorTitle: $("error-title"),
  errorDetail: $("error-detail"),
  result: $("result-section"),
  player: /** @type {HTMLAudioElement} */ ($("player")),
  duration: $("result-duration"),
  billed: $("result-billed"),
  cost: $("result-cost"),
  partial: $("partial"),
  segments: $("segments"),
  wordsDetails: $("words-details"),
  wordRows: $("word-rows"),
};

const state = {
  /** @type {File|null} the audio to transcribe */
  audio: null,
  /** @type {Recording|null} */
  recording: null,
  recordTimer: 0,
  /** @type {string[]} object URLs to revoke when replaced */
  downloadUrls: [],
  playerUrl: "",
  /** @type {{start: number, end: number, element: HTMLElement}[]} */
  lines: [],
  /** @type {{start: number, end: number, element: HTMLElement}[]} */
  words: [],
  currentLine: -1,
  currentWord: -1,
  /** whether the audio's duration is to be read from the player (a streamed result) */
  durationFromPlayer: false,
};

// ----------------------------------------------------------------------------- the key

function storedKey() {
  const remembered = localStorage.getItem(KEY_ITEM);
  if (remembered) {
    ui.remember.checked = true;
    return remembered;
  }
  return sessionStorage.getItem(KEY_ITEM) ?? "";
}

/** sessionStorage (this tab) by default; localStorage only when "remember" is ticked. */
function storeKey() {
  const key = ui.key.value.trim();
  sessionStorage.removeItem(KEY_ITEM);
  localStorage.removeItem(KEY_ITEM);
  if (!key) {
    clearWallet(); // no balance left on screen for a key that is gone
    return;
  }
  (ui.remember.checked ? localStorage : sessionStorage).setItem(KEY_ITEM, key);
}

function currentKey() {
  return ui.key.value.trim();
}

// -------------------------------------------------------------------------- the wallet

/** Show the balance and recent usage; returns the wallet, or null when it cannot be read. */
async function refreshWallet() {
  const key = currentKey();
  if (!key) return null;
  try {
    const [wallet, usage] = await Promise.all([getWallet(key), getUsage(key)]);
    showWallet(wallet, usage.data);
    return wallet;
  } catch (error) {
    ui.walletSummary.hidden = true;
    ui.usage.hidden = true;
    ui.walletEmpty.hidden = true;
    const { title, detail } = describeError(error);
    ui.walletError.textContent = `${title} ${detail}`;
    ui.walletError.hidden = false;
    return null;
  }
}

function clearWallet() {
  ui.walletSummary.hidden = true;
  ui.usage.hidden = true;
  ui.walletError.hidden = true;
  ui.walletEmpty.hidden = false;
}

function showWallet(wallet, entries) {
  ui.walletError.hidden = true;
  ui.walletEmpty.hidden = true;
  ui.walletSummary.hidden = false;
  ui.walletBalance.textContent = formatUsd(wallet.balance_micro_usd);
  ui.walletPlan.textContent = wallet.plan === "payg" ? "Prepaid (pay as you go)" : "Unmetered";
  ui.walletPrice.textContent = `$${Number(wallet.price_per_minute)} per audio minute`;
  ui.usageRows.replaceChildren(...entries.map(usageRow));
  ui.usage.hidden = entries.length === 0;
}

const KINDS = {
  grant: "Free credit",
  top_up: "Top-up",
  charge: "Transcription",
  refund: "Refund",
  usage: "Transcription (unmetered)",
};

function usageRow(entry) {
  const row = document.createElement("tr");
  const when = new Date(entry.created_at);
  let what = KINDS[entry.kind] ?? entry.kind;
  if (entry.kind === "charge" && entry.status === "refunded") what += " (refunded)";
  if (entry.kind === "charge" && entry.status === "reserved") what += " (in progress)";
  const cells = [
    Number.isNaN(when.getTime())
      ? entry.created_at
      : when.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" }),
    what,
    entry.audio_seconds == null ? "" : `${entry.audio_seconds} s`,
    formatUsd(entry.amount),
  ];
  cells.forEach((text, index) => {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (index >= 2) cell.className = "num";
    row.append(cell);
  });
  return row;
}

// ----------------------------------------------------------------------- choosing audio

/** @param {File} file */
function useAudio(file) {
  state.audio = file;
  const size = file.size >= 1_000_000 ? `${(file.size / 1_000_000).toFixed(1)} MB` : `${Math.ceil(file.size / 1000)} kB`;
  ui.fileName.textContent = `Ready: ${file.name} (${size})`;
  clearError();
}

function setupDropZone() {
  const zone = ui.dropZone;
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer?.files?.[0];
    if (file) useAudio(file);
  });
  // A file dropped next to the zone would otherwise make the browser open it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  ui.file.addEventListener("change", () => {
    const file = ui.file.files?.[0];
    if (file) useAudio(file);
  });
}

async function toggleRecording() {
  if (state.recording) {
    const recording = state.recording;
    state.recording = null;
    window.clearInterval(state.recordTimer);
    const file = await recording.stop();
    ui.record.textContent = "Record";
    ui.record.setAttribute("aria-pressed", "false");
    ui.transcribe.disabled = false;
    ui.recordStatus.textContent = `Recorded ${formatClock(recording.elapsed())}.`;
    useAudio(file);
    return;
  }
  const recording = new Recording();
  try {
    await recording.start();
  } catch (error) {
    ui.recordStatus.textContent =
      error?.name === "NotAllowedError"
        ? "The browser was not allowed to use the microphone."
        : "No microphone could be opened.";
    return;
  }
  state.recording = recording;
  ui.transcribe.disabled = true; // stop the recording first
  ui.record.textContent = "Stop recording";
  ui.record.setAttribute("aria-pressed", "true");
  ui.recordStatus.textContent = "Recording… 0:00.00";
  state.recordTimer = window.setInterval(() => {
    ui.recordStatus.textContent = `Recording… ${formatClock(recording.elapsed())}`;
  }, 250);
}

// ------------------------------------------------------------------------ transcribing

function clearError() {
  ui.error.hidden = true;
  ui.errorTitle.textContent = "";
  ui.errorDetail.textContent = "";
}

function showError({ title, detail }) {
  ui.errorTitle.textContent = title;
  ui.errorDetail.textContent = detail;
  ui.error.hidden = false;
}

function setBusy(busy) {
  ui.transcribe.disabled = busy;
  ui.record.disabled = busy;
  ui.busy.hidden = !busy;
  ui.transcribe.setAttribute("aria-busy", String(busy));
  document.getElementById("audio-section")?.setAttribute("aria-busy", String(busy));
}

function onProgress({ phase, loaded, total }) {
  if (phase === "upload") {
    const percent = total ? Math.round((loaded / total) * 100) : 0;
    ui.progress.value = percent;
    ui.status.textContent = `Uploading… ${percent}%`;
  } else {
    ui.progress.removeAttribute("value"); // indeterminate while the model works
    ui.status.textContent = "Transcribing…";
  }
}

/** The text decoded so far, while the server streams it. */
function onPartial(text) {
  ui.partial.textContent = text;
  ui.partial.hidden = false;
  ui.status.textContent = "Transcribing… the text so far:";
}

function clearPartial() {
  ui.partial.hidden = true;
  ui.partial.textContent = "";
}

async function startTranscription() {
  clearError();
  const key = currentKey();
  if (!key) {
    showError({ title: "Enter your API key first.", detail: "It starts with sk-." });
    ui.key.focus();
    return;
  }
  if (!state.audio) {
    showError({ title: "Choose an audio file or record some audio first.", detail: "" });
    ui.file.focus();
    return;
  }
  const audio = state.audio;
  const words = /** @type {HTMLInputElement} */ (document.getElementById("granularity-word")).checked;
  setBusy(true);
  clearPartial();
  ui.progress.value = 0;
  ui.status.textContent = "Uploading… 0%";
  try {
    const outcome = await transcribe(
      {
        key,
        file: audio,
        filename: audio.name,
        // Segment times stream (the text appears as it is decoded); word times do not.
        stream: !words,
        granularities: words ? ["segment", "word"] : ["segment"],
        prompt: ui.prompt.value.trim(),
      },
      { onProgress, onPartial },
    );
    showResult(outcome, audio);
    ui.status.textContent = "Done.";
  } catch (error) {
    clearPartial();
    ui.status.textContent = "";
    const wallet = error.status === 402 ? await refreshWallet() : null;
    showError(describeError(error, { wallet }));
  } finally {
    setBusy(false);
  }
  await refreshWallet();
}

// ------------------------------------------------------------------------------ result

function showResult({ result, billedSeconds, costMicroUsd }, audio) {
  ui.result.hidden = false;
  if (state.playerUrl) URL.revokeObjectURL(state.playerUrl);
  state.playerUrl = URL.createObjectURL(audio);
  ui.player.src = state.playerUrl;
  // verbose_json says how long the audio is; the streamed events do not, the player does.
  ui.duration.textContent = result.duration == null ? "…" : formatClock(result.duration);
  state.durationFromPlayer = result.duration == null;
  ui.billed.textContent = billedSeconds == null ? "not reported" : formatSeconds(billedSeconds);
  ui.cost.textContent = costMicroUsd == null ? "not reported" : formatUsd(costMicroUsd);
  clearPartial();
  showDownloads(result, audio.name);
  showTranscript(result);
}

function showDownloads(result, audioName) {
  for (const url of state.downloadUrls) URL.revokeObjectURL(url);
  state.downloadUrls = [];
  const stem = audioName.replace(/\.[^.]+$/, "") || "transcript";
  for (const { suffix, type, render } of DOWNLOADS) {
    const url = URL.createObjectURL(new Blob([render(result)], { type }));
    state.downloadUrls.push(url);
    const link = /** @type {HTMLAnchorElement} */ (document.getElementById(`download-${suffix}`));
    link.href = url;
    link.download = `${stem}.${suffix}`;
  }
}

function showTranscript(result) {
  state.lines = [];
  state.words = [];
  state.currentLine = -1;
  state.currentWord = -1;
  const words = result.words ?? [];
  const items = result.segments.map((segment, index) => {
    const item = document.createElement("li");
    item.className = "segment";
    item.dataset.index = String(index);
    const time = document.createElement("button");
    time.type = "button";
    time.className = "seek";
    time.dataset.start = String(segment.start);
    time.textContent = `${formatClock(segment.start)} – ${formatClock(segment.end)}`;
    time.setAttribute("aria-label", `Play from ${formatClock(segment.start)}`);
    const text = document.createElement("span");
    text.className = "text";
    const inside = words.filter((w) => w.start >= segment.start && w.start < segment.end);
    if (inside.length) {
      inside.forEach((word, position) => {
        const span = document.createElement("span");
        span.className = "word";
        span.dataset.start = String(word.start);
        span.title = `${formatClock(word.start)} – ${formatClock(word.end)}`;
        span.textContent = word.word;
        if (position) text.append(" ");
        text.append(span);
        state.words.push({ start: word.start, end: word.end, element: span });
      });
    } else {
      text.textContent = segment.text.trim();
    }
    item.append(time, " ", text);
    state.lines.push({ start: segment.start, end: segment.end, element: item });
    return item;
  });
  ui.segments.replaceChildren(...items);
  ui.wordsDetails.hidden = words.length === 0;
  ui.wordRows.replaceChildren(
    ...words.map((word) => {
      const row = document.createElement("tr");
      for (const [text, numeric] of [[word.word, false], [formatClock(word.start), true], [formatClock(word.end), true]]) {
        const cell = document.createElement("td");
        cell.textContent = String(text);
        if (numeric) cell.className = "num";
        row.append(cell);
      }
      return row;
    }),
  );
}

function playFrom(seconds) {
  ui.player.currentTime = seconds;
  ui.player.play().catch((error) => {
    // Refused without a gesture (autoplay rules); a pause() before it started is no error.
    if (error?.name === "NotAllowedError") ui.status.textContent = "Press play on the player to listen.";
  });
}

/** The last item whose start is at or before `time`, or -1. */
function indexAt(items, time) {
  let found = -1;
  for (let i = 0; i < items.length && items[i].start <= time; i += 1) found = i;
  return found;
}

function highlight() {
  const time = ui.player.currentTime;
  const line = indexAt(state.lines, time);
  if (line !== state.currentLine) {
    state.lines[state.currentLine]?.element.classList.remove("current");
    state.lines[state.currentLine]?.element.removeAttribute("aria-current");
    state.currentLine = line;
    const element = state.lines[line]?.element;
    if (element) {
      element.classList.add("current");
      element.setAttribute("aria-current", "true");
      if (!ui.player.paused) element.scrollIntoView({ block: "nearest" });
    }
  }
  const word = indexAt(state.words, time);
  if (word !== state.currentWord) {
    state.words[state.currentWord]?.element.classList.remove("current");
    state.currentWord = word;
    state.words[word]?.element.classList.add("current");
  }
}

function setupTranscript() {
  ui.segments.addEventListener("click", (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    const word = target.closest(".word");
    if (word instanceof HTMLElement) {
      playFrom(Number(word.dataset.start));
      return;
    }
    const item = target.closest(".segment");
    if (item instanceof HTMLElement) {
      playFrom(state.lines[Number(item.dataset.index)].start);
    }
  });
  ui.player.addEventListener("timeupdate", highlight);
  ui.player.addEventListener("seeked", highlight);
  ui.player.addEventListener("loadedmetadata", () => {
    if (!state.durationFromPlayer) return;
    // A browser's own recording (webm) may not know its length: say so rather than guess.
    const duration = ui.player.duration;
    ui.duration.textContent = Number.isFinite(duration) ? formatClock(duration) : "not known";
  });
}

// ------------------------------------------------------------------------------- start

function start() {
  ui.key.value = storedKey();
  ui.key.addEventListener("input", storeKey);
  ui.remember.addEventListener("change", storeKey);
  ui.key.addEventListener("change", refreshWallet);
  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    storeKey();
    refreshWallet();
  });
  setupDropZone();
  if (canRecord()) {
    ui.record.addEventListener("click", toggleRecording);
  } else {
    ui.record.disabled = true;
    ui.recordStatus.textContent = "Recording needs a secure (https) page and a browser with MediaRecorder.";
  }
  ui.transcribe.addEventListener("click", startTranscription);
  ui.transcribe.disabled = false; // disabled in the HTML until this script runs
  setupTranscript();
  if (ui.key.value) refreshWallet();
}

start();
