"""Run the test server as its own process (benchmarks keep it off the client's interpreter):

    python -m tests.llm_server --port 0 --latency 0.2

It prints one line, `listening on http://127.0.0.1:<port>/v1`, then serves until killed.
"""

import argparse
import asyncio
import contextlib
import signal

from tests.llm_server.server import Faults, LLMTestServer


async def main(args) -> None:
    faults = Faults(
        latency_s=args.latency,
        jitter_s=args.jitter,
        p_429=args.p_429,
        p_500=args.p_500,
        p_timeout=args.p_timeout,
        p_truncated=args.p_truncated,
        p_garbage=args.p_garbage,
        seed=args.seed,
        chunked=args.chunked,
    )
    server = LLMTestServer(host=args.host, port=args.port, faults=faults)
    await server.start()
    print(f"listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument("--jitter", type=float, default=0.0)
    for name in ("p_429", "p_500", "p_timeout", "p_truncated", "p_garbage"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunked", action="store_true", help="reply with Transfer-Encoding: chunked")
    asyncio.run(main(parser.parse_args()))
