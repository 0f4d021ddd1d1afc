"""A paced HTTP load for the rate-limit test: requests at a fixed rate, each timed.

Run in-process for the measured client, and as ``python -m tests.security.load ARGS``
(the arguments as one JSON object; JSON results on stdout) for the noisy one, so that the
two do not share an interpreter lock.
"""

import json
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Sample:
    started: float  # seconds after the load began
    wall: float  # time.time() when it was sent (the server's throttle windows use it)
    seconds: float  # the request's latency
    status: int
    retry_after: str | None


def collect_request(public_key: str, origin: str) -> tuple[bytes, dict[str, str]]:
    """A collect batch of one event, and its headers (as the tracker sends it)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = {"event_id": str(uuid.uuid4()), "name": "page_view", "ts": now,
             "anon_id": "a_ratelimit-visitor-0001"}
    body = json.dumps({"site": public_key, "sent_at": now, "events": [event]}).encode()
    return body, {"Content-Type": "text/plain", "Origin": origin}


def paced(*, url: str, requests: list[tuple[bytes, dict[str, str]]], rate: float,
          seconds: float, catch_up: bool = False) -> list[Sample]:
    """POST to ``url`` ``rate`` times a second for ``seconds``, one at a time, taking the
    (body, headers) of ``requests`` in turn; a new connection each, as gunicorn's sync
    workers close them. A late request delays the next ones (never two closer than
    1/rate) unless ``catch_up``: then they keep to the schedule, back to back if need be."""
    parts = urlsplit(url)
    address = (parts.hostname, parts.port)
    prepared = [_request_bytes(parts.path, f"{parts.hostname}:{parts.port}", body, headers)
                for body, headers in requests]
    samples = []
    begin = time.perf_counter()
    start = begin - 1 / rate
    for n in range(int(rate * seconds)):
        slot = begin + n / rate if catch_up else start + 1 / rate
        pause = slot - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        start, wall = time.perf_counter(), time.time()
        status, retry_after = _exchange(address, prepared[n % len(prepared)])
        samples.append(Sample(start - begin, wall, time.perf_counter() - start, status,
                              retry_after))
    return samples


def _request_bytes(path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The whole HTTP/1.1 request, built once (the client's own CPU stays small)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             "Connection: close", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _exchange(address: tuple[str, int], request: bytes) -> tuple[int, str | None]:
    """Send the request, read the answer to its end; (status, Retry-After or None)."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head = b"".join(chunks).split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
    retry = {k.strip().lower(): v.strip() for k, v in fields.items()}.get("retry-after")
    return int(head[0].split()[1]), retry


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of them fall (linear interpolation)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    args["requests"] = [(body.encode(), headers) for body, headers in args["requests"]]
    json.dump([asdict(sample) for sample in paced(**args)], sys.stdout)
