// Package promtext reads vtepd's /metrics for the integration tests, the
// benchmark harness and the soak: Prometheus's own text parser (expfmt),
// flattened into samples that are easy to filter by labels.
package promtext
