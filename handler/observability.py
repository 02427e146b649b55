"""Logging for the whole service: Powertools' structured JSON logger, one per process."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="tinyscribe")
