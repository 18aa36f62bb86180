"""The end-to-end suite (`make e2e`): the whole product as real processes on real JetStream."""
