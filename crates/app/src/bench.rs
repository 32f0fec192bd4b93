//! Load benchmark (placeholder; being written).
