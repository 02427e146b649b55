"""tinyscribe: an OpenAI-compatible speech-to-text API for AWS Lambda (Whisper tiny.en)."""

__version__ = "0.1.0"
