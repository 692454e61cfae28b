"""Remote sampling with a real Jaeger client: jaeger-client's remote sampler polls our
sampling port and then samples at the configured rate."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

import jaeger_client_env
from conftest import Server

SAMPLING = {
    "service_strategies": [
        {"service": "quarter", "type": "probabilistic", "param": 0.25},
        {"service": "limited", "type": "ratelimiting", "param": 3},
    ],
    "default_strategy": {"type": "probabilistic", "param": 1.0},
}

# runs in the client venv: args = sampling port, service name; prints what the sampler did
CLIENT = r"""
import json, sys, time
from jaeger_client import Config

port, service = int(sys.argv[1]), sys.argv[2]
config = Config(
    config={
        "local_agent": {"reporting_host": "127.0.0.1", "sampling_port": port},
        "sampling_refresh_interval": 0.2,
        "logging": False,
    },
    service_name=service,
    validate=True,
)
tracer = config.new_tracer()
inner = tracer.sampler
deadline = time.time() + 20
# no sampler type configured: jaeger-client samples remotely, starting at a 0.001 rate
while time.time() < deadline and type(inner.sampler).__name__ == "ProbabilisticSampler" \
        and inner.sampler.rate == 0.001:
    time.sleep(0.05)
sampler = inner.sampler
spans = sampled = 0
started = time.time()
while spans < 4000 or time.time() - started < 2.0:  # at least 4000 spans and 2 seconds
    sampled += tracer.start_span("op").is_sampled()
    spans += 1
    time.sleep(0.0005)
print(json.dumps({
    "sampler": type(sampler).__name__,
    "rate": getattr(sampler, "rate", None),
    "max_per_second": getattr(sampler, "traces_per_second", None),
    "sampled": sampled,
    "spans": spans,
    "seconds": time.time() - started,
}))
tracer.close()
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("samp") / "data", {"sampling": SAMPLING}).start()
    yield server
    server.stop()


def run_client(server: Server, service: str) -> dict:
    python = jaeger_client_env.python()
    done = subprocess.run(
        [str(python), "-c", CLIENT, str(server.sampling_port), service],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_probabilistic_rate_is_applied(srv: Server) -> None:
    got = run_client(srv, "quarter")
    assert got["sampler"] == "ProbabilisticSampler"
    assert got["rate"] == 0.25
    assert 0.21 <= got["sampled"] / got["spans"] <= 0.29


def test_rate_limiting_is_applied(srv: Server) -> None:
    got = run_client(srv, "limited")
    assert got["sampler"] == "RateLimitingSampler"
    assert got["max_per_second"] == 3
    # 3 per second over the run, plus the random initial credit (at most 3)
    assert 3 * got["seconds"] - 2 <= got["sampled"] <= 3 * got["seconds"] + 4
