"""`python -m steps.simulator`: a vLLM-compatible simulated endpoint with server-side ground truth.

See the package docstring for the modules; README for the flags and the truth endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from collections.abc import Sequence

from steps.cli import add_log_level_flag, make_parser, optional_text, run_step
from steps.errors import BenchError, UsageError
from steps.simulator.config import SimulatorConfig
from steps.simulator.server import HttpProtocol, Simulator
from steps.simulator.tokens import load_token_model

__all__ = ["main", "run"]

log = logging.getLogger("steps.simulator")

STEP = "simulator"


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (about half the CPU per write), else the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _tls_context(config: SimulatorConfig) -> ssl.SSLContext | None:
    """A server context for --ssl-certfile/--ssl-keyfile; None serves plain http."""
    if config.ssl_certfile is None:
        if config.ssl_keyfile is not None:
            raise UsageError("--ssl-keyfile needs --ssl-certfile")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--ssl-certfile={str(config.ssl_certfile)!r}: {exc}") from None
    return context


async def _serve(config: SimulatorConfig) -> None:
    loop = asyncio.get_running_loop()
    tls = _tls_context(config)
    tokens = load_token_model(config.tokenizer)
    sim = Simulator(config, tokens, loop)
    try:
        server = await loop.create_server(
            lambda: HttpProtocol(sim),
            config.host,
            config.port,
            reuse_address=True,
            backlog=2048,
            ssl=tls,
        )
    except OSError as exc:
        raise BenchError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "listening on %s://%s:%d model=%s ttft_ms=%g itl_ms=%g max_num_seqs=%d tokenizer=%s",
        "http" if tls is None else "https",
        config.host,
        port,
        config.model,
        config.ttft_ms,
        config.itl_ms,
        config.max_num_seqs,
        "exact" if tokens.exact else "approximate (no --tokenizer)",
    )
    await stop.wait()
    log.info("shutting down: %d connections open", len(sim.connections))
    server.close()
    sim.close_all()
    await server.wait_closed()


def run(config: SimulatorConfig) -> int:
    """Serve until SIGTERM or SIGINT; returns 0 on a clean shutdown."""
    loop = _new_event_loop()
    try:
        loop.run_until_complete(_serve(config))
    finally:
        loop.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    """One flag per SimulatorConfig field, its description as help; "" or absent = the default
    (Argo passes unset optional parameters as "", steps/CONTRACTS.md)."""
    parser = make_parser(
        "python -m steps.simulator", "vLLM-compatible simulated endpoint with ground truth"
    )
    for name, field in SimulatorConfig.model_fields.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=optional_text,
            default=None,
            metavar=name.upper(),
            help=f"{field.description} (default: {field.default})",
        )
    add_log_level_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, then serve; exit 2 on bad flags, 1 when the port cannot be bound."""
    return run_step(STEP, _parser(), argv, SimulatorConfig, run)


if __name__ == "__main__":
    sys.exit(main())
