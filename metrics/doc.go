// Package metrics owns vtepd's counters and their Prometheus exposition.
//
// The data plane bumps plain atomic counters in a Counters value per VNI (no
// lock, no allocation, no Prometheus call per packet); a Collector reads them
// only when Prometheus scrapes. Metric and label names here are a contract
// with users' dashboards and alerts: add, never rename.
package metrics
