"""apiward alert stage: findings and incidents delivered to the systems
security teams already watch (webhooks, OCSF, Elastic ECS, CEF over
syslog, Splunk HEC), through a durable outbox, plus Prometheus metrics.

One module per sink; :mod:`apiward.alert.registry` maps sink types to
classes. :class:`~apiward.alert.dispatcher.AlertDispatcher` is the seam the
pipeline calls after each checkpoint.
"""
