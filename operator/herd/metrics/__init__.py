"""Request metrics of a WebService: PromQL per metric source (pure) and the Prometheus client."""
