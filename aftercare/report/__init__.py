"""The report stage: per-site delivery figures from the outbox, as tables, a chart and exports."""
