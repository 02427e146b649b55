"""tinyscribe: an OpenAI-compatible speech-to-text API for AWS Lambda (Whisper tiny.en)."""

import time

__version__ = "0.1.0"

# When the package began to import: the entry point reports its cold start from here.
IMPORT_STARTED = time.perf_counter()
