//! Synthetic calls and events (placeholder; being written).
