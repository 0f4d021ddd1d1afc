"""Developer tooling: starting real PostgreSQL and Redis for tests, benchmarks and the demo."""
