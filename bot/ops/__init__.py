"""Operations: health checks, Prometheus metrics, structured logs, backups (issue 8, part 7)."""
