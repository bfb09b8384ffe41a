// Package sinks groups the outputs of kappa beyond its state stores, one
// subpackage each: [github.com/kappa-stream/kappa/sinks/parquet] writes
// the validated listens, exactly once, as Parquet files for OLAP engines
// (DuckDB, Spark, Trino), with the catalog as dimension tables.
//
// A sink reads the listens topic as its own consumer group, so it never
// slows or versions the processors, and commits its input offsets in a
// Kafka transaction only for what it has durably written.
package sinks
