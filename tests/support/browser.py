"""Debian's headless Chromium driven by Playwright, and what the page tests read from it.

Playwright talks to the browser over the DevTools protocol, so Debian's ``chromium`` package
is all it needs (``make system-deps`` installs it); ``playwright install`` (a downloaded
browser) is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")

FLAGS = (
    "--no-sandbox",  # root in a container: Chromium's sandbox needs namespaces it lacks
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A microphone without a person: Chromium's fake capture device, permission granted.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
)


@contextmanager
def chromium(fake_microphone: Path | None = None) -> Iterator[Browser]:
    """A headless Chromium; ``fake_microphone`` (a WAV file) is what its microphone hears,
    in a loop. Each ``browser.new_context()`` is a fresh profile (no storage, no cache)."""
    flags = list(FLAGS)
    if fake_microphone is not None:
        flags.append(f"--use-file-for-fake-audio-capture={fake_microphone}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=flags
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """Everything the page wrote to the console, and every uncaught exception."""

    messages: list[ConsoleMessage] = field(default_factory=list)
    exceptions: list[Error] = field(default_factory=list)

    def errors(self, *, allowed_statuses: tuple[int, ...] = ()) -> list[str]:
        """Console errors and uncaught exceptions, as text. Chromium itself logs "Failed to
        load resource: the server responded with a status of N" for every error response a
        script receives; ``allowed_statuses`` lists the ones a test provokes on purpose."""
        allowed = tuple(f"status of {status} " for status in allowed_statuses)
        texts = [m.text for m in self.messages if m.type == "error"]
        texts = [t for t in texts if not (allowed and any(a in t for a in allowed))]
        return texts + [f"uncaught: {e.message}" for e in self.exceptions]


def watch_console(page: Page) -> Console:
    """Start collecting ``page``'s console output."""
    console = Console()
    page.on("console", lambda message: console.messages.append(message))
    page.on("pageerror", lambda error: console.exceptions.append(error))
    return console


CONTRAST_PROBLEMS_JS = """
() => {
  // WCAG 2 relative luminance and contrast ratio of every visible element that holds text,
  // against the first opaque background among its ancestors.
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const channel = (v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  for (const el of document.body.querySelectorAll("*")) {
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText || !el.checkVisibility() || el.closest(":disabled")) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color).slice(0, 3);
    const [a, b] = [luminance(fg), luminance(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const text = el.textContent.trim().slice(0, 30);
      problems.push(`${el.tagName.toLowerCase()}#${el.id} "${text}": ${ratio.toFixed(2)}`);
    }
  }
  return problems;
}
"""
"""JavaScript for ``page.evaluate``: text whose contrast is under WCAG AA (4.5:1, or 3:1 for
large text), as readable strings."""

UNLABELLED_CONTROLS_JS = """
() => [...document.querySelectorAll("input, select, textarea, button, a[href], audio")]
  .filter((el) => el.checkVisibility() || el.type === "file")
  .filter((el) => {
    const labelled = el.labels && el.labels.length > 0;
    const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    const text = ["BUTTON", "A"].includes(el.tagName) && el.textContent.trim();
    return !(labelled || named || text);
  })
  .map((el) => el.outerHTML.slice(0, 80))
"""
"""JavaScript for ``page.evaluate``: visible controls with no accessible name."""
