"""Thin routers: request fields in, one call into the core, a response out."""
