"""A paced HTTP load for the rate-limit test: requests at a fixed rate, each timed.

Run in-process for the measured client, and as ``python -m tests.security.load ARGS``
(the arguments as one JSON object; JSON results on stdout) for the noisy one, so that the
two do not share an interpreter lock.
"""

import http.client
import json
import sys
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Sample:
    started: float  # seconds after the load began
    wall: float  # time.time() when it was sent (the server's throttle windows use it)
    seconds: float  # the request's latency
    status: int
    retry_after: str | None


def paced(*, url: str, body: bytes, headers: dict[str, str], rate: float,
          seconds: float, catch_up: bool = False) -> list[Sample]:
    """POST ``body`` to ``url`` ``rate`` times a second for ``seconds``, one at a time; a
    new connection each, as gunicorn's sync workers close them. A late request delays the
    next ones (never two closer than 1/rate) unless ``catch_up``: then they keep to the
    schedule, back to back if need be."""
    parts = urlsplit(url)
    samples = []
    begin = time.perf_counter()
    start = begin - 1 / rate
    for n in range(int(rate * seconds)):
        slot = begin + n / rate if catch_up else start + 1 / rate
        pause = slot - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        start, wall = time.perf_counter(), time.time()
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            connection.request("POST", parts.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status, retry_after = response.status, response.getheader("Retry-After")
        finally:
            connection.close()
        samples.append(Sample(start - begin, wall, time.perf_counter() - start, status,
                              retry_after))
    return samples


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of them fall (linear interpolation)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    args["body"] = args["body"].encode()
    json.dump([asdict(sample) for sample in paced(**args)], sys.stdout)
