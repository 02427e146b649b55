"""A Lambda context object, as the runtime passes one to the handler."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from mangum.types import LambdaCognitoIdentity, LambdaMobileClientContext


@dataclass
class LambdaContext:
    function_name: str = "tinyscribe-ApiFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:tinyscribe-ApiFunction"
    )
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/tinyscribe-ApiFunction"
    log_stream_name: str = "2026/11/26/[$LATEST]0123456789abcdef"
    timeout_seconds: float = 900.0
    started: float = field(default_factory=time.monotonic)
    # None unless a mobile SDK invokes the function, as in the real runtime
    identity: LambdaCognitoIdentity | None = None
    client_context: LambdaMobileClientContext | None = None

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000)
