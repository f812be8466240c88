"""Recording a run: the session, its targets, the collector, and the tracer (the only module importing bcc)."""
