"""Prefect flows: thin orchestration over the plain functions of libraries/, extractors/,
store/ and analysis/. Each flow module also exposes the plain function it wraps, so the
CLI and tests can run the same work without a Prefect server."""
