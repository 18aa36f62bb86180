"""The pipeline's I/O: the handler on the consumer runtime, the pod-event follower and the service."""
